"""Call-back reminders: the missed-call rule lives here and nowhere else."""

from __future__ import annotations

from datetime import datetime

from hub.db import Program, Stmt
from hub.models import ReminderStatus

MISSED_CALL = "missed_call"
_OPEN = (ReminderStatus.PENDING.value, ReminderStatus.FIRED.value)
_FIND_OPEN = Stmt(
    "SELECT id, count FROM reminder WHERE client_id = ? AND origin = ? AND status IN (?, ?) "
    "ORDER BY id LIMIT 1"
)


def _find_open(client_id: int) -> Stmt:
    return Stmt(_FIND_OPEN.sql, (client_id, MISSED_CALL, *_OPEN))


def on_missed_call(
    client_id: int, manager_id: int | None, missed_at: datetime, when: datetime
) -> Program[None]:
    """One open call-back reminder per client: the first missed call opens it, others bump it.
    A missed call whose news arrives after a later call with the client connected opens
    nothing: the client has been reached since. The reminder is due from the missed call
    (never later than now: a PBX clock ahead of ours must not postpone it)."""
    reached = yield Stmt(
        "SELECT 1 AS one FROM call WHERE client_id = ? AND was_answered = ? AND started_at > ? "
        "LIMIT 1",
        (client_id, True, missed_at),
    )
    if reached:
        return
    due = min(missed_at, when)
    rows = yield _find_open(client_id)
    if rows:
        yield Stmt(
            "UPDATE reminder SET count = count + 1, "
            "due_at = CASE WHEN due_at < ? THEN ? ELSE due_at END WHERE id = ?",
            (due, due, rows[0]["id"]),
        )
        return
    yield Stmt(
        "INSERT INTO reminder (client_id, manager_id, due_at, text, status, origin, count, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?)",
        (client_id, manager_id, due, "Call back: missed call", ReminderStatus.PENDING.value,
         MISSED_CALL, when),
    )


def on_connected_call(client_id: int, connected_at: datetime, when: datetime) -> Program[None]:
    """A call that connected with the client closes their open missed-call reminder, unless
    a missed call came after it (its news may arrive in any order)."""
    yield Stmt(
        "UPDATE reminder SET status = ?, done_at = ? WHERE client_id = ? AND origin = ? "
        "AND status IN (?, ?) AND due_at <= ?",
        (ReminderStatus.DONE.value, when, client_id, MISSED_CALL, *_OPEN, connected_at),
    )


def on_missed_call_revoked(client_id: int, when: datetime) -> Program[None]:
    """A late event showed the call was answered after all: take its missed call back."""
    rows = yield _find_open(client_id)
    if not rows:
        return
    if rows[0]["count"] > 1:
        yield Stmt("UPDATE reminder SET count = count - 1 WHERE id = ?", (rows[0]["id"],))
    else:
        yield Stmt("UPDATE reminder SET status = ?, done_at = ? WHERE id = ?",
                   (ReminderStatus.DONE.value, when, rows[0]["id"]))
