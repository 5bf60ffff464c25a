"""Outgoing webhooks end to end: subscriptions through the API, events recorded with the
changes they report, and the delivery worker sending them to a real local receiver that
fails, times out, refuses and recovers (tests/webhook_receiver.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from tortoise import connections

from hub import delivery
from hub.db import Stmt, execute, now
from hub.delivery import DELIVERY, DeliveryWorker, body_of, judge, sign
from hub.models import Reminder, Webhook, WebhookDelivery, WebhookEvent
from hub.settings import WebhookSettings
from tests.helpers import EMAIL_TOKEN, call_body, post_call
from tests.webhook_receiver import Receiver

FAST = {"backoff_seconds": 0.05, "backoff_cap_seconds": 0.2, "timeout_seconds": 0.5}

MAIL = (
    b"From: Anna Petrova <anna@example.org>\r\nTo: sales@example.com\r\n"
    b"Subject: Price list\r\nMessage-ID: <m1@example.org>\r\n"
    b"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\n\r\nHello, send me the prices.\r\n"
)


@pytest_asyncio.fixture
async def hub(make_client: Any) -> Any:
    return await make_client(webhooks=FAST)


async def subscribe(client: Any, admin: dict[str, Any], receiver: Receiver,
                    events: list[str] | None = None) -> dict[str, Any]:
    resp = await client.post("/api/webhooks", headers=admin["headers"], json={
        "url": receiver.url, "events": events or ["*"], "description": "accounting"})
    data: dict[str, Any] = await resp.json()
    assert resp.status == 201, data
    receiver.secret = data["secret"]
    return data


@pytest_asyncio.fixture
async def running(hub: Any) -> AsyncIterator[DeliveryWorker]:
    """The app's delivery worker running as `hub serve` runs it."""
    worker = hub.server.app[DELIVERY]
    task = asyncio.create_task(worker.run())
    yield worker
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 15)


async def missed_call(client: Any, call_id: str, phone: str) -> None:
    for body in (call_body("ringing", call_id, phone),
                 call_body("ended", call_id, phone, status="missed", duration=0)):
        assert (await post_call(client, body)).status == 200


async def settled(within: float = 10.0) -> None:
    """Until the worker has recorded every attempt (the receiver hears first)."""
    for _ in range(int(within / 0.02)):
        if not await WebhookDelivery.filter(status="pending").exists():
            return
        await asyncio.sleep(0.02)


async def deliveries(status: str | None = None) -> list[WebhookDelivery]:
    query = WebhookDelivery.all().order_by("id")
    return await (query.filter(status=status) if status else query)


# ---- the pieces --------------------------------------------------------------------------------


def test_the_signature_is_an_hmac_of_the_exact_body() -> None:
    body = body_of(7, "client.created", now(), '{"client":{"id":1}}', 1764583200)
    assert json.loads(body) == {"id": 7, "type": "client.created", "occurred_at": json.loads(
        body)["occurred_at"], "timestamp": 1764583200, "data": {"client": {"id": 1}}}
    # RFC 4231, test case 2: HMAC-SHA256 of a known message and key
    assert sign("Jefe", b"what do ya want for nothing?") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")


@pytest.mark.parametrize(("status", "verdict"), [
    (200, "delivered"), (204, "delivered"), (408, "retry"), (429, "retry"), (500, "retry"),
    (503, "retry"), (400, "refused"), (401, "refused"), (404, "refused"), (301, "refused"),
    (410, "gone"),
])
def test_what_each_answer_means(status: int, verdict: str) -> None:
    assert judge(status).verdict == verdict


