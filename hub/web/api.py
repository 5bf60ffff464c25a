"""The manager API (JSON, Bearer token): cards, timeline, notes, merges, lookup, managers."""

from __future__ import annotations

import json
from typing import Any, TypeVar

import pydantic
from aiohttp import web

from hub import clients, managers, merges, search, timeline
from hub.db import now
from hub.errors import PayloadError, ValidationError
from hub.keys import BUS, SETTINGS
from hub.models import Interaction, Manager, Merge
from hub.schemas import ClientCreate, ClientPatch, ManagerCreate, MergeRequest, NoteCreate
from hub.web.auth import current_manager, require_admin

B = TypeVar("B", bound=pydantic.BaseModel)
routes = web.RouteTableDef()
MAX_LIMIT = 200


async def read_body(request: web.Request, model: type[B]) -> B:
    """The JSON body validated against a model: 400 if not JSON, 422 naming the bad field."""
    if request.content_type not in ("application/json", ""):
        from hub.errors import MediaTypeError

        raise MediaTypeError("expected Content-Type application/json")
    raw = await request.read()
    try:
        data = json.loads(raw or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PayloadError("body must be a JSON object")
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        raise ValidationError(f"{'.'.join(map(str, err['loc'])) or 'body'}: {err['msg']}") from None


def query_int(request: web.Request, name: str, default: int, low: int = 1, high: int = MAX_LIMIT) -> int:
    """An integer query parameter within bounds (422 otherwise)."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(f"{name}: must be an integer") from None
    if not low <= value <= high:
        raise ValidationError(f"{name}: must be between {low} and {high}")
    return value


def path_id(request: web.Request, name: str = "id") -> int:
    return int(request.match_info[name])


def ok(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def region(request: web.Request) -> str:
    return request.app[SETTINGS].phone_region


@routes.get("/api/clients")
async def list_clients(request: web.Request) -> web.Response:
    """Search and filter cards, newest activity first."""
    status = request.query.get("status") or None
    if status and status not in {s.value for s in clients.ClientStatus}:
        raise ValidationError(f"status: {status!r} is not a client status")
    manager = request.query.get("manager_id")
    items, nxt = await search.list_clients(
        region=region(request), q=request.query.get("q"), status=status,
        manager_id=query_int(request, "manager_id", 0, 1, 2**31) if manager else None,
        limit=query_int(request, "limit", 50), cursor=request.query.get("cursor") or None,
    )
    return ok({"items": await clients.serialize_many(items), "next_cursor": nxt})


@routes.post("/api/clients")
async def create_client(request: web.Request) -> web.Response:
    """A new card typed in by a manager."""
    data = await read_body(request, ClientCreate)
    client = await clients.create_client(data, region(request))
    return ok(await clients.serialize(client), 201)


@routes.get(r"/api/clients/{id:\d+}")
async def get_client(request: web.Request) -> web.Response:
    client = await clients.get_client(path_id(request))
    return ok(await clients.serialize(client))


@routes.patch(r"/api/clients/{id:\d+}")
async def patch_client(request: web.Request) -> web.Response:
    data = await read_body(request, ClientPatch)
    client = await clients.get_client(path_id(request))
    client = await clients.update_client(client, data, region(request))
    return ok(await clients.serialize(client))


@routes.post(r"/api/clients/{id:\d+}/merge")
async def merge_client(request: web.Request) -> web.Response:
    """Fold another card into this one (recorded, undoable)."""
    data = await read_body(request, MergeRequest)
    merge = await merges.merge_clients(path_id(request), data.other_id, current_manager(request))
    client = await clients.get_client(path_id(request))
    return ok({"client": await clients.serialize(client), "merge": merges.serialize(merge)})


@routes.get(r"/api/clients/{id:\d+}/merges")
async def list_merges(request: web.Request) -> web.Response:
    client_id = path_id(request)
    rows = await Merge.filter(survivor_id=client_id).order_by("-id")
    return ok({"items": [merges.serialize(m) for m in rows], "next_cursor": None})


@routes.post(r"/api/merges/{id:\d+}/undo")
async def undo_merge(request: web.Request) -> web.Response:
    merge = await merges.undo_merge(path_id(request), current_manager(request))
    return ok(merges.serialize(merge))


@routes.get(r"/api/clients/{id:\d+}/timeline")
async def get_timeline(request: web.Request) -> web.Response:
    """The card's timeline, newest first."""
    client = await clients.get_client(path_id(request))
    items, nxt = await timeline.page(
        client.id, query_int(request, "limit", 50), request.query.get("cursor") or None
    )
    return ok({"items": [timeline.serialize(i) for i in items], "next_cursor": nxt})


@routes.post(r"/api/clients/{id:\d+}/notes")
async def add_note(request: web.Request) -> web.Response:
    """A manager's comment on the card."""
    data = await read_body(request, NoteCreate)
    client = await clients.get_client(path_id(request))
    manager = current_manager(request)
    when = now()
    note = await Interaction.create(
        client=client, kind="note", direction=None, channel="hub", occurred_at=when,
        status=None, text=data.text, meta={"author": manager.name}, author=manager,
        created_at=when, updated_at=when,
    )
    entry = timeline.serialize(note)
    request.app[BUS].publish({"type": "timeline.added", "client_id": client.id, "interaction": entry})
    return ok(entry, 201)


@routes.get("/api/lookup")
async def lookup(request: web.Request) -> web.Response:
    """The card holding a phone, e-mail or Telegram id/@username."""
    q = request.query
    client = await clients.lookup(region(request), q.get("phone"), q.get("email"), q.get("telegram"))
    return ok(await clients.serialize(client))


@routes.get("/api/managers")
async def list_managers(request: web.Request) -> web.Response:
    rows = await Manager.filter(is_active=True).order_by("id")
    return ok({"items": [managers.serialize(m) for m in rows], "next_cursor": None})


@routes.post("/api/managers")
async def create_manager(request: web.Request) -> web.Response:
    """Admins add managers; the answer carries the new manager's token once."""
    require_admin(request)
    data = await read_body(request, ManagerCreate)
    manager, token = await managers.create_manager(
        data.name, email=data.email, extension=data.extension, phone=data.phone, role=data.role
    )
    return ok({**managers.serialize(manager), "token": token}, 201)
