"""The ingest pipeline: exactly once, any order, one card per person, even under races."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub.events import CallEvent, CallOutcome, CallState, Direction, MessageEvent, Party
from hub.models import Call, Client, Identity, Interaction, ProcessedEvent, Reminder
from hub.pipeline import IngestResult, Pipeline

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
pytestmark = pytest.mark.usefixtures("orm")


def call(
    state: CallState,
    call_id: str = "c1",
    phone: str | None = "+79123456789",
    seconds: int = 0,
    direction: Direction = Direction.INBOUND,
    **extra: Any,
) -> CallEvent:
    return CallEvent(
        source="generic",
        call_id=call_id,
        state=state,
        direction=direction,
        remote=Party(phone=phone),
        occurred_at=T0 + timedelta(seconds=seconds),
        line="+74950000000",
        **extra,
    )


def message(external_id: str, email: str, name: str = "Ivan", **extra: Any) -> MessageEvent:
    return MessageEvent(
        source="email",
        channel="email",
        external_id=external_id,
        sender=Party(email=email, display_name=name),
        text="Hello",
        occurred_at=T0,
        subject="Price list",
        **extra,
    )


@pytest.fixture
def pipeline() -> Pipeline:
    return Pipeline("RU")


async def state() -> dict[str, Any]:
    """Everything a test compares: counts and the call entries' final shape."""
    calls = (
        await Interaction.filter(kind="call")
        .order_by("external_id")
        .values("external_id", "status", "client_id", "occurred_at", "meta")
    )
    return {
        "clients": await Client.all().count(),
        "identities": await Identity.all().count(),
        "interactions": await Interaction.all().count(),
        "calls": calls,
        "reminders": await Reminder.all().order_by("id").values("client_id", "status", "count"),
    }


async def test_unknown_caller_gets_a_card_with_the_phone_only(pipeline: Pipeline) -> None:
    result = await pipeline.ingest(call(CallState.RINGING, phone="8 (912) 345-67-89"))
    assert result.created and not result.duplicate
    client = await Client.get(id=result.client_id)
    assert client.name == ""
    assert await Identity.filter(client_id=client.id).values_list("kind", "value") == [
        ("phone", "+79123456789")
    ]


async def test_a_repeat_caller_in_another_written_form_finds_the_card(pipeline: Pipeline) -> None:
    first = await pipeline.ingest(call(CallState.RINGING, "c1", phone="89123456789"))
    second = await pipeline.ingest(call(CallState.RINGING, "c2", phone="+7 912 345-67-89"))
    assert second.client_id == first.client_id and not second.created
    assert await Client.all().count() == 1


async def test_repeated_delivery_changes_nothing(pipeline: Pipeline) -> None:
    await pipeline.ingest(call(CallState.RINGING))
    await pipeline.ingest(call(CallState.ENDED, seconds=30, outcome=CallOutcome.MISSED))
    before = await state()
    again = await pipeline.ingest(call(CallState.ENDED, seconds=30, outcome=CallOutcome.MISSED))
    assert again.duplicate and again.client_id is not None
    assert await state() == before
    assert await ProcessedEvent.all().count() == 2


LIFECYCLE = [
    call(CallState.RINGING, extension="101"),
    call(CallState.ANSWERED, seconds=4, extension="101"),
    call(CallState.ENDED, seconds=64, outcome=CallOutcome.ANSWERED, duration_s=60),
    call(CallState.RECORDING, seconds=70, recording_url="https://pbx.example/rec/c1.mp3"),
]


@pytest.mark.parametrize("order", list(itertools.permutations(range(4)))[::5])
async def test_any_arrival_order_reaches_the_same_final_state(order: tuple[int, ...]) -> None:
    pipeline = Pipeline("RU")
    for i in order:
        await pipeline.ingest(LIFECYCLE[i])
    final = await state()
    assert final["clients"] == 1 and final["interactions"] == 1
    entry = final["calls"][0]
    assert entry["status"] == "completed"
    assert entry["meta"]["duration"] == 60
    assert entry["meta"]["recording_url"] == "https://pbx.example/rec/c1.mp3"
    assert entry["occurred_at"] == T0
    assert await Call.all().count() == 1
    assert final["reminders"] == []


