"""Data protection: everything the hub holds about one person as JSON (an access request), the
erasure of that person's data on request, and the audit log that records who did either.

Erasure keeps the rows and blanks what names the person: the card stays (status, dates), and so
does every timeline entry (kind, direction, channel, status, time, a call's duration), so counts
and reports over past months do not change. What identifies someone (the card's name and fields,
phones, e-mails, Telegram ids, message texts and subjects, call numbers and recordings, the
mail waiting to go out to them) is removed in one transaction. A later call from the same
number finds no identity and makes a new card: the hub no longer knows them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from tortoise import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from hub import clients, merges, timeline
from hub.db import is_postgres, now
from hub.identity import Kind
from hub.models import (
    AuditLog,
    Call,
    Client,
    Identity,
    Interaction,
    LinkToken,
    Manager,
    Merge,
    Outbox,
    Reminder,
    TelegramChat,
)

log = logging.getLogger("hub.privacy")

# the timeline entry's meta keys that say nothing about who the person is
KEPT_META = ("duration",)
# Call.events snapshots: the facts kept per event (the recording link names the person's voice)
KEPT_CALL_EVENT = ("at", "extension", "line", "outcome", "duration", "seq")


async def audit(
    manager: Manager | None, action: str, target_type: str, target_id: int | None,
    detail: dict[str, Any], conn: BaseDBAsyncClient | None = None,
) -> None:
    """One audit log row. `detail` must hold ids, counts and reasons only: the log outlives
    the data it speaks of, so it must never keep what an erasure removed."""
    await AuditLog.create(at=now(), manager=manager, action=action, target_type=target_type,
                          target_id=target_id, detail=detail, using_db=conn)


async def _family(client_id: int, conn: BaseDBAsyncClient | None = None) -> list[int]:
    """The card and every card merged into it, directly or through a chain of merges."""
    ids = [client_id]
    frontier = [client_id]
    while frontier:
        found = await Client.filter(merged_into_id__in=frontier).using_db(conn).values("id")
        frontier = [int(row["id"]) for row in found if int(row["id"]) not in ids]
        ids += frontier
    return ids


def _plain(value: Any) -> Any:
    """A column value as JSON-ready data."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in row.items()} for row in rows]


async def export_client(client_id: int, by: Manager | None = None) -> dict[str, Any]:
    """Everything the hub holds about one person (and the cards merged into theirs), as JSON-ready
    data: the card, identities, the whole timeline oldest first, calls, reminders, merges, mail
    queued or sent to them and their Telegram chat. 404/410 like the card itself."""
    client = await clients.get_client(client_id)
    ids = await _family(client.id)
    merged = await Client.filter(id__in=ids[1:]).order_by("id")
    entries = await Interaction.filter(client_id__in=ids).order_by("occurred_at", "id")
    entry_ids = [e.id for e in entries]
    identities = await Identity.filter(client_id__in=ids).order_by("id").values(
        "id", "client_id", "kind", "value", "created_at")
    telegram_ids = [int(r["value"]) for r in identities if r["kind"] == Kind.TELEGRAM]
    data = {
        "exported_at": now().isoformat(),
        "client": await clients.serialize(client),
        "merged_cards": await clients.serialize_many(list(merged)),
        "identities": _rows(identities),
        "timeline": [timeline.serialize(e) for e in entries],
        "calls": _rows(await Call.filter(client_id__in=ids).order_by("id").values()),
        "reminders": _rows(await Reminder.filter(client_id__in=ids).order_by("id").values()),
        "merges": [merges.serialize(m) for m in await Merge.filter(
            survivor_id__in=ids).order_by("id")] + [merges.serialize(m) for m in await Merge.filter(
                merged_id__in=ids).exclude(survivor_id__in=ids).order_by("id")],
        "outbox": _rows(await Outbox.filter(interaction_id__in=entry_ids).order_by("id").values(
            "id", "interaction_id", "channel", "to_address", "subject", "text", "html",
            "attachments", "status", "attempts", "last_error", "sent_at", "created_at"))
        if entry_ids else [],
        "telegram_chats": _rows(await TelegramChat.filter(user_id__in=telegram_ids).values())
        if telegram_ids else [],
    }
    await audit(by, "client.exported", "client", client.id, {
        "cards": len(ids), "interactions": len(entries), "identities": len(identities)})
    return data


async def erase_client(client_id: int, by: Manager | None, reason: str) -> dict[str, int]:
    """Remove one person's personal data (and that of the cards merged into theirs) in one
    transaction, keeping the rows that counts and reports rely on; audited as "client.erased"
    with the counts and the reason. 404/410 like the card itself."""
    async with in_transaction() as conn:
        client = await clients.get_client(client_id, conn)
        ids = await _family(client.id, conn)
        if is_postgres(conn):  # a merge or another erasure of these cards waits for us
            await Client.filter(id__in=ids).using_db(conn).order_by("id").select_for_update()
        counts = await _erase(conn, ids)
        await audit(by, "client.erased", "client", client.id, {**counts, "reason": reason}, conn)
    log.info("client %s erased (%s cards)", client.id, counts["cards"])
    return counts


