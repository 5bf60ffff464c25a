"""Twilio Programmable Voice: signatures, the parse table, TwiML replies, the whole lifecycle
over HTTP, and click-to-call against a fake of Twilio's Calls API."""

from __future__ import annotations

import hashlib
import json
import random
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pydantic
import pytest

from channels import build_registry
from channels.base import InboundRequest
from channels.twilio import TwilioAdapter, TwilioConfig, signature, url_variants
from hub.errors import ConfigError, PayloadError, SignatureError, ValidationError
from hub.events import CallOutcome, CallState, Direction, Party
from hub.models import Client, Interaction, ProcessedEvent, Reminder
from hub.settings import load_settings
from tests.providers import FIXTURES
from tests.providers.twilio import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CALLER_ID,
    CONFIG,
    FAIL,
    FORM,
    FORWARD_TO,
    OMIT_SID,
    PATH,
    RECEIVED,
    fake_api,
    items,
    public_url,
    request,
    signed_headers,
    twilio_signature,
)

BASE = "https://hub.example"
ADAPTER = TwilioAdapter(TwilioConfig.model_validate(CONFIG), public_base_url=BASE)
IN_SID = "CA" + "a1" * 16
OUT_SID = "CA" + "07" * 16


def form(**changes: str) -> dict[str, str]:
    """An inbound voice webhook, changed as given."""
    data = {"AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "CallSid": IN_SID,
            "CallStatus": "ringing", "Direction": "inbound", "From": "+79161234567",
            "To": CALLER_ID}
    data.update(changes)
    return data


def parse_one(data: dict[str, str], query: dict[str, str] | None = None) -> Any:
    req = request(data, query)
    ADAPTER.verify(req)
    [event] = ADAPTER.parse(req)
    return event


def fixture(name: str) -> list[dict[str, Any]]:
    return [dict(item) for item in json.loads((FIXTURES / "twilio" / name).read_text())]


# signatures


def test_the_reference_vector() -> None:
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = [("CallSid", "CA1234567890ABCDE"), ("Caller", "+12349013030"), ("Digits", "1234"),
              ("From", "+12349013030"), ("To", "+18005551212")]
    assert signature("12345", url, params) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert twilio_signature(url, list(reversed(params)), "12345") == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    adapter = TwilioAdapter(TwilioConfig.model_validate(
        {"account_sid": "AC1", "auth_token": "12345"}))
    pairs = [*params, ("AccountSid", "AC1")]
    body = urlencode(pairs).encode()
    headers = {"Content-Type": FORM, "X-Twilio-Signature": signature("12345", url, pairs)}
    adapter.verify(InboundRequest("POST", url, "/myapp.php", headers,
                                  {"foo": "1", "bar": "2"}, body))


def test_default_port_is_tried_both_ways() -> None:
    assert url_variants("https://hub.example/x?a=1") == [
        "https://hub.example/x?a=1", "https://hub.example:443/x?a=1"]
    assert url_variants("http://hub.example:80/x") == [
        "http://hub.example:80/x", "http://hub.example/x"]
    assert url_variants("https://hub.example:8443/x") == ["https://hub.example:8443/x"]
    data = form()
    # Twilio signed with the port, the hub rebuilt the URL without it
    req = request(data, signed_url=BASE + ":443" + PATH)
    ADAPTER.verify(req)
    # a non-default port is not interchangeable
    with pytest.raises(SignatureError):
        ADAPTER.verify(request(data, signed_url=BASE + ":8443" + PATH))


def test_repeated_names_sign_each_value_in_sorted_order() -> None:
    pairs = [*form().items(), ("StatusCallbackEvent", "ringing"),
             ("StatusCallbackEvent", "answered")]
    url = public_url()
    expected = signature(
        AUTH_TOKEN, url + "StatusCallbackEvent" + "answered" + "StatusCallbackEvent" + "ringing", []
    )
    assert signature(AUTH_TOKEN, url, [("StatusCallbackEvent", "ringing"),
                                       ("StatusCallbackEvent", "answered")]) == expected
    body = urlencode(pairs).encode()
    ADAPTER.verify(InboundRequest("POST", url, PATH, signed_headers(url, pairs), {}, body))


def test_the_signature_covers_the_query() -> None:
    data = form(Direction="outbound-api", CallStatus="completed")
    ADAPTER.verify(request(data, {"hub_dial": "tok"}))
    with pytest.raises(SignatureError):
        ADAPTER.verify(request(data, {"hub_dial": "other"},
                               signed_url=public_url({"hub_dial": "tok"})))


def test_json_bodies_are_checked_by_their_sha256() -> None:
    body = json.dumps(form()).encode()
    digest = hashlib.sha256(body).hexdigest()
    url = f"{BASE}{PATH}?bodySHA256={digest}"
    headers = {"Content-Type": "application/json",
               "X-Twilio-Signature": signature(AUTH_TOKEN, url, [])}
    genuine = InboundRequest("POST", url, PATH, headers, {"bodySHA256": digest}, body)
    ADAPTER.verify(genuine)
    assert ADAPTER.parse(genuine)[0].state == CallState.RINGING
    tampered = InboundRequest("POST", url, PATH, headers, {"bodySHA256": digest}, body + b" ")
    with pytest.raises(SignatureError):
        ADAPTER.verify(tampered)