async def test_ended_before_ringing_creates_the_call_and_late_ringing_changes_nothing(
    pipeline: Pipeline,
) -> None:
    await pipeline.ingest(call(CallState.ENDED, seconds=20, outcome=CallOutcome.MISSED))
    after_end = await state()
    assert after_end["calls"][0]["status"] == "missed"
    late = await pipeline.ingest(call(CallState.RINGING))
    assert not late.duplicate
    final = await state()
    assert final["calls"][0]["status"] == "missed"
    assert final["calls"][0]["occurred_at"] == T0  # the ring time is still learned
    assert final["reminders"] == after_end["reminders"]


async def test_anonymous_callers_never_get_a_card(pipeline: Pipeline) -> None:
    for i, phone in enumerate(["anonymous", "0", "", None]):
        result = await pipeline.ingest(call(CallState.RINGING, call_id=f"a{i}", phone=phone))
        assert result.client_id is None and not result.created
    assert await Client.all().count() == 0
    assert await Identity.all().count() == 0
    assert await Interaction.filter(kind="call", client_id=None).count() == 4


async def test_missed_calls_open_one_callback_reminder_and_a_connected_call_closes_it(
    pipeline: Pipeline,
) -> None:
    for cid in ("m1", "m2"):
        await pipeline.ingest(call(CallState.RINGING, cid))
        await pipeline.ingest(call(CallState.ENDED, cid, seconds=15, outcome=CallOutcome.MISSED))
    reminders = await Reminder.all().values("status", "count", "origin")
    assert reminders == [{"status": "pending", "count": 2, "origin": "missed_call"}]
    await pipeline.ingest(call(CallState.ANSWERED, "c3", seconds=100))
    assert await Reminder.all().values_list("status", flat=True) == ["done"]


async def test_a_late_answer_takes_the_missed_call_back(pipeline: Pipeline) -> None:
    await pipeline.ingest(call(CallState.ENDED, seconds=30, outcome=CallOutcome.MISSED))
    assert await Reminder.filter(status="pending").count() == 1
    await pipeline.ingest(call(CallState.ANSWERED, seconds=5))
    assert await Reminder.filter(status="pending").count() == 0
    assert (await state())["calls"][0]["status"] == "completed"


# Whether a call-back is still owed follows the calls' own times, not the order their news
# arrives in: it is owed when the client's latest missed call came after their latest call
# that connected.
HISTORY = {
    "missed-then-reached": [("m1", 0, False), ("ok", 100, True)],
    "reached-then-missed": [("ok", 0, True), ("m1", 100, False)],
    "missed-reached-missed": [("m1", 0, False), ("ok", 100, True), ("m2", 200, False)],
    "two-missed-then-reached": [("m1", 0, False), ("m2", 50, False), ("ok", 100, True)],
}


def _history_events(calls: list[tuple[str, int, bool]]) -> list[CallEvent]:
    events = []
    for cid, at, answered in calls:
        events.append(call(CallState.RINGING, cid, seconds=at))
        if answered:
            events.append(call(CallState.ANSWERED, cid, seconds=at + 5))
        outcome = CallOutcome.ANSWERED if answered else CallOutcome.MISSED
        events.append(call(CallState.ENDED, cid, seconds=at + 30, outcome=outcome))
    return events


