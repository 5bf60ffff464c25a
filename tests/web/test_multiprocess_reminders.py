"""Two real `hub serve` processes on one PostgreSQL, each with its reminder scheduler running,
fire every one of 2,000 reminders exactly once between them: a catch-up of overdue ones in full
batches, then a stretch where both schedulers wake for the same reminders and race.

Each process pushes `reminder.due` to the managers connected to it and, through PostgreSQL's
NOTIFY (hub.relay), to those connected to the other: the manager holds one WebSocket per
process, and each socket must hear every reminder exactly once.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest
import pytest_asyncio

from hub.db import now
from hub.loops import MAX_SLEEP_S
from hub.managers import create_manager
from hub.models import Client, Reminder
from tests.helpers import hub_processes

REMINDERS = 2_000
SPREAD_S = 2.0
DEADLINE_S = 30.0
GRACE_S = 0.5


@pytest_asyncio.fixture
async def hubs(database_url: str, orm: None) -> AsyncIterator[list[str]]:
    """Two `hub serve` processes with all their clock-driven loops (the default)."""
    if not database_url.startswith("postgres"):
        pytest.skip("several processes share one PostgreSQL (set HUB_TEST_DATABASE_URL)")
    async with hub_processes(database_url, 2) as urls:
        yield urls


def due_offsets() -> list[float]:
    """Seconds from now: half over the next SPREAD_S (the schedulers, asleep for up to
    MAX_SLEEP_S, find them overdue: a catch-up in full batches), half over SPREAD_S after
    MAX_SLEEP_S (both schedulers have looked by then and wake for them together: a race)."""
    half = REMINDERS // 2
    step = SPREAD_S / half
    return [0.1 + i * step for i in range(half)] + [
        MAX_SLEEP_S + 0.5 + i * step for i in range(REMINDERS - half)]


async def add_reminders(manager_id: int) -> set[int]:
    """REMINDERS reminders on one card, inserted straight into the table (nothing wakes the
    schedulers)."""
    start = now()
    client = await Client.create(name="Anna", created_at=start, updated_at=start,
                                 activity_at=start)
    await Reminder.bulk_create([
        Reminder(client_id=client.id, manager_id=manager_id, text=f"call back {i}",
                 due_at=start + timedelta(seconds=offset), created_at=start)
        for i, offset in enumerate(due_offsets())
    ], batch_size=500)
    return set(await Reminder.filter(manager_id=manager_id).values_list("id", flat=True))


async def collect(ws: aiohttp.ClientWebSocketResponse, mine: list[int], heard: set[int],
                  expected: set[int], deadline: float) -> None:
    """Append each announced reminder id to `mine` until time is up, or a moment after this
    socket heard every expected id (a late duplicate shows too)."""
    while (left := deadline - time.monotonic()) > 0:
        if expected <= set(mine):
            deadline = min(deadline, time.monotonic() + GRACE_S)
        try:
            msg = await ws.receive(timeout=min(left, 1.0))
        except TimeoutError:
            continue
        if msg.type != aiohttp.WSMsgType.TEXT:
            return
        event = json.loads(msg.data)
        if event["type"] == "reminder.due":
            mine.append(event["reminder"]["id"])
            heard.add(event["reminder"]["id"])


async def test_each_reminder_fires_once_across_two_processes(hubs: list[str]) -> None:
    manager, token = await create_manager("Olga")
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as session:
        sockets = [await session.ws_connect(url + "/api/stream", headers=headers) for url in hubs]
        for ws in sockets:
            assert (await ws.receive_json(timeout=5))["type"] == "hello"
        expected = await add_reminders(manager.id)
        assert len(expected) == REMINDERS
        seen: list[list[int]] = [[] for _ in sockets]
        heard: set[int] = set()
        deadline = time.monotonic() + DEADLINE_S
        await asyncio.gather(*(collect(ws, mine, heard, expected, deadline)
                               for ws, mine in zip(sockets, seen, strict=True)))
        for ws in sockets:
            await ws.close()

    print(f"heard per socket: {[len(ids) for ids in seen]}")
    for ids in seen:  # each socket hears what both processes fired, each reminder once
        counts = Counter(ids)
        assert [i for i, n in counts.items() if n > 1] == [], "announced more than once"
        assert sorted(expected - counts.keys()) == [], "never announced"
        assert counts.keys() == expected  # nothing else fired
    rows = await Reminder.filter(id__in=expected).values("status", "fired_at")
    assert all(r["status"] == "fired" and r["fired_at"] is not None for r in rows)
