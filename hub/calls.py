"""The call lifecycle. Every stored call is derived from the set of its events, never from
their order, so duplicates and any arrival order give the same final state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hub.db import Program, Row, Stmt, as_json, to_json
from hub.events import CallEvent, CallOutcome, CallState, Direction, Party
from hub.matching import CLIENT_COLUMNS, MANAGER_JOIN
from hub.timeline import entry_dict

_RANK = {CallState.RINGING: 1, CallState.ANSWERED: 2, CallState.ENDED: 3}
# which event's value wins for a field when several carry one: the most informative first
_PREFER = (CallState.ANSWERED, CallState.ENDED, CallState.RINGING, CallState.RECORDING)
# a click-to-call entry waits this long for the provider's own call to claim it
DIAL_CLAIM_WINDOW = timedelta(minutes=10)
DIAL_PREFIX = "dial:"
# the hub's own end for a call whose end never arrived: it sorts before every provider event,
# so a real end that turns up later still decides the outcome
STALE_KEY = "unanswered"
STALE_SEQ = -2


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
        "seq": event.seq,
    }
    return {k: v for k, v in fields.items() if v is not None}


def state_of(name: str) -> CallState:
    """The state an event name stands for: `call.ringing/NOTIFY_INTERNAL:101` → ringing."""
    return CallState(name.split(".", 1)[1].split("/", 1)[0])


def _order(item: tuple[str, dict[str, Any]]) -> tuple[int, str, str]:
    name, snap = item
    return (snap.get("seq", -1), snap["at"], name)


def _of_state(events: dict[str, dict[str, Any]], state: CallState) -> list[dict[str, Any]]:
    """The state's events, latest last (by the provider's counter, then time, then name)."""
    return [snap for _, snap in sorted(
        ((n, e) for n, e in events.items() if state_of(n) == state), key=_order
    )]


def _first(events: dict[str, dict[str, Any]], field: str) -> Any:
    for state in _PREFER:
        values = [snap[field] for snap in _of_state(events, state) if field in snap]
        if values:
            return values[-1]
    return None


def _at(events: dict[str, dict[str, Any]], state: CallState) -> datetime | None:
    times = [datetime.fromisoformat(snap["at"]) for snap in _of_state(events, state)]
    return min(times) if times else None


def derive(events: dict[str, dict[str, Any]], direction: str) -> CallView:
    """The call's state from its events (a pure function of the set)."""
    states = [state_of(n) for n in events if state_of(n) != CallState.RECORDING]
    state = max(states, key=_RANK.__getitem__) if states else CallState.RINGING
    ended = [snap["outcome"] for snap in _of_state(events, CallState.ENDED) if "outcome" in snap]
    outcome = ended[-1] if ended else None
    answered = CallState.ANSWERED in states or CallOutcome.ANSWERED in ended
    status = _status(state, outcome, answered)
    times = [datetime.fromisoformat(e["at"]) for e in events.values()]
    answered_at, ended_at = _at(events, CallState.ANSWERED), _at(events, CallState.ENDED)
    return CallView(
        state=state.value,
        status=status,
        outcome=_outcome(state, outcome, answered),
        was_answered=answered,
        started_at=min(times),
        answered_at=answered_at,
        ended_at=ended_at,
        duration_s=_duration(_first(events, "duration"), answered_at, ended_at),
        extension=_first(events, "extension"),
        line=_first(events, "line"),
        recording_url=_first(events, "recording_url"),
    )


def _duration(given: int | None, answered: datetime | None, ended: datetime | None) -> int | None:
    """The provider's talk time, else what the answer and hang-up times say (a SIP proxy)."""
    if given is not None:
        return int(given)
    if answered is not None and ended is not None and ended >= answered:
        return round((ended - answered).total_seconds())
    return None


def _outcome(state: CallState, outcome: str | None, answered: bool) -> str | None:
    if state != CallState.ENDED:
        return None
    return CallOutcome.ANSWERED.value if answered else (outcome or CallOutcome.MISSED.value)


def _status(state: CallState, outcome: str | None, answered: bool) -> str:
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
    """What one event did to its call: the timeline entry and the view before and after."""

    interaction: dict[str, Any]
    before: CallView | None
    after: CallView
    direction: str


