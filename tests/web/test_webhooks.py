"""Webhooks over HTTP: the contract's answers, and bad input that stores nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hub.models import Client, Interaction, ProcessedEvent, Reminder
from tests.helpers import EMAIL_TOKEN, call_body, post_call, sign

FIXTURES = Path(__file__).parent.parent / "fixtures"


async def stored() -> tuple[int, int, int]:
    return (
        await Client.all().count(),
        await Interaction.all().count(),
        await ProcessedEvent.all().count(),
    )


async def replay(client: Any, name: str) -> list[dict[str, Any]]:
    answers = []
    for item in json.loads((FIXTURES / "generic" / name).read_text()):
        resp = await post_call(client, json.dumps(item).encode())
        assert resp.status == 200, await resp.text()
        answers.append(await resp.json())
    return answers


async def test_answered_lifecycle_lands_as_one_completed_entry(
    app_client: Any, manager: Any
) -> None:
    answers = await replay(app_client, "inbound_answered.json")
    assert answers[0]["created"] is True
    assert {a["client_id"] for a in answers} == {answers[0]["client_id"]}
    resp = await app_client.get(
        f"/api/clients/{answers[0]['client_id']}/timeline", headers=manager["headers"]
    )
    [entry] = (await resp.json())["items"]
    assert entry["kind"] == "call" and entry["direction"] == "in"
    assert entry["status"] == "completed"
    assert entry["meta"]["duration"] == 240
    assert entry["meta"]["recording_url"] == "https://pbx.example.ru/rec/pbx-1001.mp3"
    assert entry["occurred_at"].startswith("2026-11-22T10:00:00")


async def test_missed_call_answers_the_responsible_manager_and_opens_a_reminder(
    app_client: Any, manager: Any
) -> None:
    first = (await replay(app_client, "inbound_missed.json"))[0]
    assert first["manager"] is None
    await app_client.patch(
        f"/api/clients/{first['client_id']}",
        json={"manager_id": manager["manager"].id},
        headers=manager["headers"],
    )
    again = await post_call(app_client, call_body("ringing", "next", phone="+79031112233"))
    assert (await again.json())["manager"] == {
        "id": manager["manager"].id,
        "name": "Olga",
        "extension": "101",
    }
    reminder = await Reminder.get()
    assert reminder.origin == "missed_call" and reminder.client_id == first["client_id"]


async def test_anonymous_call_is_logged_without_a_card(app_client: Any) -> None:
    answers = await replay(app_client, "anonymous.json")
    assert all(a["client_id"] is None for a in answers)
    assert await Client.all().count() == 0
    assert await Interaction.filter(kind="call").count() == 1


async def test_repeated_delivery_answers_success_and_changes_nothing(app_client: Any) -> None:
    body = call_body("ringing", "r1")
    first = await (await post_call(app_client, body)).json()
    before = await stored()
    second = await post_call(app_client, body)
    assert second.status == 200
    assert await second.json() == {**first, "created": False, "duplicate": True}
    assert await stored() == before


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Hub-Signature-256": "sha256=" + "0" * 64},
        {"X-Hub-Signature-256": "garbage"},
        {"X-Hub-Signature-256": sign(b"other body")},
    ],
    ids=["missing", "zeros", "garbage", "other-body"],
)
async def test_bad_signatures_get_401_and_store_nothing(
    app_client: Any, headers: dict[str, str]
) -> None:
    resp = await app_client.post(
        "/webhooks/telephony/generic",
        data=call_body("ringing", "s1"),
        headers={"Content-Type": "application/json", **headers},
    )
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "bad_signature"
    assert await stored() == (0, 0, 0)


async def test_signed_with_another_secret_is_refused(app_client: Any) -> None:
    resp = await post_call(app_client, call_body("ringing", "s1"), secret="not-the-secret")
    assert resp.status == 401


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"[]", 400),
        (b'{"event": "call.ringing"}', 422),
        (call_body("ringing", "c", direction="up"), 422),
        (call_body("recording", "c"), 422),
    ],
)
async def test_malformed_and_invalid_bodies(app_client: Any, body: bytes, status: int) -> None:
    resp = await post_call(app_client, body)
    assert resp.status == status
    error = (await resp.json())["error"]
    assert error["code"] in {"malformed", "invalid"} and error["message"]
    assert await stored() == (0, 0, 0)


async def test_wrong_content_type_is_415(app_client: Any) -> None:
    body = call_body("ringing", "c")
    resp = await app_client.post(
        "/webhooks/telephony/generic",
        data=body,
        headers={"Content-Type": "text/plain", "X-Hub-Signature-256": sign(body)},
    )
    assert resp.status == 415


async def test_oversized_body_is_413(make_client: Any) -> None:
    client = await make_client(max_body_bytes=2048)
    body = call_body("ringing", "big", padding="x" * 5000)
    resp = await post_call(client, body)
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "too_large"
    assert await stored() == (0, 0, 0)


async def test_a_provider_without_a_secret_is_disabled(make_client: Any) -> None:
    client = await make_client(telephony={}, email={})
    resp = await post_call(client, call_body("ringing", "c"))
    assert resp.status == 404
    resp = await client.post(
        "/webhooks/email",
        data=b"From: a@b.example\r\n\r\nx",
        headers={"Content-Type": "message/rfc822", "X-Hub-Token": ""},
    )
    assert resp.status == 404
    assert await stored() == (0, 0, 0)


async def test_get_on_a_webhook_is_405_json(app_client: Any) -> None:
    resp = await app_client.get("/webhooks/telephony/generic")
    assert resp.status == 405
    assert (await resp.json())["error"]["code"] == "method_not_allowed"


async def email(client: Any, raw: bytes, token: str = EMAIL_TOKEN) -> Any:
    return await client.post(
        "/webhooks/email",
        data=raw,
        headers={"Content-Type": "message/rfc822", "X-Hub-Token": token},
    )


async def test_email_push_creates_the_card_once(app_client: Any) -> None:
    raw = (FIXTURES / "email" / "cyrillic_with_attachment.eml").read_bytes()
    first = await email(app_client, raw)
    assert first.status == 200
    answer = await first.json()
    assert answer["created"] is True
    assert (await (await email(app_client, raw)).json())["duplicate"] is True
    client = await Client.get(id=answer["client_id"])
    assert client.name == "Анна Смирнова"
    entry = await Interaction.get(client_id=client.id)
    assert entry.kind == "email" and entry.meta["subject"] == "Фактура price list"
    assert entry.meta["attachments"][0]["name"] == "req.pdf"


async def test_email_push_with_a_wrong_token_is_401(app_client: Any) -> None:
    resp = await email(app_client, b"From: a@example.com\r\n\r\nx", token="wrong")
    assert resp.status == 401
    assert await stored() == (0, 0, 0)


async def test_email_push_needs_rfc822(app_client: Any) -> None:
    resp = await app_client.post(
        "/webhooks/email",
        data=b"From: a@example.com\r\n\r\nx",
        headers={"Content-Type": "text/plain", "X-Hub-Token": EMAIL_TOKEN},
    )
    assert resp.status == 415


async def test_email_without_sender_is_422(app_client: Any) -> None:
    resp = await email(app_client, b"Subject: hi\r\n\r\nno sender")
    assert resp.status == 422


async def test_live_events_carry_the_hub_card_never_the_payload(
    app_client: Any, manager: Any
) -> None:
    ws = await app_client.ws_connect("/api/stream", headers=manager["headers"])
    assert (await ws.receive_json(timeout=5))["type"] == "hello"
    await post_call(app_client, call_body("ringing", "live1", phone="8 912 345 67 89"))
    ringing = await ws.receive_json(timeout=5)
    assert ringing["type"] == "call.ringing" and ringing["created"] is True
    assert ringing["client"]["id"] == ringing["interaction"]["client_id"]
    # the card as the API shows it (the screen pop needs its phones and manager)
    assert ringing["client"]["phones"] == ["+79123456789"]
    assert {"id", "name", "status", "manager_id", "emails"} <= set(ringing["client"])
    assert "from" not in ringing["interaction"]["meta"]  # hub fields only
    await post_call(app_client, call_body("answered", "live1", phone="8 912 345 67 89"))
    assert (await ws.receive_json(timeout=5))["type"] == "call.answered"
    await post_call(app_client, call_body("ended", "live1", phone="89123456789", status="answered"))
    ended = await ws.receive_json(timeout=5)
    assert ended["type"] == "call.ended" and ended["interaction"]["status"] == "completed"
    await email(app_client, b"From: anna@example.com\r\nMessage-ID: <l1@x>\r\n\r\nhi")
    assert (await ws.receive_json(timeout=5))["type"] == "message.in"
    await ws.close()


async def test_a_database_locked_too_long_answers_503_and_the_retry_lands(
    app_client: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's write lock")
    import sqlite3

    from hub import db

    monkeypatch.setattr(db, "_BUSY_BACKOFF", [0.001, 0.002, 0.004])
    other = sqlite3.connect(database_url.removeprefix("sqlite://"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process keeps the database locked
    try:
        resp = await post_call(app_client, call_body("ringing", "locked"))
        assert resp.status == 503 and resp.headers["Retry-After"] == "1"
        assert (await resp.json())["error"]["code"] == "busy"
    finally:
        other.execute("ROLLBACK")
        other.close()
    retry = await post_call(app_client, call_body("ringing", "locked"))
    assert retry.status == 200 and (await retry.json())["created"] is True


async def test_past_the_inflight_limit_deliveries_get_503_and_nothing_is_stored(
    make_client: Any,
) -> None:
    import asyncio

    from hub.keys import PIPELINE

    client = await make_client(max_inflight_webhooks=1)
    pipeline = client.server.app[PIPELINE]
    release = asyncio.Event()
    real_ingest = pipeline.ingest

    async def slow_ingest(event: Any) -> Any:
        await release.wait()
        return await real_ingest(event)

    pipeline.ingest = slow_ingest
    first = asyncio.create_task(post_call(client, call_body("ringing", "one")))
    await asyncio.sleep(0.05)
    shed = await post_call(client, call_body("ringing", "two", phone="+79161112233"))
    assert shed.status == 503 and shed.headers["Retry-After"] == "1"
    assert (await shed.json())["error"]["code"] == "busy"
    release.set()
    assert (await first).status == 200
    assert await Client.all().count() == 1  # the shed delivery stored nothing
    retry = await post_call(client, call_body("ringing", "two", phone="+79161112233"))
    assert retry.status == 200 and (await retry.json())["created"] is True


async def test_nul_characters_in_provider_text_are_dropped_not_a_500(
    app_client: Any, manager: Any
) -> None:
    # JSON and MIME can carry U+0000, PostgreSQL text cannot: the event must still land
    body = call_body("ringing", "nul\u0000id", phone="+7 912\u0000 345-67-89", extension="1\u00000")
    resp = await post_call(app_client, body)
    assert resp.status == 200
    client_id = (await resp.json())["client_id"]
    assert client_id is not None  # the phone still matched
    assert (await (await post_call(app_client, body)).json())["duplicate"] is True
    raw = (
        b"From: Iv\x00an <ivan@example.com>\r\nMessage-ID: <m\x00@x>\r\n"
        b"Subject: hi\x00 there\r\n\r\nbody\x00 text"
    )
    mail = await email(app_client, raw)
    assert mail.status == 200
    entry = await Interaction.get(kind="email")
    assert entry.text == "body text" and entry.meta["subject"] == "hi there"
    assert "\x00" not in entry.external_id
