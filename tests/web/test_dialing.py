"""Click-to-call through the hub (POST /api/clients/{id}/call) with a scripted dialer, the
claiming of the click's entry by the provider's own events, and screen-pop targeting."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aiohttp import ClientSession

from channels.base import Agent, DialRequest, InboundRequest
from channels.generic import GenericAdapter, GenericConfig
from hub.errors import DeliveryError
from hub.events import CallEvent, CallOutcome, CallState, Direction, HubEvent, Party
from hub.keys import PIPELINE, REGISTRY
from hub.models import Call, Interaction
from tests.helpers import GENERIC_SECRET, call_body, post_call
from tests.web.test_api import create, expect_error, get_json, post_json


class ScriptedDialer(GenericAdapter):
    """A dialer whose provider answers as the test says; it records every request."""

    name = "scripted"

    def __init__(self, answer: str | None | Exception = None, needs_phone: bool = False) -> None:
        super().__init__(GenericConfig(secret=GENERIC_SECRET))  # type: ignore[arg-type]
        self.answer, self.needs_phone = answer, needs_phone
        self.requests: list[DialRequest] = []

    def cannot_dial(self, agent: Agent) -> str | None:
        return "the manager has no phone" if self.needs_phone and not agent.phone else None

    async def dial(self, http: ClientSession, request: DialRequest) -> str | None:
        self.requests.append(request)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def parse(self, request: InboundRequest) -> Sequence[HubEvent]:
        return []


def install(app_client: Any, dialer: ScriptedDialer) -> ScriptedDialer:
    app_client.server.app[REGISTRY].adapters[dialer.name] = dialer
    return dialer


async def provider_event(app_client: Any, call_id: str, state: CallState, phone: str,
                         **extra: Any) -> None:
    event = CallEvent(
        source="scripted", call_id=call_id, state=state, direction=Direction.OUTBOUND,
        remote=Party(phone=phone), occurred_at=datetime.now(UTC), **extra,
    )
    await app_client.server.app[PIPELINE].ingest(event)


async def calls_on(card_id: int) -> list[Interaction]:
    return await Interaction.filter(client_id=card_id, kind="call").order_by("id")


async def test_no_dialer_configured_is_a_conflict(app_client: Any, manager: Any) -> None:
    card = await create(app_client, manager, phones=["+79123456789"])
    resp = await app_client.post(f"/api/clients/{card['id']}/call", json={},
                                 headers=manager["headers"])
    await expect_error(resp, 409)
    assert await calls_on(card["id"]) == []


async def test_a_card_without_a_phone_cannot_be_called(app_client: Any, manager: Any) -> None:
    install(app_client, ScriptedDialer())
    card = await create(app_client, manager, emails=["a@example.com"])
    resp = await app_client.post(f"/api/clients/{card['id']}/call", json={},
                                 headers=manager["headers"])
    body = await expect_error(resp, 422)
    assert "phone" in body["error"]["message"]


async def test_what_the_provider_needs_is_checked_before_anything_is_recorded(
    app_client: Any, manager: Any
) -> None:
    dialer = install(app_client, ScriptedDialer(needs_phone=True))
    card = await create(app_client, manager, phones=["+79123456789"])
    resp = await app_client.post(f"/api/clients/{card['id']}/call", json={},
                                 headers=manager["headers"])
    assert "no phone" in (await expect_error(resp, 422))["error"]["message"]
    assert dialer.requests == [] and await calls_on(card["id"]) == []


async def test_the_provider_call_id_binds_the_entry(app_client: Any, manager: Any) -> None:
    dialer = install(app_client, ScriptedDialer("PBX-77"))
    card = await create(app_client, manager, phones=["+79123456789"])
    entry = await post_json(app_client, manager, f"/api/clients/{card['id']}/call", {}, 202)
    assert entry["kind"] == "call" and entry["direction"] == "out"
    assert entry["status"] == "ringing" and entry["client_id"] == card["id"]
    [sent] = dialer.requests
    assert sent.number == "+79123456789" and sent.agent.extension == "101"
    await provider_event(app_client, "PBX-77", CallState.ANSWERED, "+79123456789")
    await provider_event(app_client, "PBX-77", CallState.ENDED, "+79123456789",
                         duration_s=42, outcome=CallOutcome.ANSWERED)
    [call] = await calls_on(card["id"])
    assert call.id == entry["id"] and call.status == "completed"
    assert call.meta["duration"] == 42 and call.external_id == "call:PBX-77"


async def test_the_token_carried_back_binds_the_entry(app_client: Any, manager: Any) -> None:
    dialer = install(app_client, ScriptedDialer(None))
    card = await create(app_client, manager, phones=["+79123456789"])
    entry = await post_json(app_client, manager, f"/api/clients/{card['id']}/call", {}, 202)
    token = dialer.requests[0].token
    # the provider reports its leg to the manager's phone: the token, not the number, decides
    await provider_event(app_client, "leg-1", CallState.RINGING, "+79990000101",
                         correlation=token)
    await provider_event(app_client, "leg-1", CallState.ENDED, "+79990000101",
                         correlation=token, outcome=CallOutcome.ANSWERED, duration_s=5)
    [call] = await calls_on(card["id"])
    assert call.id == entry["id"] and call.status == "completed"
    assert await Interaction.filter(kind="call").count() == 1  # no card for the manager's phone


async def test_an_outbound_call_to_the_client_claims_the_open_click(
    app_client: Any, manager: Any
) -> None:
    install(app_client, ScriptedDialer(None))
    card = await create(app_client, manager, phones=["+79123456789"])
    entry = await post_json(app_client, manager, f"/api/clients/{card['id']}/call", {}, 202)
    # an inbound call from the client is another call, not the click's
    await post_call(app_client, call_body("ringing", "in-1", phone="89123456789"))
    await provider_event(app_client, "out-9", CallState.RINGING, "8 (912) 345-67-89")
    await provider_event(app_client, "out-9", CallState.ENDED, "89123456789",
                         outcome=CallOutcome.BUSY)
    calls = await calls_on(card["id"])
    assert [c.id for c in calls if c.direction == "out"] == [entry["id"]]
    assert {c.direction: c.status for c in calls} == {"out": "busy", "in": "ringing"}
    # the click was claimed: the next outbound call is a call of its own
    await provider_event(app_client, "out-10", CallState.RINGING, "89123456789")
    assert len(await calls_on(card["id"])) == 3


async def test_a_refused_call_shows_as_failed_with_the_reason(
    app_client: Any, manager: Any
) -> None:
    install(app_client, ScriptedDialer(DeliveryError("scripted: no money", retryable=False)))
    card = await create(app_client, manager, phones=["+79123456789"])
    resp = await app_client.post(f"/api/clients/{card['id']}/call", json={},
                                 headers=manager["headers"])
    body = await expect_error(resp, 502)
    assert "no money" in body["error"]["message"]
    timeline = await get_json(app_client, manager, f"/api/clients/{card['id']}/timeline")
    [entry] = timeline["items"]
    assert entry["status"] == "failed" and "no money" in entry["text"]
    metrics = await (await app_client.get("/metrics")).text()
    assert 'hub_calls_dialed_total{provider="scripted",result="refused"} 1.0' in metrics
    # a failed click is never claimed by a later call
    await provider_event(app_client, "out-1", CallState.RINGING, "+79123456789")
    assert len(await calls_on(card["id"])) == 2


async def test_calling_for_another_manager_needs_an_admin(
    app_client: Any, manager: Any, admin: Any
) -> None:
    dialer = install(app_client, ScriptedDialer("X1"))
    card = await create(app_client, manager, phones=["+79123456789"])
    path = f"/api/clients/{card['id']}/call"
    other = {"manager_id": admin["manager"].id}
    await expect_error(await app_client.post(path, json=other, headers=manager["headers"]), 403)
    await post_json(app_client, admin, path, {"manager_id": manager["manager"].id}, 202)
    assert dialer.requests[0].agent.id == manager["manager"].id
    missing = {"manager_id": 9999}
    await expect_error(await app_client.post(path, json=missing, headers=admin["headers"]), 422)
    gone = await app_client.post("/api/clients/9999/call", json={}, headers=manager["headers"])
    await expect_error(gone, 404)


async def test_the_provider_for_the_extension_places_the_call(
    app_client: Any, manager: Any
) -> None:
    office = install(app_client, ScriptedDialer("A"))
    branch = ScriptedDialer("B")
    branch.name = "branch"  # type: ignore[misc]
    install(app_client, branch)
    object.__setattr__(office, "serves", lambda ext: ext == "200")
    card = await create(app_client, manager, phones=["+79123456789"])
    await post_json(app_client, manager, f"/api/clients/{card['id']}/call", {}, 202)
    assert office.requests == [] and len(branch.requests) == 1
    assert (await Call.get(client_id=card["id"])).source == "branch"


# Screen pop: who gets the live events.


async def connect(app_client: Any, who: dict[str, Any]) -> Any:
    ws = await app_client.ws_connect("/api/stream", headers=who["headers"])
    assert (await ws.receive_json(timeout=5))["type"] == "hello"
    return ws


async def test_the_responsible_manager_alone_sees_their_clients_call(
    app_client: Any, manager: Any, admin: Any
) -> None:
    card = await create(app_client, manager, phones=["+79123456789"],
                        manager_id=manager["manager"].id)
    mine, other = await connect(app_client, manager), await connect(app_client, admin)
    await post_call(app_client, call_body("ringing", "pop-1", phone="8 912 345-67-89"))
    pop = await mine.receive_json(timeout=5)
    assert pop["type"] == "call.ringing" and pop["client"]["id"] == card["id"]
    assert pop["manager"]["id"] == manager["manager"].id
    # the other manager sees the next call that is theirs to see, not this one
    await post_call(app_client, call_body("ringing", "pop-2", phone="+79000000001"))
    nxt = await other.receive_json(timeout=5)
    assert nxt["interaction"]["meta"]["call_id"] == "pop-2" and nxt["created"] is True
    await mine.close()
    await other.close()


async def test_the_manager_on_the_rung_extension_sees_the_call_too(
    app_client: Any, manager: Any, admin: Any
) -> None:
    from hub.models import Manager

    await Manager.filter(id=admin["manager"].id).update(extension="205")
    await create(app_client, manager, phones=["+79123456789"], manager_id=manager["manager"].id)
    mine, other = await connect(app_client, manager), await connect(app_client, admin)
    await post_call(app_client, call_body("ringing", "pop-3", extension="205"))
    for ws in (mine, other):
        assert (await ws.receive_json(timeout=5))["interaction"]["meta"]["call_id"] == "pop-3"
    await mine.close()
    await other.close()


async def test_a_call_passed_on_to_another_extension_pops_up_there(
    app_client: Any, manager: Any, admin: Any
) -> None:
    from hub.models import Manager

    await Manager.filter(id=admin["manager"].id).update(extension="205")
    await create(app_client, manager, phones=["+79123456789"], manager_id=manager["manager"].id)
    mine, other = await connect(app_client, manager), await connect(app_client, admin)
    await post_call(app_client, call_body("ringing", "pass-1"))
    assert (await mine.receive_json(timeout=5))["type"] == "call.ringing"
    # the PBX rings extension 205 next: a second ringing event of the same call (as Zadarma's
    # NOTIFY_INTERNAL or Mango's next leg)
    await app_client.server.app[PIPELINE].ingest(CallEvent(
        source="generic", call_id="pass-1", state=CallState.RINGING, direction=Direction.INBOUND,
        remote=Party(phone="+79123456789"), occurred_at=datetime.now(UTC), extension="205",
        event_key="ext:205",
    ))
    pop = await other.receive_json(timeout=5)
    assert pop["type"] == "call.ringing" and pop["interaction"]["meta"]["call_id"] == "pass-1"
    await mine.close()
    await other.close()
