"""Calls whose end never arrived: after `stale_call_minutes` of ringing (by the hub's clock)
they end unanswered, an inbound one opens its call-back reminder, and a real end that turns
up later still decides."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub.db import now
from hub.events import CallOutcome, CallState, Direction
from hub.housekeeping import end_stale_calls
from hub.models import Call, Reminder
from hub.pipeline import Pipeline
from tests.hub.test_pipeline import call

pytestmark = pytest.mark.usefixtures("orm")
AFTER = timedelta(minutes=30)


async def sweep(pipeline: Pipeline, minutes: int) -> int:
    return await end_stale_calls(pipeline, AFTER, now() + timedelta(minutes=minutes))


async def test_a_call_left_ringing_ends_missed_and_opens_one_reminder() -> None:
    pipeline = Pipeline("RU")
    await pipeline.ingest(call(CallState.RINGING))
    assert await sweep(pipeline, 29) == 0  # the provider's old timestamp does not count
    assert await sweep(pipeline, 31) == 1
    stored = await Call.get(call_id="c1")
    assert stored.state == "ended" and stored.outcome == "missed"
    [reminder] = await Reminder.filter(client_id=stored.client_id)  # type: ignore[attr-defined]
    assert reminder.origin == "missed_call" and reminder.count == 1
    assert await sweep(pipeline, 90) == 0  # once


async def test_a_late_real_end_still_decides() -> None:
    pipeline = Pipeline("RU")
    await pipeline.ingest(call(CallState.RINGING))
    await sweep(pipeline, 31)
    await pipeline.ingest(call(CallState.ANSWERED, seconds=5))
    await pipeline.ingest(call(CallState.ENDED, seconds=65, outcome=CallOutcome.ANSWERED,
                               duration_s=60))
    stored = await Call.get(call_id="c1")
    assert stored.outcome == "answered" and stored.duration_s == 60
    reminders = await Reminder.filter(status__in=("pending", "fired")).count()
    assert reminders == 0  # the answer took the missed call back


async def test_a_late_busy_end_wins_over_the_hubs_own_end() -> None:
    pipeline = Pipeline("RU")
    await pipeline.ingest(call(CallState.RINGING))
    await sweep(pipeline, 31)
    await pipeline.ingest(call(CallState.ENDED, seconds=20, outcome=CallOutcome.BUSY))
    stored = await Call.get(call_id="c1")
    assert stored.outcome == "busy"
    assert await Reminder.all().count() == 1


async def test_answered_calls_and_anonymous_ones_are_left_or_ended_quietly() -> None:
    pipeline = Pipeline("RU")
    await pipeline.ingest(call(CallState.ANSWERED, call_id="talking"))
    await pipeline.ingest(call(CallState.RINGING, call_id="hidden", phone=None))
    assert await sweep(pipeline, 31) == 1
    assert (await Call.get(call_id="talking")).state == "answered"  # only ringing calls
    hidden = await Call.get(call_id="hidden")
    assert hidden.state == "ended" and hidden.client_id is None  # type: ignore[attr-defined]
    assert await Reminder.all().count() == 0


async def test_an_outbound_call_never_connected_ends_without_a_reminder() -> None:
    pipeline = Pipeline("RU")
    await pipeline.ingest(call(CallState.RINGING, call_id="out", direction=Direction.OUTBOUND))
    assert await sweep(pipeline, 31) == 1
    stored = await Call.get(call_id="out")
    assert stored.state == "ended" and not stored.was_answered
    assert await Reminder.all().count() == 0


async def test_many_stale_calls_are_ended_in_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    from hub import housekeeping

    monkeypatch.setattr(housekeeping, "BATCH", 3)
    pipeline = Pipeline("RU")
    for i in range(7):
        await pipeline.ingest(call(CallState.RINGING, call_id=f"c{i}", phone=f"+7912345670{i}"))
    assert await sweep(pipeline, 31) == 7
    assert await Call.filter(state="ended").count() == 7
    assert await Reminder.all().count() == 7