@pytest.mark.parametrize("header", [None, "", "0/KCTR6DLpKmkAf8muzZqo1nDgQ=", "garbage"])
def test_missing_or_wrong_signature(header: str | None) -> None:
    req = request(form(), token=None)
    if header is not None:
        req = InboundRequest("POST", req.url, PATH, {"Content-Type": FORM,
                             "X-Twilio-Signature": header}, {}, req.body)
    with pytest.raises(SignatureError):
        ADAPTER.verify(req)


def test_another_accounts_request_is_refused_even_when_signed() -> None:
    with pytest.raises(SignatureError):
        ADAPTER.verify(request(form(AccountSid="AC" + "f" * 32)))
    without = form()
    del without["AccountSid"]
    with pytest.raises(SignatureError):
        ADAPTER.verify(request(without))


# the parse table


@pytest.mark.parametrize(
    ("status", "direction", "state", "outcome"),
    [
        ("queued", "outbound-api", CallState.RINGING, None),
        ("initiated", "outbound-api", CallState.RINGING, None),
        ("ringing", "outbound-api", CallState.RINGING, None),
        ("ringing", "inbound", CallState.RINGING, None),
        ("in-progress", "outbound-api", CallState.ANSWERED, None),
        ("in-progress", "inbound", CallState.ANSWERED, None),
        ("completed", "outbound-api", CallState.ENDED, CallOutcome.ANSWERED),
        ("completed", "outbound-dial", CallState.ENDED, CallOutcome.ANSWERED),
        # Twilio answered the inbound call to run our TwiML: the Dial action says who talked
        ("completed", "inbound", CallState.ENDED, None),
        ("busy", "outbound-api", CallState.ENDED, CallOutcome.BUSY),
        ("busy", "inbound", CallState.ENDED, CallOutcome.BUSY),
        ("no-answer", "outbound-api", CallState.ENDED, CallOutcome.MISSED),
        ("no-answer", "inbound", CallState.ENDED, CallOutcome.MISSED),
        ("canceled", "inbound", CallState.ENDED, CallOutcome.MISSED),
        ("failed", "outbound-api", CallState.ENDED, CallOutcome.FAILED),
    ],
)
def test_call_status_mapping(
    status: str, direction: str, state: CallState, outcome: CallOutcome | None
) -> None:
    event = parse_one(form(CallStatus=status, Direction=direction, CallDuration="42",
                           CallbackSource="call-progress-events"))
    assert (event.state, event.outcome) == (state, outcome)
    assert event.source == "twilio" and event.call_id == IN_SID
    talk = state == CallState.ENDED and (direction, status) != ("inbound", "completed")
    assert event.duration_s == (42 if talk else None)
    assert event.event_key == (status if state == CallState.RINGING else None)
    assert event.correlation is None


def test_each_ringing_status_has_its_own_event_name() -> None:
    # the hub's click-to-call entry starts with its own "call.ringing" holding the manager's
    # extension: Twilio's ringing events must not overwrite it; each still dedupes on its own
    names = [parse_one(form(CallStatus=s, Direction="outbound-api")).name
             for s in ("queued", "initiated", "ringing", "ringing")]
    assert names == ["call.ringing/queued", "call.ringing/initiated", "call.ringing/ringing",
                     "call.ringing/ringing"]


def test_direction_decides_remote_and_line() -> None:
    inbound = parse_one(form(From="+79161234567", To=CALLER_ID))
    assert inbound.direction == Direction.INBOUND
    assert inbound.remote.phone == "+79161234567" and inbound.line == CALLER_ID
    for direction in ("outbound-api", "outbound-dial"):
        out = parse_one(form(Direction=direction, From=CALLER_ID, To="8 903 111-22-33"))
        assert out.direction == Direction.OUTBOUND
        assert out.remote.phone == "8 903 111-22-33" and out.line == CALLER_ID


@pytest.mark.parametrize("number", ["anonymous", "Anonymous", "+266696687", "+7378742833",
                                    "+2562533", "+86282452253", "+8656696", "restricted",
                                    "unknown", "private", "", "client:alice"])
def test_hidden_callers_have_no_phone(number: str) -> None:
    assert parse_one(form(From=number, CallerName="ANONYMOUS" if number else "")).remote.phone \
        is None
    assert parse_one(form(From=number)).remote == Party()


def test_caller_name_is_the_display_name_unless_it_is_the_number() -> None:
    assert parse_one(form(CallerName="Ivan Petrov")).remote.display_name == "Ivan Petrov"
    assert parse_one(form(CallerName="+7 916 123-45-67")).remote.display_name is None
    assert parse_one(form()).remote.display_name is None


def test_timestamp_and_sequence() -> None:
    event = parse_one(form(CallStatus="completed", Timestamp="Mon, 30 Nov 2026 13:01:07 +0300",
                           SequenceNumber="3"))
    assert event.occurred_at == datetime(2026, 11, 30, 10, 1, 7, tzinfo=UTC)
    assert event.seq == 3
    before = datetime.now(UTC)
    assert parse_one(form()).occurred_at >= before


