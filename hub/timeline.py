"""The timeline: append entries exactly once, page them newest first, serialize them."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from tortoise.expressions import Q

from hub.db import Program, Stmt, to_json
from hub.errors import PayloadError
from hub.events import MessageEvent
from hub.models import Interaction


def append_message(
    event: MessageEvent, client_id: int | None, when: datetime,
    extra: dict[str, Any] | None = None,
) -> Program[dict[str, Any]]:
    """The timeline entry of an inbound message (the caller already deduplicated the event).
    A person's message is "received"; a bounce, auto-reply, list or robot mail keeps its
    category as its status."""
    meta: dict[str, Any] = {"subject": event.subject, "thread_ref": event.thread_ref}
    if event.channel == "email":
        meta["from"] = event.sender.email  # where a manager's answer goes
    if event.attachments:
        meta["attachments"] = [
            {"name": a.name, "content_type": a.content_type, "size": a.size,
             **({"ref": a.ref} if a.ref else {})}
            for a in event.attachments
        ]
    if event.fields:
        meta["fields"] = dict(event.fields)
    if event.references:
        meta["references"] = list(event.references)
    if event.html:
        meta["html"] = event.html
    if event.category != "message":
        meta["category"] = event.category
        meta["reason"] = event.reason
    if event.bounce:
        meta["bounce"] = dict(event.bounce)
    if event.edited_at is not None:
        meta["edited_at"] = event.edited_at.isoformat()
    meta.update(event.extra)
    meta.update(extra or {})
    meta = {k: v for k, v in meta.items() if v is not None}
    status = "received" if event.makes_card else event.category
    rows = yield Stmt(
        "INSERT INTO interaction (client_id, kind, direction, channel, occurred_at, status, text, "
        "meta, source, external_id, created_at, updated_at) "
        "VALUES (?, ?, 'in', ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (client_id, event.channel, event.channel, event.occurred_at, status, event.text,
         to_json(meta), event.source, event.external_id, when, when),
    )
    return entry_dict(int(rows[0]["id"]), client_id, event.channel, "in", event.channel,
                      event.occurred_at, status, event.text, meta)


def entry_dict(
    interaction_id: int, client_id: int | None, kind: str, direction: str | None, channel: str,
    occurred_at: datetime, status: str | None, text: str, meta: dict[str, Any],
) -> dict[str, Any]:
    """An interaction as the API shows it."""
    return {
        "id": interaction_id,
        "client_id": client_id,
        "kind": kind,
        "direction": direction,
        "channel": channel,
        "occurred_at": occurred_at.isoformat(),
        "status": status,
        "text": text,
        "meta": meta,
    }


def serialize(item: Interaction) -> dict[str, Any]:
    """A stored interaction as the API shows it."""
    return entry_dict(item.id, item.client_id, item.kind, item.direction,  # type: ignore[attr-defined]
                      item.channel, item.occurred_at, item.status, item.text, item.meta)


def encode_cursor(*parts: Any) -> str:
    """An opaque paging cursor."""
    raw = "|".join(p.isoformat() if isinstance(p, datetime) else str(p) for p in parts)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_keyset(cursor: str, max_id: int) -> tuple[datetime, int]:
    """A (time, id) keyset cursor; a tampered one is a 400."""
    at_raw, id_raw = decode_cursor(cursor, 2)
    try:
        at, last_id = datetime.fromisoformat(at_raw), int(id_raw)
    except ValueError:
        raise PayloadError("cursor is not valid") from None
    if at.tzinfo is None or not 0 < last_id < max_id:
        raise PayloadError("cursor is not valid")
    return at, last_id


def decode_cursor(cursor: str, count: int) -> list[str]:
    """The parts of a cursor made by encode_cursor; a tampered one is a 400."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise PayloadError("cursor is not valid") from None
    parts = raw.split("|")
    if len(parts) != count:
        raise PayloadError("cursor is not valid")
    return parts


async def page(
    client_id: int, limit: int, cursor: str | None
) -> tuple[list[Interaction], str | None]:
    """One page of a card's timeline, newest first, keyset-paged on (occurred_at, id)."""
    query = Interaction.filter(client_id=client_id)
    if cursor:
        at, last_id = decode_keyset(cursor, 2**63)
        # the `<=` bound alone is what lets the index start at the cursor: with the OR only,
        # SQLite and PostgreSQL walk the card's index from its newest entry down to the cursor
        query = query.filter(occurred_at__lte=at).filter(
            Q(occurred_at__lt=at) | Q(occurred_at=at, id__lt=last_id)
        )
    items = await query.order_by("-occurred_at", "-id").limit(limit + 1)
    more = len(items) > limit
    items = items[:limit]
    nxt = encode_cursor(items[-1].occurred_at, items[-1].id) if more and items else None
    return items, nxt
