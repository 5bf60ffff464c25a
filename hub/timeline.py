"""The timeline: append entries exactly once, page them newest first, serialize them."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from tortoise import BaseDBAsyncClient
from tortoise.expressions import Q

from hub.errors import PayloadError
from hub.events import MessageEvent
from hub.models import Interaction


async def append_message(
    conn: BaseDBAsyncClient, event: MessageEvent, client_id: int | None, when: datetime
) -> Interaction:
    """The timeline entry of an inbound message (the caller already deduplicated the event)."""
    meta: dict[str, Any] = {"subject": event.subject, "thread_ref": event.thread_ref}
    if event.attachments:
        meta["attachments"] = [
            {"name": a.name, "content_type": a.content_type, "size": a.size}
            for a in event.attachments
        ]
    if event.fields:
        meta["fields"] = dict(event.fields)
    return await Interaction.create(
        client_id=client_id, kind=event.channel, direction="in", channel=event.channel,
        occurred_at=event.occurred_at, status="received", text=event.text,
        meta={k: v for k, v in meta.items() if v is not None},
        source=event.source, external_id=event.external_id,
        created_at=when, updated_at=when, using_db=conn,
    )


def serialize(item: Interaction) -> dict[str, Any]:
    """An interaction as the API shows it."""
    return {
        "id": item.id,
        "client_id": item.client_id,  # type: ignore[attr-defined]
        "kind": item.kind,
        "direction": item.direction,
        "channel": item.channel,
        "occurred_at": item.occurred_at.isoformat(),
        "status": item.status,
        "text": item.text,
        "meta": item.meta,
    }


def encode_cursor(*parts: Any) -> str:
    """An opaque paging cursor."""
    raw = "|".join(p.isoformat() if isinstance(p, datetime) else str(p) for p in parts)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


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


async def page(client_id: int, limit: int, cursor: str | None) -> tuple[list[Interaction], str | None]:
    """One page of a card's timeline, newest first, keyset-paged on (occurred_at, id)."""
    query = Interaction.filter(client_id=client_id)
    if cursor:
        at_raw, id_raw = decode_cursor(cursor, 2)
        try:
            at, last_id = datetime.fromisoformat(at_raw), int(id_raw)
        except ValueError:
            raise PayloadError("cursor is not valid") from None
        query = query.filter(Q(occurred_at__lt=at) | Q(occurred_at=at, id__lt=last_id))
    items = await query.order_by("-occurred_at", "-id").limit(limit + 1)
    more = len(items) > limit
    items = items[:limit]
    nxt = encode_cursor(items[-1].occurred_at, items[-1].id) if more and items else None
    return items, nxt
