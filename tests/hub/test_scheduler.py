"""The reminder scheduler: due reminders fire once (even with several schedulers on one
database), late ones say so, the manager hears of it on the live stream, and the scheduler
wakes for a reminder added a moment ago."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest

from channels.smtp import SmtpSender
from hub import bus as bus_module
from hub import scheduler as scheduler_module
from hub.app import create_app
from hub.bus import Bus
from hub.db import now
from hub.loops import MAX_SLEEP_S
from hub.managers import create_manager
from hub.models import Client, Identity, Interaction, Reminder
from hub.outbox import OutboxWorker
from hub.scheduler import Scheduler
from tests.smtpserver import FROM, SmtpServer

pytestmark = pytest.mark.usefixtures("orm")


async def card(name: str = "Anna") -> Client:
    when = now()
    return await Client.create(name=name, created_at=when, updated_at=when, activity_at=when)


async def reminder(client: Client, due_in: timedelta, manager_id: int | None = None,
                   **extra: Any) -> Reminder:
    return await Reminder.create(client=client, manager_id=manager_id, due_at=now() + due_in,
                                 text="call back", created_at=now(), **extra)


def listen(bus: Bus, manager_id: int) -> asyncio.Queue[str | None]:
    return bus.subscribe(manager_id).queue


async def test_due_reminders_fire_once_and_future_ones_wait() -> None:
    olga, _ = await create_manager("Olga")
    anna = await card()
    due = await reminder(anna, -timedelta(seconds=5), olga.id)
    late = await reminder(anna, -timedelta(hours=3), olga.id)
    later = await reminder(anna, timedelta(hours=1), olga.id)
    bus = Bus()
    inbox = listen(bus, olga.id)
    sched = Scheduler(bus, escalate_after=timedelta(days=1))
    assert await sched.fire_due() == 2
    assert await sched.fire_due() == 0  # once
    statuses = {r.id: r.status for r in await Reminder.all()}
    assert statuses == {due.id: "fired", late.id: "fired", later.id: "pending"}
    events = [json.loads(inbox.get_nowait() or "") for _ in range(2)]
    assert {e["type"] for e in events} == {"reminder.due"}
    by_id = {e["reminder"]["id"]: e for e in events}
    assert by_id[late.id]["reminder"]["late"] is True
    assert by_id[due.id]["reminder"]["late"] is False
    assert by_id[due.id]["client"] == {"id": anna.id, "name": "Anna", "status": "new"}
    assert 0 < await sched.next_due_in() <= MAX_SLEEP_S


async def test_an_unassigned_reminder_reaches_everyone_an_assigned_one_its_manager() -> None:
    olga, _ = await create_manager("Olga")
    pavel, _ = await create_manager("Pavel")
    anna = await card()
    await reminder(anna, -timedelta(seconds=1))  # the unassigned queue
    await reminder(anna, -timedelta(seconds=1), pavel.id)
    bus = Bus()
    to_olga, to_pavel = listen(bus, olga.id), listen(bus, pavel.id)
    await Scheduler(bus).fire_due()
    assert to_olga.qsize() == 1 and to_pavel.qsize() == 2


async def test_several_schedulers_fire_each_reminder_exactly_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(scheduler_module, "BATCH", 50)
    olga, _ = await create_manager("Olga")
    anna = await card()
    when = now()
    await Reminder.bulk_create([
        Reminder(client=anna, manager_id=olga.id, due_at=when - timedelta(milliseconds=i),
                 text=f"r{i}", created_at=when)
        for i in range(600)
    ])
    monkeypatch.setattr(bus_module, "QUEUE_SIZE", 1000)  # keep every event of this test
    buses = [Bus() for _ in range(3)]
    inboxes = [listen(bus, olga.id) for bus in buses]
    counts = await asyncio.gather(*(Scheduler(bus).fire_due() for bus in buses))
    assert sum(counts) == 600
    seen = [json.loads(q.get_nowait() or "")["reminder"]["id"]
            for q in inboxes for _ in range(q.qsize())]
    assert len(seen) == 600 and len(set(seen)) == 600  # every one announced, none twice
    assert await Reminder.filter(status="fired").count() == 600


async def test_a_clock_that_jumps_forward_fires_what_is_now_due(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    anna = await card()
    await reminder(anna, timedelta(hours=2))
    sched = Scheduler(Bus())
    assert await sched.fire_due() == 0
    jumped = now() + timedelta(hours=3)
    monkeypatch.setattr(scheduler_module, "now", lambda: jumped)
    assert await sched.fire_due() == 1


async def test_the_running_hub_fires_a_new_reminder_on_time(
    aiohttp_client: Any, make_settings: Any, manager: dict[str, Any]
) -> None:
    client = await aiohttp_client(create_app(make_settings(), manage_db=False))
    ws = await client.ws_connect("/api/stream", headers=manager["headers"])
    assert (await ws.receive_json(timeout=5))["type"] == "hello"
    anna = await card()
    due_at = now() + timedelta(milliseconds=700)
    resp = await client.post(f"/api/clients/{anna.id}/reminders", headers=manager["headers"],
                             json={"due_at": due_at.isoformat(), "text": "call Anna back"})
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    event = await ws.receive_json(timeout=MAX_SLEEP_S + 5)
    fired_at = now()
    assert event["type"] == "reminder.due" and event["reminder"]["id"] == created["id"]
    assert event["reminder"]["text"] == "call Anna back" and not event["reminder"]["late"]
    # woken by the new reminder, it slept until the due time, not a full polling interval
    assert fired_at - due_at < timedelta(seconds=2)
    # snoozed, it fires again when the snooze ends
    resp = await client.post(f"/api/reminders/{created['id']}/snooze",
                             headers=manager["headers"], json={"minutes": 1})
    assert resp.status == 200 and (await resp.json())["status"] == "pending"
    await ws.close()


async def test_a_reminder_due_while_the_hub_was_down_fires_at_start_marked_late(
    aiohttp_client: Any, make_settings: Any, manager: dict[str, Any]
) -> None:
    anna = await card()
    missed = await reminder(anna, -timedelta(hours=8), manager["manager"].id)
    client = await aiohttp_client(create_app(make_settings(), manage_db=False))
    ws = await client.ws_connect("/api/stream", headers=manager["headers"])
    assert (await ws.receive_json(timeout=5))["type"] == "hello"
    deadline = asyncio.get_running_loop().time() + 10
    while (await Reminder.get(id=missed.id)).status != "fired":
        assert asyncio.get_running_loop().time() < deadline, "never fired"
        await asyncio.sleep(0.02)
    await ws.close()
    stored = await Reminder.get(id=missed.id)
    assert stored.fired_at is not None and stored.fired_at - stored.due_at > timedelta(hours=7)


async def test_an_open_reminder_long_past_due_goes_to_the_admins_once() -> None:
    from hub.models import Role

    olga, _ = await create_manager("Olga")
    boss, _ = await create_manager("Boss", role=Role.ADMIN)
    anna = await card()
    forgotten = await reminder(anna, -timedelta(hours=2), olga.id)
    recent = await reminder(anna, -timedelta(minutes=10), olga.id)
    handled = await reminder(anna, -timedelta(hours=3), olga.id)
    bus = Bus()
    to_olga, to_boss = listen(bus, olga.id), listen(bus, boss.id)
    sched = Scheduler(bus, escalate_after=timedelta(hours=1))
    assert await sched.fire_due() == 3
    await Reminder.filter(id=handled.id).update(status="done", done_at=now())
    assert await sched.escalate_overdue() == 1
    assert await sched.escalate_overdue() == 0  # once
    overdue = [json.loads(to_boss.get_nowait() or "") for _ in range(to_boss.qsize())]
    assert [(e["type"], e["reminder"]["id"]) for e in overdue] == [
        ("reminder.overdue", forgotten.id)]
    assert all(json.loads(to_olga.get_nowait() or "")["type"] == "reminder.due"
               for _ in range(to_olga.qsize()))
    assert (await Reminder.get(id=recent.id)).escalated_at is None
    # the scheduler wakes for the recent one when it turns overdue, not later
    assert 0 < await sched.next_due_in() <= MAX_SLEEP_S


async def test_a_fired_reminder_reaches_its_manager_by_email_once(smtp: SmtpServer) -> None:
    olga, _ = await create_manager("Olga", email="olga@example.test")
    pavel, _ = await create_manager("Pavel")  # no address: the live event only
    anna = await card("Анна Смирнова")
    await Identity.create(client=anna, kind="phone", value="+79123456789", created_at=now())
    mine = await reminder(anna, -timedelta(seconds=5), olga.id)
    await reminder(anna, -timedelta(seconds=5), pavel.id)
    await reminder(anna, -timedelta(seconds=5))  # unassigned: nobody to write to
    outbox = OutboxWorker(SmtpSender(smtp.url, FROM, timeout=5))
    sched = Scheduler(Bus(), outbox=outbox, link_base="https://crm.example.test/")
    assert await sched.fire_due() == 3
    assert await sched.fire_due() == 0
    [entry] = await Interaction.filter(kind="reminder")
    assert entry.client_id == anna.id and entry.status == "queued"  # type: ignore[attr-defined]
    assert entry.direction is None and entry.meta["reminder_id"] == mine.id
    assert await outbox.run_pass() == 1
    [sent] = smtp.sink.received
    assert sent["To"] == "olga@example.test" and sent["Auto-Submitted"] == "auto-generated"
    assert sent["Subject"] == "Reminder: Анна Смирнова — call back"
    body = sent.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "Phone: +79123456789" in text
    assert f"Card: https://crm.example.test/api/clients/{anna.id}" in text
    await entry.refresh_from_db()
    assert entry.status == "sent" and entry.meta["message_id"] == sent["Message-ID"]


async def test_without_mail_settings_reminders_fire_without_notices() -> None:
    olga, _ = await create_manager("Olga", email="olga@example.test")
    await reminder(await card(), -timedelta(seconds=5), olga.id)
    assert await Scheduler(Bus(), outbox=OutboxWorker(None)).fire_due() == 1
    assert not await Interaction.filter(kind="reminder").exists()
