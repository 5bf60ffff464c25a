"""The reminder scheduler: it sleeps until the next reminder falls due (or until it is woken
because one was added or snoozed), claims the due ones in batches and tells their managers
(live, and by e-mail through the outbox when the hub sends mail: hub.notices);
a fired reminder still not done `escalate_after` past its due time goes to the admins, once.

Exactly once with several hub processes: a reminder is claimed by one UPDATE that moves it
from pending to fired (on PostgreSQL its rows are picked FOR UPDATE SKIP LOCKED, so two
processes take disjoint batches; SQLite has one writer). A reminder that fell due while no
hub ran fires at the next start and is marked late. The wall clock is read afresh on every
pass and no sleep is longer than MAX_SLEEP_S, so a clock that jumps only shifts what is due.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from tortoise import connections

from hub import delivery, outgoing
from hub.bus import Bus
from hub.db import Program, Row, Stmt, as_datetime, execute, now, run_program
from hub.loops import WakeableLoop, claim_sql, seconds_until, while_running
from hub.models import Client, Manager, ReminderStatus, Role
from hub.notices import queue_reminder_mails
from hub.outbox import OutboxWorker

log = logging.getLogger("hub.scheduler")
BATCH = 500
# a reminder that fires this long after it fell due was missed while no hub ran: say so
LATE_AFTER = timedelta(seconds=60)

_RETURNING = "RETURNING id, client_id, manager_id, due_at, text, origin, count, fired_at"
CLAIM_DUE = claim_sql(
    "UPDATE reminder SET status = ?, fired_at = ?",
    "SELECT id FROM reminder WHERE status = ? AND due_at <= ? ORDER BY due_at, id LIMIT ?",
    _RETURNING,
)
CLAIM_OVERDUE = claim_sql(
    "UPDATE reminder SET escalated_at = ?",
    "SELECT id FROM reminder WHERE status = ? AND escalated_at IS NULL AND due_at <= ? "
    "ORDER BY due_at, id LIMIT ?",
    _RETURNING,
)


def claim_due(when: datetime, limit: int) -> Program[list[Row]]:
    """Move up to `limit` due reminders from pending to fired; the ones this caller won.
    Each is reported to outgoing webhooks (`reminder.fired`) in the same transaction."""
    sqlite, postgres = CLAIM_DUE
    rows = yield Stmt(
        sqlite, (ReminderStatus.FIRED.value, when, ReminderStatus.PENDING.value, when, limit),
        pg=postgres,
    )
    if rows:
        ids = sorted({int(r["client_id"]) for r in rows})
        found = yield Stmt(
            "SELECT id, name, status FROM client WHERE id IN "  # noqa: S608 (markers only)
            f"({', '.join('?' * len(ids))})", tuple(ids))
        cards = {int(c["id"]): outgoing.summary(int(c["id"]), c["name"], c["status"])
                 for c in found}
        yield from outgoing.emit([outgoing.Outgoing("reminder.fired", {
            "reminder": serialize(r, when), "client": cards.get(int(r["client_id"]))}, when)
            for r in rows], when)
    return rows


def claim_overdue(when: datetime, overdue_since: datetime, limit: int) -> Program[list[Row]]:
    """Mark up to `limit` fired, not done reminders due before `overdue_since` escalated."""
    sqlite, postgres = CLAIM_OVERDUE
    rows = yield Stmt(
        sqlite, (when, ReminderStatus.FIRED.value, overdue_since, limit), pg=postgres,
    )
    return rows


def serialize(row: Row, fired_at: datetime) -> dict[str, Any]:
    """A fired reminder as the API and the live event show it."""
    due_at = as_datetime(row["due_at"])
    assert due_at is not None
    return {
        "id": row["id"], "client_id": row["client_id"], "manager_id": row["manager_id"],
        "due_at": due_at.isoformat(), "text": row["text"], "status": ReminderStatus.FIRED.value,
        "origin": row["origin"], "count": row["count"], "fired_at": fired_at.isoformat(),
        "late": fired_at - due_at > LATE_AFTER,
    }


class Scheduler(WakeableLoop):
    """One per hub process; `wake()` after adding or moving a reminder, or when a missed call
    may have opened one."""

    name = "reminder"

    def __init__(
        self, bus: Bus, escalate_after: timedelta = timedelta(hours=1),
        outbox: OutboxWorker | None = None, link_base: str | None = None,
    ) -> None:
        """`outbox`: where e-mail notices of fired reminders go (when it can send mail)."""
        super().__init__()
        self.bus = bus
        self.escalate_after = escalate_after
        self.outbox = outbox
        self.link_base = link_base

    async def run_pass(self) -> None:
        """Fire what is due, then tell the admins of what is overdue."""
        await self.fire_due()
        await self.escalate_overdue()

    async def fire_due(self, when: datetime | None = None) -> int:
        """Fire every reminder due at `when` (default now); how many this process fired."""
        fired = 0
        while True:
            rows, at = await self._claim(when or now())
            if rows:
                delivery.kick()
                await self._announce(rows, at)
            fired += len(rows)
            if len(rows) < BATCH or self.stopping:
                return fired

    async def _claim(self, at: datetime) -> tuple[list[Row], datetime]:
        outbox = self.outbox
        if outbox is None or (outbox.sender is None and outbox.telegram is None):
            return await run_program(lambda: claim_due(at, BATCH)), at
        mail_id = outbox.sender.message_id if outbox.sender is not None else None
        telegram_id = outbox.telegram.message_id if outbox.telegram is not None else None

        def claim_and_notify() -> Program[tuple[list[Row], int]]:
            rows = yield from claim_due(at, BATCH)
            queued = yield from queue_reminder_mails(rows, at, mail_id, self.link_base,
                                                     telegram_id)
            return rows, queued

        rows, queued = await run_program(claim_and_notify)
        if queued and self.outbox is not None:
            self.outbox.wake()
        return rows, at

    async def escalate_overdue(self, when: datetime | None = None) -> int:
        """Tell the admins of every reminder still open `escalate_after` past its due time;
        each once. How many this process escalated."""
        at = when or now()
        since = at - self.escalate_after
        escalated = 0
        while True:
            rows = await run_program(lambda: claim_overdue(at, since, BATCH))
            if rows:
                await self._tell_admins(rows)
            escalated += len(rows)
            if len(rows) < BATCH or self.stopping:
                return escalated

    async def _tell_admins(self, rows: list[Row]) -> None:
        try:
            found = await Manager.filter(role=Role.ADMIN, is_active=True).values("id")
            admins = {int(admin["id"]) for admin in found}
            cards = await self._cards(rows)
            for row in rows:
                fired_at = as_datetime(row["fired_at"]) or now()
                self.bus.publish(
                    {"type": "reminder.overdue", "reminder": serialize(row, fired_at),
                     "client": cards.get(row["client_id"])},
                    admins,
                )
                await asyncio.sleep(0)  # as in _announce
        except Exception:
            log.exception("could not tell the admins of %d overdue reminder(s)", len(rows))

    async def _cards(self, rows: list[Row]) -> dict[int, dict[str, Any]]:
        ids = {row["client_id"] for row in rows}
        return {c["id"]: c for c in await Client.filter(id__in=ids).values("id", "name", "status")}

    async def _announce(self, rows: list[Row], fired_at: datetime) -> None:
        """Tell each reminder's manager (everyone for an unassigned one); never fails the pass."""
        try:
            cards = await self._cards(rows)
            for row in rows:
                manager = row["manager_id"]
                self.bus.publish(
                    {"type": "reminder.due", "reminder": serialize(row, fired_at),
                     "client": cards.get(row["client_id"])},
                    {manager} if manager is not None else None,
                )
                # let the sockets' writers drain: a batch is larger than a subscription's queue
                await asyncio.sleep(0)
        except Exception:
            log.exception("could not announce %d fired reminder(s)", len(rows))

    async def next_due_in(self) -> float:
        """Seconds until the next reminder falls due or turns overdue (at most MAX_SLEEP_S)."""
        conn = connections.get("default")
        pending = await execute(conn, Stmt(
            "SELECT due_at FROM reminder WHERE status = ? ORDER BY due_at LIMIT 1",
            (ReminderStatus.PENDING.value,),
        ))
        fired = await execute(conn, Stmt(
            "SELECT due_at FROM reminder WHERE status = ? AND escalated_at IS NULL "
            "ORDER BY due_at LIMIT 1",
            (ReminderStatus.FIRED.value,),
        ))
        due = as_datetime(pending[0]["due_at"]) if pending else None
        overdue = as_datetime(fired[0]["due_at"]) if fired else None
        times = [t for t in (due, overdue and overdue + self.escalate_after) if t is not None]
        return seconds_until(min(times) if times else None)


SCHEDULER: web.AppKey[Scheduler] = web.AppKey("scheduler", Scheduler)


scheduling = while_running(lambda app: app[SCHEDULER])