def test_hub_dial_query_correlates_and_the_first_leg_is_not_the_client() -> None:
    event = parse_one(form(Direction="outbound-api", From=CALLER_ID, To="+79160000101",
                           CallStatus="in-progress"), {"hub_dial": "tok-1"})
    # our manager picked up; the client's phone rings now: the client has not answered yet
    assert event.correlation == "tok-1" and event.state == CallState.RINGING
    assert event.remote == Party()  # To is our manager's phone
    assert event.line == CALLER_ID and event.direction == Direction.OUTBOUND


def test_dial_action_says_whether_the_forwarded_phone_answered() -> None:
    before = datetime.now(UTC)
    answered = parse_one(form(CallStatus="in-progress", DialCallStatus="completed",
                              DialCallDuration="95", DialCallSid="CA" + "b2" * 16))
    assert answered.state == CallState.ANSWERED and answered.duration_s == 95
    # answered when the talk began, not when the Dial ended
    assert answered.occurred_at <= datetime.now(UTC) - timedelta(seconds=94)
    assert answered.occurred_at >= before - timedelta(seconds=96)
    for status, outcome in (("no-answer", CallOutcome.MISSED), ("busy", CallOutcome.BUSY),
                            ("canceled", CallOutcome.MISSED), ("failed", CallOutcome.FAILED)):
        ended = parse_one(form(CallStatus="in-progress", DialCallStatus=status))
        assert (ended.state, ended.outcome) == (CallState.ENDED, outcome)
        assert ended.name == "call.ended/dial"  # apart from the call's own end


def recording(status: str = "completed", **extra: str) -> dict[str, str]:
    return {"AccountSid": ACCOUNT_SID, "CallSid": IN_SID, "RecordingSid": "RE" + "c3" * 16,
            "RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/RE1",
            "RecordingStatus": status, "RecordingDuration": "95", **extra}


def test_recording_callbacks() -> None:
    event = parse_one(recording(), {"hub_from": "+79161234567"})
    assert event.state == CallState.RECORDING and event.call_id == IN_SID
    assert event.recording_url == "https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/RE1.mp3"
    assert event.remote.phone == "+79161234567" and event.direction == Direction.INBOUND
    outbound = parse_one(recording(), {"hub_dial": "tok"})
    assert outbound.correlation == "tok" and outbound.direction == Direction.OUTBOUND
    for status in ("in-progress", "absent", "failed"):
        req = request(recording(status))
        ADAPTER.verify(req)
        assert ADAPTER.parse(req) == []
    with pytest.raises(ValidationError):
        ADAPTER.parse(request(recording(RecordingUrl="ftp://x/y")))


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"\xff\xfe", PayloadError),
        (b"a=1&&&b", PayloadError),
        (urlencode({"AccountSid": ACCOUNT_SID, "CallStatus": "ringing"}).encode(), PayloadError),
    ],
)
def test_malformed_bodies(body: bytes, error: type[Exception]) -> None:
    req = InboundRequest("POST", public_url(), PATH, {"Content-Type": FORM}, {}, body)
    with pytest.raises(error):
        ADAPTER.parse(req)


@pytest.mark.parametrize(
    "change",
    [
        {"CallStatus": "exploded"},
        {"Direction": "sideways"},
        {"CallDuration": "-5", "CallStatus": "completed"},
        {"CallDuration": "abc", "CallStatus": "completed"},
        {"Timestamp": "yesterday"},
        {"SequenceNumber": "1e3"},
        {"CallDuration": "²", "CallStatus": "completed", "Direction": "outbound-api"},
        {"CallSid": "x" * 70},
        {"CallSid": ""},
    ],
)
def test_invalid_values_name_the_field(change: dict[str, str]) -> None:
    with pytest.raises(ValidationError) as info:
        ADAPTER.parse(request(form(**change)))
    assert next(iter(change)) in info.value.message


# TwiML replies


def twiml(adapter: TwilioAdapter, req: InboundRequest) -> ET.Element:
    reply = adapter.reply(req, [])
    assert reply.status == 200 and reply.content_type == "text/xml"
    return ET.fromstring(reply.body)


def test_an_incoming_call_rings_forward_to_and_reports_back() -> None:
    root = twiml(ADAPTER, request(form()))
    dial = root.find("Dial")
    assert dial is not None and dial.findtext("Number") == FORWARD_TO
    assert dial.get("action") == BASE + PATH and dial.get("timeout") == "25"
    assert dial.get("record") is None and dial.get("callerId") is None


def test_incoming_without_forward_to_hears_busy() -> None:
    adapter = TwilioAdapter(TwilioConfig.model_validate(
        {k: v for k, v in CONFIG.items() if k != "forward_to"}), public_base_url=BASE)
    root = twiml(adapter, request(form()))
    assert [(e.tag, e.get("reason")) for e in root] == [("Reject", "busy")]


