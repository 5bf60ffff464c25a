"""Two real `hub serve` processes on one PostgreSQL deliver outgoing webhooks: every event
reaches every subscription once and in order, whichever process recorded it and whichever
delivered it, while the receivers fail now and then."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import aiohttp
import pytest

from hub.managers import create_manager
from hub.models import Role, WebhookDelivery
from tests.helpers import hub_processes
from tests.webhook_receiver import Receiver

CARDS = 150
SUBSCRIPTIONS = 3


async def test_each_event_reaches_each_subscription_once_in_order_across_processes(
    database_url: str, orm: None,
) -> None:
    if not database_url.startswith("postgres"):
        pytest.skip("several processes share one PostgreSQL (set HUB_TEST_DATABASE_URL)")
    _, token = await create_manager("Admin", role=Role.ADMIN)
    headers = {"Authorization": f"Bearer {token}"}
    receivers = [Receiver() for _ in range(SUBSCRIPTIONS)]
    rng = random.Random(5)
    for receiver in receivers:
        await receiver.start()
        receiver.script = [rng.choice([200] * 9 + [500]) for _ in range(CARDS)]
    try:
        async with hub_processes(database_url, 2, HUB_WEBHOOKS_BACKOFF_SECONDS="0.05",
                                 HUB_WEBHOOKS_BACKOFF_CAP_SECONDS="0.2") as urls, \
                aiohttp.ClientSession(headers=headers) as session:
            for i, receiver in enumerate(receivers):
                async with session.post(urls[i % 2] + "/api/webhooks", json={
                        "url": receiver.url, "events": ["client.created"]}) as resp:
                    assert resp.status == 201
                    receiver.secret = (await resp.json())["secret"]

            async def make(i: int) -> None:
                async with session.post(urls[i % 2] + "/api/clients", json={
                        "name": f"Client {i}", "phones": [f"+7903{i:07d}"]}) as resp:
                    assert resp.status == 201

            for start in range(0, CARDS, 10):
                await asyncio.gather(*(make(i) for i in range(start, start + 10)))
            got = await asyncio.gather(*(r.wait_for(CARDS, within=60) for r in receivers))
            for _ in range(500):  # the receivers hear before the hubs record it
                if not await WebhookDelivery.filter(status="pending").exists():
                    break
                await asyncio.sleep(0.02)
    finally:
        for receiver in receivers:
            await receiver.stop()
    for bodies, receiver in zip(got, receivers, strict=True):
        ids = [b["id"] for b in bodies]
        assert len(ids) == CARDS, f"{len(ids)} of {CARDS} arrived"
        assert [i for i, n in Counter(ids).items() if n > 1] == [], "delivered twice"
        assert ids == sorted(ids), "out of order"
        assert all(seen.signature_ok for seen in receiver.seen)
    phones = {b["data"]["client"]["phones"][0] for b in got[0]}
    assert len(phones) == CARDS
    statuses = Counter(await WebhookDelivery.all().values_list("status", flat=True))
    assert statuses == {"delivered": CARDS * SUBSCRIPTIONS}
