"""The Kamailio adapter: the signature Kamailio computes, the mapping of the shipped config's
events, and whole call lifecycles through the HTTP app."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from channels.kamailio import KamailioAdapter, KamailioConfig
from hub.errors import PayloadError, SignatureError, ValidationError
from hub.events import CallOutcome, CallState, Direction
from hub.models import Call, Client, Interaction, ProcessedEvent, Reminder
from tests.providers import FIXTURES
from tests.providers.kamailio import CONFIG, PATH, SECRET, body_of, headers, request, sign

ADAPTER = KamailioAdapter(KamailioConfig.model_validate(CONFIG))
TELEPHONY = {"kamailio": CONFIG}
CALL_ID = "c-1@10.0.0.7"


def items(name: str) -> list[dict[str, Any]]:
    return json.loads((FIXTURES / "kamailio" / name).read_text())  # type: ignore[no-any-return]


def event_body(event: str, call_id: str = CALL_ID, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"event": event, "call_id": call_id, "from": "89161234567",
                            "to": "101", "direction": "inbound", "time": "1796073374.378660"}
    return {**base, **extra}


def parse_one(item: dict[str, Any]) -> Any:
    body = body_of(item)
    [event] = ADAPTER.parse(request(body, sign(body)))
    return event


# the signature, as Kamailio 5.6.3's crypto_hmac_sha256 computed it (captured from a run)


def test_kamailio_vectors() -> None:
    short = KamailioAdapter(KamailioConfig(secret="k3y"))  # type: ignore[arg-type]
    short.verify(request(b'{"a":1}', "sha256=MttxnxcsSOidv6Vu0g2eGc2_2-n2UszfX6A0lNJESFM"))
    real = (b'{"event":"invite","call_id":"1-13001@127.0.0.1","from":"89161234567","to":"101",'
            b'"direction":"inbound","time":"1796073374.378660"}')
    kam = KamailioAdapter(KamailioConfig(secret="s3cret"))  # type: ignore[arg-type]
    kam.verify(request(real, "sha256=z9GKNIOnMtQ15ghL352wvsw_uHR4q0Y4LHsPzqyVLWY"))
    # base64 padding is optional; the standard alphabet or hex is not what Kamailio sends
    kam.verify(request(real, "sha256=z9GKNIOnMtQ15ghL352wvsw_uHR4q0Y4LHsPzqyVLWY="))
    for wrong in ("sha256=z9GKNIOnMtQ15ghL352wvsw/uHR4q0Y4LHsPzqyVLWY",
                  "z9GKNIOnMtQ15ghL352wvsw_uHR4q0Y4LHsPzqyVLWY",
                  "sha256=cfd18a3483a732d435e6084bdf9db0becc3fb87478ab46382c7b0fceac952d66"):
        with pytest.raises(SignatureError):
            kam.verify(request(real, wrong))


def test_signed_with_another_secret_is_refused() -> None:
    body = body_of(event_body("invite"))
    with pytest.raises(SignatureError):
        ADAPTER.verify(request(body, sign(body, "other")))
    with pytest.raises(SignatureError):
        ADAPTER.verify(request(body, None))


# the mapping


@pytest.mark.parametrize(
    ("event", "code", "state", "outcome"),
    [
        ("invite", None, CallState.RINGING, None),
        ("answered", None, CallState.ANSWERED, None),
        ("ended", None, CallState.ENDED, CallOutcome.ANSWERED),
        ("failed", 486, CallState.ENDED, CallOutcome.BUSY),
        ("failed", 600, CallState.ENDED, CallOutcome.BUSY),
        ("failed", 603, CallState.ENDED, CallOutcome.BUSY),
        ("failed", 408, CallState.ENDED, CallOutcome.MISSED),
        ("failed", 480, CallState.ENDED, CallOutcome.MISSED),
        ("failed", 487, CallState.ENDED, CallOutcome.MISSED),
        ("failed", 404, CallState.ENDED, CallOutcome.FAILED),
        ("failed", 503, CallState.ENDED, CallOutcome.FAILED),
        ("failed", 302, CallState.ENDED, CallOutcome.FAILED),
        ("failed", None, CallState.ENDED, None),  # the hub derives it: missed
    ],
)
def test_events_map_to_states_and_outcomes(
    event: str, code: int | None, state: CallState, outcome: CallOutcome | None
) -> None:
    item = event_body(event, **({"code": code} if code is not None else {}))
    got = parse_one(item)
    assert got.source == "kamailio" and got.call_id == CALL_ID
    assert got.state == state and got.outcome == outcome
    assert got.duration_s is None and got.event_key is None


def test_inbound_to_an_extension() -> None:
    got = parse_one(event_body("invite", **{"from": "+7-916-123-45-67", "to": "101"}))
    assert got.direction == Direction.INBOUND
    assert got.remote.phone == "+7-916-123-45-67"
    assert got.extension == "101" and got.line is None


def test_inbound_to_a_number_is_our_line() -> None:
    got = parse_one(event_body("invite", to="74950000000"))
    assert got.extension is None and got.line == "74950000000"


def test_outbound_the_callee_is_the_client() -> None:
    got = parse_one(event_body("invite", direction="outbound", **{"from": "102"},
                               to="89161234567"))
    assert got.direction == Direction.OUTBOUND
    assert got.remote.phone == "89161234567" and got.extension == "102" and got.line is None


@pytest.mark.parametrize("caller", ["anonymous", "Anonymous", "", "  ", "sipp", "unknown"])
def test_hidden_callers_have_no_phone(caller: str) -> None:
    got = parse_one(event_body("invite", **{"from": caller}))
    assert got.remote.phone is None


def test_a_missing_caller_is_hidden_too() -> None:
    item = event_body("invite")
    del item["from"]
    assert parse_one(item).remote.phone is None


def test_times_are_exact_utc() -> None:
    got = parse_one(event_body("invite", time="1796073374.378660"))
    assert got.occurred_at == datetime(2026, 11, 30, 21, 16, 14, 378660, tzinfo=UTC)
    assert parse_one(event_body("invite", time="1796073374.5")).occurred_at.microsecond == 500000
    assert parse_one(event_body("invite", time="1796073374")).occurred_at.microsecond == 0
    item = event_body("invite")
    del item["time"]
    assert parse_one({**item, "ts": 1796073374}).occurred_at == datetime(
        2026, 11, 30, 21, 16, 14, tzinfo=UTC)
    now = parse_one(item).occurred_at
    assert now.tzinfo is not None and abs((datetime.now(UTC) - now).total_seconds()) < 60


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1,2]", b'"text"', b"\xff\xfe", b"{"])
def test_malformed_bodies(raw: bytes) -> None:
    with pytest.raises(PayloadError):
        ADAPTER.parse(request(raw, sign(raw)))


@pytest.mark.parametrize(
    "change",
    [
        {"event": "bye"},
        {"direction": "sideways"},
        {"call_id": ""},
        {"call_id": "x" * 300},
        {"code": 99},
        {"code": "busy"},
        {"time": "yesterday"},
        {"time": "-5.1"},
        {"ts": -1},
    ],
)
def test_invalid_fields_name_the_field(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        parse_one({**event_body("failed", code=486), **change})
    assert next(iter(change)) in info.value.message


def test_required_fields() -> None:
    for key in ("event", "call_id", "direction"):
        item = event_body("invite")
        del item[key]
        with pytest.raises(ValidationError) as info:
            parse_one(item)
        assert key in info.value.message


def test_no_click_to_call() -> None:
    assert not ADAPTER.dials


# end to end through the HTTP app


async def post(client: Any, item: dict[str, Any], secret: str = SECRET) -> Any:
    body = body_of(item)
    return await client.post(PATH, data=body, headers=headers(body, secret))


async def replay(client: Any, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    answers = []
    for item in events:
        resp = await post(client, item)
        assert resp.status == 200, await resp.text()
        answers.append(await resp.json())
    return answers


async def timeline(client: Any, who: dict[str, Any], client_id: int) -> list[dict[str, Any]]:
    resp = await client.get(f"/api/clients/{client_id}/timeline", headers=who["headers"])
    assert resp.status == 200
    return (await resp.json())["items"]  # type: ignore[no-any-return]


async def reminders(client: Any, who: dict[str, Any]) -> list[dict[str, Any]]:
    resp = await client.get("/api/reminders?status=pending", headers=who["headers"])
    return [r for r in (await resp.json())["items"] if r["origin"] == "missed_call"]


async def stored() -> tuple[int, int, int, int]:
    return (await Client.all().count(), await Interaction.all().count(),
            await Call.all().count(), await ProcessedEvent.all().count())


@pytest.fixture
async def hub(make_client: Any) -> Any:
    return await make_client(telephony=TELEPHONY)


async def test_unknown_caller_gets_a_card_and_one_completed_entry(hub: Any, manager: Any) -> None:
    answers = await replay(hub, items("inbound_answered.json"))
    assert answers[0]["created"] is True
    assert {a["client_id"] for a in answers} == {answers[0]["client_id"]}
    card = await (await hub.get(f"/api/clients/{answers[0]['client_id']}",
                                headers=manager["headers"])).json()
    assert card["phones"] == ["+79161234567"]
    [entry] = await timeline(hub, manager, card["id"])
    assert entry["kind"] == "call" and entry["direction"] == "in" and entry["channel"] == "kamailio"
    assert entry["status"] == "completed"
    assert entry["meta"]["duration"] == 42  # ended − answered
    assert entry["meta"]["extension"] == "101" and entry["meta"]["recording_url"] is None
    assert entry["occurred_at"].startswith("2026-11-30T21:16:14.378660")


async def test_known_caller_in_another_form_lands_on_their_card(hub: Any, manager: Any) -> None:
    resp = await hub.post("/api/clients", json={"name": "Anna", "phones": ["+7 916 123-45-67"]},
                          headers=manager["headers"])
    card = await resp.json()
    answers = await replay(hub, items("inbound_busy.json"))  # from "+7-916-123-45-67"
    assert {a["client_id"] for a in answers} == {card["id"]}
    assert not any(a["created"] for a in answers)
    [entry] = await timeline(hub, manager, card["id"])
    assert entry["status"] == "busy"
    assert await Client.all().count() == 1


@pytest.mark.parametrize(
    ("fixture", "status", "direction"),
    [
        ("inbound_busy.json", "busy", "in"),
        ("inbound_missed.json", "missed", "in"),
        ("inbound_cancelled.json", "missed", "in"),
        ("inbound_unreachable.json", "failed", "in"),
        ("outbound_answered.json", "completed", "out"),
    ],
)
async def test_each_lifecycle_ends_right(
    hub: Any, manager: Any, fixture: str, status: str, direction: str
) -> None:
    answers = await replay(hub, items(fixture))
    [entry] = await timeline(hub, manager, answers[0]["client_id"])
    assert entry["status"] == status and entry["direction"] == direction
    if status == "completed":
        assert entry["meta"]["duration"] == 60 and entry["meta"]["extension"] == "101"
    else:
        assert entry["meta"]["duration"] is None


async def test_our_line_is_kept(hub: Any, manager: Any) -> None:
    answers = await replay(hub, items("inbound_cancelled.json"))
    [entry] = await timeline(hub, manager, answers[0]["client_id"])
    assert entry["meta"]["line"] == "74950000000" and entry["meta"]["extension"] is None


async def test_anonymous_call_is_logged_without_a_card(hub: Any) -> None:
    answers = await replay(hub, items("anonymous.json"))
    assert all(a["client_id"] is None for a in answers)
    assert await Client.all().count() == 0
    entry = await Interaction.get(kind="call")
    assert entry.status == "missed"
    assert await Reminder.all().count() == 0


async def test_missed_calls_open_then_bump_then_close_one_reminder(hub: Any, manager: Any) -> None:
    first = await replay(hub, items("inbound_missed.json"))
    client_id = first[0]["client_id"]
    [reminder] = await reminders(hub, manager)
    assert reminder["client_id"] == client_id and reminder["count"] == 1
    again = [{**item, "call_id": "second@10.0.0.7"} for item in items("inbound_missed.json")]
    await replay(hub, again)
    [reminder] = await reminders(hub, manager)
    assert reminder["count"] == 2
    # an hour after the missed calls: the client has been reached since
    answered = [{**item, "from": "+79031112233", "call_id": "third@10.0.0.7",
                 "time": f"{float(item['time']) + 3600:.6f}"}
                for item in items("inbound_answered.json")]
    await replay(hub, answered)
    assert await reminders(hub, manager) == []
    assert len(await timeline(hub, manager, client_id)) == 3


async def test_repeated_deliveries_change_nothing(hub: Any, manager: Any) -> None:
    events = items("inbound_answered.json")
    await replay(hub, events)
    before = await stored()
    again = await replay(hub, events)
    assert all(a["duplicate"] is True and a["created"] is False for a in again)
    assert await stored() == before


@pytest.mark.parametrize("fixture", ["inbound_answered.json", "inbound_missed.json",
                                     "outbound_answered.json"])
async def test_any_arrival_order_gives_the_same_state(
    make_client: Any, manager: Any, fixture: str
) -> None:
    hub = await make_client(telephony=TELEPHONY)
    results = []
    orders = [items(fixture), list(reversed(items(fixture)))]
    shuffled = items(fixture)
    random.Random(7).shuffle(shuffled)
    orders.append(shuffled)
    for n, order in enumerate(orders):
        answers = await replay(hub, [{**item, "call_id": f"order-{n}"} for item in order])
        entries = await timeline(hub, manager, answers[0]["client_id"])
        [entry] = [e for e in entries if e["meta"]["call_id"] == f"order-{n}"]
        meta = {k: v for k, v in entry["meta"].items() if k != "call_id"}
        results.append((entry["status"], entry["occurred_at"], entry["direction"], meta))
    assert results[0] == results[1] == results[2]
    open_reminders = await reminders(hub, manager)
    assert len(open_reminders) == (1 if fixture == "inbound_missed.json" else 0)
    if open_reminders:
        assert open_reminders[0]["count"] == 3


@pytest.mark.parametrize(
    "hdrs",
    [
        {},
        {"X-Hub-Signature-256": "sha256=" + "A" * 43},
        {"X-Hub-Signature-256": "garbage"},
        {"X-Hub-Signature-256": sign(b"other body")},
        {"X-Hub-Signature-256": sign(b"", "other")},
    ],
    ids=["missing", "zeros", "garbage", "other-body", "other-key"],
)
async def test_bad_signatures_get_401_and_store_nothing(hub: Any, hdrs: dict[str, str]) -> None:
    resp = await hub.post(PATH, data=body_of(event_body("invite")),
                          headers={"Content-Type": "application/json", **hdrs})
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "bad_signature"
    assert await stored() == (0, 0, 0, 0)


async def test_other_secret_and_bad_bodies(hub: Any) -> None:
    assert (await post(hub, event_body("invite"), secret="not-it")).status == 401
    for raw, status in ((b"{nope", 400), (b"[]", 400), (body_of({"event": "invite"}), 422),
                        (body_of(event_body("invite", direction="up")), 422)):
        resp = await hub.post(PATH, data=raw, headers=headers(raw))
        assert resp.status == status
    body = body_of(event_body("invite"))
    resp = await hub.post(PATH, data=body,
                          headers={**headers(body), "Content-Type": "text/plain"})
    assert resp.status == 415
    assert await stored() == (0, 0, 0, 0)


async def test_disabled_without_a_secret(make_client: Any) -> None:
    hub = await make_client(telephony={})
    resp = await post(hub, event_body("invite"))
    assert resp.status == 404
    assert await stored() == (0, 0, 0, 0)


async def test_no_click_to_call_through_kamailio(hub: Any, manager: Any) -> None:
    resp = await hub.post("/api/clients", json={"name": "Anna", "phones": ["89161234567"]},
                          headers=manager["headers"])
    card = await resp.json()
    resp = await hub.post(f"/api/clients/{card['id']}/call", json={},
                          headers=manager["headers"])
    assert resp.status == 409
    assert "places calls" in (await resp.json())["error"]["message"]


async def test_live_events_carry_the_hub_card(hub: Any, manager: Any) -> None:
    ws = await hub.ws_connect("/api/stream", headers=manager["headers"])
    try:
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
        ringing, answered, ended = items("inbound_answered.json")
        await post(hub, ringing)
        got = await ws.receive_json(timeout=5)
        assert got["type"] == "call.ringing" and got["created"] is True
        assert got["client"]["phones"] == ["+79161234567"]
        assert {"id", "name", "status", "manager_id"} <= set(got["client"])
        assert "from" not in got["interaction"]["meta"] and "to" not in got["interaction"]["meta"]
        await post(hub, answered)
        assert (await ws.receive_json(timeout=5))["type"] == "call.answered"
        await post(hub, ended)
        got = await ws.receive_json(timeout=5)
        assert got["type"] == "call.ended" and got["interaction"]["status"] == "completed"
    finally:
        await ws.close()


def test_the_shipped_config_names_what_the_adapter_reads() -> None:
    cfg = (Path(__file__).parents[2] / "config" / "kamailio" / "kamailio.cfg").read_text()
    for key in ('"event"', '"call_id"', '"from"', '"to"', '"direction"', '"time"', '"code"',
                "X-Hub-Signature-256: sha256=", "crypto_hmac_sha256",
                "Content-Type: application/json"):
        assert key in cfg
