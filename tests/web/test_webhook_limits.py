"""Webhook rate limits per source: a source past its rate gets 429 + Retry-After and nothing is
stored (the provider retries, and the retry lands once); other providers keep their own budget;
bad signatures stay 401, whoever keeps sending them."""

from __future__ import annotations

from typing import Any

import pytest

from hub.models import Interaction, ProcessedEvent
from hub.web import throttle
from hub.web.throttle import WebhookLimits
from tests.helpers import EMAIL_TOKEN, call_body, post_call


class Clock:
    def __init__(self) -> None:
        self.at = 1000.0

    def __call__(self) -> float:
        return self.at


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    tick = Clock()
    monkeypatch.setattr(throttle.time, "monotonic", tick)
    return tick


async def email(client: Any, n: int) -> Any:
    raw = (f"From: client{n}@example.com\r\nTo: sales@example.test\r\nSubject: hi\r\n"
           f"Message-ID: <m{n}@example.com>\r\n\r\nhello\r\n").encode()
    return await client.post("/webhooks/email", data=raw, headers={
        "Content-Type": "message/rfc822", "X-Hub-Token": EMAIL_TOKEN})


async def test_past_its_rate_a_source_gets_429_stores_nothing_and_its_retry_lands(
    make_client: Any, clock: Clock
) -> None:
    client = await make_client(webhook_rate_per_source=5)  # bursts of 10
    for n in range(10):
        assert (await post_call(client, call_body("ended", f"c{n}"))).status == 200
    refused = await post_call(client, call_body("ended", "c10"))
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "1"
    assert (await refused.json())["error"]["code"] == "too_many_requests"
    assert await ProcessedEvent.all().count() == 10
    # another provider from the same address has a budget of its own
    assert (await email(client, 1)).status == 200
    clock.at += 1.0  # five more tokens
    retried = await post_call(client, call_body("ended", "c10"))
    assert retried.status == 200 and (await retried.json())["duplicate"] is False
    assert await Interaction.filter(kind="call").count() == 11
    metrics = await (await client.get("/metrics")).text()
    assert 'hub_webhook_rejected_total{reason="rate",source="generic"} 1.0' in metrics


async def test_bad_signatures_stay_401_and_do_not_lock_the_provider_out(
    make_client: Any, clock: Clock
) -> None:
    client = await make_client()  # behind a proxy, a stranger and the PBX share one address
    for _ in range(100):
        assert (await post_call(client, call_body("ended", "x"), secret="guess")).status == 401
    assert (await post_call(client, call_body("ended", "good"))).status == 200
    assert await ProcessedEvent.all().count() == 1
    metrics = await (await client.get("/metrics")).text()
    assert 'hub_webhook_rejected_total{reason="signature",source="generic"} 100.0' in metrics


def test_zero_means_no_rate_limit_and_memory_stays_bounded(clock: Clock) -> None:
    limits = WebhookLimits(0)
    assert all(limits.wait("generic", "10.0.0.1") == 0 for _ in range(100_000))
    limits = WebhookLimits(1)
    for n in range(throttle.MAX_KEYS + 500):
        limits.wait("generic", f"10.0.{n // 256}.{n % 256}")
    assert len(limits._buckets) == throttle.MAX_KEYS
