"""Call-back reminders: the missed-call rule lives here and nowhere else."""

from __future__ import annotations

from datetime import datetime

from tortoise import BaseDBAsyncClient

from hub.models import Reminder, ReminderStatus

MISSED_CALL = "missed_call"


async def on_missed_call(
    conn: BaseDBAsyncClient, client_id: int, manager_id: int | None, when: datetime
) -> Reminder:
    """One open call-back reminder per client: the first missed call opens it, later ones bump it."""
    open_one = await (
        Reminder.filter(client_id=client_id, origin=MISSED_CALL, status__in=_OPEN)
        .using_db(conn)
        .first()
    )
    if open_one is not None:
        open_one.count += 1
        await open_one.save(using_db=conn, update_fields=["count"])
        return open_one
    return await Reminder.create(
        client_id=client_id, manager_id=manager_id, due_at=when, text="Call back: missed call",
        origin=MISSED_CALL, created_at=when, using_db=conn,
    )


async def on_connected_call(conn: BaseDBAsyncClient, client_id: int, when: datetime) -> int:
    """A call that connected with the client closes their open missed-call reminder."""
    return await (
        Reminder.filter(client_id=client_id, origin=MISSED_CALL, status__in=_OPEN)
        .using_db(conn)
        .update(status=ReminderStatus.DONE, done_at=when)
    )


_OPEN = [ReminderStatus.PENDING, ReminderStatus.FIRED]


async def on_missed_call_revoked(conn: BaseDBAsyncClient, client_id: int, when: datetime) -> None:
    """A late event showed the call was answered after all: take its missed call back."""
    open_one = await (
        Reminder.filter(client_id=client_id, origin=MISSED_CALL, status__in=_OPEN)
        .using_db(conn)
        .first()
    )
    if open_one is None:
        return
    if open_one.count > 1:
        open_one.count -= 1
        await open_one.save(using_db=conn, update_fields=["count"])
    else:
        open_one.status = ReminderStatus.DONE
        open_one.done_at = when
        await open_one.save(using_db=conn, update_fields=["status", "done_at"])
