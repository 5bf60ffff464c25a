"""Outgoing webhooks, the write side: what the hub reports to other systems, and how a report
becomes durable.

A change that is worth reporting (a card made, a call missed, a message in, an offer sent, a
reminder fired, ...) calls `emit` inside its own transaction: the event row and one delivery
row per subscription that wants its type (made by a trigger on the event table) are written
with the change, or not at all. Nothing is written when no subscription wants the type (one
statement that inserts nothing), so a hub without subscriptions pays one cheap statement per
change. Paused subscriptions still collect their deliveries: pausing stops the sending, never
the record.

The event's `data` holds the hub's own objects as the API shows them (a card, a timeline
entry, a reminder), never a provider's raw payload. hub.delivery sends them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise import BaseDBAsyncClient

from hub.db import Program, Row, Stmt, execute, now, to_json

# every type a subscription may ask for, and what it means (the README and OpenAPI show these)
TYPES: dict[str, str] = {
    "client.created": "a card was made: by a call, a message, a manager or an import",
    "client.merged": "a card was folded into another (data.client is the surviving card)",
    "call.missed": "a call ended unanswered (inbound) or unreached (outbound)",
    "call.completed": "an answered call ended",
    "message.received": "a client's e-mail or Telegram message landed on a card",
    "message.sent": "a manager's reply went out",
    "message.failed": "a manager's reply could not be sent (data.interaction.meta.error)",
    "offer.sent": "an offer went out",
    "offer.failed": "an offer could not be sent, or bounced (data.interaction.meta.error)",
    "reminder.fired": "a call-back reminder fell due",
}
PING = "webhook.ping"  # sent to one subscription on request, whatever it asked for
EVERYTHING = "*"
PENDING = "pending"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One event to report: its type, the objects it carries and when it happened."""

    type: str
    data: dict[str, Any]
    occurred_at: datetime


def topics_column(types: Iterable[str]) -> str:
    """How a subscription's types are stored: ",a,b," (or ",*,"), so one `instr`/`strpos`
    tells whether it wants a type, in either database."""
    return "," + ",".join(sorted(set(types))) + ","


def topics_of(column: str) -> list[str]:
    return [t for t in column.split(",") if t]


# The events of one transaction go in as one JSON array, in order; a trigger on webhook_event
# (migration 9) adds one pending delivery per subscription whose topics hold ",*," or
# ",<type>,". An event no subscription wants is not inserted at all.
_EMIT = (
    "INSERT INTO webhook_event (type, payload, occurred_at, created_at) "
    "SELECT json_extract(j.value, '$.t'), json_extract(j.value, '$.p'), "
    "json_extract(j.value, '$.o'), ? FROM json_each(?) j "
    "WHERE EXISTS (SELECT 1 FROM webhook w WHERE w.topics = ',*,' "
    "OR instr(w.topics, ',' || json_extract(j.value, '$.t') || ',') > 0) "
    "ORDER BY j.key RETURNING id"
)
_PG_EMIT = (
    "INSERT INTO webhook_event (type, payload, occurred_at, created_at) "
    "SELECT u.v->>'t', u.v->>'p', (u.v->>'o')::timestamptz, ?::timestamptz "
    "FROM jsonb_array_elements(?::jsonb) WITH ORDINALITY AS u(v, n) "
    "WHERE EXISTS (SELECT 1 FROM webhook w WHERE w.topics = ',*,' "
    "OR strpos(w.topics, ',' || (u.v->>'t') || ',') > 0) "
    "ORDER BY u.n RETURNING id"
)


def emit(events: Sequence[Outgoing], when: datetime) -> Program[int]:
    """Record `events`, in order, for every subscription that wants them, in the caller's
    transaction (one statement); how many of them some subscription wanted."""
    if not events:
        return 0
    batch = to_json([{"t": e.type, "p": to_json(e.data), "o": e.occurred_at.isoformat(" ")}
                     for e in events])
    rows = yield Stmt(_EMIT, (when, batch), pg=_PG_EMIT)
    return len(rows)


async def emit_on(conn: BaseDBAsyncClient, events: Sequence[Outgoing], when: datetime) -> int:
    """`emit` inside a Tortoise transaction (`in_transaction() as conn`)."""
    program = emit(events, when)
    try:
        stmt = next(program)
        while True:
            rows: list[Row] = list(await execute(conn, stmt))
            stmt = program.send(rows)
    except StopIteration as done:
        return int(done.value)


def ping(webhook_id: int, data: dict[str, Any], when: datetime) -> Program[int]:
    """A `webhook.ping` event for one subscription only; the new delivery's id."""
    rows = yield Stmt(
        "INSERT INTO webhook_event (type, payload, occurred_at, created_at) "
        "VALUES (?, ?, ?, ?) RETURNING id", (PING, to_json(data), when, when))
    done = yield Stmt(
        "INSERT INTO webhook_delivery (webhook_id, event_id, status, attempts, created_at, "
        "updated_at) VALUES (?, ?, ?, 0, ?, ?) RETURNING id",
        (webhook_id, rows[0]["id"], PENDING, when, when))
    return int(done[0]["id"])


# ---- the objects events carry -------------------------------------------------------------


def summary(client_id: int | None, name: str | None, status: str | None) -> dict[str, Any] | None:
    """The card an event is about, in short (the full card: GET /api/clients/{id})."""
    if client_id is None:
        return None
    return {"id": client_id, "name": name, "status": status}


_SENT = {"offer": "offer", "email": "message", "telegram": "message"}


def send_report(entry: dict[str, Any], client: dict[str, Any] | None) -> Outgoing | None:
    """`offer.sent`/`offer.failed` or `message.sent`/`message.failed` for an outbound entry
    that reached its end (a reminder notice to a manager is not reported)."""
    noun = _SENT.get(str(entry.get("kind")))
    if noun is None or entry.get("direction") != "out" or entry.get("status") not in (
            "sent", "failed"):
        return None
    meta = entry.get("meta") or {}
    at = meta.get("sent_at") if entry["status"] == "sent" else None
    return Outgoing(f"{noun}.{entry['status']}", {"client": client, "interaction": entry},
                    datetime.fromisoformat(at) if isinstance(at, str) else now())

