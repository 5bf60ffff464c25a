"""The durable outbox of outbound e-mail (offers and managers' messages) and its worker.

`queue_email` writes the timeline entry and its outbox row in one transaction. The
worker claims due rows with one UPDATE (queued → sending; on PostgreSQL the rows are picked
FOR UPDATE SKIP LOCKED, so several hub processes take disjoint batches), sends each, and marks
it sent (the entry's status "sent", `meta.message_id`) or, on a retryable error, queued again
with exponential backoff (the entry stays "queued" with `meta.attempts`, `meta.last_error` and
`meta.next_attempt_at`) up to MAX_ATTEMPTS, after which, or at once on a permanent error, it
is failed (the entry "failed", `meta.error`).

Restart safety: a row left in `sending` longer than LEASE (its process died mid-send) is
claimed again by the next pass. The honest caveat: if a process dies after the SMTP server
accepted the message but before the row was marked sent, the message goes out a second time;
it carries the same Message-ID (generated once, stored on the row), by which receivers dedupe.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from aiohttp import web
from tortoise import connections

from channels.smtp import MailFile, OutgoingEmail
from hub import delivery, outgoing
from hub.bus import Bus
from hub.db import Program, Row, Stmt, as_datetime, as_json, execute, now, run_program, to_json
from hub.errors import DeliveryError
from hub.loops import WakeableLoop, claim_sql, seconds_until, while_running
from hub.metrics import Metrics
from hub.offers import AttachmentFile, read_attachment
from hub.tgsend import message_ids
from hub.timeline import entry_dict

log = logging.getLogger("hub.outbox")
BATCH = 10
SEND_DEADLINE_S = 60.0
LEASE = timedelta(minutes=2)
BACKOFF_BASE_S = 30.0
BACKOFF_CAP_S = 3600.0
MAX_ATTEMPTS = 8

QUEUED, SENDING, SENT, FAILED = "queued", "sending", "sent", "failed"


class Sender(Protocol):
    def message_id(self) -> str: ...

    async def send(self, mail: OutgoingEmail) -> str: ...


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed try: 30 s, 60 s, 120 s, ... capped at 1 h."""
    return timedelta(seconds=min(BACKOFF_BASE_S * 2 ** max(attempts - 1, 0), BACKOFF_CAP_S))


def queue_email(
    kind: str, client_id: int, author_id: int | None, mail: OutgoingEmail,
    meta: dict[str, Any], when: datetime, direction: str | None = "out",
    attachments: Sequence[AttachmentFile] = (), channel: str = "email",
) -> Program[dict[str, Any]]:
    """The timeline entry (an `offer` or a manager's `email`, queued) and its outbox row, in the
    caller's transaction. The entry names its Message-ID at once, so a reply or a bounce that
    comes back finds it whatever state the send is in."""
    meta = {**meta, "to": mail.to, "message_id": mail.message_id}
    if mail.in_reply_to:
        meta["in_reply_to_message"] = mail.in_reply_to
    if attachments:
        meta["attachments"] = [a.describe() for a in attachments]
    files = [{"path": a.path, "name": a.name, "content_type": a.content_type}
             for a in attachments]
    rows = yield Stmt(
        "INSERT INTO interaction (client_id, kind, direction, channel, occurred_at, status, text, "
        "meta, author_id, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (client_id, kind, direction, channel, when, QUEUED, _entry_text(kind, mail),
         to_json(meta), author_id, when, when),
    )
    interaction_id = int(rows[0]["id"])
    yield Stmt(
        "INSERT INTO outbox (interaction_id, channel, to_address, subject, text, html, "
        "message_id, in_reply_to, thread_refs, auto_submitted, attachments, status, "
        "attempts, next_attempt_at, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?) RETURNING id",
        (interaction_id, channel, mail.to, mail.subject, mail.text, mail.html, mail.message_id,
         mail.in_reply_to, " ".join(mail.references) or None, mail.auto_submitted,
         to_json(files) if files else None, QUEUED, when, when, when),
    )
    return entry_dict(interaction_id, client_id, kind, direction, channel, when, QUEUED,
                      _entry_text(kind, mail), meta)


def _entry_text(kind: str, mail: OutgoingEmail) -> str:
    """An offer or a reminder notice shows its subject on the timeline; a manager's message
    shows what was said."""
    return mail.text if kind in ("email", "telegram") else mail.subject


