"""Every provider's captured deliveries, all at once, each twice, in a shuffled order, end in
the same calls and cards as the same deliveries one by one in order. On PostgreSQL
the deliveries really run concurrently (row locks and retried races); on SQLite they
interleave through the single writer."""

from __future__ import annotations

import asyncio
import importlib
import random
from typing import Any

import pytest
from yarl import URL

from channels import ADAPTERS
from channels.base import InboundRequest
from hub.models import Call, Client, Identity, Interaction, ProcessedEvent, Reminder
from tests.providers import BASE_URL

TELEPHONY = [cls.name for cls in ADAPTERS if cls.kind == "telephony"]


def deliveries() -> list[InboundRequest]:
    found = []
    for name in TELEPHONY:
        found += importlib.import_module(f"tests.providers.{name}").requests()
    return found


async def post(client: Any, request: InboundRequest) -> None:
    # the exact path and query the signature covers, sent as they are
    target = URL(request.url.removeprefix(BASE_URL), encoded=True)
    resp = await client.post(target, data=request.body, headers=dict(request.headers))
    assert resp.status == 200, (request.path, await resp.text())


async def outcome() -> dict[tuple[str, str], tuple[Any, ...]]:
    """Each call's final state and the phones of its card. (Call-back reminders follow the
    calls' times, and a provider that sends no timestamp, such as Twilio's first request, is
    dated on arrival: tests/hub/test_pipeline.py checks reminders with the times fixed.)"""
    phones: dict[int, tuple[str, ...]] = {}
    for client_id, value in await Identity.filter(kind="phone").values_list("client_id", "value"):
        phones[client_id] = (*phones.get(client_id, ()), value)
    state = {}
    for call in await Call.all():
        owner = call.client_id  # type: ignore[attr-defined]
        state[(call.source, call.call_id)] = (
            call.direction, call.state, call.outcome, call.was_answered, call.duration_s,
            call.extension, call.recording_url, tuple(sorted(phones.get(owner, ()))),
        )
    return state


async def wipe() -> None:
    for model in (Reminder, Call, Interaction, Identity, Client, ProcessedEvent):
        await model.all().delete()


@pytest.mark.parametrize("seed", [1, 2])
async def test_all_at_once_twice_in_any_order_is_the_same_as_one_by_one(
    make_client: Any, seed: int
) -> None:
    configs = {name: importlib.import_module(f"tests.providers.{name}").CONFIG
               for name in TELEPHONY}
    client = await make_client(public_base_url=BASE_URL, telephony=configs)
    requests = deliveries()
    assert len(requests) > 50
    for request in requests:
        await post(client, request)
    expected = await outcome()
    assert len(expected) >= 20
    await wipe()
    shuffled = requests * 2
    random.Random(seed).shuffle(shuffled)
    await asyncio.gather(*(post(client, r) for r in shuffled))
    assert await outcome() == expected