def test_recording_and_escaping() -> None:
    adapter = TwilioAdapter(TwilioConfig.model_validate({**CONFIG, "record": True,
                                                         "ring_timeout": 40}))
    url = 'https://hub.example/a&b"<c>' + PATH
    req = request(form(From="+79161234567"))
    req = InboundRequest("POST", url, PATH, req.headers, {}, req.body)
    dial = twiml(adapter, req).find("Dial")
    assert dial is not None and dial.get("action") == url and dial.get("timeout") == "40"
    assert dial.get("record") == "record-from-answer-dual"
    assert dial.get("recordingStatusCallback") == url + "?hub_from=%2B79161234567"
    hidden = InboundRequest("POST", url, PATH, req.headers, {},
                            urlencode(form(From="anonymous")).encode())
    assert twiml(adapter, hidden).find("Dial").get("recordingStatusCallback") == url  # type: ignore[union-attr]


@pytest.mark.parametrize("data", [
    form(CallbackSource="call-progress-events", CallStatus="completed"),
    form(CallStatus="ringing", Direction="outbound-api"),
    form(CallStatus="in-progress", DialCallStatus="completed"),
    recording(),
])
def test_callbacks_get_an_empty_response(data: dict[str, str]) -> None:
    root = twiml(ADAPTER, request(data))
    assert root.tag == "Response" and len(root) == 0


# settings


def test_config_defaults_and_validation() -> None:
    config = TwilioConfig.model_validate({**CONFIG, "api_base": "http://127.0.0.1:9/",
                                          "caller_id": "+7 (495) 000-00-01",
                                          "extensions": "101, 102"})
    assert config.api_base == "http://127.0.0.1:9"
    assert config.caller_id == "+74950000001" and config.extensions == ("101", "102")
    defaults = TwilioConfig()
    assert defaults.api_base == "https://api.twilio.com" and defaults.ring_timeout == 25
    assert defaults.forward_to is None and defaults.record is False
    for bad in ({"api_base": "ftp://x"}, {"caller_id": "84950000001"}, {"forward_to": "101"},
                {"ring_timeout": 1}, {"unknown": 1}):
        with pytest.raises(pydantic.ValidationError):
            TwilioConfig.model_validate({**CONFIG, **bad})


def test_environment_names() -> None:
    env = {"HUB_TELEPHONY_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
           "HUB_TELEPHONY_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
           "HUB_TELEPHONY_TWILIO_API_BASE": "http://127.0.0.1:9",
           "HUB_TELEPHONY_TWILIO_CALLER_ID": CALLER_ID,
           "HUB_TELEPHONY_TWILIO_EXTENSIONS": "101,102",
           "HUB_TELEPHONY_TWILIO_RECORD": "true"}
    registry = build_registry(load_settings("/dev/null", environ=env))
    adapter = registry.get("twilio")
    assert isinstance(adapter, TwilioAdapter) and adapter.config.record is True  # type: ignore[attr-defined]
    assert adapter.serves("101") and not adapter.serves("103")
    with pytest.raises(ConfigError) as info:
        build_registry(load_settings("/dev/null", environ={
            **env, "HUB_TELEPHONY_TWILIO_CALLER_ID": "nope"}))
    assert "caller_id" in info.value.message


# end to end over HTTP


async def stored() -> tuple[int, int, int]:
    return (await Client.all().count(), await Interaction.all().count(),
            await ProcessedEvent.all().count())


@pytest.fixture
async def hub(make_client: Any) -> Any:
    return await make_client(public_base_url=BASE, telephony={"twilio": dict(CONFIG)})


async def post(client: Any, data: dict[str, str], query: dict[str, str] | None = None,
               token: str = AUTH_TOKEN) -> Any:
    pairs = list(data.items())
    path = PATH + (f"?{urlencode(query)}" if query else "")
    return await client.post(path, data=urlencode(pairs),
                             headers=signed_headers(public_url(query), pairs, token))


async def replay(client: Any, scenario: list[dict[str, Any]]) -> list[str]:
    answers = []
    for item in scenario:
        resp = await post(client, item["form"], item.get("query"))
        assert resp.status == 200, await resp.text()
        assert resp.content_type == "text/xml"
        answers.append(await resp.text())
    return answers


async def card(client: Any, headers: dict[str, str], phone: str) -> dict[str, Any]:
    resp = await client.get("/api/lookup", params={"phone": phone}, headers=headers)
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def calls_of(client: Any, headers: dict[str, str], client_id: int) -> list[dict[str, Any]]:
    resp = await client.get(f"/api/clients/{client_id}/timeline", headers=headers)
    return [e for e in (await resp.json())["items"] if e["kind"] == "call"]


async def reminders(client: Any, headers: dict[str, str], status: str) -> list[dict[str, Any]]:
    resp = await client.get("/api/reminders", params={"status": status}, headers=headers)
    return list((await resp.json())["items"])


def with_sid(scenario: list[dict[str, Any]], sid: str, **changes: str) -> list[dict[str, Any]]:
    out = []
    for item in scenario:
        data = {**item["form"], "CallSid": sid}
        data.update({k: v for k, v in changes.items() if k in data})
        out.append({**item, "form": data})
    return out


