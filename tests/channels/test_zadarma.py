"""Zadarma: the reference's test vectors, the event mapping, and whole calls through the app."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pydantic
import pytest

from channels.base import Agent, DialRequest
from channels.zadarma import ZadarmaAdapter, ZadarmaConfig, api_signature, webhook_signature
from hub.errors import DeliveryError, PayloadError, SignatureError, ValidationError
from hub.events import CallOutcome, CallState, Direction
from hub.models import Call, Client, Interaction, ProcessedEvent, Reminder
from hub.pipeline import IngestResult
from tests.providers import zadarma as zd

PATH = zd.PATH


def adapter(**settings: Any) -> ZadarmaAdapter:
    return ZadarmaAdapter(ZadarmaConfig.model_validate({**zd.CONFIG, **settings}))


ADAPTER = adapter()


def parse_one(fields: dict[str, str], **settings: Any) -> Any:
    chosen = adapter(**settings) if settings else ADAPTER
    request = zd.request(fields, zd.signature(fields))
    chosen.verify(request)
    [event] = chosen.parse(request)
    return event


def item(scenario: str, event: str, nth: int = 0) -> dict[str, str]:
    return [f for f in zd.scenario(scenario) if f["event"] == event][nth]


# --- the reference's test vectors -------------------------------------------------------------


def test_the_reference_webhook_vector() -> None:
    text = "79001234567" + "74951234567" + "2024-05-01 10:00:00"
    assert webhook_signature("test-secret", text) == (
        "MTBhMWM5NDg3OGM1YTQ3OGRmN2I5NTY4YjEzNGQ2NzE3NjIzMjE4OA=="
    )
    fields = {"event": "NOTIFY_START", "call_start": "2024-05-01 10:00:00", "pbx_call_id": "x",
              "caller_id": "79001234567", "called_did": "74951234567"}
    vector = adapter(secret="test-secret")
    vector.verify(zd.request(fields, "MTBhMWM5NDg3OGM1YTQ3OGRmN2I5NTY4YjEzNGQ2NzE3NjIzMjE4OA=="))
    vector.verify(zd.request(fields, "EKHJSHjFpHjfe5VosTTWcXYjIYg="))  # the raw-bytes variant
    with pytest.raises(SignatureError):
        vector.verify(zd.request({**fields, "called_did": "74951234568"},
                                 "MTBhMWM5NDg3OGM1YTQ3OGRmN2I5NTY4YjEzNGQ2NzE3NjIzMjE4OA=="))


def test_the_reference_api_vector() -> None:
    params = {"from": "100", "to": "79001234567", "format": "json"}
    query, signature = api_signature("test-secret", "/v1/request/callback/", params)
    assert query == "format=json&from=100&to=79001234567"
    assert signature == "YzE4ZWI3Y2IxMzkwZTgwMTk3NGQzOGI1NWVlZDUyOTFkZWIzMzM5Mw=="
    assert zd.api_signature("test-secret", "/v1/request/callback/", list(params.items())) == (
        signature
    )


def test_rfc1738_query_encoding() -> None:
    query, _ = api_signature("s", "/v1/x/", {"b": "a b", "a": "+7&1"})
    assert query == "a=%2B7%261&b=a+b"


# --- event mapping ----------------------------------------------------------------------------

IN, OUT = Direction.INBOUND, Direction.OUTBOUND
MAPPING = [
    # scenario, event, nth → state, direction, event_key, extension, remote, line
    ("inbound_answered", "NOTIFY_START", 0,
     CallState.RINGING, IN, "NOTIFY_START", None, "79001234567", "74951234567"),
    ("inbound_answered", "NOTIFY_INTERNAL", 1,
     CallState.RINGING, IN, "NOTIFY_INTERNAL:101", "101", "79001234567", "74951234567"),
    ("inbound_answered", "NOTIFY_ANSWER", 0,
     CallState.ANSWERED, IN, None, "101", "79001234567", None),
    ("inbound_answered", "NOTIFY_END", 0,
     CallState.ENDED, IN, None, "101", "79001234567", "74951234567"),
    ("outbound_answered", "NOTIFY_OUT_START", 0,
     CallState.RINGING, OUT, None, "101", "79161234567", None),
    ("outbound_answered", "NOTIFY_OUT_END", 0,
     CallState.ENDED, OUT, None, "101", "79161234567", "74951234567"),
]


@pytest.mark.parametrize(("scenario", "name", "nth", "state", "direction", "key", "extension",
                          "remote", "line"), MAPPING, ids=[f"{m[0]}-{m[1]}" for m in MAPPING])
def test_event_mapping(scenario: str, name: str, nth: int, state: CallState,
                       direction: Direction, key: str | None, extension: str | None,
                       remote: str, line: str | None) -> None:
    fields = item(scenario, name, nth)
    event = parse_one(fields)
    assert event.source == "zadarma" and event.call_id == fields["pbx_call_id"]
    assert (event.state, event.direction, event.event_key) == (state, direction, key)
    assert (event.extension, event.remote.phone, event.line) == (extension, remote, line)
    assert event.recording_url is None and event.correlation is None


def test_times_are_the_pbx_local_time_in_utc() -> None:
    start = item("inbound_answered", "NOTIFY_START")
    assert parse_one(start).occurred_at == datetime(2026, 11, 22, 13, 0, tzinfo=UTC)
    moscow = parse_one(start, timezone="Europe/Moscow").occurred_at
    assert moscow == datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    # no hang-up time is sent: the end is the start plus the talk time
    end = parse_one(item("inbound_answered", "NOTIFY_END"), timezone="Europe/Moscow")
    assert end.occurred_at == datetime(2026, 11, 22, 10, 4, tzinfo=UTC)
    assert end.duration_s == 240 and end.outcome == CallOutcome.ANSWERED
    assert end.recording_url is None  # the file is not ready before NOTIFY_RECORD


def test_recording_is_a_hub_relative_reference() -> None:
    event = parse_one(item("inbound_answered", "NOTIFY_RECORD"))
    assert event.state == CallState.RECORDING and event.call_id == "in_a1b2c3d4e5"
    assert event.recording_url == "/api/recordings/zadarma/1795338000.4711"
    assert event.occurred_at.tzinfo is not None and event.remote.phone is None


@pytest.mark.parametrize(("disposition", "outcome"), [
    ("answered", CallOutcome.ANSWERED), ("busy", CallOutcome.BUSY),
    ("cancel", CallOutcome.MISSED), ("no answer", CallOutcome.MISSED),
    ("failed", CallOutcome.FAILED), ("no money", CallOutcome.FAILED),
    ("unallocated number", CallOutcome.FAILED), ("no limit", CallOutcome.FAILED),
    ("no day limit", CallOutcome.FAILED), ("line limit", CallOutcome.FAILED),
    ("no money, no limit", CallOutcome.FAILED), ("", None),
])
@pytest.mark.parametrize("scenario", ["inbound_answered", "outbound_answered"])
def test_dispositions(scenario: str, disposition: str, outcome: CallOutcome | None) -> None:
    name = "NOTIFY_END" if scenario.startswith("in") else "NOTIFY_OUT_END"
    event = parse_one({**item(scenario, name), "disposition": disposition})
    assert event.state == CallState.ENDED and event.outcome == outcome


@pytest.mark.parametrize("caller", ["", "0", "anonymous", "Anonymous", "unknown", " hidden "])
def test_hidden_callers_have_no_phone(caller: str) -> None:
    for name in ("NOTIFY_START", "NOTIFY_END"):
        event = parse_one({**item("inbound_answered", name), "caller_id": caller})
        assert event.remote.phone is None


def test_multipart_bodies_verify_and_parse() -> None:
    fields = item("inbound_answered", "NOTIFY_INTERNAL", 1)
    parts = [f'--b0undary\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
             for k, v in fields.items()]
    body = ("".join(parts) + "--b0undary--\r\n").encode()
    content_type = "multipart/form-data; boundary=b0undary"
    request = zd.inbound(body, {"Content-Type": content_type, "Signature": zd.signature(fields)},
                         PATH)
    ADAPTER.verify(request)
    [event] = ADAPTER.parse(request)
    assert event.event_key == "NOTIFY_INTERNAL:101"


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"\xff\xfe", b"a=1&&b", b"%%%=x&y"])
def test_malformed_forms_are_400(body: bytes) -> None:
    with pytest.raises(PayloadError):
        ADAPTER.verify(zd.request({}, "c2ln", body=body))


@pytest.mark.parametrize(("change", "error"), [
    ({"event": None}, PayloadError),
    ({"pbx_call_id": None}, PayloadError),
    ({"call_start": None}, PayloadError),
    ({"event": "SMS"}, ValidationError),
    ({"pbx_call_id": " "}, ValidationError),
    ({"pbx_call_id": "x" * 300}, ValidationError),
    ({"call_start": "yesterday"}, ValidationError),
    ({"call_start": "2026-11-22T13:00:00+03:00"}, ValidationError),
    ({"duration": "-5"}, ValidationError),
    ({"duration": "１２"}, ValidationError),
    ({"duration": "99999999"}, ValidationError),
    ({"internal": "1" * 40}, ValidationError),
])
def test_invalid_notifications(change: dict[str, str | None], error: type[Exception]) -> None:
    fields = item("inbound_answered", "NOTIFY_END")
    for key, value in change.items():
        if value is None:
            del fields[key]
        else:
            fields[key] = value
    with pytest.raises(error):
        ADAPTER.parse(zd.request(fields))


def test_notify_internal_names_its_extension() -> None:
    fields = item("inbound_answered", "NOTIFY_INTERNAL")
    with pytest.raises(ValidationError):
        ADAPTER.parse(zd.request({**fields, "internal": " "}))
    del fields["internal"]
    with pytest.raises(PayloadError):
        ADAPTER.parse(zd.request(fields))


@pytest.mark.parametrize("rec", ["", "../../etc/passwd", "a b", "x" * 200])
def test_bad_recording_ids_are_422(rec: str) -> None:
    with pytest.raises(ValidationError):
        ADAPTER.parse(zd.request({"event": "NOTIFY_RECORD", "pbx_call_id": "p",
                                  "call_id_with_rec": rec}))


def test_signature_is_checked_before_the_body() -> None:
    with pytest.raises(SignatureError):
        ADAPTER.verify(zd.request({}, None, body=b"\xff"))
    fields = item("inbound_answered", "NOTIFY_START")
    with pytest.raises(SignatureError):
        ADAPTER.verify(zd.request(fields, zd.signature(fields, "wrong")))


# --- the URL check and the replies ------------------------------------------------------------


def check(query: dict[str, str]) -> Any:
    return ADAPTER.check(zd.inbound(b"", {}, PATH, query=query, method="GET"))


def test_url_check_echoes_a_plain_token() -> None:
    reply = check({"zd_echo": "Ab-9_x" * 20})
    assert (reply.status, reply.body, reply.content_type) == (
        200, b"Ab-9_x" * 20, "text/plain")


@pytest.mark.parametrize("query", [{}, {"zd_echo": ""}, {"zd_echo": "<script>"},
                                   {"zd_echo": "a" * 129}, {"zd_echo": "tok\n"},
                                   {"zd_echo": "to ken"}, {"other": "x"}])
def test_url_check_refuses_anything_else(query: dict[str, str]) -> None:
    with pytest.raises(PayloadError):
        check(query)


def results(name: str | None, manager_ext: str | None = "101", event_name: str = "NOTIFY_START"
            ) -> list[IngestResult]:
    event = parse_one(item("inbound_answered", event_name))
    client = {"id": 1, "name": name, "status": "new"} if name is not None else None
    manager = {"id": 7, "name": "Olga", "extension": manager_ext}
    return [IngestResult(event, client_id=1, client=client, manager=manager)]


def test_start_reply_names_the_caller_and_may_route() -> None:
    start = item("inbound_answered", "NOTIFY_START")
    request = zd.request(start, zd.signature(start))
    reply = ADAPTER.reply(request, results("Иван Петров"))
    assert reply.content_type == "application/json"
    assert reply.body.decode() == '{"caller_name": "Иван Петров"}'
    routed = adapter(route_to_manager=True).reply(request, results("Ivan"))
    assert routed.body == b'{"caller_name": "Ivan", "redirect": "101"}'
    no_ext = adapter(route_to_manager=True).reply(request, results("Ivan", None))
    assert no_ext.body == b'{"caller_name": "Ivan"}'
    for empty in (results(""), results(None), []):
        assert ADAPTER.reply(request, empty).body == b""
    end = item("inbound_answered", "NOTIFY_END")
    for name in ("NOTIFY_INTERNAL", "NOTIFY_END"):
        assert ADAPTER.reply(zd.request(end), results("Ivan", event_name=name)).body == b""


def test_config() -> None:
    config = ZadarmaConfig.model_validate({**zd.CONFIG, "api_base": "http://127.0.0.1:9/",
                                           "extensions": "101, 102", "route_to_manager": "true",
                                           "timezone": "Europe/Moscow"})
    assert config.api_base == "http://127.0.0.1:9" and config.extensions == ("101", "102")
    assert config.route_to_manager is True
    assert ZadarmaConfig().api_base == "https://api.zadarma.com"
    assert ZadarmaConfig().timezone == "UTC" and ZadarmaConfig().route_to_manager is False
    for bad in ({"timezone": "Mars/Olympus"}, {"timezone": "../etc"}, {"api_base": "ftp://x"},
                {"api_base": "api.zadarma.com"}, {"webhook": "x"}):
        with pytest.raises(pydantic.ValidationError):
            ZadarmaConfig.model_validate({**zd.CONFIG, **bad})
    assert not ZadarmaAdapter.enabled(ZadarmaConfig.model_validate({"key": "k"}))


def test_settings_from_the_environment() -> None:
    import os

    from channels import build_registry
    from hub.settings import load_settings

    env = {"HUB_TELEPHONY_ZADARMA_KEY": "k", "HUB_TELEPHONY_ZADARMA_SECRET": "s",
           "HUB_TELEPHONY_ZADARMA_API_BASE": "https://api-sandbox.zadarma.com/",
           "HUB_TELEPHONY_ZADARMA_EXTENSIONS": "101,102",
           "HUB_TELEPHONY_ZADARMA_TIMEZONE": "Europe/Moscow",
           "HUB_TELEPHONY_ZADARMA_ROUTE_TO_MANAGER": "true"}
    registry = build_registry(load_settings(os.devnull, environ=env))
    zadarma = registry.get("zadarma")
    assert isinstance(zadarma, ZadarmaAdapter)
    config = zadarma.settings
    assert (config.api_base, config.extensions, config.timezone, config.route_to_manager) == (
        "https://api-sandbox.zadarma.com", ("101", "102"), "Europe/Moscow", True)
    assert zadarma.serves("101") and not zadarma.serves("103")


# --- click-to-call against the fake API -------------------------------------------------------

AGENT = Agent(id=1, name="Olga", extension="101", phone="+79001112233")


def test_cannot_dial_without_extension_or_phone() -> None:
    assert ADAPTER.cannot_dial(AGENT) is None
    assert ADAPTER.cannot_dial(Agent(2, "P", None, "+79001112233")) is None
    assert "extension" in (ADAPTER.cannot_dial(Agent(3, "N", None, None)) or "")


async def dial_with(server: Any, agent: Agent = AGENT, **settings: Any) -> str | None:
    config = {"api_base": str(server.make_url("")), **settings}
    async with aiohttp.ClientSession() as http:
        return await adapter(**config).dial(
            http, DialRequest(agent, "+79161234567", "tok"))


async def test_dial_signs_the_callback_request(aiohttp_server: Any) -> None:
    server = await aiohttp_server(zd.fake_api())
    assert await dial_with(server) is None
    [seen] = server.app[zd.RECEIVED]
    assert seen["authorized"] and seen["authorization"].startswith(zd.KEY + ":")
    assert seen["params"] == {"from": "101", "to": "79161234567", "sip": "101", "format": "json"}
    assert await dial_with(server, Agent(2, "P", None, "+7 900 111-22-33")) is None
    assert server.app[zd.RECEIVED][1]["params"] == {
        "from": "79001112233", "to": "79161234567", "format": "json"}


@pytest.mark.parametrize(("status", "answer", "retryable"), [
    (200, {"status": "error", "message": "Wrong parameter 'to'"}, False),
    (400, {"status": "error", "message": "bad request"}, False),
    (200, {"unexpected": True}, False),
    (429, {"status": "error", "message": "Too many requests"}, True),
    (503, {"status": "error", "message": "down"}, True),
])
async def test_dial_errors(aiohttp_server: Any, status: int, answer: dict[str, Any],
                           retryable: bool) -> None:
    server = await aiohttp_server(zd.fake_api(status=status, answer=answer))
    with pytest.raises(DeliveryError) as info:
        await dial_with(server)
    assert info.value.retryable is retryable
    if "message" in answer:
        assert answer["message"] in info.value.message


async def test_dial_with_a_wrong_key_is_refused_by_the_fake(aiohttp_server: Any) -> None:
    server = await aiohttp_server(zd.fake_api())
    with pytest.raises(DeliveryError) as info:
        await dial_with(server, secret="not-the-secret")
    assert not info.value.retryable and "Not authorized" in info.value.message
    assert server.app[zd.RECEIVED][0]["authorized"] is False


# --- end to end through the app ---------------------------------------------------------------


async def hub(make_client: Any, **settings: Any) -> Any:
    return await make_client(telephony={"zadarma": {**zd.CONFIG, **settings}})


async def post(client: Any, fields: dict[str, str], secret: str = zd.SECRET) -> Any:
    resp = await client.post(PATH, data=zd.encode(fields), headers=zd.headers(fields, secret))
    assert resp.status == 200, await resp.text()
    return resp


async def replay(client: Any, scenario: str | list[dict[str, str]]) -> list[Any]:
    items = zd.scenario(scenario) if isinstance(scenario, str) else scenario
    return [await post(client, fields) for fields in items]


async def stored() -> tuple[int, int, int]:
    return (await Client.all().count(), await Interaction.all().count(),
            await ProcessedEvent.all().count())


async def calls_on(client: Any, who: dict[str, Any], client_id: int) -> list[dict[str, Any]]:
    resp = await client.get(f"/api/clients/{client_id}/timeline", headers=who["headers"])
    assert resp.status == 200
    return [i for i in (await resp.json())["items"] if i["kind"] == "call"]


async def test_unknown_caller_gets_a_card_and_one_completed_entry(
    make_client: Any, manager: Any
) -> None:
    client = await hub(make_client, timezone="Europe/Moscow")
    await replay(client, "inbound_answered")
    card = await Client.get()
    assert card.name == ""
    resp = await client.get(f"/api/clients/{card.id}", headers=manager["headers"])
    assert (await resp.json())["phones"] == ["+79001234567"]
    [entry] = await calls_on(client, manager, card.id)
    assert (entry["direction"], entry["status"], entry["channel"]) == ("in", "completed", "zadarma")
    assert entry["occurred_at"].startswith("2026-11-22T10:00:00")
    meta = entry["meta"]
    assert (meta["duration"], meta["extension"], meta["line"]) == (240, "101", "74951234567")
    assert meta["recording_url"] == "/api/recordings/zadarma/1795338000.4711"
    assert await Reminder.all().count() == 0


async def test_known_caller_in_another_form_is_found_and_named(
    make_client: Any, manager: Any
) -> None:
    client = await hub(make_client, route_to_manager=True)
    resp = await client.post("/api/clients", headers=manager["headers"], json={
        "name": "Иван Петров", "phones": ["8 (900) 123-45-67"],
        "manager_id": manager["manager"].id})
    assert resp.status == 201, await resp.text()
    card_id = (await resp.json())["id"]
    answers = await replay(client, "inbound_answered")
    assert await answers[0].json() == {"caller_name": "Иван Петров", "redirect": "101"}
    assert [await a.read() for a in answers[1:]] == [b""] * (len(answers) - 1)
    assert await Client.all().count() == 1
    [entry] = await calls_on(client, manager, card_id)
    assert entry["status"] == "completed"


async def test_missed_calls_open_then_bump_then_close_one_reminder(
    make_client: Any, manager: Any
) -> None:
    client = await hub(make_client)
    missed = zd.scenario("inbound_missed")
    await replay(client, missed)
    card = await Client.get()
    [entry] = await calls_on(client, manager, card.id)
    assert entry["status"] == "missed" and entry["meta"]["duration"] == 0

    async def reminders() -> list[dict[str, Any]]:
        resp = await client.get("/api/reminders?status=pending", headers=manager["headers"])
        return list((await resp.json())["items"])

    [reminder] = await reminders()
    assert (reminder["client_id"], reminder["origin"], reminder["count"]) == (
        card.id, "missed_call", 1)
    again = [{**f, "pbx_call_id": "in_second", "call_start": "2026-11-22 15:00:00"}
             for f in missed]
    await replay(client, again)
    [reminder] = await reminders()
    assert reminder["count"] == 2
    answered = [{**f, "pbx_call_id": "in_third", "caller_id": "+79031112233",
                 "call_start": "2026-11-22 16:00:00"} for f in zd.scenario("inbound_answered")]
    await replay(client, answered)
    assert await reminders() == []
    assert [e["status"] for e in await calls_on(client, manager, card.id)] == [
        "completed", "missed", "missed"]


@pytest.mark.parametrize(("scenario", "status", "direction"), [
    ("inbound_busy", "busy", "in"), ("outbound_answered", "completed", "out"),
    ("outbound_failed", "failed", "out"),
])
async def test_endings(make_client: Any, manager: Any, scenario: str, status: str,
                       direction: str) -> None:
    client = await hub(make_client)
    await replay(client, scenario)
    card = await Client.get()
    [entry] = await calls_on(client, manager, card.id)
    assert (entry["status"], entry["direction"]) == (status, direction)
    if scenario == "outbound_answered":
        assert entry["meta"]["duration"] == 95
        assert entry["meta"]["recording_url"] == "/api/recordings/zadarma/1795350600.815"


async def test_anonymous_call_is_logged_without_a_card(make_client: Any) -> None:
    client = await hub(make_client)
    answers = await replay(client, "anonymous")
    assert await answers[0].read() == b""
    assert await Client.all().count() == 0
    call = await Call.get()
    assert call.client_id is None and call.state == "ended"


async def test_repeated_deliveries_change_nothing(make_client: Any, manager: Any) -> None:
    client = await hub(make_client)
    await replay(client, "inbound_answered")
    before = await stored()
    entry = await Interaction.get()
    await replay(client, "inbound_answered")
    assert await stored() == before
    again = await Interaction.get()
    assert (again.status, again.meta, again.updated_at) == (entry.status, entry.meta,
                                                            entry.updated_at)


async def final_state() -> list[tuple[Any, ...]]:
    rows = await Call.all().order_by("call_id")
    return [(c.call_id, c.state, c.outcome, c.was_answered, c.duration_s, c.extension, c.line,
             c.recording_url, c.started_at, c.client_id is not None) for c in rows]


@pytest.mark.parametrize("order", ["reversed", "shuffled-1", "shuffled-2", "shuffled-3"])
async def test_any_order_gives_the_same_final_state(
    make_client: Any, manager: Any, order: str
) -> None:
    client = await hub(make_client)
    # NOTIFY_RECORD carries neither number nor direction: it must follow an event that does
    # (see the report: a hub change would lift this)
    events = [f for name in ("inbound_answered", "inbound_missed", "outbound_answered")
              for f in zd.scenario(name) if f["event"] != "NOTIFY_RECORD"]
    await replay(client, events)
    expected = await final_state()
    reminders = [(r.client_id, r.status, r.count) for r in await Reminder.all()]
    for table in (Reminder, Call, Interaction, ProcessedEvent, Client):
        await table.all().delete()
    if order == "reversed":
        events.reverse()
    else:
        random.Random(order).shuffle(events)
    await replay(client, events)
    # the cards were made anew: compare everything but their ids
    assert await final_state() == expected
    assert [(r.status, r.count) for r in await Reminder.all()] == [
        (status, count) for _, status, count in reminders]


async def test_recording_after_the_start_completes_the_entry(
    make_client: Any, manager: Any
) -> None:
    client = await hub(make_client)
    answered = zd.scenario("inbound_answered")
    await replay(client, [answered[0], answered[-1], *answered[1:-1]])
    [call] = await Call.all()
    assert call.recording_url == "/api/recordings/zadarma/1795338000.4711"
    assert call.state == "ended" and call.client_id is not None


async def test_a_recording_notice_first_still_lands_on_the_card(
    make_client: Any, manager: Any
) -> None:
    client = await hub(make_client)
    await replay(client, list(reversed(zd.scenario("outbound_answered"))))
    [call] = await Call.all()
    assert call.client_id is not None and call.direction == "outbound"


@pytest.mark.parametrize("variant", ["wrong-secret", "missing", "tampered"])
async def test_bad_signatures_are_401_and_store_nothing(make_client: Any, variant: str) -> None:
    client = await hub(make_client)
    fields = item("inbound_answered", "NOTIFY_START")
    headers = zd.headers(fields, "wrong" if variant == "wrong-secret" else zd.SECRET)
    if variant == "missing":
        del headers["Signature"]
    body = zd.encode({**fields, "caller_id": "79990000000"} if variant == "tampered" else fields)
    resp = await client.post(PATH, data=body, headers=headers)
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "bad_signature"
    assert await stored() == (0, 0, 0)


async def test_bad_bodies_over_http(make_client: Any) -> None:
    client = await hub(make_client)
    fields = item("inbound_answered", "NOTIFY_START")
    resp = await client.post(PATH, data=b'{"event": "NOTIFY_START"}',
                             headers={**zd.headers(fields), "Content-Type": "application/json"})
    assert resp.status == 415
    bad = {**fields, "call_start": "soon"}
    resp = await client.post(PATH, data=zd.encode(bad), headers=zd.headers(bad))
    assert resp.status == 422
    resp = await client.post(PATH, data=b"\xff", headers=zd.headers(fields))
    assert resp.status == 400
    assert await stored() == (0, 0, 0)


async def test_url_check_over_http(make_client: Any) -> None:
    client = await hub(make_client)
    resp = await client.get(PATH, params={"zd_echo": "a1B2-c_3"})
    assert resp.status == 200 and await resp.text() == "a1B2-c_3"
    assert resp.content_type == "text/plain"
    resp = await client.get(PATH, params={"zd_echo": "<b>hi</b>"})
    assert resp.status == 400 and "<b>" not in await resp.text()
    assert (await client.get(PATH)).status == 400


async def test_disabled_without_its_secret(make_client: Any) -> None:
    client = await make_client(telephony={"zadarma": {"key": zd.KEY}})
    fields = item("inbound_answered", "NOTIFY_START")
    resp = await client.post(PATH, data=zd.encode(fields), headers=zd.headers(fields))
    assert resp.status == 404
    assert (await client.get(PATH, params={"zd_echo": "abc"})).status == 404
    assert await stored() == (0, 0, 0)


async def test_screen_pop_carries_the_hub_card(make_client: Any, manager: Any) -> None:
    client = await hub(make_client)
    ws = await client.ws_connect("/api/stream", headers=manager["headers"])
    assert (await ws.receive_json(timeout=5))["type"] == "hello"
    answered = zd.scenario("inbound_answered")
    await post(client, answered[0])
    ringing = await ws.receive_json(timeout=5)
    assert ringing["type"] == "call.ringing" and ringing["client"]["phones"] == ["+79001234567"]
    assert {"id", "name", "status", "manager_id"} <= set(ringing["client"])
    assert "caller_id" not in ringing["interaction"]["meta"]
    for fields in answered[1:]:
        await post(client, fields)
    types = []
    while "call.ended" not in types:
        types.append((await ws.receive_json(timeout=5))["type"])
    assert "call.answered" in types
    await ws.close()


def now_local() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


async def new_client(client: Any, who: dict[str, Any], phone: str = "+7 916 123-45-67") -> int:
    resp = await client.post("/api/clients", headers=who["headers"],
                             json={"name": "Anna", "phones": [phone]})
    assert resp.status == 201, await resp.text()
    return int((await resp.json())["id"])


async def test_click_to_call_is_completed_by_its_webhooks(
    make_client: Any, manager: Any, aiohttp_server: Any
) -> None:
    server = await aiohttp_server(zd.fake_api())
    client = await hub(make_client, api_base=str(server.make_url("")))
    card_id = await new_client(client, manager)
    resp = await client.post(f"/api/clients/{card_id}/call", json={}, headers=manager["headers"])
    assert resp.status == 202, await resp.text()
    placed = await resp.json()
    assert placed["kind"] == "call" and placed["direction"] == "out"
    assert placed["status"] == "ringing" and placed["meta"]["provider_call_id"] is None
    [seen] = server.app[zd.RECEIVED]
    assert seen["authorized"]
    assert seen["params"] == {"from": "101", "sip": "101", "to": "79161234567", "format": "json"}
    start = {"event": "NOTIFY_OUT_START", "call_start": now_local(), "pbx_call_id": "out_click1",
             "internal": "101", "destination": "8 (916) 123-45-67"}
    end = {**start, "event": "NOTIFY_OUT_END", "caller_id": "74951234567", "duration": "95",
           "disposition": "answered", "status_code": "16", "is_recorded": "0",
           "call_id_with_rec": ""}
    await replay(client, [start, end])
    [entry] = await calls_on(client, manager, card_id)
    assert entry["id"] == placed["id"]
    assert entry["status"] == "completed" and entry["meta"]["duration"] == 95
    assert entry["meta"]["call_id"] == "out_click1"
    assert await Call.all().count() == 1


async def test_click_to_call_refused_by_zadarma(
    make_client: Any, manager: Any, aiohttp_server: Any
) -> None:
    answer = {"status": "error", "message": "Not enough money"}
    server = await aiohttp_server(zd.fake_api(answer=answer))
    client = await hub(make_client, api_base=str(server.make_url("")))
    card_id = await new_client(client, manager)
    resp = await client.post(f"/api/clients/{card_id}/call", json={}, headers=manager["headers"])
    assert resp.status == 502
    assert (await resp.json())["error"]["code"] == "delivery_failed"
    [entry] = await calls_on(client, manager, card_id)
    assert entry["status"] == "failed" and "Not enough money" in entry["text"]


async def test_click_to_call_with_a_wrong_key_or_no_api(
    make_client: Any, manager: Any, aiohttp_server: Any
) -> None:
    server = await aiohttp_server(zd.fake_api())
    client = await hub(make_client, api_base=str(server.make_url("")), key="other-key")
    card_id = await new_client(client, manager)
    resp = await client.post(f"/api/clients/{card_id}/call", json={}, headers=manager["headers"])
    assert resp.status == 502 and not server.app[zd.RECEIVED][0]["authorized"]
    unreachable = await hub(make_client, api_base="http://127.0.0.1:1")
    resp = await unreachable.post(f"/api/clients/{card_id}/call", json={},
                                  headers=manager["headers"])
    assert resp.status == 502
    statuses = [e["status"] for e in await calls_on(client, manager, card_id)]
    assert statuses == ["failed", "failed"]


async def test_click_to_call_needs_an_extension_or_a_phone(
    make_client: Any, admin: Any, aiohttp_server: Any
) -> None:
    server = await aiohttp_server(zd.fake_api())
    client = await hub(make_client, api_base=str(server.make_url("")))
    card_id = await new_client(client, admin)  # the admin has neither
    resp = await client.post(f"/api/clients/{card_id}/call", json={}, headers=admin["headers"])
    assert resp.status == 422 and "extension" in (await resp.json())["error"]["message"]
    assert server.app[zd.RECEIVED] == []


async def test_the_recording_link_redirects_to_a_fresh_zadarma_link(
    make_client: Any, manager: Any, aiohttp_server: Any
) -> None:
    server = await aiohttp_server(zd.fake_api())
    client = await hub(make_client, api_base=str(server.make_url("")))
    await replay(client, "inbound_answered")
    [call] = await Call.all()
    resp = await client.get(call.recording_url, headers=manager["headers"],
                            allow_redirects=False)
    assert resp.status == 302, await resp.text()
    ref = call.recording_url.rsplit("/", 1)[1]
    assert resp.headers["Location"].endswith(f"/record/download/{ref}/1/rec.mp3")
    [seen] = server.app[zd.RECEIVED]
    assert seen["authorized"] and seen["params"] == {"call_id": ref, "format": "json"}
    unauthenticated = await client.get(call.recording_url, allow_redirects=False)
    assert unauthenticated.status == 401


async def test_a_recording_zadarma_cannot_find_is_a_502(
    make_client: Any, manager: Any, aiohttp_server: Any
) -> None:
    answer = {"status": "error", "message": "Record not found"}
    server = await aiohttp_server(zd.fake_api(answer=answer))
    client = await hub(make_client, api_base=str(server.make_url("")))
    resp = await client.get("/api/recordings/zadarma/1795338000.4711",
                            headers=manager["headers"], allow_redirects=False)
    assert resp.status == 502 and "Record not found" in (await resp.json())["error"]["message"]
    other = await client.get("/api/recordings/generic/x", headers=manager["headers"])
    assert other.status == 404  # the generic PBX gives its recording URLs itself
