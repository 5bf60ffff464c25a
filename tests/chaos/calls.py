"""Calls under faults: signed generic-webhook call lifecycles, every delivery retried until the
hub answers 2xx, 20 % of them repeated, all of them shuffled (the events of one call arrive in
any order), several in flight, while the hub is SIGKILLed and started again and PostgreSQL is
restarted under it. Then the database must hold what one in-order delivery of each event would
have left: one timeline entry per call in its final state, one card per caller, every event,
and one open call-back reminder for each caller whose last call went unanswered."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from tests.chaos.faults import (
    Courier,
    HubProcess,
    PrivatePostgres,
    Report,
    as_dict,
    expect_one_card_each,
    hub_env,
    keep_alive,
    query,
)
from tests.helpers import GENERIC_SECRET, sign

PATH = "/webhooks/telephony/generic"
LINE = "+74950000000"
KINDS = (("answered", 0.45), ("transfer", 0.15), ("missed", 0.32), ("busy", 0.08))
STATUS = {"answered": "completed", "transfer": "completed", "missed": "missed", "busy": "busy"}


@dataclass
class PlannedCall:
    """One call's lifecycle and what the hub must end up saying about it."""

    call_id: str
    phone: str  # E.164: the card it must land on
    kind: str
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime
    duration: int
    extension: str  # the one the entry must show: the answering one when answered
    recording_url: str | None
    bodies: list[bytes] = field(default_factory=list)
    names: set[str] = field(default_factory=set)

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    @property
    def status(self) -> str:
        return STATUS[self.kind]


def written_forms(phone: str) -> list[str]:
    """Ways a PBX writes +7 912 345-67-89."""
    d = phone.removeprefix("+7")
    return [phone, "7" + d, f"8 ({d[:3]}) {d[3:6]}-{d[6:8]}-{d[8:]}",
            f"+7 {d[:3]} {d[3:6]} {d[6:]}", f"8-{d[:3]}-{d[3:6]}-{d[6:8]}-{d[8:]}"]