@pytest.mark.parametrize("name", sorted(HISTORY))
async def test_a_call_back_is_owed_whatever_order_the_news_arrives_in(name: str) -> None:
    history = HISTORY[name]
    owed = max(at for _, at, ok in history if not ok) > max(at for _, at, ok in history if ok)
    events = _history_events(history)
    orders = list(itertools.permutations(events)) if len(events) <= 6 else [
        events, events[::-1], events[1::2] + events[::2], events[::2] + events[1::2]]
    for order in orders[:60]:
        await Reminder.all().delete()
        await Call.all().delete()
        await Interaction.all().delete()
        await ProcessedEvent.all().delete()
        pipeline = Pipeline("RU")
        for event in order:
            await pipeline.ingest(event)
        still_open = await Reminder.filter(status="pending").count()
        assert still_open == int(owed), [(e.call_id, e.state.value) for e in order]


async def test_outbound_unanswered_call_makes_no_reminder(pipeline: Pipeline) -> None:
    await pipeline.ingest(
        call(CallState.ENDED, direction=Direction.OUTBOUND, outcome=CallOutcome.MISSED)
    )
    assert await Reminder.all().count() == 0


async def test_concurrent_deliveries_of_a_new_caller_create_one_card(pipeline: Pipeline) -> None:
    forms = ["89123456789", "+7 912 345-67-89", "+79123456789", "8 912 345 67 89"]
    events = [call(CallState.RINGING, f"r{i}", phone=forms[i % 4]) for i in range(24)]
    results = await asyncio.gather(*(pipeline.ingest(e) for e in events))
    assert len({r.client_id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert await Client.all().count() == 1
    assert await Interaction.filter(kind="call").count() == 24


async def test_concurrent_events_of_one_call_make_one_call(pipeline: Pipeline) -> None:
    events = [
        call(CallState.RINGING, "x"),
        call(CallState.ANSWERED, "x", seconds=3),
        call(CallState.ENDED, "x", seconds=9, outcome=CallOutcome.ANSWERED, duration_s=6),
    ]
    await asyncio.gather(*(pipeline.ingest(e) for e in events * 3))
    final = await state()
    assert final["clients"] == 1 and final["interactions"] == 1
    assert final["calls"][0]["status"] == "completed"
    assert await ProcessedEvent.all().count() == 3


async def test_email_sender_becomes_a_card_and_message_id_dedupes(pipeline: Pipeline) -> None:
    first = await pipeline.ingest(message("<m1@example.com>", "Ivan@Example.com"))
    assert first.created
    client = await Client.get(id=first.client_id)
    assert client.name == "Ivan"
    dup = await pipeline.ingest(message("<m1@example.com>", "ivan@example.com"))
    assert dup.duplicate and dup.client_id == client.id
    second = await pipeline.ingest(message("<m2@example.com>", "ivan@example.com"))
    assert second.client_id == client.id and not second.created
    assert await Interaction.filter(client_id=client.id, kind="email").count() == 2


async def test_an_email_with_a_known_phone_joins_the_caller_card(pipeline: Pipeline) -> None:
    caller = await pipeline.ingest(call(CallState.RINGING))
    form = MessageEvent(
        source="email",
        channel="email",
        external_id="<f1@site>",
        sender=Party(email="ivan@example.com", phone="8 912 345 67 89"),
        text="form",
        occurred_at=T0,
    )
    result = await pipeline.ingest(form)
    assert result.client_id == caller.client_id
    kinds = await Identity.filter(client_id=caller.client_id).values_list("kind", flat=True)
    assert sorted(kinds) == ["email", "phone"]


async def test_identities_of_another_card_are_never_taken(pipeline: Pipeline) -> None:
    by_mail = await pipeline.ingest(message("<a@x>", "anna@example.com", "Anna"))
    by_phone = await pipeline.ingest(call(CallState.RINGING))
    both = MessageEvent(
        source="email",
        channel="email",
        external_id="<b@x>",
        sender=Party(email="anna@example.com", phone="+79123456789"),
        text="",
        occurred_at=T0,
    )
    result = await pipeline.ingest(both)
    assert result.client_id == by_mail.client_id  # e-mail outranks phone
    phone_owner = await Identity.get(kind="phone", value="+79123456789")
    assert phone_owner.client_id == by_phone.client_id


async def test_last_interaction_moves_forward_only(pipeline: Pipeline) -> None:
    await pipeline.ingest(call(CallState.RINGING, "new", seconds=500))
    await pipeline.ingest(call(CallState.RINGING, "old", seconds=0))
    client = await Client.get()
    assert client.last_interaction_at == T0 + timedelta(seconds=500)


async def test_a_failing_hook_never_fails_the_ingest(pipeline: Pipeline) -> None:
    seen: list[IngestResult] = []

    async def broken(result: IngestResult) -> None:
        raise RuntimeError("boom")

    async def recorder(result: IngestResult) -> None:
        seen.append(result)

    pipeline.hooks += [broken, recorder]
    result = await pipeline.ingest(call(CallState.RINGING))
    assert result.client_id is not None and len(seen) == 1
    await pipeline.ingest(call(CallState.RINGING))
    assert len(seen) == 1  # duplicates run no hooks


async def _merged_away(pipeline: Pipeline) -> tuple[int, int]:
    """Card A (by phone) marked merged into card B (by e-mail), its rows not yet moved:
    what an ingest sees when it read A just before a merge committed."""
    a = (await pipeline.ingest(call(CallState.RINGING, "c1"))).client_id
    b = (await pipeline.ingest(message("<b@x>", "boris@example.com"))).client_id
    assert a is not None and b is not None
    await Client.filter(id=a).update(merged_into_id=b)
    return a, b


async def test_a_new_entry_for_a_merged_away_card_lands_on_the_live_card(
    pipeline: Pipeline,
) -> None:
    a, b = await _merged_away(pipeline)
    result = await pipeline.ingest(call(CallState.RINGING, "c2"))
    assert result.client_id == b and not result.created
    assert await Interaction.filter(client_id=b, kind="call").count() == 1


async def test_a_known_call_of_a_merged_away_card_lands_on_the_live_card(
    pipeline: Pipeline,
) -> None:
    a, b = await _merged_away(pipeline)
    result = await pipeline.ingest(
        call(CallState.ENDED, "c1", seconds=9, outcome=CallOutcome.MISSED)
    )
    assert result.client_id == b
    assert await Reminder.filter(client_id=b).count() == 1
    assert await Reminder.filter(client_id=a).count() == 0


async def test_an_ingest_waits_for_a_merge_in_progress_and_follows_it(
    pipeline: Pipeline, is_pg: bool, database_url: str
) -> None:
    if not is_pg:
        pytest.skip("row locks: SQLite serializes whole transactions instead")
    import asyncpg

    a = (await pipeline.ingest(call(CallState.RINGING, "c1"))).client_id
    b = (await pipeline.ingest(message("<b@x>", "boris@example.com"))).client_id
    merging = await asyncpg.connect(database_url)
    try:
        tx = merging.transaction()
        await tx.start()
        await merging.execute("SELECT id FROM client WHERE id IN ($1, $2) FOR UPDATE", a, b)
        ingest = asyncio.create_task(pipeline.ingest(call(CallState.RINGING, "c2")))
        await asyncio.sleep(0.3)
        assert not ingest.done()  # queued behind the merge's lock
        await merging.execute("UPDATE identity SET client_id = $1 WHERE client_id = $2", b, a)
        await merging.execute("UPDATE call SET client_id = $1 WHERE client_id = $2", b, a)
        await merging.execute("UPDATE interaction SET client_id = $1 WHERE client_id = $2", b, a)
        await merging.execute("UPDATE client SET merged_into_id = $1 WHERE id = $2", b, a)
        await tx.commit()
        result = await asyncio.wait_for(ingest, 10)
    finally:
        await merging.close()
    assert result.client_id == b
    assert await Interaction.filter(client_id=a).count() == 0


async def test_a_redelivery_answers_with_the_live_card(pipeline: Pipeline) -> None:
    a, b = await _merged_away(pipeline)
    again = await pipeline.ingest(call(CallState.RINGING, "c1"))
    assert again.duplicate and again.client_id == b
