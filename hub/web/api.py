"""The manager API (JSON, Bearer token): cards, timeline, notes, merges, lookup, managers,
reminders. Handlers validate and delegate; the domain modules decide."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web
from tortoise.expressions import Q

from hub import clients, dialing, identity, managers, merges, search, timeline
from hub.db import now
from hub.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from hub.keys import BUS, HTTP, METRICS, PIPELINE, REGISTRY, SETTINGS
from hub.models import (
    Client,
    ClientStatus,
    Interaction,
    Manager,
    Merge,
    Reminder,
    ReminderStatus,
    Role,
)
from hub.scheduler import LATE_AFTER, SCHEDULER
from hub.schemas import (
    CallRequest,
    ClientCreate,
    ClientPatch,
    ManagerCreate,
    MergeRequest,
    NoteCreate,
    ReminderCreate,
    ReminderSnooze,
)
from hub.web.auth import current_manager, require_admin
from hub.web.inputs import (
    MAX_BIG_ID,
    MAX_ID,
    parse_cursor,
    path_id,
    query_choice,
    query_int,
    query_text,
    read_body,
)

routes = web.RouteTableDef()


def ok(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def region(request: web.Request) -> str:
    return request.app[SETTINGS].phone_region


@routes.get("/api/clients")
async def list_clients(request: web.Request) -> web.Response:
    """Search and filter cards, newest activity first."""
    manager = request.query.get("manager_id")
    channel = query_text(request, "channel")
    if channel is not None and channel not in search.CHANNELS:
        raise ValidationError(f"channel: {channel[:40]!r} is not one of {list(search.CHANNELS)}",
                              field="channel")
    months = query_int(request, "idle_months", 0, 1, 1200)
    items, nxt = await search.list_clients(
        region=region(request), q=query_text(request, "q"),
        status=query_choice(request, "status", ClientStatus),
        manager_id=query_int(request, "manager_id", 0, 1, MAX_ID) if manager else None,
        channel=channel, idle_since=now() - timedelta(days=30 * months) if months else None,
        limit=query_int(request, "limit", 50), cursor=query_text(request, "cursor"),
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
    """One card; 410 with `merged_into` when it was merged away."""
    client = await clients.get_client(path_id(request))
    return ok(await clients.serialize(client))


@routes.patch(r"/api/clients/{id:\d+}")
async def patch_client(request: web.Request) -> web.Response:
    """Change a card: given lists replace, `fields` merge (null removes a key)."""
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
    return ok({**await clients.serialize(client), "merge": merges.serialize(merge)})


@routes.get(r"/api/clients/{id:\d+}/merges")
async def list_merges(request: web.Request) -> web.Response:
    """The merges into this card, newest first."""
    client_id = path_id(request)
    if not await Client.exists(id=client_id):
        raise NotFoundError(f"client {client_id} does not exist")
    rows = await Merge.filter(survivor_id=client_id).order_by("-id")
    return ok({"items": [merges.serialize(m) for m in rows], "next_cursor": None})


@routes.post(r"/api/merges/{id:\d+}/undo")
async def undo_merge(request: web.Request) -> web.Response:
    """Split a merge again (the merging manager or an admin)."""
    merge = await merges.undo_merge(path_id(request), current_manager(request))
    return ok(merges.serialize(merge))


@routes.get(r"/api/clients/{id:\d+}/timeline")
async def get_timeline(request: web.Request) -> web.Response:
    """The card's timeline, newest first."""
    client = await clients.get_client(path_id(request))
    cursor = query_text(request, "cursor")
    if cursor:
        parse_cursor(cursor, MAX_BIG_ID)  # timeline.page trusts its shape
    items, nxt = await timeline.page(client.id, query_int(request, "limit", 50), cursor)
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
    request.app[BUS].publish(
        {"type": "timeline.added", "client_id": client.id, "interaction": entry}
    )
    return ok(entry, 201)


@routes.post(r"/api/clients/{id:\d+}/call")
async def call_client(request: web.Request) -> web.Response:
    """Click-to-call: the provider rings the manager, then the client; 202 with the call's
    timeline entry, which the provider's webhooks then move along."""
    data = await read_body(request, CallRequest)
    client = await clients.get_client(path_id(request))
    caller = current_manager(request)
    manager = caller
    if data.manager_id is not None and data.manager_id != caller.id:
        require_admin(request)  # placing a call on another manager's phone
        found = await Manager.get_or_none(id=data.manager_id, is_active=True)
        if found is None:
            raise ValidationError(f"manager_id: manager {data.manager_id} does not exist",
                                  field="manager_id")
        manager = found
    app = request.app
    entry = await dialing.place_call(app[PIPELINE], app[REGISTRY], app[HTTP],
                                     app[SETTINGS].public_base_url, client, manager, app[METRICS])
    return ok(entry, 202)


@routes.get(r"/api/recordings/{provider:[a-z0-9_]+}/{ref:[A-Za-z0-9._:=+-]{1,200}}")
async def recording(request: web.Request) -> web.Response:
    """A call recording the provider keeps: a redirect to a fresh link the provider issues."""
    adapter = request.app[REGISTRY].get(request.match_info["provider"])
    if adapter is None:
        raise NotFoundError(f"{request.match_info['provider']} is not configured on this hub")
    link = await adapter.recording_link(request.app[HTTP], request.match_info["ref"])
    raise web.HTTPFound(link)