async def test_an_unknown_caller_gets_a_card_and_one_completed_entry(
    hub: Any, manager: Any
) -> None:
    answers = await replay(hub, fixture("inbound_answered.json"))
    dial = ET.fromstring(answers[0]).find("Dial")
    assert dial is not None and dial.findtext("Number") == FORWARD_TO
    assert all(ET.fromstring(a).tag == "Response" and len(ET.fromstring(a)) == 0
               for a in answers[1:])
    found = await card(hub, manager["headers"], "+79161234567")
    assert found["phones"] == ["+79161234567"] and found["emails"] == []
    [entry] = await calls_of(hub, manager["headers"], found["id"])
    assert entry["direction"] == "in" and entry["channel"] == "twilio"
    assert entry["status"] == "completed"
    assert entry["meta"]["duration"] == 95  # the talk, not the time Twilio held the call
    assert entry["meta"]["line"] == CALLER_ID and entry["meta"]["extension"] is None
    assert entry["meta"]["recording_url"].endswith("/Recordings/RE" + "c3" * 16 + ".mp3")
    assert entry["meta"]["call_id"] == IN_SID
    assert await Client.all().count() == 1
    assert await reminders(hub, manager["headers"], "pending") == []


async def test_missed_calls_open_one_reminder_and_an_answered_call_closes_it(
    hub: Any, manager: Any
) -> None:
    resp = await hub.post("/api/clients", json={"name": "Anna", "phones": ["+7 916 123-45-67"]},
                          headers=manager["headers"])
    assert resp.status == 201, await resp.text()
    anna = await resp.json()
    await replay(hub, fixture("inbound_missed.json"))  # From "89161234567"
    assert await Client.all().count() == 1
    [entry] = await calls_of(hub, manager["headers"], anna["id"])
    assert entry["status"] == "missed"
    [reminder] = await reminders(hub, manager["headers"], "pending")
    assert reminder["origin"] == "missed_call" and reminder["client_id"] == anna["id"]
    assert reminder["count"] == 1
    await replay(hub, with_sid(fixture("inbound_missed.json"), "CA" + "5e" * 16))
    [reminder] = await reminders(hub, manager["headers"], "pending")
    assert reminder["count"] == 2
    answered = with_sid(fixture("inbound_answered.json"), "CA" + "6f" * 16,
                        From="8 (916) 123-45-67", Caller="8 (916) 123-45-67",
                        # after the missed calls, which Twilio's first requests date "now"
                        # (a Dial action dates the answer its talk time before it arrives)
                        Timestamp=format_datetime(datetime.now(UTC) + timedelta(minutes=5)),
                        DialCallDuration="0")
    await replay(hub, answered)
    assert await reminders(hub, manager["headers"], "pending") == []
    assert [r["id"] for r in await reminders(hub, manager["headers"], "done")] == [reminder["id"]]
    statuses = [e["status"] for e in await calls_of(hub, manager["headers"], anna["id"])]
    assert sorted(statuses) == ["completed", "missed", "missed"]


async def test_a_rejected_call_is_missed_and_failed_outbound_is_failed(
    hub: Any, manager: Any
) -> None:
    await replay(hub, fixture("inbound_rejected.json"))
    await replay(hub, fixture("outbound_failed.json"))
    rejected = await card(hub, manager["headers"], "+79031112233")
    [entry] = await calls_of(hub, manager["headers"], rejected["id"])
    assert entry["status"] == "busy" and entry["direction"] == "in"
    assert len(await reminders(hub, manager["headers"], "pending")) == 1
    failed = await card(hub, manager["headers"], "+79995550000")
    [entry] = await calls_of(hub, manager["headers"], failed["id"])
    assert entry["status"] == "failed" and entry["direction"] == "out"


async def test_repeated_deliveries_change_nothing(hub: Any) -> None:
    scenario = fixture("inbound_answered.json")
    await replay(hub, scenario)
    before = await stored()
    again = await replay(hub, scenario)
    assert ET.fromstring(again[0]).find("Dial") is not None  # a retried webhook: same TwiML
    assert await stored() == before


def as_caller(scenario: list[dict[str, Any]], sid: str, phone: str) -> list[dict[str, Any]]:
    """The same call from another caller under another CallSid."""
    out = []
    for item in scenario:
        data = {**item["form"], "CallSid": sid}
        data.update({k: phone for k in ("From", "Caller") if k in data})
        query = {**item.get("query", {})}
        if "hub_from" in query:
            query["hub_from"] = phone
        out.append({"form": data, "query": query})
    return out


async def final_state(client: Any, headers: dict[str, str], phone: str) -> dict[str, Any]:
    found = await card(client, headers, phone)
    [entry] = await calls_of(client, headers, found["id"])
    meta = {k: entry["meta"][k] for k in ("duration", "recording_url", "line")}
    pending = [r for r in await reminders(client, headers, "pending")
               if r["client_id"] == found["id"]]
    return {"status": entry["status"], "phones": len(found["phones"]), **meta,
            "reminders": [r["count"] for r in pending]}


