"""Two hub processes on one PostgreSQL, fed the same calls at once, agree on one result."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from hub.models import Call, Client, Identity, Interaction
from tests.helpers import GENERIC_SECRET, call_body, hub_processes, sign

CALLS = 40
PHONES = [f"+7916{n:07d}" for n in range(1, 16)]  # 40 calls from 15 people


@pytest_asyncio.fixture
async def hubs(database_url: str, orm: None) -> AsyncIterator[list[str]]:
    if not database_url.startswith("postgres"):
        pytest.skip("several processes share one PostgreSQL (set HUB_TEST_DATABASE_URL)")
    async with hub_processes(database_url, 2,
                             HUB_TELEPHONY_GENERIC_SECRET=GENERIC_SECRET) as urls:
        yield urls


def lifecycle(i: int) -> list[bytes]:
    phone = PHONES[i % len(PHONES)]
    ringing = call_body("ringing", f"mp{i}", phone=phone)
    if i % 3 == 0:
        return [ringing, call_body("ended", f"mp{i}", phone=phone, status="missed")]
    return [
        ringing,
        call_body("answered", f"mp{i}", phone=phone),
        call_body("ended", f"mp{i}", phone=phone, status="answered", duration=30),
    ]


async def deliver(session: aiohttp.ClientSession, url: str, body: bytes) -> None:
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body)}
    for _ in range(20):  # like a provider: retry until a 2xx
        async with session.post(
            url + "/webhooks/telephony/generic", data=body, headers=headers
        ) as resp:
            if resp.status == 200:
                return
        await asyncio.sleep(0.05)
    raise AssertionError("a delivery never succeeded")


async def test_two_processes_reach_the_same_result(hubs: list[str]) -> None:
    rng = random.Random(7)
    deliveries = [body for i in range(CALLS) for body in lifecycle(i)]
    deliveries += rng.sample(deliveries, len(deliveries) // 5)  # 20 % repeated
    rng.shuffle(deliveries)
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(deliver(session, rng.choice(hubs), b) for b in deliveries))
    assert await Client.all().count() == len(PHONES)
    assert await Identity.all().count() == len(PHONES)
    assert await Call.all().count() == CALLS
    statuses: dict[str, Any] = dict(
        await Interaction.filter(kind="call").values_list("external_id", "status")
    )
    assert len(statuses) == CALLS
    for i in range(CALLS):
        assert statuses[f"call:mp{i}"] == ("missed" if i % 3 == 0 else "completed")


async def test_a_call_received_by_one_process_pops_up_on_a_manager_connected_to_the_other(
    hubs: list[str],
) -> None:
    from hub.managers import create_manager

    manager, token = await create_manager("Ольга", extension="101")
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(hubs[0] + "/api/stream",
                                      headers={"Authorization": f"Bearer {token}"})
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
        await asyncio.sleep(0.5)  # the other process's relay is listening by now
        await deliver(session, hubs[1], call_body("ringing", "x-1", "8 916 000 11 22",
                                                  extension="101"))
        event = await ws.receive_json(timeout=5)
        assert event["type"] == "call.ringing"
        assert event["interaction"]["meta"]["phone"] == "+79160001122"
        assert event["created"] is True
        await ws.close()
