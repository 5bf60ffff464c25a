"""What the hub does with a message beyond putting it on a card: thread an e-mail under the
message it answers (and a Telegram reply under the message of ours it quotes), and let a bounce
fail the message of ours that it reports.

Threading follows In-Reply-To and References to an entry already stored: a client's earlier
e-mail (its Message-ID is the entry's external id) or an e-mail of ours (the outbox row keeps
its Message-ID). It links only within one card: a reference never moves a message from one
person onto another person's card, whatever its subject says.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hub.db import Program, Row, Stmt, as_datetime, as_json, to_json
from hub.events import MessageEvent
from hub.matching import search_text
from hub.timeline import entry_dict

MAX_REFS = 20  # the newest references are enough to find a thread
OUT_KINDS = ("offer", "email", "telegram")
RECENT_OUT = 50  # a Telegram reply is looked for among the card's latest messages of ours
CLOCK_SLACK = timedelta(days=1)


def thread_ids(event: MessageEvent) -> list[str]:
    """The Message-IDs this mail answers, the nearest first."""
    ordered = [event.thread_ref, *reversed(event.references)]
    seen: dict[str, None] = {}
    for ref in ordered:
        if ref and ref not in seen:
            seen[ref[:255]] = None
    return list(seen)[:MAX_REFS]


def thread_parent(event: MessageEvent, client_id: int) -> Program[Row | None]:
    """The entry on this card that the mail answers (its nearest reference that we know)."""
    refs = thread_ids(event)
    if not refs:
        return None
    marks = ", ".join("?" * len(refs))
    rows = yield Stmt(
        "SELECT i.id, i.kind, i.direction, i.meta, i.external_id AS ref FROM interaction i "  # noqa: S608
        f"WHERE i.source = 'email' AND i.external_id IN ({marks}) AND i.client_id = ? "
        "UNION ALL "
        "SELECT i.id, i.kind, i.direction, i.meta, o.message_id AS ref FROM outbox o "
        "JOIN interaction i ON i.id = o.interaction_id "
        f"WHERE o.channel = 'email' AND o.message_id IN ({marks}) AND i.client_id = ?",
        (*refs, client_id, *refs, client_id),
    )
    by_ref = {row["ref"]: row for row in rows}
    return next((by_ref[ref] for ref in refs if ref in by_ref), None)


def telegram_parent(event: MessageEvent, client_id: int) -> Program[Row | None]:
    """The message of ours (an offer, a manager's answer) that a client's Telegram reply
    answers: the reply names the chat message, our entry lists the ids of its parts."""
    reply_to = str(event.extra.get("reply_to") or "")
    _, _, wanted = reply_to.partition(":")
    if not wanted.isdigit():
        return None
    rows = yield Stmt(
        "SELECT id, kind, direction, meta FROM interaction WHERE client_id = ? "
        "AND channel = 'telegram' AND direction = 'out' ORDER BY occurred_at DESC, id DESC "
        "LIMIT ?", (client_id, RECENT_OUT),
    )
    for row in rows:
        if int(wanted) in ((as_json(row["meta"]) or {}).get("telegram_message_ids") or []):
            return row
    return None


def thread_fields(parent: Row) -> dict[str, Any]:
    """What a reply's entry says of its thread: the entry it answers and the thread's first."""
    parent_meta = as_json(parent["meta"]) or {}
    fields: dict[str, Any] = {
        "in_reply_to": int(parent["id"]),
        "thread_id": int(parent_meta.get("thread_id") or parent["id"]),
    }
    if parent["direction"] == "out":
        fields["reply_to_kind"] = parent["kind"]
    return fields


def mark_replied(parent: Row, reply_id: int, reply_at: datetime, when: datetime) -> Program[None]:
    """An offer or e-mail of ours learns it was answered (the first reply is the one named)."""
    if parent["direction"] != "out" or parent["kind"] not in OUT_KINDS:
        return
    rows = yield Stmt("SELECT meta FROM interaction WHERE id = ?", (int(parent["id"]),),
                      pg_suffix=" FOR UPDATE")
    meta = (as_json(rows[0]["meta"]) if rows else None) or {}
    if not rows or "reply_id" in meta:
        return
    meta.update(reply_id=reply_id, replied_at=reply_at.isoformat())
    yield Stmt("UPDATE interaction SET meta = ?, updated_at = ? WHERE id = ?",
               (to_json(meta), when, int(parent["id"])))


def apply_bounce(bounce: dict[str, Any], when: datetime) -> Program[dict[str, Any] | None]:
    """Fail the e-mail of ours that a delivery report names (or note a delay); the entry as the
    API shows it, None when the report names nothing we sent."""
    message_id = bounce.get("message_id")
    if not message_id:
        return None
    rows = yield Stmt(
        "SELECT o.id AS o_id, o.status AS o_status, i.id, i.client_id, i.kind, i.direction, "
        "i.channel, i.occurred_at, i.status, i.text, i.meta FROM outbox o "
        "JOIN interaction i ON i.id = o.interaction_id WHERE o.message_id = ?",
        (str(message_id)[:255],),
        pg_suffix=" FOR UPDATE",
    )
    if not rows:
        return None
    row = rows[0]
    meta = as_json(row["meta"]) or {}
    report = {k: v for k, v in bounce.items() if v is not None and k != "message_id"}
    status = row["status"]
    if bounce.get("permanent", True):
        reason = " ".join(str(p) for p in (bounce.get("status"), bounce.get("diagnostic")) if p)
        meta["error"] = f"bounced: {reason}" if reason else "bounced"
        meta["bounce"] = report
        meta.pop("next_attempt_at", None)
        status = "failed"
        yield Stmt(
            "UPDATE outbox SET status = 'failed', last_error = ?, updated_at = ? WHERE id = ?",
            (meta["error"][:2000], when, row["o_id"]),
        )
    else:
        meta["delayed"] = report  # the server keeps trying; the entry stays as it is
    yield Stmt("UPDATE interaction SET status = ?, meta = ?, updated_at = ? WHERE id = ?",
               (status, to_json(meta), when, row["id"]))
    occurred_at = as_datetime(row["occurred_at"]) or when
    return entry_dict(int(row["id"]), row["client_id"], row["kind"], row["direction"],
                      row["channel"], occurred_at, status, row["text"], meta)


def fill_card(client_id: int, name: str, fields: dict[str, str], when: datetime) -> Program[None]:
    """A web form fills what the card lacks (its name, its custom fields); what a manager or an
    earlier form wrote is never overwritten."""
    rows = yield Stmt("SELECT name, custom_fields FROM client WHERE id = ?", (client_id,),
                      pg_suffix=" FOR UPDATE")
    if not rows:
        return
    current = as_json(rows[0]["custom_fields"]) or {}
    added = {k[:100]: v[:2000] for k, v in fields.items() if k[:100] not in current}
    new_name = name if name and not rows[0]["name"] else None
    if not added and new_name is None:
        return
    yield Stmt(
        "UPDATE client SET custom_fields = ?, name = COALESCE(?, name), updated_at = ? "
        "WHERE id = ?",
        (to_json({**current, **added}), new_name, when, client_id),
    )
    if new_name is not None:
        ids = yield Stmt("SELECT kind, value FROM identity WHERE client_id = ?", (client_id,))
        text = search_text(new_name, [(r["kind"], r["value"]) for r in ids])
        yield Stmt("UPDATE client SET search = ? WHERE id = ?", (text, client_id))


# A reply stored before the message it answers leaves a marker under that message's id; the
# message's own first statement (its processed_event INSERT) reads the marker, so the common
# case (no early reply) costs no extra round trip.
ORPHAN_SOURCE, ORPHAN_EVENT = "mail-orphan", "waiting"
WAITING_REPLY = (
    ", EXISTS (SELECT 1 FROM processed_event w WHERE w.source = ? AND w.external_id = ? "
    "AND w.event = ?) AS waiting"
)


def waiting_params(message_id: str) -> tuple[str, str, str]:
    """The parameters WAITING_REPLY takes."""
    return (ORPHAN_SOURCE, message_id, ORPHAN_EVENT)


def wait_for_parent(parent_id: str, when: datetime) -> Program[None]:
    """Leave the marker that tells the awaited message, when it lands, to adopt its replies."""
    yield Stmt(
        "INSERT INTO processed_event (source, external_id, event, created_at) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (source, external_id, event) DO NOTHING",
        (ORPHAN_SOURCE, parent_id[:255], ORPHAN_EVENT, when),
    )


def adopt_replies(
    event: MessageEvent, client_id: int, entry_id: int, thread_id: int | None
) -> Program[None]:
    """Replies on this card that arrived before the message they answer (mail is not always
    fetched in the order it was written) are linked to it now."""
    if event.external_id.startswith("sha256:"):
        return
    # a reply is written after what it answers: only the card's later entries are looked at
    # (the (client_id, occurred_at) index finds them, however long the card's history), with
    # a day's slack for senders whose clocks are wrong
    rows = yield Stmt(
        "SELECT id, meta FROM interaction WHERE client_id = ? AND occurred_at >= ? "
        "AND kind = 'email' AND direction = 'in' AND json_extract(meta, '$.thread_ref') = ?",
        (client_id, event.occurred_at - CLOCK_SLACK, event.external_id),
        pg="SELECT id, meta FROM interaction WHERE client_id = ? AND occurred_at >= ? "
           "AND kind = 'email' AND direction = 'in' AND meta->>'thread_ref' = ?",
    )
    for row in rows:
        meta = as_json(row["meta"]) or {}
        if "in_reply_to" in meta:
            continue
        meta.update(in_reply_to=entry_id, thread_id=thread_id or entry_id)
        yield Stmt("UPDATE interaction SET meta = ? WHERE id = ?", (to_json(meta), row["id"]))