@pytest.mark.parametrize("order", ["reversed", "shuffled"])
@pytest.mark.parametrize("name", ["inbound_answered.json", "inbound_missed.json"])
async def test_any_arrival_order_gives_the_same_final_state(
    hub: Any, manager: Any, order: str, name: str
) -> None:
    scenario = as_caller(fixture(name), "CA" + "11" * 16, "+79030000001")
    await replay(hub, scenario)
    expected = await final_state(hub, manager["headers"], "+79030000001")
    mixed = as_caller(fixture(name), "CA" + "22" * 16, "+79030000002")
    mixed = list(reversed(mixed)) if order == "reversed" else \
        random.Random(3).sample(mixed, len(mixed))
    steps = [(i["form"].get("CallStatus"), i["form"].get("DialCallStatus")) for i in scenario]
    assert [(i["form"].get("CallStatus"), i["form"].get("DialCallStatus")) for i in mixed] != steps
    await replay(hub, mixed)
    assert await final_state(hub, manager["headers"], "+79030000002") == expected
    assert await Client.all().count() == 2


@pytest.mark.parametrize("token", ["another-token", ""])
async def test_a_wrong_signature_is_401_and_stores_nothing(hub: Any, token: str) -> None:
    resp = await post(hub, form(), token=token)
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "bad_signature"
    resp = await post(hub, form(AccountSid="AC" + "e" * 32))
    assert resp.status == 401
    unsigned = await hub.post(PATH, data=urlencode(form()), headers={"Content-Type": FORM})
    assert unsigned.status == 401
    assert await stored() == (0, 0, 0)


async def test_garbage_is_400_or_422_and_stores_nothing(hub: Any) -> None:
    assert (await post(hub, form(CallStatus="exploded"))).status == 422
    no_sid = form()
    del no_sid["CallSid"]
    assert (await post(hub, no_sid)).status == 400
    raw = await hub.post(PATH, data=b"\xff\xfe", headers={"Content-Type": FORM,
                                                         "X-Twilio-Signature": "x"})
    assert raw.status in (400, 401)
    wrong_type = await hub.post(PATH, data=b"x", headers={"Content-Type": "text/plain"})
    assert wrong_type.status == 415
    assert await stored() == (0, 0, 0)


async def test_without_its_auth_token_twilio_is_disabled(make_client: Any) -> None:
    client = await make_client(public_base_url=BASE,
                               telephony={"twilio": {"account_sid": ACCOUNT_SID}})
    assert (await post(client, form())).status == 404
    assert await stored() == (0, 0, 0)


async def test_the_live_stream_sees_the_hub_card(hub: Any, manager: Any) -> None:
    scenario = fixture("inbound_answered.json")
    async with hub.ws_connect("/api/stream", headers=manager["headers"]) as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
        await replay(hub, scenario[:1])
        ringing = await ws.receive_json(timeout=5)
        assert ringing["type"] == "call.ringing" and ringing["created"] is True
        assert ringing["client"]["phones"] == ["+79161234567"]
        assert ringing["client"]["id"] == ringing["interaction"]["client_id"]
        text = json.dumps(ringing)
        assert "CallSid" not in text and "AccountSid" not in text and ACCOUNT_SID not in text
        await replay(hub, scenario[1:2])
        assert (await ws.receive_json(timeout=5))["type"] == "call.answered"
        await replay(hub, scenario[2:3])
        ended = await ws.receive_json(timeout=5)
        assert ended["type"] == "call.ended" and ended["interaction"]["status"] == "completed"


# click-to-call against the fake Calls API


async def dialing_hub(make_client: Any, aiohttp_server: Any, admin: Any,
                      api_base: str | None = None) -> tuple[Any, Any, dict[str, str], int]:
    fake = await aiohttp_server(fake_api())
    base = api_base or str(fake.make_url("")).rstrip("/")
    client = await make_client(public_base_url=BASE,
                               telephony={"twilio": {**CONFIG, "api_base": base}})
    resp = await client.post("/api/managers", json={"name": "Pavel", "phone": "+79160000101",
                                                    "extension": "103"},
                             headers=admin["headers"])
    assert resp.status == 201, await resp.text()
    headers = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    resp = await client.post("/api/clients", json={"name": "Client", "phones": ["8 903 555-66-77"]},
                             headers=headers)
    assert resp.status == 201, await resp.text()
    return client, fake, headers, int((await resp.json())["id"])


def dial_action(sid: str, status: str = "completed", talk: int = 55) -> dict[str, str]:
    """The click's <Dial action> request: whether the client answered, and the talk time."""
    extra = {"DialCallDuration": str(talk)} if status == "completed" else {}
    return {"AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "CallSid": sid,
            "CallStatus": "in-progress", "Direction": "outbound-api", "From": CALLER_ID,
            "To": "+79160000101", "DialCallSid": "CA" + "d4" * 16, "DialCallStatus": status,
            **extra}


def status_callbacks(sid: str, client_answers: str = "completed") -> list[dict[str, str]]:
    """A click's first leg (our manager's phone) from start to end, the Dial action before
    its end."""
    out = []
    for seq, (status, extra) in enumerate((("initiated", {}), ("ringing", {}),
                                           ("in-progress", {}),
                                           ("completed", {"CallDuration": "61"}))):
        out.append({"AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "CallSid": sid,
                    "CallStatus": status, "Direction": "outbound-api", "From": CALLER_ID,
                    "To": "+79160000101", "CallbackSource": "call-progress-events",
                    "SequenceNumber": str(seq),
                    "Timestamp": f"Mon, 30 Nov 2026 13:0{seq}:00 +0000", **extra})
    out.insert(-1, dial_action(sid, client_answers))
    return out


