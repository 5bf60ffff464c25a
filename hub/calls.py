"""The call lifecycle. Every stored call is derived from the set of its events, never from
their order, so duplicates and any arrival order give the same final state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise import BaseDBAsyncClient

from hub.db import is_postgres
from hub.events import CallEvent, CallOutcome, CallState, Direction
from hub.models import Call, Interaction

_RANK = {CallState.RINGING: 1, CallState.ANSWERED: 2, CallState.ENDED: 3}
# which event's value wins for a field when several carry one: the most informative first
_PREFER = ("call.answered", "call.ended", "call.ringing", "call.recording")


@dataclass(frozen=True, slots=True)
class CallView:
    """What the stored call and its timeline entry say, derived from its events."""

    state: str
    status: str
    outcome: str | None
    was_answered: bool
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    duration_s: int | None
    extension: str | None
    line: str | None
    recording_url: str | None


def snapshot(event: CallEvent) -> dict[str, Any]:
    """The facts one event contributes, as stored in the call's event log."""
    fields = {
        "at": event.occurred_at.isoformat(),
        "extension": event.extension,
        "line": event.line,
        "outcome": event.outcome.value if event.outcome else None,
        "duration": event.duration_s,
        "recording_url": event.recording_url,
    }
    return {k: v for k, v in fields.items() if v is not None}


def _first(events: dict[str, dict[str, Any]], field: str) -> Any:
    for name in _PREFER:
        if field in events.get(name, {}):
            return events[name][field]
    return None


def _at(events: dict[str, dict[str, Any]], name: str) -> datetime | None:
    return datetime.fromisoformat(events[name]["at"]) if name in events else None


def derive(events: dict[str, dict[str, Any]], direction: str) -> CallView:
    """The call's state from its events (a pure function of the set)."""
    states = [CallState(n.split(".", 1)[1]) for n in events if n != "call.recording"]
    state = max(states, key=_RANK.__getitem__) if states else CallState.RINGING
    outcome = events.get("call.ended", {}).get("outcome")
    answered = "call.answered" in events or outcome == CallOutcome.ANSWERED
    status = _status(state, outcome, answered, direction)
    times = [datetime.fromisoformat(e["at"]) for e in events.values()]
    return CallView(
        state=state.value,
        status=status,
        outcome=_outcome(state, outcome, answered),
        was_answered=answered,
        started_at=min(times),
        answered_at=_at(events, "call.answered"),
        ended_at=_at(events, "call.ended"),
        duration_s=_first(events, "duration"),
        extension=_first(events, "extension"),
        line=_first(events, "line"),
        recording_url=_first(events, "recording_url"),
    )


def _outcome(state: CallState, outcome: str | None, answered: bool) -> str | None:
    if state != CallState.ENDED:
        return None
    return CallOutcome.ANSWERED.value if answered else (outcome or CallOutcome.MISSED.value)


def _status(state: CallState, outcome: str | None, answered: bool, direction: str) -> str:
    del direction  # both directions read the same; kept for providers that differ
    if state == CallState.RINGING:
        return "ringing"
    if state == CallState.ANSWERED:
        return "answered"
    if answered:
        return "completed"
    if outcome in (CallOutcome.BUSY, CallOutcome.FAILED):
        return str(outcome)
    return "missed"


def is_missed_inbound(view: CallView, direction: str) -> bool:
    """An inbound call that ended without anyone answering: somebody must call back."""
    return (
        direction == Direction.INBOUND
        and view.state == CallState.ENDED
        and not view.was_answered
    )


@dataclass(frozen=True, slots=True)
class CallChange:
    call: Call
    interaction: Interaction
    before: CallView | None
    after: CallView


async def load_call(conn: BaseDBAsyncClient, event: CallEvent) -> Call | None:
    """The stored call for this event, locked for update where the database can."""
    query = Call.filter(source=event.source, call_id=event.call_id).using_db(conn)
    if is_postgres(conn):
        query = query.select_for_update()
    return await query.first()


async def apply_call_event(
    conn: BaseDBAsyncClient,
    event: CallEvent,
    call: Call | None,
    client_id: int | None,
    remote_phone: str | None,
    when: datetime,
) -> CallChange:
    """Fold one event into its call (creating the call and its timeline entry on first sight)."""
    if call is None:
        return await _create(conn, event, client_id, remote_phone, when)
    before = derive(call.events, call.direction)
    call.events = {**call.events, f"call.{event.state.value}": snapshot(event)}
    after = derive(call.events, call.direction)
    _copy_view(call, after)
    await call.save(using_db=conn)
    interaction = await Interaction.get(id=call.interaction_id).using_db(conn)  # type: ignore[attr-defined]
    _fill_interaction(interaction, call, after, when)
    await interaction.save(using_db=conn)
    return CallChange(call, interaction, before, after)


async def _create(
    conn: BaseDBAsyncClient,
    event: CallEvent,
    client_id: int | None,
    remote_phone: str | None,
    when: datetime,
) -> CallChange:
    events = {f"call.{event.state.value}": snapshot(event)}
    view = derive(events, event.direction.value)
    interaction = Interaction(
        client_id=client_id, kind="call", direction=_short(event.direction), channel=event.source,
        source=event.source, external_id=f"call:{event.call_id}", created_at=when,
    )
    call = Call(
        source=event.source, call_id=event.call_id, direction=event.direction.value,
        remote_phone=remote_phone, client_id=client_id, events=events,
    )
    _copy_view(call, view)
    _fill_interaction(interaction, call, view, when)
    await interaction.save(using_db=conn)
    call.interaction_id = interaction.id  # type: ignore[attr-defined]
    await call.save(using_db=conn)
    return CallChange(call, interaction, None, view)


def _short(direction: Direction) -> str:
    return "in" if direction == Direction.INBOUND else "out"


def _copy_view(call: Call, view: CallView) -> None:
    call.state = view.state
    call.outcome = view.outcome
    call.was_answered = view.was_answered
    call.started_at = view.started_at
    call.answered_at = view.answered_at
    call.ended_at = view.ended_at
    call.duration_s = view.duration_s
    call.extension = view.extension
    call.line = view.line
    call.recording_url = view.recording_url


def _fill_interaction(interaction: Interaction, call: Call, view: CallView, when: datetime) -> None:
    interaction.occurred_at = view.started_at
    interaction.status = view.status
    interaction.updated_at = when
    interaction.text = ""
    interaction.meta = {
        "call_id": call.call_id,
        "provider": call.source,
        "phone": call.remote_phone,
        "line": view.line,
        "extension": view.extension,
        "duration": view.duration_s,
        "recording_url": view.recording_url,
        "answered_at": view.answered_at.isoformat() if view.answered_at else None,
        "ended_at": view.ended_at.isoformat() if view.ended_at else None,
    }
