"""Outgoing webhook subscriptions (admins only): `POST/GET /api/webhooks`, one subscription at
`/api/webhooks/{id}` (GET, PATCH to change, pause or resume, DELETE), its signing secret made
anew, a test ping, its delivery history and replays. hub.outgoing records the events,
hub.delivery sends them."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from aiohttp import web
from tortoise import connections

from hub import delivery, outgoing
from hub.db import Row, Stmt, as_datetime, execute, now, run_program
from hub.errors import NotFoundError, ValidationError
from hub.models import Webhook
from hub.schemas import WebhookCreate, WebhookPatch, WebhookReplay
from hub.timeline import encode_cursor
from hub.web.auth import require_admin
from hub.web.inputs import MAX_BIG_ID, parse_cursor, path_id, query_int, query_text, read_body

routes = web.RouteTableDef()
STATUSES = ("pending", "delivered", "failed")


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


async def _pending(ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    rows = await execute(connections.get("default"), Stmt(
        "SELECT webhook_id, COUNT(*) AS n FROM webhook_delivery WHERE status = ? "  # noqa: S608
        f"AND webhook_id IN ({', '.join('?' * len(ids))}) GROUP BY webhook_id",
        ("pending", *ids)))
    return {int(r["webhook_id"]): int(r["n"]) for r in rows}


def _iso(value: Any) -> str | None:
    at = as_datetime(value)
    return at.isoformat() if at else None


def serialize(hook: Webhook, pending: int) -> dict[str, Any]:
    return {
        "id": hook.id, "url": hook.url, "events": outgoing.topics_of(hook.topics),
        "description": hook.description, "status": hook.status,
        "paused_reason": hook.paused_reason, "failing_since": _iso(hook.failing_since),
        "retry_at": _iso(hook.retry_at), "pending": pending,
        "created_at": hook.created_at.isoformat(),
    }


async def _get(request: web.Request) -> Webhook:
    require_admin(request)
    hook_id = path_id(request)
    hook = await Webhook.get_or_none(id=hook_id)
    if hook is None:
        raise NotFoundError(f"webhook {hook_id} does not exist")
    return hook


@routes.post("/api/webhooks")
async def create_webhook(request: web.Request) -> web.Response:
    """A new subscription; the answer carries its secret, shown this once."""
    admin = require_admin(request)
    data = await read_body(request, WebhookCreate)
    when = now()
    hook = await Webhook.create(
        url=data.url, topics=outgoing.topics_column(data.events), description=data.description,
        secret=new_secret(), status=delivery.ACTIVE, created_by=admin, created_at=when,
        updated_at=when)
    return web.json_response({**serialize(hook, 0), "secret": hook.secret}, status=201)


@routes.get("/api/webhooks")
async def list_webhooks(request: web.Request) -> web.Response:
    require_admin(request)
    hooks = await Webhook.all().order_by("id")
    pending = await _pending([h.id for h in hooks])
    return web.json_response({"items": [serialize(h, pending.get(h.id, 0)) for h in hooks],
                              "next_cursor": None})


@routes.get("/api/webhooks/events")
async def event_types(request: web.Request) -> web.Response:
    """The event types a subscription may ask for, and what each means."""
    require_admin(request)
    return web.json_response({"items": [{"type": t, "description": d}
                                        for t, d in outgoing.TYPES.items()]})


@routes.get(r"/api/webhooks/{id:\d+}")
async def get_webhook(request: web.Request) -> web.Response:
    hook = await _get(request)
    return web.json_response(serialize(hook, (await _pending([hook.id])).get(hook.id, 0)))


@routes.patch(r"/api/webhooks/{id:\d+}")
async def change_webhook(request: web.Request) -> web.Response:
    """Change the URL, the types or the description; pause, or resume where it stopped."""
    hook = await _get(request)
    data = await read_body(request, WebhookPatch)
    if data.url is not None:
        hook.url = data.url
    if data.events is not None:
        hook.topics = outgoing.topics_column(data.events)
    if data.description is not None:
        hook.description = data.description
    if data.status is not None and data.status != hook.status:
        hook.status = data.status
        reason = "paused by an admin" if data.status == delivery.PAUSED else None
        hook.paused_reason = reason  # type: ignore[assignment]
        hook.retry_at = hook.failing_since = None  # a resumed subscription is tried at once
    hook.updated_at = now()
    await hook.save()
    if hook.status == delivery.ACTIVE:
        delivery.kick()
    return web.json_response(serialize(hook, (await _pending([hook.id])).get(hook.id, 0)))


@routes.delete(r"/api/webhooks/{id:\d+}")
async def delete_webhook(request: web.Request) -> web.Response:
    """The subscription and its delivery history are gone; nothing more is sent to it."""
    hook = await _get(request)
    await hook.delete()
    return web.Response(status=204)


@routes.post(r"/api/webhooks/{id:\d+}/secret")
async def rotate_secret(request: web.Request) -> web.Response:
    """A new signing secret, from the next request on; shown this once."""
    hook = await _get(request)
    hook.secret, hook.updated_at = new_secret(), now()
    await hook.save(update_fields=["secret", "updated_at"])
    return web.json_response({"secret": hook.secret})


@routes.post(r"/api/webhooks/{id:\d+}/ping")
async def ping(request: web.Request) -> web.Response:
    """Queue a `webhook.ping` event for this subscription only: a check that the receiver
    answers and verifies the signature. 202 with the delivery; its fate is in the history."""
    hook = await _get(request)
    when = now()
    delivery_id = await run_program(lambda: outgoing.ping(
        hook.id, {"webhook": {"id": hook.id, "url": hook.url}}, when))
    delivery.kick()
    rows = await execute(connections.get("default"), _delivery_query("d.id = ?", (delivery_id,)))
    return web.json_response(_delivery(rows[0]), status=202)


def _delivery_query(where: str, params: tuple[Any, ...], tail: str = "") -> Stmt:
    """Deliveries with their events; `where`/`tail` are fixed SQL text, values go in `params`."""
    return Stmt(
        "SELECT d.id, d.event_id, e.type, e.occurred_at, d.status, d.attempts, d.last_status, "  # noqa: S608
        "d.last_error, d.next_attempt_at, d.delivered_at, d.created_at "
        f"FROM webhook_delivery d JOIN webhook_event e ON e.id = d.event_id WHERE {where} {tail}",
        params)


def _delivery(row: Row) -> dict[str, Any]:
    return {
        "id": int(row["id"]),
        "event": {"id": int(row["event_id"]), "type": row["type"],
                  "occurred_at": _iso(row["occurred_at"])},
        "status": row["status"], "attempts": int(row["attempts"]),
        "last_status": row["last_status"], "last_error": row["last_error"],
        "next_attempt_at": _iso(row["next_attempt_at"]),
        "delivered_at": _iso(row["delivered_at"]), "created_at": _iso(row["created_at"]),
    }


@routes.get(r"/api/webhooks/{id:\d+}/deliveries")
async def deliveries(request: web.Request) -> web.Response:
    """The subscription's deliveries, newest first; `status` filters."""
    hook = await _get(request)
    limit = query_int(request, "limit", 50)
    status = query_text(request, "status")
    if status is not None and status not in STATUSES:
        raise ValidationError(f"status: {status[:40]!r} is not one of {list(STATUSES)}",
                              field="status")
    where, params = "d.webhook_id = ?", list[Any]([hook.id])
    if status is not None:
        where += " AND d.status = ?"
        params.append(status)
    cursor = query_text(request, "cursor")
    if cursor:
        _, last_id = parse_cursor(cursor, MAX_BIG_ID)
        where += " AND d.id < ?"
        params.append(last_id)
    rows = await execute(connections.get("default"), _delivery_query(
        where, (*params, limit + 1), "ORDER BY d.id DESC LIMIT ?"))
    page = rows[:limit]
    nxt = (encode_cursor(as_datetime(page[-1]["created_at"]) or now(), int(page[-1]["id"]))
           if len(rows) > limit else None)
    return web.json_response({"items": [_delivery(r) for r in page], "next_cursor": nxt})