def requeue(interaction_id: int, when: datetime) -> Program[dict[str, Any] | None]:
    """Send a failed entry again (a manager's decision, e.g. once the mailbox is back): its
    row goes back to queued with a fresh count of attempts. None unless it had failed."""
    done = yield Stmt(
        "UPDATE outbox SET status = ?, attempts = 0, next_attempt_at = ?, last_error = NULL, "
        "updated_at = ? WHERE interaction_id = ? AND status = ? RETURNING id",
        (QUEUED, when, when, interaction_id, FAILED),
    )
    if not done:
        return None
    rows = yield Stmt(
        "SELECT client_id, kind, direction, channel, occurred_at, text, meta FROM interaction "
        "WHERE id = ?", (interaction_id,),
    )
    row = rows[0]
    meta = {k: v for k, v in (as_json(row["meta"]) or {}).items()
            if k not in ("error", "bounce", "attempts", "last_error", "next_attempt_at")}
    meta["requeued_at"] = when.isoformat()
    yield Stmt("UPDATE interaction SET status = ?, meta = ?, updated_at = ? WHERE id = ?",
               (QUEUED, to_json(meta), when, interaction_id))
    return entry_dict(interaction_id, row["client_id"], row["kind"], row["direction"],
                      row["channel"], as_datetime(row["occurred_at"]) or when, QUEUED,
                      row["text"], meta)


CLAIM = claim_sql(
    "UPDATE outbox SET status = ?, attempts = attempts + 1, updated_at = ?",
    "SELECT id FROM outbox WHERE (status = ? AND next_attempt_at <= ?) "
    "OR (status = ? AND updated_at <= ?) ORDER BY next_attempt_at, id LIMIT ?",
    "RETURNING id, interaction_id, channel, to_address, subject, text, html, message_id, "
    "in_reply_to, thread_refs, auto_submitted, attachments, attempts",
)


def claim(when: datetime, limit: int) -> Program[list[Row]]:
    """Move up to `limit` due rows (and rows whose sender's lease ran out) to sending."""
    sqlite, postgres = CLAIM
    rows = yield Stmt(
        sqlite, (SENDING, when, QUEUED, when, SENDING, when - LEASE, limit), pg=postgres
    )
    return rows


def settle(
    outbox_id: int, attempt: int, interaction_id: int, status: str, when: datetime,
    changes: dict[str, Any], next_attempt_at: datetime | None = None, error: str | None = None,
) -> Program[dict[str, Any] | None]:
    """Record the outcome of a row's `attempt`-th send on the row and its timeline entry; the
    entry as the API shows it (None when the row is no longer this attempt's: it was taken
    back after its lease)."""
    done = yield Stmt(
        "UPDATE outbox SET status = ?, next_attempt_at = COALESCE(?, next_attempt_at), "
        "last_error = ?, sent_at = ?, updated_at = ? "
        "WHERE id = ? AND status = ? AND attempts = ? RETURNING id",
        (status, next_attempt_at, error, when if status == SENT else None, when, outbox_id,
         SENDING, attempt),
    )
    if not done:
        return None
    rows = yield Stmt(
        "SELECT i.client_id, i.kind, i.direction, i.channel, i.occurred_at, i.text, i.meta, "
        "i.author_id, c.name AS c_name, c.status AS c_status "
        "FROM interaction i LEFT JOIN client c ON c.id = i.client_id WHERE i.id = ?",
        (interaction_id,),
    )
    if not rows:
        return None
    row = rows[0]
    meta = {**(as_json(row["meta"]) or {}), **changes}
    meta = {k: v for k, v in meta.items() if not (k in changes and v is None)}  # None: drop
    yield Stmt(
        "UPDATE interaction SET status = ?, meta = ?, updated_at = ? WHERE id = ?",
        (status, to_json(meta), when, interaction_id),
    )
    occurred_at = as_datetime(row["occurred_at"]) or when
    entry = entry_dict(interaction_id, row["client_id"], row["kind"], row["direction"],
                       row["channel"], occurred_at, status, row["text"], meta)
    card = outgoing.summary(row["client_id"], row["c_name"], row["c_status"])
    if (report := outgoing.send_report(entry, card)) is not None:
        entry["reported"] = yield from outgoing.emit([report], when)
    entry["author_id"] = row["author_id"]
    return entry


