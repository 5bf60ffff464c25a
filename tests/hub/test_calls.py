"""The call lifecycle is a pure function of the set of events: every order agrees."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from hub.calls import derive, is_missed_inbound, snapshot
from hub.events import CallEvent, CallOutcome, CallState, Direction, Party

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def event(state: CallState, seconds: int, **extra: object) -> CallEvent:
    return CallEvent(
        source="generic",
        call_id="c1",
        state=state,
        direction=Direction.INBOUND,
        remote=Party(phone="+79123456789"),
        occurred_at=T0 + timedelta(seconds=seconds),
        **extra,  # type: ignore[arg-type]
    )


ANSWERED = [
    event(CallState.RINGING, 0, extension="101"),
    event(CallState.ANSWERED, 5, extension="102"),
    event(CallState.ENDED, 65, outcome=CallOutcome.ANSWERED, duration_s=60),
    event(CallState.RECORDING, 70, recording_url="https://pbx.example/r/1.mp3"),
]
MISSED = [event(CallState.RINGING, 0), event(CallState.ENDED, 20, outcome=CallOutcome.MISSED)]


def fold(events: list[CallEvent]) -> dict[str, dict[str, object]]:
    return {e.name: snapshot(e) for e in events}


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_every_order_of_an_answered_call_gives_one_state(order: tuple[int, ...]) -> None:
    view = derive(fold([ANSWERED[i] for i in order]), "inbound")
    assert view.state == "ended"
    assert view.status == "completed"
    assert view.outcome == "answered"
    assert view.duration_s == 60
    assert view.extension == "102"  # the one who answered
    assert view.recording_url == "https://pbx.example/r/1.mp3"
    assert view.started_at == T0
    assert view.answered_at == T0 + timedelta(seconds=5)


def test_states_move_forward_only() -> None:
    assert derive(fold(ANSWERED[:1]), "inbound").status == "ringing"
    assert derive(fold(ANSWERED[:2]), "inbound").status == "answered"
    # a late ringing after the end changes nothing
    assert derive(fold([ANSWERED[2], ANSWERED[0]]), "inbound").state == "ended"


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_missed_call_in_any_order(order: tuple[int, int]) -> None:
    view = derive(fold([MISSED[i] for i in order]), "inbound")
    assert view.status == "missed"
    assert is_missed_inbound(view, "inbound")
    assert not is_missed_inbound(view, "outbound")


def test_ended_without_status_and_without_answer_is_missed() -> None:
    view = derive(fold([event(CallState.ENDED, 3)]), "inbound")
    assert view.status == "missed" and view.outcome == "missed"


@pytest.mark.parametrize(
    ("outcome", "status"), [(CallOutcome.BUSY, "busy"), (CallOutcome.FAILED, "failed")]
)
def test_busy_and_failed(outcome: CallOutcome, status: str) -> None:
    assert derive(fold([event(CallState.ENDED, 1, outcome=outcome)]), "inbound").status == status


def test_answer_evidence_wins_over_a_missed_status() -> None:
    events = [event(CallState.ENDED, 30, outcome=CallOutcome.MISSED), event(CallState.ANSWERED, 5)]
    assert derive(fold(events), "inbound").status == "completed"


# Several events of one state (a PBX rings extension 101, then 102; Mango's legs with `seq`).

TRANSFER = [
    event(CallState.RINGING, 0, extension="101", event_key="leg-a", seq=1),
    event(CallState.RINGING, 9, extension="102", event_key="leg-b", seq=3),
    event(CallState.ANSWERED, 12, extension="102", event_key="leg-b", seq=4),
    event(CallState.ENDED, 40, outcome=CallOutcome.ANSWERED),
]


def test_events_of_one_state_are_all_kept_and_the_latest_value_wins() -> None:
    assert len(fold(TRANSFER)) == 4
    for order in itertools.permutations(TRANSFER):
        view = derive(fold(list(order)), "inbound")
        assert view.extension == "102" and view.status == "completed"
        assert view.answered_at == T0 + timedelta(seconds=12)


def test_the_provider_counter_decides_over_the_clock() -> None:
    # Mango sends events in parallel: a later seq wins even when its timestamp is earlier
    early = event(CallState.RINGING, 5, extension="103", event_key="x", seq=7)
    late = event(CallState.RINGING, 6, extension="104", event_key="y", seq=2)
    assert derive(fold([early, late]), "inbound").extension == "103"


def test_duration_comes_from_answer_and_hang_up_when_the_provider_gives_none() -> None:
    events = [event(CallState.RINGING, 0), event(CallState.ANSWERED, 4),
              event(CallState.ENDED, 65)]
    view = derive(fold(events), "inbound")
    assert view.duration_s == 61 and view.status == "completed"
    assert derive(fold(events[:1] + events[2:]), "inbound").duration_s is None  # never answered


def test_long_event_keys_fit_the_idempotency_column() -> None:
    long_key = "MToxMDE0MDc2NDo0Mjo0Mzk4NzQ1MzI6MTpvdXQ=:Appeared"
    name = event(CallState.RECORDING, 0, event_key=long_key).name
    assert len(name) <= 32 and name.startswith("call.recording/")
    assert name == event(CallState.RECORDING, 9, event_key=long_key).name  # stable
    assert name != event(CallState.RECORDING, 0, event_key=long_key + "x").name
