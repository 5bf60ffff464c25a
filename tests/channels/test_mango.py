"""Mango Office VPBX: the signature, the event mapping, the lifecycle over HTTP, click-to-call."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pydantic
import pytest

from channels.base import Agent, DialRequest
from channels.mango import MangoAdapter, MangoConfig, signature
from hub.errors import DeliveryError, PayloadError, SignatureError, ValidationError
from hub.events import CallEvent, CallOutcome, CallState, Direction
from hub.models import Client, Interaction, ProcessedEvent, Reminder
from tests.providers.mango import (
    API_KEY,
    API_SALT,
    BASE,
    CONFIG,
    FORM,
    MISSING_RECORDING,
    STATE,
    body,
    fake_api,
    raw_request,
    request,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "mango"
ADAPTER = MangoAdapter(MangoConfig.model_validate(CONFIG))
T0 = 1795341600  # 2026-11-22 10:00:00 UTC
LINE = "74951112233"
CLIENT = {"number": "79161234567"}
OLGA = {"extension": "101", "number": "sip:olga@vpbx400100.mangosip.ru"}


def items(name: str) -> list[dict[str, Any]]:
    return json.loads((FIXTURES / name).read_text())  # type: ignore[no-any-return]


def call(state: str, *, leg: str = "leg-1", seq: int = 1, at: int = T0, entry: str = "e-1",
         frm: dict[str, Any] | None = None, to: dict[str, Any] | None = None,
         **extra: Any) -> dict[str, Any]:
    payload = {"entry_id": entry, "call_id": leg, "timestamp": at, "seq": seq,
               "call_state": state, "location": "abonent", "from": CLIENT if frm is None else frm,
               "to": {"extension": "101", "line_number": LINE} if to is None else to, **extra}
    return {"path": "events/call", "json": payload}


def summary(direction: int, result: int, *, talk: int = 0, end: int = T0 + 60,
            reason: int | None = 1110, entry: str = "e-1", frm: dict[str, Any] | None = None,
            to: dict[str, Any] | None = None) -> dict[str, Any]:
    inbound = direction == 1
    payload = {"entry_id": entry, "call_direction": direction,
               "from": (CLIENT if inbound else OLGA) if frm is None else frm,
               "to": ({"extension": "101"} if inbound else CLIENT) if to is None else to,
               "line_number": LINE, "create_time": T0, "forward_time": T0 + 2,
               "talk_time": talk, "end_time": end, "entry_result": result,
               "disconnect_reason": reason}
    return {"path": "events/summary", "json": payload}


def recording(state: str, *, rid: str = "rec-1", seq: int = 1, entry: str = "e-1",
              at: int = T0 + 60) -> dict[str, Any]:
    payload = {"recording_id": rid, "recording_state": state, "seq": seq, "entry_id": entry,
               "call_id": "leg-1", "extension": "101", "timestamp": at,
               "completion_code": 1000, "recipient": "Cloud"}
    return {"path": "events/recording", "json": payload}


def parse(item: dict[str, Any]) -> list[CallEvent]:
    req = request(item)
    ADAPTER.verify(req)
    events = ADAPTER.parse(req)
    assert all(isinstance(e, CallEvent) for e in events)
    return list(events)  # type: ignore[arg-type]


def one(item: dict[str, Any]) -> CallEvent:
    [event] = parse(item)
    return event


# --- signature ---------------------------------------------------------------------------


def test_the_reference_vector() -> None:
    payload = '{"command_id":"cbk1","from":{"extension":"101"},"to_number":"74955404444"}'
    expected = "c79dab3164301a94cc9f886a09a40724ea7d646f8ab8446ba2236873820bd2fc"
    assert signature("9ipl5monmwkkyg3adfx2s6frz7b", payload, "test-salt") == expected
    assert (API_KEY, API_SALT) == ("9ipl5monmwkkyg3adfx2s6frz7b", "test-salt")
    item = {"path": "result/callback", "json": payload}
    ADAPTER.verify(request(item))
    fields = {"vpbx_api_key": API_KEY, "sign": expected, "json": payload}
    ADAPTER.verify(raw_request("result/callback", urlencode(fields).encode()))


def test_the_json_field_is_signed_exactly_as_received() -> None:
    payload = '{"entry_id": "e", "call_id": "l",\n "timestamp": 1795341600}'
    sign = signature(API_KEY, payload, API_SALT)
    ok = {"vpbx_api_key": API_KEY, "sign": sign, "json": payload}
    ADAPTER.verify(raw_request("events/call", urlencode(ok).encode()))
    compact = {**ok, "json": json.dumps(json.loads(payload), separators=(",", ":"))}
    with pytest.raises(SignatureError):
        ADAPTER.verify(raw_request("events/call", urlencode(compact).encode()))


@pytest.mark.parametrize("fields", [
    {"vpbx_api_key": API_KEY, "json": "{}"},
    {"sign": signature(API_KEY, "{}", API_SALT), "json": "{}"},
    {"vpbx_api_key": "other", "sign": signature("other", "{}", API_SALT), "json": "{}"},
    {"vpbx_api_key": API_KEY, "sign": signature(API_KEY, "{}", "other-salt"), "json": "{}"},
    {"vpbx_api_key": API_KEY, "sign": "", "json": "{}"},
    {"vpbx_api_key": API_KEY, "sign": signature(API_KEY, "{}", API_SALT), "json": "{} "},
], ids=["no-sign", "no-key", "wrong-key", "wrong-salt", "empty-sign", "tampered"])
def test_wrong_signatures_are_refused(fields: dict[str, str]) -> None:
    with pytest.raises(SignatureError):
        ADAPTER.verify(raw_request("events/call", urlencode(fields).encode()))


# --- mapping -----------------------------------------------------------------------------


def test_appeared_inbound_is_ringing_on_the_ringing_extension() -> None:
    event = one(call("Appeared", leg="leg-7", seq=4))
    assert (event.state, event.direction) == (CallState.RINGING, Direction.INBOUND)
    assert event.call_id == "e-1" and event.event_key == "leg-7:Appeared" and event.seq == 4
    assert event.remote.phone == "79161234567" and event.line == LINE
    assert event.extension == "101" and event.correlation is None
    assert event.occurred_at == datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    assert event.source == "mango" and event.outcome is None


def test_connected_is_answered_by_a_person_only() -> None:
    event = one(call("Connected", leg="leg-7", seq=5, to={"extension": "102"}))
    assert event.state == CallState.ANSWERED and event.extension == "102"
    assert event.event_key == "leg-7:Connected"
    ivr = {"number": LINE, "line_number": LINE}
    assert parse(call("Connected", location="ivr", to=ivr)) == []
    assert parse(call("Connected", location="queue", to=ivr)) == []
    [ringing] = parse(call("Appeared", location="ivr", to=ivr))
    assert ringing.state == CallState.RINGING and ringing.extension is None


@pytest.mark.parametrize("state", ["OnHold", "Disconnected"])
def test_leg_hold_and_hang_up_carry_nothing(state: str) -> None:
    assert parse(call(state, disconnect_reason=1110)) == []


def test_outbound_call_from_an_extension() -> None:
    event = one(call("Appeared", frm=OLGA, to={"number": "79165554433"}))
    assert event.direction == Direction.OUTBOUND and event.extension == "101"
    assert event.remote.phone == "79165554433"


def test_internal_calls_carry_no_client() -> None:
    assert parse(call("Appeared", frm=OLGA, to={"extension": "102"})) == []
    assert parse(call("Connected", frm=OLGA, to={"extension": "102"})) == []
    assert parse(summary(0, 1, talk=T0 + 3)) == []


def test_click_to_call_events_correlate_by_our_command_id_only() -> None:
    ours = one(call("Appeared", frm=OLGA, to=CLIENT, command_id="hub-tok_en-1"))
    assert ours.correlation == "tok_en-1" and ours.direction == Direction.OUTBOUND
    assert ours.remote.phone == "79161234567"
    foreign = one(call("Appeared", frm=OLGA, to=CLIENT, command_id="crm-42-1"))
    assert foreign.correlation is None
    # Mango rings the manager first: ringing on their extension, their answer is not the client's
    manager_leg = call("Appeared", frm={}, to={"extension": "101"}, command_id="hub-t")
    ringing = one(manager_leg)
    assert (ringing.state, ringing.direction, ringing.extension) == (
        CallState.RINGING, Direction.OUTBOUND, "101")
    assert ringing.remote.phone is None and ringing.correlation == "t"
    assert parse(call("Connected", frm={}, to={"extension": "101"}, command_id="hub-t")) == []
    # a callback's client leg without an extension on the from side still maps
    client_leg = one(call("Connected", frm={}, to=CLIENT, command_id="hub-t"))
    assert client_leg.state == CallState.ANSWERED and client_leg.remote.phone == "79161234567"


@pytest.mark.parametrize(("item", "direction", "outcome", "duration"), [
    (summary(1, 1, talk=T0 + 12, end=T0 + 252), Direction.INBOUND, CallOutcome.ANSWERED, 240),
    (summary(1, 0), Direction.INBOUND, CallOutcome.MISSED, 0),
    (summary(1, 0, reason=3200), Direction.INBOUND, CallOutcome.MISSED, 0),
    (summary(1, 1, talk=0), Direction.INBOUND, CallOutcome.MISSED, 0),
    (summary(2, 1, talk=T0 + 10, end=T0 + 100), Direction.OUTBOUND, CallOutcome.ANSWERED, 90),
    (summary(2, 0, reason=1110), Direction.OUTBOUND, CallOutcome.MISSED, 0),
    (summary(2, 0, reason=1100), Direction.OUTBOUND, CallOutcome.MISSED, 0),
    (summary(2, 0, reason=None), Direction.OUTBOUND, CallOutcome.MISSED, 0),
    (summary(2, 0, reason=2001), Direction.OUTBOUND, CallOutcome.FAILED, 0),
    (summary(2, 0, reason=3200), Direction.OUTBOUND, CallOutcome.FAILED, 0),
    (summary(2, 0, reason=4201), Direction.OUTBOUND, CallOutcome.FAILED, 0),
    (summary(2, 0, reason=5001), Direction.OUTBOUND, CallOutcome.FAILED, 0),
    (summary(2, 0, reason=5003), Direction.OUTBOUND, CallOutcome.FAILED, 0),
], ids=["in-talked", "in-missed", "in-missed-3200", "in-no-talk", "out-talked", "out-1110",
        "out-1100", "out-no-reason", "out-billing", "out-wrong-number", "out-unreachable",
        "out-overload", "out-technical"])
def test_summary_ends_the_call(item: dict[str, Any], direction: Direction,
                               outcome: CallOutcome, duration: int) -> None:
    event = one(item)
    assert event.state == CallState.ENDED and event.call_id == "e-1"
    assert (event.direction, event.outcome, event.duration_s) == (direction, outcome, duration)
    assert event.occurred_at == datetime.fromtimestamp(item["json"]["end_time"], UTC)
    assert event.extension == "101" and event.line == LINE and event.event_key is None
    assert event.remote.phone == "79161234567"


def test_recording_completed_links_the_hub_route() -> None:
    assert parse(recording("Started")) == []
    assert parse(recording("Continued", seq=2)) == []
    event = one(recording("Completed", rid="MToxMDIx==", seq=3))
    assert event.state == CallState.RECORDING and event.call_id == "e-1"
    assert event.recording_url == "/api/recordings/mango/MToxMDIx=="
    assert event.event_key == "MToxMDIx==" and event.seq == 3
    [slashed] = parse(recording("Completed", rid="a+b/c=="))  # base64 ids stay one segment
    assert slashed.recording_url == "/api/recordings/mango/a%2Bb%2Fc=="


def test_other_notifications_are_accepted_and_carry_nothing() -> None:
    added = {"entry_id": "e", "recording_id": "r"}
    assert parse({"path": "events/record/added", "json": added}) == []
    assert parse({"path": "result/callback", "json": {"command_id": "hub-x", "result": 1000}}) == []


@pytest.mark.parametrize("frm", [{}, {"number": ""}, {"number": None}, {"number": "anonymous"},
                                 {"number": "sip:unknown@trunk.example"}])
def test_hidden_callers_have_no_phone(frm: dict[str, Any]) -> None:
    event = one(call("Appeared", frm=frm))
    assert event.remote.phone is None
    assert one(summary(1, 0, frm=frm)).remote.phone is None


@pytest.mark.parametrize("raw", [b"\xff\xfe", b"json=%7Bnot+json", b"json=%5B1%2C2%5D",
                                 b"json=%22text%22", b"vpbx_api_key=x"])
def test_malformed_bodies_are_400(raw: bytes) -> None:
    with pytest.raises(PayloadError):
        ADAPTER.parse(raw_request("events/call", raw))


@pytest.mark.parametrize(("path", "change", "field"), [
    ("events/call", {"call_state": "Exploded"}, "call_state"),
    ("events/call", {"entry_id": ""}, "entry_id"),
    ("events/call", {"timestamp": "yesterday"}, "timestamp"),
    ("events/call", {"timestamp": -1}, "timestamp"),
    ("events/call", {"seq": "first"}, "seq"),
    ("events/call", {"from": "79161234567"}, "from"),
    ("events/summary", {"call_direction": 7}, "call_direction"),
    ("events/summary", {"end_time": None}, "end_time"),
    ("events/summary", {"entry_result": 3}, "entry_result"),
    ("events/recording", {"recording_state": "Lost"}, "recording_state"),
], ids=lambda v: str(v))
def test_invalid_values_are_422_and_name_the_field(path: str, change: dict[str, Any],
                                                   field: str) -> None:
    base = {"events/call": call("Appeared"), "events/summary": summary(1, 0),
            "events/recording": recording("Completed")}[path]
    payload = {**base["json"], **change}
    with pytest.raises(ValidationError) as info:
        ADAPTER.parse(raw_request(path, body(payload)))
    assert field in info.value.message


def test_missing_entry_id_is_422() -> None:
    payload = {k: v for k, v in call("Appeared")["json"].items() if k != "entry_id"}
    with pytest.raises(ValidationError):
        ADAPTER.parse(raw_request("events/call", body(payload)))


def test_numbers_sent_as_numbers_are_read_as_text() -> None:
    event = one(call("Appeared", to={"extension": 101, "line_number": 74951112233},
                     frm={"number": 79161234567}))
    assert event.extension == "101" and event.remote.phone == "79161234567"


def test_every_fixture_file_maps_as_its_name_says() -> None:
    states = {name: [e.state for i in items(name) for e in parse(i)]
              for name in ("inbound_answered.json", "internal.json", "anonymous.json")}
    assert states["inbound_answered.json"] == [
        CallState.RINGING, CallState.RINGING, CallState.ANSWERED, CallState.RECORDING,
        CallState.ENDED]
    assert states["internal.json"] == []
    assert states["anonymous.json"] == [CallState.RINGING, CallState.ENDED]


# --- settings and dialing without a server -----------------------------------------------


def test_config() -> None:
    config = MangoConfig.model_validate({**CONFIG, "api_base": "http://127.0.0.1:9/",
                                         "extensions": "101, 102"})
    assert config.api_base == "http://127.0.0.1:9" and config.extensions == ("101", "102")
    assert MangoConfig().api_base == "https://app.mango-office.ru"
    with_vpbx = MangoConfig.model_validate({"api_base": "https://app.mango-office.ru/vpbx/"})
    assert with_vpbx.api_base == "https://app.mango-office.ru"
    for bad in ({"api_base": "ftp://x"}, {"api_base": "app.mango-office.ru"}, {"secret": "x"}):
        with pytest.raises(pydantic.ValidationError):
            MangoConfig.model_validate({**CONFIG, **bad})
    assert API_KEY not in repr(ADAPTER) and API_SALT not in repr(ADAPTER)


def test_cannot_dial_without_an_extension() -> None:
    assert ADAPTER.cannot_dial(Agent(1, "Olga", "101", None)) is None
    assert ADAPTER.cannot_dial(Agent(1, "Olga", None, "+79160000000")) == (
        "the manager has no extension")
    assert ADAPTER.dials


@pytest.mark.parametrize(("result", "retryable"), [(2001, False), (3100, False), (4001, False),
                                                   (5001, True), (5003, True)])
async def test_refused_commands_are_delivery_errors(
    aiohttp_server: Any, result: int, retryable: bool
) -> None:
    server = await aiohttp_server(fake_api(result))
    adapter = MangoAdapter(MangoConfig.model_validate(
        {**CONFIG, "api_base": str(server.make_url(""))}))
    agent = Agent(1, "Olga", "101", None)
    async with aiohttp.ClientSession() as http:
        with pytest.raises(DeliveryError) as info:
            await adapter.dial(http, DialRequest(agent, "+79161234567", "tok"))
    assert info.value.retryable is retryable and info.value.provider_code == str(result)
    [command] = server.app[STATE].commands
    # the reference vector's shape: compact JSON, the sign over exactly that text
    sent = '{"command_id":"hub-tok","from":{"extension":"101"},"to_number":"79161234567"}'
    assert command["form"]["json"] == sent
    assert command["form"]["sign"] == signature(API_KEY, sent, API_SALT)


async def test_the_fake_checks_the_signature_as_mango_does(aiohttp_server: Any) -> None:
    server = await aiohttp_server(fake_api())
    url = server.make_url("/vpbx/commands/callback")
    payload = '{"command_id":"cbk1","from":{"extension":"101"},"to_number":"74955404444"}'
    async with aiohttp.ClientSession() as http:
        for fields in ({"vpbx_api_key": API_KEY, "sign": "0" * 64, "json": payload},
                       {"vpbx_api_key": "other", "sign": signature("other", payload, API_SALT),
                        "json": payload}):
            async with http.post(url, data=fields) as resp:
                assert resp.status == 401 and "result" in await resp.json()
        signed = {"vpbx_api_key": API_KEY, "sign": signature(API_KEY, payload, API_SALT),
                  "json": payload}
        async with http.post(url, data=signed) as resp:
            assert resp.status == 200 and await resp.json() == {"result": 1000}
    assert [c["json"]["command_id"] for c in server.app[STATE].commands] == ["cbk1"]
    adapter = MangoAdapter(MangoConfig.model_validate(
        {"api_key": "other", "api_salt": API_SALT, "api_base": str(server.make_url(""))}))
    async with aiohttp.ClientSession() as http:
        with pytest.raises(DeliveryError) as info:
            await adapter.dial(http, DialRequest(Agent(1, "O", "101", None), "+7916", "t"))
    assert info.value.provider_code == "401" and not info.value.retryable


# --- over HTTP ---------------------------------------------------------------------------


@pytest.fixture
async def mango(make_client: Any) -> Any:
    return await make_client(telephony={"mango": CONFIG})


async def post(client: Any, item: dict[str, Any], **kwargs: Any) -> Any:
    resp = await client.post(f"{BASE}/{item['path']}", data=body(item["json"], **kwargs),
                             headers=FORM)
    return resp


async def replay(client: Any, sequence: list[dict[str, Any]]) -> list[dict[str, Any]]:
    answers = []
    for item in sequence:
        resp = await post(client, item)
        assert resp.status == 200, await resp.text()
        answers.append(await resp.json())
    return answers


async def stored() -> tuple[int, int, int, int]:
    return (await Client.all().count(), await Interaction.all().count(),
            await ProcessedEvent.all().count(), await Reminder.all().count())


async def timeline(client: Any, manager: Any, client_id: int) -> list[dict[str, Any]]:
    resp = await client.get(f"/api/clients/{client_id}/timeline", headers=manager["headers"])
    assert resp.status == 200
    return (await resp.json())["items"]  # type: ignore[no-any-return]


def client_of(answers: list[dict[str, Any]]) -> int:
    ids = {a["client_id"] for a in answers if "client_id" in a}
    assert len(ids) == 1 and None not in ids, ids
    return int(ids.pop())


async def test_inbound_answered_lifecycle(mango: Any, manager: Any) -> None:
    answers = await replay(mango, items("inbound_answered.json"))
    client_id = client_of(answers)
    assert answers[0]["created"] is True
    card = await (await mango.get(f"/api/clients/{client_id}", headers=manager["headers"])).json()
    assert card["phones"] == ["+79161234567"] and card["emails"] == []
    [entry] = await timeline(mango, manager, client_id)
    assert entry["kind"] == "call" and entry["direction"] == "in" and entry["channel"] == "mango"
    assert entry["status"] == "completed"
    assert entry["occurred_at"].startswith("2026-11-22T10:00:00")
    meta = entry["meta"]
    assert meta["duration"] == 240 and meta["extension"] == "101" and meta["line"] == LINE
    assert meta["recording_url"] == "/api/recordings/mango/MToxMDIxMDQ0NzoxNTcxMjA2NjY6MA=="
    assert await Reminder.all().count() == 0
    # every delivery again: 200, nothing changes
    before = await stored()
    again = await replay(mango, items("inbound_answered.json"))
    assert all(a.get("duplicate", True) for a in again) and await stored() == before
    assert [await timeline(mango, manager, client_id)] == [[entry]]


async def test_a_known_caller_written_another_way_is_found(mango: Any, manager: Any) -> None:
    resp = await mango.post("/api/clients", json={"name": "Ivan", "phones": ["8 (916) 123-45-67"]},
                            headers=manager["headers"])
    known = (await resp.json())["id"]
    answers = await replay(mango, items("inbound_answered.json"))
    assert client_of(answers) == known and not any(a.get("created") for a in answers)
    assert await Client.all().count() == 1


@pytest.mark.parametrize(("name", "status", "direction", "duration"), [
    ("outbound_answered.json", "completed", "out", 90),
    ("outbound_failed.json", "failed", "out", 0),
    ("outbound_no_answer.json", "missed", "out", 0),
    ("inbound_missed.json", "missed", "in", 0),
])
async def test_each_scenario_ends_right(mango: Any, manager: Any, name: str, status: str,
                                        direction: str, duration: int) -> None:
    client_id = client_of(await replay(mango, items(name)))
    [entry] = await timeline(mango, manager, client_id)
    assert (entry["status"], entry["direction"], entry["meta"]["duration"]) == (
        status, direction, duration)
    assert entry["meta"]["extension"] == "101"
    reminders = await Reminder.filter(client_id=client_id).count()
    assert reminders == (1 if direction == "in" else 0)  # only a missed inbound call asks back


async def test_missed_calls_open_one_reminder_and_an_answered_call_closes_it(
    mango: Any, manager: Any
) -> None:
    first = client_of(await replay(mango, items("inbound_missed.json")))
    resp = await mango.get("/api/reminders?status=pending", headers=manager["headers"])
    [reminder] = (await resp.json())["items"]
    assert reminder["origin"] == "missed_call" and reminder["client_id"] == first
    assert reminder["count"] == 1
    caller = {"number": "+7 903 111-22-33"}
    second = [call("Appeared", entry="e-2", frm=caller), summary(1, 0, entry="e-2", frm=caller)]
    assert client_of(await replay(mango, second)) == first
    resp = await mango.get("/api/reminders?status=pending", headers=manager["headers"])
    [reminder] = (await resp.json())["items"]
    assert reminder["count"] == 2
    later = T0 + 7200  # after the missed calls: the client has been reached since
    answered = [call("Appeared", entry="e-3", frm=caller, at=later),
                call("Connected", entry="e-3", frm=caller, seq=2, at=later + 5),
                summary(1, 1, talk=later + 5, end=later + 60, entry="e-3", frm=caller)]
    await replay(mango, answered)
    resp = await mango.get("/api/reminders?status=pending", headers=manager["headers"])
    assert (await resp.json())["items"] == []
    assert (await Reminder.get()).status == "done"
    assert len(await timeline(mango, manager, first)) == 3


async def test_the_latest_ringing_extension_wins_whatever_the_arrival_order(
    mango: Any, manager: Any
) -> None:
    early = call("Appeared", leg="leg-a", seq=1, to={"extension": "101"})
    late = call("Appeared", leg="leg-b", seq=3, at=T0 + 10, to={"extension": "102"})
    client_id = client_of(await replay(mango, [late, early]))
    [entry] = await timeline(mango, manager, client_id)
    assert entry["status"] == "ringing" and entry["meta"]["extension"] == "102"


LIFECYCLE = items("inbound_answered.json")


def _orders() -> list[list[int]]:
    n = len(LIFECYCLE)
    orders = [list(range(n)), list(reversed(range(n)))]
    rng = random.Random(20261122)
    while len(orders) < 6:
        order = rng.sample(range(n), n)
        recording_first = LIFECYCLE[order[0]]["json"].get("recording_state") == "Completed"
        if not recording_first and order not in orders:
            orders.append(order)
    return orders


@pytest.mark.parametrize("order", _orders(), ids=lambda o: "-".join(map(str, o)))
async def test_any_arrival_order_gives_the_same_entry(
    mango: Any, manager: Any, order: list[int]
) -> None:
    client_id = client_of(await replay(mango, [LIFECYCLE[i] for i in order]))
    [entry] = await timeline(mango, manager, client_id)
    meta = entry["meta"]
    assert (entry["status"], entry["direction"], entry["occurred_at"][:19]) == (
        "completed", "in", "2026-11-22T10:00:00")
    assert (meta["duration"], meta["extension"], meta["line"]) == (240, "101", LINE)
    assert meta["recording_url"] == "/api/recordings/mango/MToxMDIxMDQ0NzoxNTcxMjA2NjY6MA=="
    assert meta["answered_at"].startswith("2026-11-22T10:00:12")
    assert meta["ended_at"].startswith("2026-11-22T10:04:12")
    assert await Reminder.all().count() == 0


async def test_a_recording_notice_arriving_first(mango: Any, manager: Any) -> None:
    completed = next(i for i in LIFECYCLE if i["json"].get("recording_state") == "Completed")
    answers = await replay(mango, [completed, *(i for i in LIFECYCLE if i is not completed)])
    assert answers[0]["client_id"] is None  # nothing names the caller yet
    client_id = client_of(answers[1:])
    [entry] = await timeline(mango, manager, client_id)
    assert (entry["status"], entry["direction"], entry["meta"]["duration"]) == (
        "completed", "in", 240)
    assert entry["meta"]["recording_url"].endswith("MToxMDIxMDQ0NzoxNTcxMjA2NjY6MA==")
    assert entry["meta"]["phone"] == "+79161234567"


async def test_anonymous_and_internal_calls(mango: Any) -> None:
    answers = await replay(mango, items("anonymous.json") + items("internal.json"))
    assert all(a.get("client_id") is None for a in answers)
    assert await Client.all().count() == 0
    [entry] = await Interaction.filter(kind="call")
    assert entry.status == "missed" and entry.client_id is None  # type: ignore[attr-defined]


async def test_other_notifications_answer_200_and_store_nothing(mango: Any) -> None:
    for item in ({"path": "events/record/added", "json": {"entry_id": "e", "recording_id": "r"}},
                 {"path": "result/callback", "json": {"command_id": "hub-x", "result": 1000}},
                 recording("Started")):
        resp = await post(mango, item)
        assert resp.status == 200, await resp.text()
    assert await stored() == (0, 0, 0, 0)


@pytest.mark.parametrize("kwargs", [{"salt": "wrong"}, {"key": "other-product"},
                                    {"sign": ""}, {"sign": "0" * 64}],
                         ids=["salt", "key", "empty", "zeros"])
async def test_wrong_signatures_get_401_and_store_nothing(mango: Any,
                                                          kwargs: dict[str, str]) -> None:
    resp = await post(mango, call("Appeared"), **kwargs)
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "bad_signature"
    assert await stored() == (0, 0, 0, 0)


async def test_garbage_gets_400_or_422_and_stores_nothing(mango: Any) -> None:
    resp = await mango.post(f"{BASE}/events/call", data=body("{not json"), headers=FORM)
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "malformed"
    bad = {**call("Appeared")["json"], "call_state": "Exploded"}
    resp = await mango.post(f"{BASE}/events/call", data=body(bad), headers=FORM)
    assert resp.status == 422 and "call_state" in (await resp.json())["error"]["message"]
    resp = await mango.post(f"{BASE}/events/call", data=b"{}",
                            headers={"Content-Type": "application/json"})
    assert resp.status == 415
    assert await stored() == (0, 0, 0, 0)


async def test_multipart_bodies_are_read_too(mango: Any) -> None:
    data = aiohttp.FormData()
    payload = json.dumps(call("Appeared")["json"])
    for key, value in (("vpbx_api_key", API_KEY), ("sign", signature(API_KEY, payload, API_SALT)),
                       ("json", payload)):
        data.add_field(key, value)
    resp = await mango.post(f"{BASE}/events/call", data=data())
    assert resp.status == 200 and (await resp.json())["created"] is True


async def test_disabled_without_its_secrets(make_client: Any) -> None:
    for table in ({}, {"api_key": API_KEY}, {"api_salt": API_SALT}):
        client = await make_client(telephony={"mango": table} if table else {})
        for path in MangoAdapter.paths:
            resp = await client.post(path, data=body({}), headers=FORM)
            assert resp.status == 404, path
    assert await stored() == (0, 0, 0, 0)


async def test_live_events_carry_the_hub_card(mango: Any, manager: Any) -> None:
    ws = await mango.ws_connect("/api/stream", headers=manager["headers"])
    assert (await ws.receive_json(timeout=5))["type"] == "hello"
    await replay(mango, [call("Appeared", frm={"number": "8 912 345 67 89"})])
    ringing = await ws.receive_json(timeout=5)
    assert ringing["type"] == "call.ringing" and ringing["created"] is True
    assert ringing["client"]["phones"] == ["+79123456789"]
    assert {"id", "name", "status", "manager_id"} <= set(ringing["client"])
    assert "from" not in ringing["interaction"]["meta"] and "entry_id" not in ringing["client"]
    await replay(mango, [call("Connected", seq=2, frm={"number": "89123456789"})])
    assert (await ws.receive_json(timeout=5))["type"] == "call.answered"
    await replay(mango, [summary(1, 1, talk=T0 + 3, frm={"number": "+79123456789"})])
    ended = await ws.receive_json(timeout=5)
    assert ended["type"] == "call.ended" and ended["interaction"]["status"] == "completed"
    await ws.close()


# --- click-to-call through the fake API --------------------------------------------------


async def dialing_setup(make_client: Any, manager: Any, api_base: str) -> tuple[Any, int]:
    client = await make_client(telephony={"mango": {**CONFIG, "api_base": api_base}})
    resp = await client.post("/api/clients", json={"name": "Ivan", "phones": ["+79161234567"]},
                             headers=manager["headers"])
    assert resp.status == 201, await resp.text()
    return client, (await resp.json())["id"]


@pytest.mark.parametrize("reverse", [False, True], ids=["in-order", "summary-first"])
async def test_click_to_call_ends_as_one_completed_entry(
    aiohttp_server: Any, make_client: Any, manager: Any, reverse: bool
) -> None:
    server = await aiohttp_server(fake_api())
    hub, client_id = await dialing_setup(make_client, manager, str(server.make_url("")))
    resp = await hub.post(f"/api/clients/{client_id}/call", json={}, headers=manager["headers"])
    assert resp.status == 202, await resp.text()
    placed = await resp.json()
    assert placed["kind"] == "call" and placed["direction"] == "out"
    [command] = server.app[STATE].commands
    sent = command["json"]
    assert sent["from"] == {"extension": "101"} and sent["to_number"] == "79161234567"
    assert sent["command_id"].startswith("hub-") and len(sent["command_id"]) > 8
    assert command["form"]["vpbx_api_key"] == API_KEY
    assert command["form"]["sign"] == signature(API_KEY, command["form"]["json"], API_SALT)
    cmd = sent["command_id"]
    events = [
        call("Appeared", entry="cb-1", leg="m", seq=1, frm={}, to={"extension": "101"},
             command_id=cmd),
        call("Connected", entry="cb-1", leg="m", seq=2, frm={}, to={"extension": "101"},
             command_id=cmd),
        call("Appeared", entry="cb-1", leg="c", seq=3, frm=OLGA, to=CLIENT, command_id=cmd),
        call("Connected", entry="cb-1", leg="c", seq=4, at=T0 + 10, frm=OLGA, to=CLIENT,
             command_id=cmd),
        summary(2, 1, talk=T0 + 10, end=T0 + 70, entry="cb-1"),
    ]
    answers = await replay(hub, list(reversed(events)) if reverse else events)
    assert client_of(answers) == client_id
    [entry] = await timeline(hub, manager, client_id)
    assert entry["id"] == placed["id"] and entry["status"] == "completed"
    assert entry["meta"]["duration"] == 60 and entry["meta"]["extension"] == "101"
    assert entry["meta"]["call_id"] == "cb-1"
    assert await Client.all().count() == 1


async def test_click_to_call_refused_by_mango_is_502_and_failed(
    aiohttp_server: Any, make_client: Any, manager: Any
) -> None:
    server = await aiohttp_server(fake_api(3100))
    hub, client_id = await dialing_setup(make_client, manager, str(server.make_url("")))
    resp = await hub.post(f"/api/clients/{client_id}/call", json={}, headers=manager["headers"])
    assert resp.status == 502
    assert (await resp.json())["error"]["code"] == "delivery_failed"
    [entry] = await timeline(hub, manager, client_id)
    assert entry["status"] == "failed" and "3100" in entry["text"]
    server.app[STATE].result = 1000
    resp = await hub.post(f"/api/clients/{client_id}/call", json={}, headers=manager["headers"])
    assert resp.status == 202


async def test_click_to_call_with_mango_unreachable_is_502(
    make_client: Any, manager: Any
) -> None:
    hub, client_id = await dialing_setup(make_client, manager, "http://127.0.0.1:1")
    resp = await hub.post(f"/api/clients/{client_id}/call", json={}, headers=manager["headers"])
    assert resp.status == 502
    [entry] = await timeline(hub, manager, client_id)
    assert entry["status"] == "failed"


async def test_click_to_call_needs_the_managers_extension(
    aiohttp_server: Any, make_client: Any, manager: Any, admin: Any
) -> None:
    server = await aiohttp_server(fake_api())
    hub, client_id = await dialing_setup(make_client, manager, str(server.make_url("")))
    resp = await hub.post(f"/api/clients/{client_id}/call", json={}, headers=admin["headers"])
    assert resp.status == 422 and "extension" in (await resp.json())["error"]["message"]
    assert server.app[STATE].commands == []


def test_settings_come_from_the_environment() -> None:
    import os

    from channels import build_registry
    from hub.settings import load_settings

    env = {"HUB_TELEPHONY_MANGO_API_KEY": API_KEY, "HUB_TELEPHONY_MANGO_API_SALT": API_SALT,
           "HUB_TELEPHONY_MANGO_API_BASE": "http://127.0.0.1:9/vpbx",
           "HUB_TELEPHONY_MANGO_EXTENSIONS": "101,102"}
    adapter = build_registry(load_settings(os.devnull, environ=env)).get("mango")
    assert isinstance(adapter, MangoAdapter) and isinstance(adapter.config, MangoConfig)
    assert adapter.config.api_base == "http://127.0.0.1:9"
    assert adapter.serves("102") and not adapter.serves("103") and not adapter.serves(None)
    del env["HUB_TELEPHONY_MANGO_API_SALT"]
    assert build_registry(load_settings(os.devnull, environ=env)).get("mango") is None


# --- recordings --------------------------------------------------------------------------


async def test_the_recording_link_redirects_to_mangos_one_use_link(
    aiohttp_server: Any, make_client: Any, manager: Any
) -> None:
    server = await aiohttp_server(fake_api())
    hub = await make_client(telephony={"mango": {**CONFIG, "api_base": str(server.make_url(""))}})
    client_id = client_of(await replay(hub, items("inbound_answered.json")))
    [entry] = await timeline(hub, manager, client_id)
    url = entry["meta"]["recording_url"]
    resp = await hub.get(url, headers=manager["headers"], allow_redirects=False)
    assert resp.status == 302, await resp.text()
    rec = "MToxMDIxMDQ0NzoxNTcxMjA2NjY6MA=="
    assert resp.headers["Location"] == f"https://files.mango-office.example/rec/{rec}.mp3?once=1"
    [query] = server.app[STATE].recordings
    assert query["json"] == {"recording_id": rec, "action": "play"}
    assert query["form"]["sign"] == signature(API_KEY, query["form"]["json"], API_SALT)
    assert (await hub.get(url, allow_redirects=False)).status == 401  # managers only


async def test_recording_link_failures_are_502(
    aiohttp_server: Any, make_client: Any, manager: Any
) -> None:
    server = await aiohttp_server(fake_api())
    hub = await make_client(telephony={"mango": {**CONFIG, "api_base": str(server.make_url(""))}})
    resp = await hub.get(f"/api/recordings/mango/{MISSING_RECORDING}",
                         headers=manager["headers"], allow_redirects=False)
    assert resp.status == 502 and (await resp.json())["error"]["code"] == "delivery_failed"
    adapter = MangoAdapter(MangoConfig.model_validate({**CONFIG, "api_base": "http://127.0.0.1:1"}))
    async with aiohttp.ClientSession() as http:
        with pytest.raises(DeliveryError) as info:
            await adapter.recording_link(http, "r")
    assert info.value.retryable
    wrong = MangoAdapter(MangoConfig.model_validate(
        {**CONFIG, "api_salt": "other", "api_base": str(server.make_url(""))}))
    async with aiohttp.ClientSession() as http:
        with pytest.raises(DeliveryError) as info:
            await wrong.recording_link(http, "r")
    assert info.value.provider_code == "401" and not info.value.retryable


def test_a_refused_command_fails_the_click_and_others_carry_nothing() -> None:
    [failed] = parse({"path": "result/callback", "json": {"command_id": "hub-tok", "result": 2100}})
    assert failed.state == CallState.ENDED and failed.outcome == CallOutcome.FAILED
    assert failed.correlation == "tok" and failed.direction == Direction.OUTBOUND
    foreign = {"command_id": "crm-7", "result": 2100}  # another system's command on the VPBX
    assert parse({"path": "result/callback", "json": foreign}) == []


async def test_a_click_mango_refuses_later_ends_as_failed(
    aiohttp_server: Any, make_client: Any, manager: Any
) -> None:
    server = await aiohttp_server(fake_api())
    hub, client_id = await dialing_setup(make_client, manager, str(server.make_url("")))
    resp = await hub.post(f"/api/clients/{client_id}/call", json={}, headers=manager["headers"])
    assert resp.status == 202, await resp.text()
    cmd = server.app[STATE].commands[0]["json"]["command_id"]
    verdict = {"path": "result/callback", "json": {"command_id": cmd, "result": 2100}}
    await replay(hub, [verdict, verdict])  # the repeat changes nothing
    [entry] = await timeline(hub, manager, client_id)
    assert entry["status"] == "failed" and entry["id"] == (await resp.json())["id"]
    assert await Interaction.filter(kind="call").count() == 1