def plan_calls(calls: int, seed: int, callers: int | None = None) -> list[PlannedCall]:
    """`calls` inbound calls from `callers` numbers (a third of the calls by default), a few
    minutes apart over the last days (so the calls of one caller have an order in time)."""
    rng = random.Random(seed)
    callers = callers or max(1, calls // 3)
    phones = [f"+7916{seed % 100:02d}{n:05d}" for n in range(callers)]
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    plan = []
    for i in range(calls):
        call_id = f"chaos-{seed}-{i}"
        phone = phones[i] if i < callers else rng.choice(phones)  # every number calls once
        kind = rng.choices([k for k, _ in KINDS], [w for _, w in KINDS])[0]
        start = base + timedelta(seconds=i * 97 + rng.randrange(60))
        plan.append(_lifecycle(call_id, phone, kind, start, rng))
    return plan


def _lifecycle(call_id: str, phone: str, kind: str, start: datetime,
               rng: random.Random) -> PlannedCall:
    written = rng.choice(written_forms(phone))
    base = {"call_id": call_id, "direction": "inbound", "from": written, "to": LINE}
    first = str(101 + rng.randrange(5))
    events: list[dict[str, Any]] = [
        {**base, "event": "call.ringing", "extension": first, "timestamp": start.isoformat()}]
    if kind in ("answered", "transfer"):
        answered = start + timedelta(seconds=rng.randrange(3, 20))
        talk = rng.randrange(10, 900)
        ended = answered + timedelta(seconds=talk)
        # a transfer: rung on one extension, taken on another, ended on a third
        taker = str(201 + rng.randrange(5)) if kind == "transfer" else first
        last = str(301 + rng.randrange(5)) if kind == "transfer" else first
        events.append({**base, "event": "call.answered", "extension": taker,
                       "timestamp": answered.isoformat()})
        events.append({**base, "event": "call.ended", "extension": last, "status": "answered",
                       "duration": talk, "timestamp": ended.isoformat()})
        recording = None
        if rng.random() < 0.3:
            recording = f"https://pbx.example.test/rec/{call_id}.mp3"
            events.append({**base, "event": "call.recording", "extension": last,
                           "recording_url": recording,
                           "timestamp": (ended + timedelta(seconds=5)).isoformat()})
        call = PlannedCall(call_id, phone, kind, start, answered, ended, talk, taker, recording)
    else:
        ended = start + timedelta(seconds=rng.randrange(5, 40))
        events.append({**base, "event": "call.ended", "extension": None, "status": kind,
                       "duration": 0, "timestamp": ended.isoformat()})
        call = PlannedCall(call_id, phone, kind, start, None, ended, 0, first, None)
    call.bodies = [json.dumps(e, ensure_ascii=False).encode() for e in events]
    call.names = {e["event"] for e in events}
    return call


def deliveries(plan: list[PlannedCall], repeat_share: float, seed: int,
               total: int | None = None) -> tuple[list[bytes], int]:
    """Every event once plus repeats of random ones (`repeat_share` of all deliveries, or as
    many as make `total`), shuffled; and how many are repeats."""
    rng = random.Random(seed + 1)
    originals = [body for call in plan for body in call.bodies]
    if total is None:
        repeats = round(len(originals) * repeat_share / (1 - repeat_share))
    else:
        repeats = max(0, total - len(originals))
    out = originals + [rng.choice(originals) for _ in range(repeats)]
    rng.shuffle(out)
    return out, repeats


@dataclass
class CallsRun:
    """The knobs of one run."""

    calls: int = 30
    total: int | None = None  # deliveries in all (else the repeat share decides)
    repeat_share: float = 0.2
    concurrency: int = 8
    faults: tuple[str, ...] = ("kill",)  # in order, spread evenly over the run: kill, pg-restart
    pg_restart_mode: str = "immediate"
    seed: int = 1


async def run_calls(database_url: str, workdir: Path, run: CallsRun,
                    pg: PrivatePostgres | None = None) -> Report:
    report = Report("calls")
    plan = plan_calls(run.calls, run.seed)
    bodies, repeats = deliveries(plan, run.repeat_share, run.seed, run.total)
    report.figure(f"{len(plan)} calls from {len({c.phone for c in plan})} numbers "
                  f"({dict(Counter(c.kind for c in plan))}); {len(bodies)} deliveries, "
                  f"{repeats} of them repeats ({repeats / len(bodies):.0%}), shuffled, "
                  f"{run.concurrency} in flight")
    hub = HubProcess(hub_env(database_url, HUB_TELEPHONY_GENERIC_SECRET=GENERIC_SECRET,
                             HUB_MAX_INFLIGHT_WEBHOOKS="64"), workdir, "hub-calls")
    hub.start()
    duplicates = 0
    done = asyncio.Event()
    started = time.monotonic()
    try:
        await hub.wait_healthy()
        timeout = aiohttp.ClientTimeout(total=20)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            courier = Courier(session, random.Random(run.seed))
            queue = iter(bodies)

            async def worker() -> None:
                nonlocal duplicates
                for body in queue:
                    headers = {"Content-Type": "application/json",
                               "X-Hub-Signature-256": sign(body)}
                    answer = await courier.post(hub.url + PATH, body, headers)
                    duplicates += bool(answer.get("duplicate"))

            faults = asyncio.create_task(
                _faults(run, hub, pg, courier, len(bodies), report, done))
            watchdog = asyncio.create_task(keep_alive(hub, done))
            try:
                await asyncio.gather(*(worker() for _ in range(run.concurrency)))
            finally:
                done.set()
                await asyncio.gather(faults, watchdog)
            elapsed = time.monotonic() - started
            report.figure(f"sent in {elapsed:.1f} s: {courier.describe()}")
            report.figure(f"answered duplicate: {duplicates} (repeats sent: {repeats}; a "
                          "delivery whose answer a kill cut off also comes back duplicate)")
    finally:
        hub.stop()
    if hub.unexpected_exits:
        report.problem(f"the hub exited by itself {len(hub.unexpected_exits)} time(s) "
                       f"(exit codes {hub.unexpected_exits}); log {hub.log}")
    await check_calls(database_url, plan, report)
    return report


async def _faults(run: CallsRun, hub: HubProcess, pg: PrivatePostgres | None, courier: Courier,
                  total: int, report: Report, done: asyncio.Event) -> None:
    """Each fault once the share of deliveries it waits for has gone through."""
    for number, fault in enumerate(run.faults, 1):
        threshold = total * number // (len(run.faults) + 1)
        while courier.sent < threshold and not done.is_set():  # noqa: ASYNC110 (a count)
            await asyncio.sleep(0.01)
        if done.is_set():
            report.problem(f"the run ended before fault {fault} #{number}")
            return
        began = time.monotonic()
        if fault == "kill":
            await hub.restart_after_kill()
            what = "SIGKILL of the hub, started again"
        elif fault == "pg-restart":
            assert pg is not None
            await asyncio.to_thread(pg.restart, run.pg_restart_mode)
            what = f"PostgreSQL restart (-m {run.pg_restart_mode})"
        else:
            raise ValueError(fault)
        report.figure(f"fault {number}: {what} after {courier.sent} deliveries "
                      f"(back in {time.monotonic() - began:.1f} s)")


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


async def check_calls(database_url: str, plan: list[PlannedCall], report: Report) -> None:
    """Compare the database with the plan."""
    entries = await query(database_url, "SELECT id, external_id, status, client_id, meta "
                                        "FROM interaction WHERE kind = 'call'")
    by_call: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        by_call[str(entry["external_id"]).removeprefix("call:")].append(entry)
    report.expect("call timeline entries", len(entries), len(plan))
    doubled = [k for k, v in by_call.items() if len(v) > 1]
    if doubled:
        report.problem(f"{len(doubled)} calls have more than one entry: {doubled[:5]}")
    rows = {r["call_id"]: r for r in await query(
        database_url, "SELECT call_id, state, outcome, was_answered, extension, started_at, "
                      "answered_at, ended_at, duration_s, recording_url, events, client_id, "
                      "interaction_id, remote_phone FROM call")}
    report.expect("call rows", len(rows), len(plan))
    owners = await expect_one_card_each(
        report, database_url, "phone", "callers", {c.phone for c in plan})
    wrong: Counter[str] = Counter()
    examples: list[str] = []
    events_stored = 0
    for call in plan:
        row, found = rows.get(call.call_id), by_call.get(call.call_id, [])
        if row is None or not found:
            wrong["missing"] += 1
            examples.append(f"{call.call_id}: no call row or entry")
            continue
        entry = found[0]
        names = set(as_dict(row["events"]))
        events_stored += len(names)
        checks = {
            "status": (entry["status"], call.status),
            "events": (sorted(names), sorted(call.names)),
            "extension": (row["extension"], call.extension),
            "duration": (row["duration_s"], call.duration),
            "started_at": (_time(row["started_at"]), call.started_at),
            "answered_at": (_time(row["answered_at"]), call.answered_at),
            "ended_at": (_time(row["ended_at"]), call.ended_at),
            "was_answered": (bool(row["was_answered"]), call.answered),
            "recording_url": (row["recording_url"], call.recording_url),
            "card": (row["client_id"], owners.get(call.phone)),
            "entry card": (entry["client_id"], owners.get(call.phone)),
            "entry row": (row["interaction_id"], entry["id"]),
            "meta duration": (as_dict(entry["meta"]).get("duration"), call.duration),
        }
        for what, (got, want) in checks.items():
            if got != want:
                wrong[what] += 1
                if len(examples) < 10:
                    examples.append(f"{call.call_id} ({call.kind}) {what}: {got!r} != {want!r}")
    report.expect("calls whose entry differs from the plan", sum(wrong.values()), 0)
    if wrong:
        report.problem(f"wrong fields: {dict(wrong)}; e.g. {examples}")
    originals = sum(len(c.names) for c in plan)
    report.expect("events in the calls' event sets", events_stored, originals)
    processed = await query(database_url, "SELECT COUNT(*) AS n FROM processed_event "
                                          "WHERE source = 'generic'")
    report.expect("events recorded as processed", int(processed[0]["n"]), originals)
    await _check_reminders(database_url, plan, owners, report)


async def _check_reminders(database_url: str, plan: list[PlannedCall], owners: dict[str, Any],
                           report: Report) -> None:
    """The README's rule, order-free: a caller whose calls after their last connected call
    include unanswered ones has exactly one open call-back reminder, counting those calls;
    anyone else has none open."""
    want: dict[Any, int] = {}
    by_phone: dict[str, list[PlannedCall]] = defaultdict(list)
    for call in plan:
        by_phone[call.phone].append(call)
    for phone, calls in by_phone.items():
        connected = max((c.started_at for c in calls if c.answered), default=None)
        unanswered = [c for c in calls if not c.answered
                      and (connected is None or c.started_at > connected)]
        want[owners.get(phone)] = len(unanswered)
    rows = await query(database_url, "SELECT client_id, count, status FROM reminder "
                                     "WHERE origin = 'missed_call' "
                                     "AND status IN ('pending', 'fired')")
    open_rows: dict[Any, list[int]] = defaultdict(list)
    for row in rows:
        open_rows[row["client_id"]].append(int(row["count"]))
    expected_open = sum(1 for n in want.values() if n)
    report.expect("open call-back reminders", len(rows), expected_open)
    several = {k: v for k, v in open_rows.items() if len(v) > 1}
    if several:
        report.problem(f"{len(several)} cards have more than one open reminder: "
                       f"{list(several.items())[:5]}")
    wrong_open = [k for k, n in want.items() if bool(n) != bool(open_rows.get(k))]
    report.expect("cards whose reminder is open/closed wrongly", len(wrong_open), 0)
    counts = [(k, open_rows[k], n) for k, n in want.items()
              if n and open_rows.get(k) and sum(open_rows[k]) != n]
    report.expect("open reminders whose count is not the unanswered calls since the last "
                  "connected one", len(counts), 0)
    if counts:
        report.figure(f"e.g. (card, count, expected) {counts[:3]}")
