"""Data protection in the manager API (admins only): export everything about one client, erase a
client's personal data on request, and read the audit log of who did either. hub.privacy
decides; handlers validate and delegate."""

from __future__ import annotations

import json
from typing import Annotated

import pydantic
from aiohttp import web
from tortoise.expressions import Q

from hub import privacy
from hub.errors import ValidationError
from hub.models import AuditLog
from hub.timeline import encode_cursor
from hub.web.auth import require_admin
from hub.web.inputs import MAX_BIG_ID, parse_cursor, path_id, query_int, query_text, read_body

routes = web.RouteTableDef()
TARGET_TYPE_MAX = 32  # the audit log's column


class EraseRequest(pydantic.BaseModel):
    """`POST /api/clients/{id}/erase`: why, and the card's id typed again as a confirmation."""

    model_config = pydantic.ConfigDict(extra="forbid")

    reason: Annotated[str, pydantic.StringConstraints(strip_whitespace=True, min_length=1,
                                                      max_length=500)]
    confirm: int


@routes.get(r"/api/clients/{id:\d+}/export")
async def export_client(request: web.Request) -> web.Response:
    """Everything the hub holds about one client, as a JSON file to download (admins)."""
    admin = require_admin(request)
    client_id = path_id(request)
    data = await privacy.export_client(client_id, admin)
    return web.Response(
        text=json.dumps(data, ensure_ascii=False, indent=2), content_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="client-{client_id}.json"'},
    )


@routes.post(r"/api/clients/{id:\d+}/erase")
async def erase_client(request: web.Request) -> web.Response:
    """Erase a client's personal data (admins); `confirm` must repeat the card's id (422)."""
    admin = require_admin(request)
    client_id = path_id(request)
    data = await read_body(request, EraseRequest)
    if data.confirm != client_id:
        raise ValidationError("confirm: must be the id of the client to erase", field="confirm")
    counts = await privacy.erase_client(client_id, admin, data.reason)
    return web.json_response({"client_id": client_id, "erased": counts})


@routes.get("/api/audit")
async def list_audit(request: web.Request) -> web.Response:
    """The audit log, newest first, optionally of one object (admins)."""
    require_admin(request)
    query = AuditLog.all()
    target_type = query_text(request, "target_type")
    if target_type is not None and len(target_type) > TARGET_TYPE_MAX:
        raise ValidationError(f"target_type: at most {TARGET_TYPE_MAX} characters",
                              field="target_type")
    if target_type is not None:
        query = query.filter(target_type=target_type)
    if request.query.get("target_id"):
        query = query.filter(target_id=query_int(request, "target_id", 0, 1, MAX_BIG_ID))
    cursor = query_text(request, "cursor")
    if cursor:
        at, last_id = parse_cursor(cursor, MAX_BIG_ID)
        query = query.filter(Q(at__lt=at) | Q(at=at, id__lt=last_id))
    limit = query_int(request, "limit", 50)
    rows = await query.order_by("-at", "-id").limit(limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = encode_cursor(rows[-1].at, rows[-1].id) if more and rows else None
    return web.json_response({"items": [privacy.serialize_audit(r) for r in rows],
                              "next_cursor": nxt})