async def _erase(conn: BaseDBAsyncClient, ids: list[int]) -> dict[str, int]:
    when = now()
    telegram_ids = [int(row["value"]) for row in await Identity.filter(
        client_id__in=ids, kind=Kind.TELEGRAM).using_db(conn).values("value")]
    counts: dict[str, int] = {"cards": len(ids)}
    counts["identities"] = await Identity.filter(client_id__in=ids).using_db(conn).delete()
    for card in await Client.filter(id__in=ids).using_db(conn):
        card.name = ""
        card.custom_fields = {"erased_at": when.isoformat()}
        card.search = ""
        card.updated_at = when
        await card.save(using_db=conn, update_fields=[
            "name", "custom_fields", "search", "updated_at"])
    entries = await Interaction.filter(client_id__in=ids).using_db(conn)
    for entry in entries:
        entry.text = ""
        entry.meta = {**{k: entry.meta[k] for k in KEPT_META if entry.meta.get(k) is not None},
                      "erased": True}
        entry.updated_at = when
        await entry.save(using_db=conn, update_fields=["text", "meta", "updated_at"])
    counts["interactions"] = len(entries)
    calls = await Call.filter(client_id__in=ids).using_db(conn)
    for call in calls:
        await Call.filter(id=call.id).using_db(conn).update(
            remote_phone=None, recording_url=None,
            events={name: {k: v for k, v in snap.items() if k in KEPT_CALL_EVENT}
                    for name, snap in call.events.items()})
    counts["calls"] = len(calls)
    entry_ids = [e.id for e in entries]
    counts["outbox"] = await Outbox.filter(interaction_id__in=entry_ids).using_db(
        conn).delete() if entry_ids else 0
    counts["reminders"] = await Reminder.filter(client_id__in=ids).using_db(conn).update(text="")
    counts["telegram_chats"] = await TelegramChat.filter(user_id__in=telegram_ids).using_db(
        conn).delete() if telegram_ids else 0
    await LinkToken.filter(kind="client", target_id__in=ids).using_db(conn).delete()
    counts["merges"] = await _erase_merges(conn, ids)
    counts["webhook_events"] = await _erase_webhook_events(conn, ids)
    return counts


_PG_ERASE_EVENTS = """
UPDATE webhook_event SET payload = json_build_object(
    'client', json_build_object('id', (payload::jsonb #>> '{client,id}')::bigint),
    'erased', true)::text
WHERE (payload::jsonb #>> '{client,id}')::bigint = ANY($1::bigint[])
   OR (payload::jsonb ->> 'merged_id')::bigint = ANY($1::bigint[])
RETURNING id"""


async def _erase_webhook_events(conn: BaseDBAsyncClient, ids: list[int]) -> int:
    """Outgoing webhook events about these cards (kept until delivered and `keep_days` past)
    carry the card and the entry: their data becomes {"client": {"id": ...}, "erased": true}.
    A delivery still pending sends that. Events are pruned, so the scan stays short."""
    if is_postgres(conn):
        return len(await conn.execute_query_dict(_PG_ERASE_EVENTS, [ids]))
    marks = ", ".join("?" * len(ids))
    card = "json_extract(payload, '$.client.id')"
    sql = (f"UPDATE webhook_event SET payload = json_object('client', json_object('id', {card}), "  # noqa: S608 (markers only)
           f"'erased', json('true')) WHERE {card} IN ({marks}) "
           f"OR json_extract(payload, '$.merged_id') IN ({marks}) RETURNING id")
    return len(await conn.execute_query_dict(sql, [*ids, *ids]))


async def _erase_merges(conn: BaseDBAsyncClient, ids: list[int]) -> int:
    """A merge into one of these cards keeps the survivor's values from before it (for an
    undo): blank those. A merge of one of them into another card (since undone: a merged-away
    card is never erased) keeps only ids of ours."""
    rows = await Merge.filter(survivor_id__in=ids).using_db(conn)
    for merge in rows:
        before = dict(merge.moved.get("survivor_before") or {})
        if before:
            before.update(name="", custom_fields={})
            merge.moved = {**merge.moved, "survivor_before": before}
            await merge.save(using_db=conn, update_fields=["moved"])
    return len(rows)


def serialize_audit(row: AuditLog) -> dict[str, Any]:
    """An audit log row as the API shows it."""
    return {
        "id": row.id,
        "at": row.at.isoformat(),
        "manager_id": row.manager_id,  # type: ignore[attr-defined]
        "action": row.action,
        "target_type": row.target_type,
        "target_id": row.target_id,
        "detail": row.detail,
    }
