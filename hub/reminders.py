"""Call-back reminders: the missed-call rule lives here and nowhere else."""

from __future__ import annotations

from datetime import UTC, datetime

from hub.db import Program, Row, Stmt, as_datetime
from hub.models import ReminderStatus

MISSED_CALL = "missed_call"
_OPEN = (ReminderStatus.PENDING.value, ReminderStatus.FIRED.value)
_FIND_OPEN = Stmt(
    "SELECT id, count FROM reminder WHERE client_id = ? AND origin = ? AND status IN (?, ?) "
    "ORDER BY id LIMIT 1"
)


def _find_open(client_id: int) -> Stmt:
    return Stmt(_FIND_OPEN.sql, (client_id, MISSED_CALL, *_OPEN))


# What is owed: the client's inbound calls that ended unanswered with no connected call (either
# direction) after them, by the calls' own times. The open reminder's count is always this
# number, read from the calls, never kept step by step: so it comes out the same whatever order
# the providers' notifications arrive in ("3 missed calls since you last spoke"). Both reads
# walk the (client_id, started_at) index from the newest call down: the latest connected call,
# then the calls after it, so a client with years of calls costs what their last few cost.
_OWED = (
    "FROM call k WHERE k.client_id = ? AND k.direction = 'inbound' AND k.state = 'ended' "
    "AND k.was_answered = ? AND k.started_at > COALESCE((SELECT a.started_at FROM call a "
    "WHERE a.client_id = ? AND a.was_answered = ? ORDER BY a.started_at DESC LIMIT 1), ?)"
)
_NEVER = datetime(1970, 1, 1, tzinfo=UTC)


def _owed(client_id: int) -> Stmt:
    return Stmt(f"SELECT COUNT(*) AS n, MAX(k.started_at) AS latest {_OWED}",  # noqa: S608
                (client_id, False, client_id, True, _NEVER))


_LOCKS = 0x7E3A  # the advisory lock space of the call-back rule (any constant of our own)


def one_at_a_time(client_id: int) -> Stmt:
    """On PostgreSQL, one call-back decision per client at a time, until the transaction ends:
    two calls of one client settling at once (two requests, two processes) would each find no
    open reminder and open one. SQLite runs one writer at a time already: a plain SELECT."""
    return Stmt("SELECT ? AS space, ? AS client", (_LOCKS, client_id),
                pg="SELECT pg_advisory_xact_lock(?::int, ?::int)::text AS locked")


def _open_reminder(
    client_id: int, manager_id: int | None, due: datetime, count: int, when: datetime
) -> Stmt:
    return Stmt(
        "INSERT INTO reminder (client_id, manager_id, due_at, text, status, origin, count, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (client_id, manager_id, due, "Call back: missed call", ReminderStatus.PENDING.value,
         MISSED_CALL, count, when),
    )


def _settle(reminder_id: int, owed: list[Row], when: datetime) -> Stmt:
    """The open reminder counts what is owed, or closes when nothing is."""
    count = int(owed[0]["n"]) if owed else 0
    if count == 0:
        return Stmt("UPDATE reminder SET status = ?, done_at = ? WHERE id = ?",
                    (ReminderStatus.DONE.value, when, reminder_id))
    return Stmt("UPDATE reminder SET count = ? WHERE id = ?", (count, reminder_id))


def on_missed_call(
    client_id: int, manager_id: int | None, missed_at: datetime, when: datetime
) -> Program[None]:
    """One open call-back reminder per client: the first missed call opens it, others raise
    its count. A missed call whose news arrives after a later call with the client connected
    opens nothing: the client has been reached since. The reminder is due from the latest
    missed call (never later than now: a PBX clock ahead of ours must not postpone it)."""
    reached = yield Stmt(
        "SELECT 1 AS one FROM call WHERE client_id = ? AND was_answered = ? AND started_at > ? "
        "LIMIT 1",
        (client_id, True, missed_at),
    )
    if reached:
        return
    owed = yield _owed(client_id)
    count = int(owed[0]["n"]) if owed else 0
    due = min(missed_at, when)
    rows = yield _find_open(client_id)
    if rows:
        yield Stmt(
            "UPDATE reminder SET count = ?, "
            "due_at = CASE WHEN due_at < ? THEN ? ELSE due_at END WHERE id = ?",
            (count, due, due, rows[0]["id"]),
        )
        return
    yield _open_reminder(client_id, manager_id, due, max(count, 1), when)


def on_connected_call(client_id: int, connected_at: datetime, when: datetime) -> Program[None]:
    """A call that connected with the client settles their open missed-call reminder: closed,
    unless a missed call came after it (its news may arrive in any order); then it counts the
    calls after the connected one only."""
    rows = yield _find_open(client_id)
    if rows:
        yield _settle(rows[0]["id"], (yield _owed(client_id)), when)


def on_missed_call_revoked(client_id: int, when: datetime) -> Program[None]:
    """A late event showed the call was answered after all: take its missed call back."""
    rows = yield _find_open(client_id)
    if rows:
        yield _settle(rows[0]["id"], (yield _owed(client_id)), when)


# A call's ringing may arrive after its answer or hang-up: until then the call seems to begin
# later than it did, and the rules above compared the other calls with that later time.
# When the ringing moves a call back to its real start, what is owed is settled again.


def on_connected_call_moved(
    client_id: int, manager_id: int | None, earlier: datetime, later: datetime, when: datetime
) -> Program[None]:
    """A connected call began at `earlier`, not `later`: the missed calls between the two,
    which it seemed to have reached (or whose reminder it closed), are owed a call-back after
    all, unless another connected call came after them."""
    rows = yield Stmt(
        f"SELECT MAX(k.started_at) AS latest {_OWED} "  # noqa: S608
        "AND k.started_at > ? AND k.started_at < ?",
        (client_id, False, client_id, True, _NEVER, earlier, later),
    )
    latest = as_datetime(rows[0]["latest"]) if rows else None
    found = yield _find_open(client_id)
    owed = yield _owed(client_id)
    if found:
        yield _settle(found[0]["id"], owed, when)
    elif latest is not None:
        yield _open_reminder(client_id, manager_id, min(latest, when), int(owed[0]["n"]), when)


def on_missed_call_moved(client_id: int, when: datetime) -> Program[None]:
    """A missed call began earlier than it seemed: a connected call may have reached the
    client after it. The open reminder closes when nothing is owed any more; else it counts
    what is and falls due from the latest call still owed."""
    found = yield _find_open(client_id)
    if not found:
        return
    owed = yield _owed(client_id)
    latest = as_datetime(owed[0]["latest"]) if owed else None
    yield _settle(found[0]["id"], owed, when)
    if latest is not None:
        yield Stmt("UPDATE reminder SET due_at = ? WHERE id = ?",
                   (min(latest, when), found[0]["id"]))