class OutboxWorker(WakeableLoop):
    """One per hub process; `wake()` after queuing a message."""

    name = "outbox"

    def __init__(
        self, sender: Sender | None, bus: Bus | None = None, metrics: Metrics | None = None,
        telegram: Sender | None = None,
    ) -> None:
        """`sender`: e-mail (SMTP); `telegram`: the bot. Either may be missing."""
        super().__init__()
        self.sender = sender
        self.telegram = telegram
        self.bus = bus
        self.metrics = metrics

    def sender_for(self, channel: str) -> Sender | None:
        return self.telegram if channel == "telegram" else self.sender

    async def run_pass(self, when: datetime | None = None) -> int:
        """Send every due message; how many this process claimed."""
        if self.sender is None and self.telegram is None:
            return 0
        claimed = 0
        while True:
            at = when or now()
            rows = await run_program(functools.partial(claim, at, BATCH))
            # a batch is sent concurrently, each send within SEND_DEADLINE_S: well inside LEASE
            await asyncio.gather(*(self._send(row) for row in rows))
            claimed += len(rows)
            if len(rows) < BATCH or self.stopping:
                return claimed

    async def _send(self, row: Row) -> None:
        attempts = int(row["attempts"])
        sender = self.sender_for(row["channel"])
        if sender is None:
            await self._failed(row, attempts, DeliveryError(
                f"{row['channel']} sending is not configured on this hub", retryable=False))
            return
        try:
            files = _files(row)
        except DeliveryError as missing:
            await self._failed(row, attempts, missing)
            return
        mail = OutgoingEmail(to=row["to_address"], subject=row["subject"], text=row["text"],
                             html=row["html"], message_id=row["message_id"], date=now(),
                             in_reply_to=row["in_reply_to"],
                             references=tuple((row["thread_refs"] or "").split()),
                             auto_submitted=bool(row["auto_submitted"]), files=files)
        try:
            answer = await asyncio.wait_for(sender.send(mail), SEND_DEADLINE_S)
        except TimeoutError:
            exc = DeliveryError(f"no answer within {SEND_DEADLINE_S:.0f} s", retryable=True)
            await self._failed(row, attempts, exc)
            return
        except DeliveryError as exc:
            await self._failed(row, attempts, exc)
            return
        except Exception as exc:  # a bug in building the message: do not retry forever
            log.exception("outbox %s: unexpected error", row["id"])
            await self._failed(row, attempts, DeliveryError(str(exc), retryable=False))
            return
        when = now()
        response = "smtp_response" if row["channel"] == "email" else f"{row['channel']}_response"
        changes: dict[str, Any] = {
            "message_id": row["message_id"], response: answer, "attempts": attempts,
            "sent_at": when.isoformat(), "last_error": None, "next_attempt_at": None,
        }
        if row["channel"] == "telegram":  # a client's reply names one of these
            changes["telegram_message_ids"] = message_ids(answer)
        await self._settle(row, SENT, when, changes)

    async def _failed(self, row: Row, attempts: int, exc: DeliveryError) -> None:
        when = now()
        if exc.retryable and attempts < MAX_ATTEMPTS:
            retry_at = when + backoff(attempts)
            log.warning("outbox %s: attempt %d failed, retrying at %s: %s", row["id"], attempts,
                        retry_at.isoformat(), exc.message)
            await self._settle(row, QUEUED, when, {
                "attempts": attempts, "last_error": exc.message,
                "next_attempt_at": retry_at.isoformat(),
            }, next_attempt_at=retry_at, error=exc.message)
            return
        log.warning("outbox %s: failed after %d attempt(s): %s", row["id"], attempts,
                    exc.message)
        await self._settle(row, FAILED, when, {
            "attempts": attempts, "error": exc.message, "last_error": None,
            "next_attempt_at": None,
        }, error=exc.message)

    async def _settle(
        self, row: Row, status: str, when: datetime, changes: dict[str, Any],
        next_attempt_at: datetime | None = None, error: str | None = None,
    ) -> None:
        outbox_id, interaction_id = int(row["id"]), int(row["interaction_id"])
        attempt = int(row["attempts"])
        entry = await run_program(lambda: settle(
            outbox_id, attempt, interaction_id, status, when, changes, next_attempt_at, error))
        if entry is not None and entry.pop("reported", 0):
            delivery.kick()
        if entry is not None and self.metrics is not None:
            outcome = {SENT: "sent", QUEUED: "retry", FAILED: "failed"}[status]
            self.metrics.outbox.labels(entry["kind"], outcome).inc()
        if entry is not None and self.bus is not None:
            author = entry.pop("author_id")
            self.bus.publish({"type": f"{entry['kind']}.updated", "interaction": entry},
                             {int(author)} if author is not None else None)

    async def next_due_in(self) -> float:
        """Seconds until the next queued row falls due (at most MAX_SLEEP_S)."""
        rows = await execute(connections.get("default"), Stmt(
            "SELECT next_attempt_at FROM outbox WHERE status = ? "
            "ORDER BY next_attempt_at LIMIT 1", (QUEUED,),
        ))
        return seconds_until(as_datetime(rows[0]["next_attempt_at"]) if rows else None)


def _files(row: Row) -> tuple[MailFile, ...]:
    """The attachments a row names, read now (an offer's price list from the templates)."""
    listed = as_json(row["attachments"]) or []
    return tuple(MailFile(str(f["name"]), str(f["content_type"]), read_attachment(str(f["path"])))
                 for f in listed)


OUTBOX: web.AppKey[OutboxWorker] = web.AppKey("outbox", OutboxWorker)


sending = while_running(lambda app: app[OUTBOX])