def find_call(event: CallEvent) -> Stmt:
    """The stored call (locked on PostgreSQL) with its card and the card's manager."""
    return Stmt(
        "SELECT k.id AS k_id, k.direction AS k_direction, k.events AS k_events, "  # noqa: S608
        "k.interaction_id AS k_interaction, k.remote_phone AS k_phone, k.client_id AS k_client, "
        f"{CLIENT_COLUMNS} "
        f"FROM call k LEFT JOIN client c ON c.id = k.client_id {MANAGER_JOIN} "
        "WHERE k.source = ? AND k.call_id = ?",
        (event.source, event.call_id),
        pg_suffix=" FOR UPDATE OF k",
    )


def apply_event(
    event: CallEvent, found: Row | None, client_id: int | None, phone: str | None, when: datetime
) -> Program[CallChange]:
    """Fold one event into its call, creating the call and its timeline entry on first sight."""
    key = event.name
    if found is None:
        return (yield from _create(event, {key: snapshot(event)}, client_id, phone, when))
    events = as_json(found["k_events"])
    direction = found["k_direction"]
    if event.state != CallState.RECORDING and all(
        state_of(n) == CallState.RECORDING for n in events
    ):
        # only a recording notice was seen, and it may not know the direction: this event does
        direction = event.direction.value
        yield Stmt("UPDATE call SET direction = ? WHERE id = ?", (direction, found["k_id"]))
        yield Stmt("UPDATE interaction SET direction = ? WHERE id = ?",
                   (_short(direction), found["k_interaction"]))
    before = derive(events, direction)
    events[key] = snapshot(event)
    after = derive(events, direction)
    meta = _meta(event, found["k_phone"], after)
    yield Stmt(
        "UPDATE call SET state = ?, outcome = ?, was_answered = ?, line = ?, extension = ?, "
        "started_at = ?, answered_at = ?, ended_at = ?, duration_s = ?, recording_url = ?, "
        "events = ? WHERE id = ?",
        (*_view_values(after), to_json(events), found["k_id"]),
    )
    yield Stmt(
        "UPDATE interaction SET occurred_at = ?, status = ?, meta = ?, updated_at = ? WHERE id = ?",
        (after.started_at, after.status, to_json(meta), when, found["k_interaction"]),
    )
    entry = _entry(found["k_interaction"], client_id, event, direction, after, meta)
    return CallChange(entry, before, after, direction)


def attach_card(found: Row, client_id: int, phone: str | None) -> Program[None]:
    """A call first seen without a number joins the card a later event of it names."""
    yield Stmt("UPDATE call SET client_id = ?, remote_phone = ? WHERE id = ?",
               (client_id, phone, found["k_id"]))
    yield Stmt("UPDATE interaction SET client_id = ? WHERE id = ?",
               (client_id, found["k_interaction"]))


def _create(
    event: CallEvent, events: dict[str, Any], client_id: int | None, phone: str | None,
    when: datetime,
) -> Program[CallChange]:
    direction = event.direction.value
    view = derive(events, direction)
    meta = _meta(event, phone, view)
    rows = yield Stmt(
        "INSERT INTO interaction (client_id, kind, direction, channel, occurred_at, status, text, "
        "meta, source, external_id, created_at, updated_at) "
        "VALUES (?, 'call', ?, ?, ?, ?, '', ?, ?, ?, ?, ?) RETURNING id",
        (client_id, _short(direction), event.source, view.started_at, view.status, to_json(meta),
         event.source, f"call:{event.call_id}", when, when),
    )
    interaction_id = int(rows[0]["id"])
    yield Stmt(
        "INSERT INTO call (state, outcome, was_answered, line, extension, started_at, "
        "answered_at, ended_at, duration_s, recording_url, events, source, call_id, direction, "
        "remote_phone, client_id, interaction_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (*_view_values(view), to_json(events), event.source, event.call_id, direction, phone,
         client_id, interaction_id),
    )
    entry = _entry(interaction_id, client_id, event, direction, view, meta)
    return CallChange(entry, None, view, direction)


def _view_values(view: CallView) -> tuple[Any, ...]:
    return (view.state, view.outcome, view.was_answered, view.line, view.extension,
            view.started_at, view.answered_at, view.ended_at, view.duration_s, view.recording_url)