@routes.get("/api/lookup")
async def lookup(request: web.Request) -> web.Response:
    """The card holding a phone, e-mail or Telegram id/@username."""
    phone, email, telegram = (query_text(request, k) for k in ("phone", "email", "telegram"))
    client = await clients.lookup(region(request), phone, email, telegram)
    return ok(await clients.serialize(client))


@routes.get("/api/managers")
async def list_managers(request: web.Request) -> web.Response:
    """Active managers."""
    rows = await Manager.filter(is_active=True).order_by("id")
    return ok({"items": [managers.serialize(m) for m in rows], "next_cursor": None})


@routes.post("/api/managers")
async def create_manager(request: web.Request) -> web.Response:
    """Admins add managers; the answer carries the new manager's token once."""
    require_admin(request)
    data = await read_body(request, ManagerCreate)
    phone = data.phone and identity.normalize_phone(data.phone, region(request))
    if data.phone and not phone:
        raise ValidationError(f"phone: {data.phone!r} is not a valid phone number", field="phone")
    manager, token = await managers.create_manager(
        data.name, email=data.email, extension=data.extension, phone=phone, role=data.role
    )
    return ok({**managers.serialize(manager), "token": token}, 201)


# Reminders. A manager sees and changes their own reminders and unassigned ones; an admin all.


def serialize_reminder(reminder: Reminder) -> dict[str, Any]:
    """A reminder as the API shows it."""
    return {
        "id": reminder.id,
        "client_id": reminder.client_id,  # type: ignore[attr-defined]
        "manager_id": reminder.manager_id,  # type: ignore[attr-defined]
        "due_at": reminder.due_at.isoformat(),
        "text": reminder.text,
        "status": str(reminder.status),
        "origin": reminder.origin,
        "count": reminder.count,
        "fired_at": reminder.fired_at.isoformat() if reminder.fired_at else None,
        "late": bool(reminder.fired_at and reminder.fired_at - reminder.due_at > LATE_AFTER),
    }


def _visible(manager: Manager) -> Q:
    if manager.role == Role.ADMIN:
        return Q()
    return Q(manager_id=manager.id) | Q(manager_id=None)


async def _own_reminder(request: web.Request) -> Reminder:
    reminder = await Reminder.get_or_none(id=path_id(request))
    if reminder is None:
        raise NotFoundError(f"reminder {request.match_info['id']} does not exist")
    manager = current_manager(request)
    owner = reminder.manager_id  # type: ignore[attr-defined]
    if manager.role != Role.ADMIN and owner not in (None, manager.id):
        raise ForbiddenError("that reminder belongs to another manager")
    return reminder


@routes.post(r"/api/clients/{id:\d+}/reminders")
async def create_reminder(request: web.Request) -> web.Response:
    """A manual reminder about a card; by default for the manager who sets it."""
    data = await read_body(request, ReminderCreate)
    client = await clients.get_client(path_id(request))
    manager_id = data.manager_id or current_manager(request).id
    if not await Manager.exists(id=manager_id):
        raise ValidationError(
            f"manager_id: manager {manager_id} does not exist", field="manager_id"
        )
    when = now()
    due_at = data.due_at or when + timedelta(minutes=data.in_minutes or 0)
    reminder = await Reminder.create(
        client=client, manager_id=manager_id, due_at=due_at, text=data.text, origin="manual",
        created_at=when,
    )
    request.app[SCHEDULER].wake()
    return ok(serialize_reminder(reminder), 201)


@routes.get("/api/reminders")
async def list_reminders(request: web.Request) -> web.Response:
    """Reminders the caller may see, soonest first; `status` and `client_id` filter."""
    query = Reminder.filter(_visible(current_manager(request)))
    status = query_choice(request, "status", ReminderStatus)
    if status:
        query = query.filter(status=status)
    if request.query.get("client_id"):
        query = query.filter(client_id=query_int(request, "client_id", 0, 1, MAX_ID))
    cursor = query_text(request, "cursor")
    if cursor:
        at, last_id = parse_cursor(cursor)
        query = query.filter(Q(due_at__gt=at) | Q(due_at=at, id__gt=last_id))
    limit = query_int(request, "limit", 50)
    rows = await query.order_by("due_at", "id").limit(limit + 1)
    page = rows[:limit]
    nxt = timeline.encode_cursor(page[-1].due_at, page[-1].id) if len(rows) > limit else None
    return ok({"items": [serialize_reminder(r) for r in page], "next_cursor": nxt})




@routes.post(r"/api/reminders/{id:\d+}/done")
async def reminder_done(request: web.Request) -> web.Response:
    """Close a reminder (closing a closed one changes nothing)."""
    reminder = await _own_reminder(request)
    if reminder.status != ReminderStatus.DONE:
        reminder.status, reminder.done_at = ReminderStatus.DONE, now()
        await reminder.save(update_fields=["status", "done_at"])
    return ok(serialize_reminder(reminder))


@routes.post(r"/api/reminders/{id:\d+}/snooze")
async def reminder_snooze(request: web.Request) -> web.Response:
    """Remind again in `minutes` from now; a closed reminder cannot be snoozed (409)."""
    data = await read_body(request, ReminderSnooze)
    reminder = await _own_reminder(request)
    if reminder.status == ReminderStatus.DONE:
        raise ConflictError("that reminder is done; create a new one")
    reminder.due_at = now() + timedelta(minutes=data.minutes)
    reminder.status, reminder.fired_at = ReminderStatus.PENDING, None
    await reminder.save(update_fields=["due_at", "status", "fired_at"])
    request.app[SCHEDULER].wake()
    return ok(serialize_reminder(reminder))