def test_retry_after_is_honoured_and_dates_fall_back_to_the_backoff() -> None:
    assert judge(429, {"Retry-After": "7"}).wait == 7.0
    assert judge(503, {"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}).wait is None


def test_backoff_doubles_up_to_its_cap() -> None:
    worker = DeliveryWorker(WebhookSettings(backoff_seconds=10, backoff_cap_seconds=3600))
    assert [worker.backoff(n) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert worker.backoff(20) == 3600


# ---- the subscriptions API ---------------------------------------------------------------------


async def test_admins_manage_subscriptions_and_see_the_secret_once(
    hub: Any, admin: dict[str, Any], manager: dict[str, Any], receiver: Receiver,
) -> None:
    made = await subscribe(hub, admin, receiver, ["call.missed", "client.created"])
    assert made["secret"].startswith("whsec_") and len(made["secret"]) > 40
    assert made["events"] == ["call.missed", "client.created"]
    assert made["status"] == "active" and made["pending"] == 0
    listed = await (await hub.get("/api/webhooks", headers=admin["headers"])).json()
    assert [h["id"] for h in listed["items"]] == [made["id"]]
    assert "secret" not in listed["items"][0]
    one = await hub.get(f"/api/webhooks/{made['id']}", headers=admin["headers"])
    assert "secret" not in await one.json()
    # a manager may not see or change them
    for method, path in (("GET", "/api/webhooks"), ("POST", "/api/webhooks"),
                         ("DELETE", f"/api/webhooks/{made['id']}")):
        resp = await hub.request(method, path, headers=manager["headers"], json={})
        assert resp.status == 403, (method, path)
    assert (await hub.get("/api/webhooks")).status == 401
    # a new secret, then the subscription is gone with its history
    rotated = await (await hub.post(f"/api/webhooks/{made['id']}/secret",
                                    headers=admin["headers"])).json()
    assert rotated["secret"] != made["secret"]
    assert (await hub.delete(f"/api/webhooks/{made['id']}", headers=admin["headers"])).status == 204
    assert (await hub.get(f"/api/webhooks/{made['id']}", headers=admin["headers"])).status == 404


@pytest.mark.parametrize(("body", "word"), [
    ({"url": "ftp://example.com/x", "events": ["*"]}, "url"),
    ({"url": "http://user:pw@example.com/x", "events": ["*"]}, "url"),
    ({"url": "https://example.com/x", "events": ["call.exploded"]}, "call.exploded"),
    ({"url": "https://example.com/x", "events": []}, "events"),
    ({"url": "https://example.com/x"}, "events"),
    ({"url": "https://example.com/x", "events": ["*"], "secret": "mine"}, "secret"),
])
async def test_a_bad_subscription_is_a_422_that_names_the_problem(
    hub: Any, admin: dict[str, Any], body: dict[str, Any], word: str,
) -> None:
    resp = await hub.post("/api/webhooks", headers=admin["headers"], json=body)
    assert resp.status == 422
    assert word in (await resp.json())["error"]["message"]
    assert await Webhook.all().count() == 0


async def test_the_event_types_are_listed(hub: Any, admin: dict[str, Any]) -> None:
    data = await (await hub.get("/api/webhooks/events", headers=admin["headers"])).json()
    assert {"client.created", "call.missed", "message.received", "offer.sent",
            "reminder.fired"} <= {item["type"] for item in data["items"]}


# ---- what gets recorded -------------------------------------------------------------------------


async def test_without_subscriptions_nothing_is_recorded(hub: Any) -> None:
    await missed_call(hub, "c-none", "+79161234567")
    assert await WebhookEvent.all().count() == 0
    assert await WebhookDelivery.all().count() == 0


async def test_a_subscription_gets_only_the_types_it_asked_for(
    hub: Any, admin: dict[str, Any], receiver: Receiver,
) -> None:
    await subscribe(hub, admin, receiver, ["call.missed"])
    await missed_call(hub, "c-1", "+79161234567")
    events = await WebhookEvent.all().order_by("id")
    assert [e.type for e in events] == ["call.missed"]
    data = json.loads(events[0].payload)
    assert data["interaction"]["status"] == "missed"
    assert data["interaction"]["kind"] == "call"
    assert data["client"]["id"] == data["interaction"]["client_id"]


async def test_the_changes_of_a_working_day_are_each_reported_once_with_the_hubs_objects(
    hub: Any, admin: dict[str, Any], receiver: Receiver, running: DeliveryWorker,
) -> None:
    await subscribe(hub, admin, receiver)
    # a call from an unknown number: a new card, then the call is missed
    await missed_call(hub, "c-1", "8 (916) 123-45-67")
    # the same call's end delivered again by the provider: nothing more
    await post_call(hub, call_body("ended", "c-1", "+79161234567", status="missed", duration=0))
    # an e-mail from a new person, twice
    for _ in range(2):
        resp = await hub.post("/webhooks/email", data=MAIL, headers={
            "Content-Type": "message/rfc822", "X-Hub-Token": EMAIL_TOKEN})
        assert resp.status == 200
    # a manager types in a card, then merges the e-mail card into it
    made = await (await hub.post("/api/clients", headers=admin["headers"], json={
        "name": "Anna P.", "phones": ["+7 903 111 22 33"]})).json()
    mail_card = (await WebhookEvent.filter(type="message.received").first())
    assert mail_card is not None
    other = json.loads(mail_card.payload)["client"]["id"]
    resp = await hub.post(f"/api/clients/{made['id']}/merge", headers=admin["headers"],
                          json={"other_id": other})
    assert resp.status == 200, await resp.json()
    got = await receiver.wait_for(6)
    types = [b["type"] for b in got]
    assert types == ["client.created", "call.missed", "client.created", "message.received",
                     "client.created", "client.merged"], types
    assert [b["id"] for b in got] == sorted(b["id"] for b in got)
    assert all(s.signature_ok for s in receiver.seen)
    first = got[0]
    assert first["data"]["client"]["phones"] == ["+79161234567"]
    assert set(first["data"]["client"]) >= {"id", "name", "status", "phones", "emails",
                                            "telegram", "manager_id", "fields", "created_at"}
    merged = got[-1]["data"]
    assert merged["client"]["id"] == made["id"] and merged["merged_id"] == other
    assert "anna@example.org" in merged["client"]["emails"]
    received = got[3]["data"]
    assert received["interaction"]["meta"]["subject"] == "Price list"
    # the receiver can tell the time it was signed at, and the event it is
    for seen in receiver.seen:
        assert seen.headers["X-Hub-Timestamp"] == str(seen.body["timestamp"])
        assert seen.headers["X-Hub-Event"] == seen.body["type"]
        assert seen.headers["Content-Type"] == "application/json"


async def test_a_fired_reminder_is_reported(
    hub: Any, admin: dict[str, Any], receiver: Receiver,
) -> None:
    from hub.bus import Bus
    from hub.scheduler import Scheduler

    await subscribe(hub, admin, receiver, ["reminder.fired"])
    card = await (await hub.post("/api/clients", headers=admin["headers"], json={
        "name": "Boris", "phones": ["+79031112233"]})).json()
    resp = await hub.post(f"/api/clients/{card['id']}/reminders", headers=admin["headers"],
                          json={"in_minutes": 1, "text": "call back about the order"})
    assert resp.status == 201
    await Reminder.all().update(due_at=now() - timedelta(seconds=1))
    await Scheduler(Bus()).fire_due()
    event = await WebhookEvent.get(type="reminder.fired")
    data = json.loads(event.payload)
    assert data["reminder"]["text"] == "call back about the order"
    assert data["client"] == {"id": card["id"], "name": "Boris", "status": "new"}


# ---- delivery when things go wrong ---------------------------------------------------------------


async def test_a_receiver_that_fails_times_out_and_recovers_gets_everything_in_order(
    hub: Any, admin: dict[str, Any], receiver: Receiver, running: DeliveryWorker,
) -> None:
    await subscribe(hub, admin, receiver)
    receiver.script = [500, "slow", 503, "drop", 502, 429]
    for i in range(10):
        await missed_call(hub, f"c-{i}", f"+7916000000{i}")
    got = await receiver.wait_for(20)
    assert len(got) == 20
    ids = [b["id"] for b in got]
    assert ids == sorted(ids) and len(set(ids)) == 20
    assert all(s.signature_ok for s in receiver.seen)
    # the first event was tried again and again before any other went out
    assert [s.body["id"] for s in receiver.seen[:7]] == [ids[0]] * 7
    await settled()
    rows = await deliveries()
    assert all(d.status == "delivered" for d in rows)
    assert rows[0].attempts == 7 and rows[0].last_status == 200
    history = await (await hub.get(f"/api/webhooks/{(await Webhook.first()).id}/deliveries",  # type: ignore[union-attr]
                                   headers=admin["headers"])).json()
    assert len(history["items"]) == 20
    assert history["items"][-1]["attempts"] == 7


async def test_a_refused_event_fails_alone_and_the_next_ones_follow(
    hub: Any, admin: dict[str, Any], receiver: Receiver, running: DeliveryWorker,
) -> None:
    made = await subscribe(hub, admin, receiver, ["call.missed"])
    receiver.script = [400]
    for i in range(3):
        await missed_call(hub, f"c-{i}", f"+7916000000{i}")
    await receiver.wait_for(2)
    await asyncio.sleep(0.3)
    assert len(receiver.seen) == 3  # no retry of the refused one
    history = await (await hub.get(f"/api/webhooks/{made['id']}/deliveries?status=failed",
                                   headers=admin["headers"])).json()
    assert [(d["status"], d["last_status"], d["attempts"]) for d in history["items"]] == [
        ("failed", 400, 1)]
    assert "400" in history["items"][0]["last_error"]


async def test_a_receiver_that_answers_410_is_paused_and_resumes_where_it_stopped(
    hub: Any, admin: dict[str, Any], receiver: Receiver, running: DeliveryWorker,
) -> None:
    made = await subscribe(hub, admin, receiver, ["call.missed"])
    receiver.script = [410]
    await missed_call(hub, "c-0", "+79160000000")
    for _ in range(100):
        if (await Webhook.get(id=made["id"])).status == "paused":
            break
        await asyncio.sleep(0.02)
    for i in range(1, 4):
        await missed_call(hub, f"c-{i}", f"+7916000000{i}")
    await asyncio.sleep(0.5)
    assert len(receiver.seen) == 1  # no retries, nothing more while paused
    state = await (await hub.get(f"/api/webhooks/{made['id']}", headers=admin["headers"])).json()
    assert state["status"] == "paused" and "410" in state["paused_reason"]
    assert state["pending"] == 3  # kept, not dropped
    resp = await hub.patch(f"/api/webhooks/{made['id']}", headers=admin["headers"],
                           json={"status": "active"})
    assert (await resp.json())["status"] == "active"
    got = await receiver.wait_for(3)
    assert [b["type"] for b in got] == ["call.missed"] * 3
    assert [b["id"] for b in got] == sorted(b["id"] for b in got)


async def test_a_delivery_failing_past_the_retry_window_is_given_up_and_the_admins_told(
    make_client: Any, admin: dict[str, Any], receiver: Receiver,
) -> None:
    client = await make_client(webhooks={**FAST, "retry_hours": 0.0002})  # 0.72 s
    made = await subscribe(client, admin, receiver, ["call.missed"])
    worker = client.server.app[DELIVERY]
    heard = worker.bus.subscribe(admin["manager"].id)
    receiver.script = [503] * 1000
    await missed_call(client, "c-0", "+79160000000")
    await missed_call(client, "c-1", "+79160000001")
    task = asyncio.create_task(worker.run())
    live: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(15):  # the admins hear it once the pause is stored
            while not any(e["type"] == "webhook.paused" for e in live):
                live.append(json.loads(await heard.queue.get() or "{}"))
    finally:
        task.cancel()
    hook = await Webhook.get(id=made["id"])
    assert hook.status == "paused" and "kept failing" in (hook.paused_reason or "")
    rows = await deliveries()
    assert [d.status for d in rows] == ["failed", "pending"]
    assert rows[0].attempts > 2
    first_event = (await WebhookDelivery.all().order_by("id").values_list("event_id", flat=True))[0]
    assert {s.body["id"] for s in receiver.seen} == {first_event}  # the later one waited
    told = [e for e in live if e["type"] == "webhook.paused"]
    assert [e["webhook"]["id"] for e in told] == [made["id"]]


async def test_replay_sends_a_delivery_again_and_everything_since_a_time(
    hub: Any, admin: dict[str, Any], receiver: Receiver, running: DeliveryWorker,
) -> None:
    made = await subscribe(hub, admin, receiver, ["call.missed"])
    start = now()
    for i in range(3):
        await missed_call(hub, f"c-{i}", f"+7916000000{i}")
    first = await receiver.wait_for(3)
    rows = await deliveries()
    resp = await hub.post(f"/api/webhooks/{made['id']}/deliveries/{rows[1].id}/replay",
                          headers=admin["headers"])
    assert resp.status == 202 and (await resp.json())["status"] in ("pending", "delivered")
    again = await receiver.wait_for(4)
    assert again[3]["id"] == first[1]["id"]  # the same event, for the receiver to drop
    resp = await hub.post(f"/api/webhooks/{made['id']}/replay", headers=admin["headers"],
                          json={"since": (start - timedelta(seconds=1)).isoformat()})
    assert (await resp.json()) == {"queued": 3}
    everything = await receiver.wait_for(7)
    assert [b["id"] for b in everything[4:]] == [b["id"] for b in first]
    missing = await hub.post(f"/api/webhooks/{made['id']}/deliveries/999999/replay",
                             headers=admin["headers"])
    assert missing.status == 404


async def test_a_ping_reaches_the_receiver_signed(
    hub: Any, admin: dict[str, Any], receiver: Receiver, running: DeliveryWorker,
) -> None:
    made = await subscribe(hub, admin, receiver, ["offer.sent"])
    resp = await hub.post(f"/api/webhooks/{made['id']}/ping", headers=admin["headers"])
    assert resp.status == 202
    got = await receiver.wait_for(1)
    assert got[0]["type"] == "webhook.ping" and got[0]["data"]["webhook"]["id"] == made["id"]
    assert receiver.seen[0].signature_ok


async def test_a_hub_restarted_in_the_middle_loses_nothing(
    make_client: Any, admin: dict[str, Any], receiver: Receiver,
) -> None:
    first = await make_client(webhooks=FAST)
    await subscribe(first, admin, receiver, ["call.missed"])
    await receiver.stop()  # the receiver is down: nothing can go out yet
    for i in range(5):
        await missed_call(first, f"c-{i}", f"+7916000000{i}")
    worker = first.server.app[DELIVERY]
    await worker.run_pass()
    await worker.close()
    assert len(await deliveries("pending")) == 5
    # the process died holding the subscription: its lease must run out, then another takes it
    await Webhook.all().update(lease_owner="a-dead-process", lease_until=now() + timedelta(
        seconds=1), retry_at=None)
    await receiver.start()
    second = await make_client(webhooks=FAST)
    task = asyncio.create_task(second.server.app[DELIVERY].run())
    try:
        got = await receiver.wait_for(5)
        await settled()
    finally:
        task.cancel()
    assert [b["type"] for b in got] == ["call.missed"] * 5
    assert [b["id"] for b in got] == sorted(b["id"] for b in got)
    assert len(await deliveries("delivered")) == 5


async def test_old_finished_deliveries_are_pruned(
    hub: Any, admin: dict[str, Any], receiver: Receiver, running: DeliveryWorker,
) -> None:
    await subscribe(hub, admin, receiver, ["call.missed"])
    await missed_call(hub, "c-0", "+79160000000")
    await receiver.wait_for(1)
    await settled()
    from hub.db import run_program

    kept = await run_program(lambda: delivery.prune(now() - timedelta(days=1)))
    assert kept == 0 and await WebhookDelivery.all().count() == 1
    gone = await run_program(lambda: delivery.prune(now() + timedelta(seconds=1)))
    assert gone == 1
    assert await WebhookEvent.all().count() == 0
    rows = await execute(connections.get("default"), Stmt("SELECT COUNT(*) AS n FROM webhook"))
    assert int(rows[0]["n"]) == 1


async def test_offers_sent_and_failed_are_reported_with_their_entries(
    make_client: Any, admin: dict[str, Any], receiver: Receiver, smtp: Any, tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hub import offers
    from hub.outbox import OUTBOX
    from tests.smtpserver import FROM

    client = await make_client(webhooks=FAST, email={
        "inbound_token": EMAIL_TOKEN, "smtp_url": smtp.url, "from_address": FROM})
    await subscribe(client, admin, receiver, ["offer.sent", "offer.failed"])
    card = await (await client.post("/api/clients", headers=admin["headers"], json={
        "name": "Иван Петров", "emails": ["ivan@example.com"]})).json()
    for _ in range(2):
        resp = await client.post(f"/api/clients/{card['id']}/offers", headers=admin["headers"],
                                 json={"template": "price", "channel": "email"})
        assert resp.status == 202
    outbox = client.server.app[OUTBOX]
    await outbox.run_pass()  # the first two go out
    resp = await client.post(f"/api/clients/{card['id']}/offers", headers=admin["headers"],
                             json={"template": "price", "channel": "email"})
    monkeypatch.setattr(offers, "templates_root", lambda: tmp_path)  # the price list is gone
    await outbox.run_pass()
    events = await WebhookEvent.all().order_by("id")
    assert [e.type for e in events] == ["offer.sent", "offer.sent", "offer.failed"]
    sent, _, failed = (json.loads(e.payload) for e in events)
    assert sent["client"] == {"id": card["id"], "name": "Иван Петров", "status": "new"}
    assert sent["interaction"]["status"] == "sent" and sent["interaction"]["kind"] == "offer"
    assert sent["interaction"]["meta"]["message_id"].startswith("<")
    assert failed["interaction"]["status"] == "failed"
    assert "is no longer there" in failed["interaction"]["meta"]["error"]
    # a retry that is queued again is not an outcome yet: nothing more was reported
    assert await WebhookEvent.all().count() == 3


async def test_an_import_reports_each_card_it_made_and_a_dry_run_nothing(
    hub: Any, admin: dict[str, Any], receiver: Receiver, tmp_path: Any,
) -> None:
    from hub.importing import import_rows
    from hub.sheets import read_sheet

    await subscribe(hub, admin, receiver, ["client.created"])
    path = tmp_path / "clients.csv"
    path.write_text("ФИО;Телефон;E-mail\nАнна;8 903 111-22-33;anna@example.org\n"
                    "Борис;+7 903 222 33 44;\nАнна П.;+79031112233;\n", encoding="utf-8")
    await import_rows(read_sheet(path).rows, "RU", dry_run=True)
    assert await WebhookEvent.all().count() == 0
    await import_rows(read_sheet(path).rows, "RU")
    events = [json.loads(e.payload) for e in await WebhookEvent.all().order_by("id")]
    assert [e["client"]["name"] for e in events] == ["Анна", "Борис"]  # the third merged
    assert events[0]["client"]["phones"] == ["+79031112233"]
    assert events[0]["client"]["emails"] == ["anna@example.org"]