async def test_click_to_call_rings_the_manager_then_one_entry_completes(
    make_client: Any, aiohttp_server: Any, admin: Any
) -> None:
    client, fake, headers, client_id = await dialing_hub(make_client, aiohttp_server, admin)
    resp = await client.post(f"/api/clients/{client_id}/call", json={}, headers=headers)
    assert resp.status == 202, await resp.text()
    placed = await resp.json()
    assert placed["kind"] == "call" and placed["direction"] == "out"
    [sent] = fake.app[RECEIVED]
    assert sent["path"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    fields = dict(sent["form"])
    assert fields["To"] == "+79160000101" and fields["From"] == CALLER_ID
    assert fields["StatusCallbackMethod"] == "POST"
    assert [v for k, v in sent["form"] if k == "StatusCallbackEvent"] == [
        "initiated", "ringing", "answered", "completed"]
    dial = ET.fromstring(fields["Twiml"]).find("Dial")
    assert dial is not None and dial.get("callerId") == CALLER_ID
    assert dial.findtext("Number") == "+79035556677"
    assert dial.get("action") == fields["StatusCallback"]  # tells us whether the client answered
    callback, _, query = fields["StatusCallback"].partition("?")
    assert callback == BASE + PATH
    token = dict(parse_qsl(query))["hub_dial"]
    sid = placed["meta"]["provider_call_id"]
    assert sid.startswith("CA") and len(sid) == 34
    for data in status_callbacks(sid):
        resp = await post(client, data, {"hub_dial": token})
        assert resp.status == 200 and await resp.text() == \
            '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    [entry] = await calls_of(client, headers, client_id)
    assert entry["id"] == placed["id"] and entry["status"] == "completed"
    assert entry["meta"]["duration"] == 55 and entry["meta"]["extension"] == "103"
    assert entry["meta"]["call_id"] == sid
    assert await Client.all().count() == 1  # no card for the manager's own phone
    lookup = await client.get("/api/lookup", params={"phone": "+79160000101"}, headers=headers)
    assert lookup.status == 404


async def test_callbacks_carrying_the_token_claim_an_unbound_click(
    make_client: Any, aiohttp_server: Any, admin: Any
) -> None:
    client, fake, headers, client_id = await dialing_hub(make_client, aiohttp_server, admin)
    fake.app[OMIT_SID].append(True)  # the API's answer named no sid: the entry waits unbound
    resp = await client.post(f"/api/clients/{client_id}/call", json={}, headers=headers)
    placed = await resp.json()
    assert resp.status == 202 and placed["meta"]["provider_call_id"] is None
    token = dict(parse_qsl(dict(fake.app[RECEIVED][0]["form"])["StatusCallback"]
                           .partition("?")[2]))["hub_dial"]
    for data in reversed(status_callbacks("CA" + "ab" * 16)):
        assert (await post(client, data, {"hub_dial": token})).status == 200
    [entry] = await calls_of(client, headers, client_id)
    assert entry["id"] == placed["id"] and entry["status"] == "completed"
    assert entry["meta"]["call_id"] == "CA" + "ab" * 16
    assert await Client.all().count() == 1


async def test_provider_refusal_is_502_and_the_entry_fails(
    make_client: Any, aiohttp_server: Any, admin: Any
) -> None:
    client, fake, headers, client_id = await dialing_hub(make_client, aiohttp_server, admin)
    fake.app[FAIL].append((400, 21211, "The 'To' number +79160000101 is not a valid phone number."))
    resp = await client.post(f"/api/clients/{client_id}/call", json={}, headers=headers)
    assert resp.status == 502
    error = (await resp.json())["error"]
    assert error["code"] == "delivery_failed" and "not a valid phone number" in error["message"]
    [entry] = await calls_of(client, headers, client_id)
    assert entry["status"] == "failed" and "not a valid phone number" in entry["text"]


async def test_wrong_credentials_are_refused_by_the_fake(
    make_client: Any, aiohttp_server: Any, admin: Any
) -> None:
    fake = await aiohttp_server(fake_api())
    base = str(fake.make_url("")).rstrip("/")
    client = await make_client(public_base_url=BASE, telephony={"twilio": {
        **CONFIG, "auth_token": "wrong", "api_base": base}})
    resp = await client.post("/api/managers", json={"name": "P", "phone": "+79160000101"},
                             headers=admin["headers"])
    headers = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    made = await client.post("/api/clients", json={"name": "C", "phones": ["+79035556677"]},
                             headers=headers)
    resp = await client.post(f"/api/clients/{(await made.json())['id']}/call", json={},
                             headers=headers)
    assert resp.status == 502 and "Authenticate" in (await resp.json())["error"]["message"]


async def test_unreachable_api_is_502(make_client: Any, aiohttp_server: Any, admin: Any) -> None:
    client, _, headers, client_id = await dialing_hub(make_client, aiohttp_server, admin,
                                                      api_base="http://127.0.0.1:1")
    resp = await client.post(f"/api/clients/{client_id}/call", json={}, headers=headers)
    assert resp.status == 502
    [entry] = await calls_of(client, headers, client_id)
    assert entry["status"] == "failed"


async def test_dial_errors_keep_twilios_code(aiohttp_server: Any) -> None:
    import aiohttp

    from channels.base import Agent, DialRequest
    from hub.errors import DeliveryError

    fake = await aiohttp_server(fake_api())
    adapter = TwilioAdapter(TwilioConfig.model_validate(
        {**CONFIG, "api_base": str(fake.make_url("")).rstrip("/")}), public_base_url=BASE)
    agent = Agent(1, "P", "103", "+79160000101")
    dial = DialRequest(agent, "+79035556677", "tok", BASE + PATH)
    async with aiohttp.ClientSession() as http:
        assert (await adapter.dial(http, dial) or "").startswith("CA")
        for status, code, retryable in ((400, 21211, False), (429, 20429, True),
                                        (503, 20500, True)):
            fake.app[FAIL][:] = [(status, code, "no")]
            with pytest.raises(DeliveryError) as info:
                await adapter.dial(http, dial)
            assert info.value.retryable is retryable and info.value.provider_code == str(code)


def test_cannot_dial_says_what_is_missing() -> None:
    from channels.base import Agent

    with_phone = Agent(1, "P", "103", "+79160000101")
    assert ADAPTER.cannot_dial(with_phone) is None
    assert "phone" in (ADAPTER.cannot_dial(Agent(1, "P", "103", None)) or "")
    no_caller = TwilioAdapter(TwilioConfig.model_validate(
        {k: v for k, v in CONFIG.items() if k != "caller_id"}), public_base_url=BASE)
    assert "caller_id" in (no_caller.cannot_dial(with_phone) or "")
    no_base = TwilioAdapter(TwilioConfig.model_validate(CONFIG))
    assert "public_base_url" in (no_base.cannot_dial(with_phone) or "")


async def test_a_manager_without_a_phone_cannot_click_to_call(
    make_client: Any, manager: Any
) -> None:
    client = await make_client(public_base_url=BASE, telephony={"twilio": dict(CONFIG)})
    made = await client.post("/api/clients", json={"name": "C", "phones": ["+79035556677"]},
                             headers=manager["headers"])
    resp = await client.post(f"/api/clients/{(await made.json())['id']}/call", json={},
                             headers=manager["headers"])
    assert resp.status == 422 and "phone" in (await resp.json())["error"]["message"]


def test_every_fixture_item_is_a_known_shape() -> None:
    assert all(set(item) <= {"form", "query"} for item in items())


@pytest.mark.parametrize(("client_answers", "status"), [("no-answer", "missed"),
                                                       ("busy", "busy")])
async def test_a_click_the_client_does_not_answer_is_not_a_connected_call(
    make_client: Any, aiohttp_server: Any, admin: Any, client_answers: str, status: str
) -> None:
    client, fake, headers, client_id = await dialing_hub(make_client, aiohttp_server, admin)
    # the client had called and nobody answered: a call-back reminder is open
    await replay(client, with_sid(fixture("inbound_missed.json"), "CA" + "77" * 16,
                                  From="+79035556677", Caller="+79035556677"))
    resp = await client.post(f"/api/clients/{client_id}/call", json={}, headers=headers)
    sid = (await resp.json())["meta"]["provider_call_id"]
    token = dict(parse_qsl(dict(fake.app[RECEIVED][0]["form"])["StatusCallback"]
                           .partition("?")[2]))["hub_dial"]
    for data in status_callbacks(sid, client_answers):  # our manager answered, the client not
        assert (await post(client, data, {"hub_dial": token})).status == 200
    entries = await calls_of(client, headers, client_id)
    assert [e["status"] for e in entries if e["direction"] == "out"] == [status]
    assert await Reminder.filter(client_id=client_id, status="pending").count() == 1


async def test_a_known_callers_call_rings_their_manager_and_forward_to_together(
    hub: Any, admin: Any
) -> None:
    resp = await hub.post("/api/managers", json={"name": "Pavel", "phone": "8 916 000-02-02"},
                          headers=admin["headers"])
    pavel = (await resp.json())["id"]
    resp = await hub.post("/api/clients", headers=admin["headers"], json={
        "name": "Anna", "phones": ["+79161234567"], "manager_id": pavel})
    assert resp.status == 201, await resp.text()
    first = fixture("inbound_answered.json")[0]["form"]
    answer = await post(hub, {**first, "From": "+7 916 123-45-67"})
    dial = ET.fromstring(await answer.text()).find("Dial")
    assert dial is not None
    assert [n.text for n in dial.findall("Number")] == ["+79160000202", FORWARD_TO]
    # an unknown caller has no manager yet: forward_to alone
    stranger = await post(hub, {**first, "CallSid": "CA" + "99" * 16, "From": "+79990001122"})
    dial = ET.fromstring(await stranger.text()).find("Dial")
    assert dial is not None and [n.text for n in dial.findall("Number")] == [FORWARD_TO]