async def _requeue(hook: Webhook, where: str, params: tuple[Any, ...]) -> int:
    """Deliveries back to pending with a fresh count of attempts; how many."""
    when = now()
    rows = await execute(connections.get("default"), Stmt(
        "UPDATE webhook_delivery SET status = ?, attempts = 0, first_attempt_at = NULL, "  # noqa: S608
        "next_attempt_at = NULL, last_error = NULL, last_status = NULL, delivered_at = NULL, "
        f"updated_at = ? WHERE webhook_id = ? AND status <> ? AND {where} RETURNING id",
        ("pending", when, hook.id, "pending", *params)))
    if rows and hook.status == delivery.ACTIVE:
        delivery.kick()
    return len(rows)


@routes.post(r"/api/webhooks/{id:\d+}/deliveries/{delivery_id:\d+}/replay")
async def replay_one(request: web.Request) -> web.Response:
    """Send one delivery again (delivered or failed), in its event's place in the order."""
    hook = await _get(request)
    delivery_id = path_id(request, "delivery_id")
    await _requeue(hook, "id = ?", (delivery_id,))
    rows = await execute(connections.get("default"), _delivery_query(
        "d.id = ? AND d.webhook_id = ?", (delivery_id, hook.id)))
    if not rows:
        raise NotFoundError(f"delivery {delivery_id} of webhook {hook.id} does not exist")
    return web.json_response(_delivery(rows[0]), status=202)


@routes.post(r"/api/webhooks/{id:\d+}/replay")
async def replay_since(request: web.Request) -> web.Response:
    """Send again every delivery made at or after `since`, in event order."""
    hook = await _get(request)
    data = await read_body(request, WebhookReplay)
    since: datetime = data.since
    queued = await _requeue(hook, "created_at >= ?", (since,))
    return web.json_response({"queued": queued}, status=202)