def _short(direction: str) -> str:
    return "in" if direction == Direction.INBOUND else "out"


def _meta(event: CallEvent, phone: str | None, view: CallView) -> dict[str, Any]:
    return {
        "call_id": event.call_id,
        "provider": event.source,
        "phone": phone,
        "line": view.line,
        "extension": view.extension,
        "duration": view.duration_s,
        "recording_url": view.recording_url,
        "answered_at": view.answered_at.isoformat() if view.answered_at else None,
        "ended_at": view.ended_at.isoformat() if view.ended_at else None,
    }


def _entry(
    interaction_id: int, client_id: int | None, event: CallEvent, direction: str, view: CallView,
    meta: dict[str, Any],
) -> dict[str, Any]:
    return entry_dict(interaction_id, client_id, "call", _short(direction), event.source,
                      view.started_at, view.status, "", meta)


# Click-to-call. The hub records the outbound call before it asks the provider to dial, under
# `dial:<token>`; the provider's own events for that call then claim the entry instead of
# opening a second one: by the token where the provider carries it back, else as the newest
# unclaimed click-to-call with the same client in the last few minutes.


def dial_call_id(token: str) -> str:
    """The call id a click-to-call entry waits under until the provider's call claims it."""
    return DIAL_PREFIX + token


def find_dial(event: CallEvent, client_id: int | None, when: datetime) -> Stmt | None:
    """The click-to-call entry this outbound event belongs to (locked on PostgreSQL)."""
    select = (
        "SELECT k.id AS k_id, k.direction AS k_direction, k.events AS k_events, "  # noqa: S608
        "k.interaction_id AS k_interaction, k.remote_phone AS k_phone, k.client_id AS k_client, "
        f"{CLIENT_COLUMNS} "
        f"FROM call k LEFT JOIN client c ON c.id = k.client_id {MANAGER_JOIN} "
    )
    if event.correlation:
        return Stmt(select + "WHERE k.source = ? AND k.call_id = ?",
                    (event.source, dial_call_id(event.correlation)), pg_suffix=" FOR UPDATE OF k")
    if client_id is None or event.direction != Direction.OUTBOUND:
        return None
    return Stmt(
        select + "WHERE k.client_id = ? AND k.source = ? AND k.call_id LIKE 'dial:%' "
        "AND k.state != 'ended' AND k.started_at >= ? ORDER BY k.id DESC LIMIT 1",
        (client_id, event.source, when - DIAL_CLAIM_WINDOW), pg_suffix=" FOR UPDATE OF k",
    )


def claim_dial(found: Row, call_id: str) -> Program[None]:
    """Give a click-to-call entry the provider's own call id."""
    yield Stmt("UPDATE call SET call_id = ? WHERE id = ?", (call_id, found["k_id"]))
    yield Stmt("UPDATE interaction SET external_id = ? WHERE id = ?",
               (f"call:{call_id}", found["k_interaction"]))


# A provider may lose a call's last notification. A call still ringing long after it began is
# taken as ended unanswered (an inbound one then opens its call-back reminder); if the real
# end arrives later it decides, since every event stays in the call's set.


def find_stale(before: datetime, limit: int) -> Stmt:
    """Calls the hub first heard of before `before` that are still ringing, oldest first.
    The hub's own clock decides (when the entry was made), not the provider's: a PBX whose
    clock or time zone is off must not get its ringing calls ended."""
    return Stmt(
        "SELECT k.source, k.call_id, k.direction, k.remote_phone FROM call k "
        "JOIN interaction i ON i.id = k.interaction_id "
        "WHERE k.state = 'ringing' AND i.created_at < ? ORDER BY i.created_at, k.id LIMIT ?",
        (before, limit),
    )


def stale_end(row: Row, when: datetime) -> CallEvent:
    """The hub's own end for a call that has rung for too long."""
    return CallEvent(
        source=row["source"], call_id=row["call_id"], state=CallState.ENDED,
        direction=Direction(row["direction"]), remote=Party(phone=row["remote_phone"]),
        occurred_at=when, event_key=STALE_KEY, seq=STALE_SEQ,
    )
