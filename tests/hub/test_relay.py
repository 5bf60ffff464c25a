"""Live events between hub processes through PostgreSQL's LISTEN/NOTIFY (hub.relay)."""

from __future__ import annotations

import asyncio
import json

import pytest

from hub.bus import Bus
from hub.relay import MAX_PAYLOAD, LiveRelay, _payload, dsn_of


def test_only_postgresql_urls_relay() -> None:
    assert dsn_of("sqlite://./hub.db") is None
    assert dsn_of("asyncpg://u@h:5432/db") == "postgres://u@h:5432/db"
    assert dsn_of("postgres://u@h/db") == "postgres://u@h/db"


def test_a_large_event_goes_without_its_html_and_a_huge_one_not_at_all() -> None:
    event = {"type": "message.in", "interaction": {"id": 1, "text": "hi",
                                                   "meta": {"html": "<p>" + "x" * 9000}}}
    slim = _payload("o", json.dumps(event), {3})
    assert slim is not None and len(slim.encode()) <= MAX_PAYLOAD
    inner = json.loads(json.loads(slim)["e"])
    assert "html" not in inner["interaction"]["meta"] and inner["interaction"]["text"] == "hi"
    assert json.loads(slim)["t"] == [3]
    huge = {"type": "message.in", "interaction": {"text": "x" * 9000, "meta": {}}}
    assert _payload("o", json.dumps(huge), None) is None


def test_a_relay_drops_its_own_echo_and_delivers_the_others() -> None:
    bus = Bus()
    sub = bus.subscribe(7)
    relay = LiveRelay(bus, "postgres://unused")
    relay.receive(json.dumps({"o": relay.origin, "t": None, "e": '{"type": "a"}'}))
    assert sub.queue.qsize() == 0
    relay.receive(json.dumps({"o": "another", "t": [8], "e": '{"type": "b"}'}))
    assert sub.queue.qsize() == 0  # for someone else
    relay.receive(json.dumps({"o": "another", "t": [7], "e": '{"type": "c"}'}))
    assert sub.queue.get_nowait() == '{"type": "c"}'
    relay.receive("not json")
    assert sub.queue.qsize() == 0


@pytest.mark.postgres
async def test_two_relays_on_postgresql_pass_events_both_ways(database_url: str) -> None:
    if not database_url.startswith("postgres"):
        pytest.skip("LISTEN/NOTIFY needs PostgreSQL (set HUB_TEST_DATABASE_URL)")
    buses = [Bus(), Bus()]
    relays = [LiveRelay(bus, database_url) for bus in buses]
    tasks = [asyncio.create_task(r.run()) for r in relays]
    try:
        for relay in relays:
            await asyncio.wait_for(relay.connected.wait(), 10)
        here, there = buses[0].subscribe(1), buses[1].subscribe(1)
        buses[0].publish({"type": "call.ringing", "n": 1}, {1})
        buses[1].publish({"type": "message.in", "n": 2})
        got_there = [json.loads(await asyncio.wait_for(there.queue.get(), 5)) for _ in range(2)]
        got_here = [json.loads(await asyncio.wait_for(here.queue.get(), 5)) for _ in range(2)]
        assert sorted(e["n"] for e in got_there) == [1, 2]  # one relayed, one its own
        assert sorted(e["n"] for e in got_here) == [1, 2]
        await asyncio.sleep(0.2)
        assert here.queue.qsize() == 0 and there.queue.qsize() == 0  # no echo, no doubles
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
