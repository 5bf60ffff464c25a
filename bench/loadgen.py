"""Signed generic-webhook call lifecycles and the two ways of sending them.

A call is ringing → answered → ended(answered, duration) or ringing → ended(missed); about 10 %
of the requests are exact re-deliveries of an earlier event of the same call. Bodies and
signatures are built before the clock starts, so the sender spends its CPU on HTTP only.

Closed loop: C workers, each sends one call's events in order, then takes the next call.
Open loop: one request is due every 1/R s whatever the server does; the next event of a call is
sent only once the previous one was answered, so each slot goes to a call that is ready (or to a
new call). Latency counts from the moment a request was due, so a slow server cannot hide queueing.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import math
import random
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from cards import phone_of, written_forms

WEBHOOK_PATH = "/webhooks/telephony/generic"
REPEAT_SHARE = 0.10
KNOWN_SHARE = 0.70
RETURNING_SHARE = 0.10  # of the unknown callers: someone who already called during this run
ANSWERED_SHARE = 0.60
LINE = "+74951234567"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One prepared HTTP request."""

    body: bytes
    headers: dict[str, str]
    repeat: bool


@dataclass(slots=True)
class Script:
    """The deliveries of one call, in the order a PBX would send them."""

    deliveries: list[Delivery]


@dataclass(slots=True)
class Stats:
    """What one measured run saw."""

    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    repeats: int = 0
    duplicates: int = 0
    elapsed: float = 0.0
    server_cpu: float = 0.0  # CPU seconds the server used during the run
    client_cpu: float = 0.0  # CPU seconds this load generator used
    round_rates: list[float] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return len(self.latencies) + sum(self.errors.values())

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    @property
    def server_cpu_per_event(self) -> float:
        return self.server_cpu / len(self.latencies) if self.latencies else 0.0

    def add(self, other: Stats) -> None:
        """Fold another round of the same scenario into this one."""
        self.latencies += other.latencies
        self.errors.update(other.errors)
        self.repeats += other.repeats
        self.duplicates += other.duplicates
        self.elapsed += other.elapsed
        self.server_cpu += other.server_cpu
        self.client_cpu += other.client_cpu
        self.round_rates.append(other.rate)


def sign(body: bytes, secret: str) -> str:
    """The X-Hub-Signature-256 header value (as tests/helpers.py)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Planner:
    """Builds call scripts: known callers from the prefill and new ones, in many written forms."""

    def __init__(self, clients: int, secret: str, seed: int) -> None:
        self.clients = clients
        self.secret = secret
        self.rng = random.Random(seed)
        self.next_unknown = clients + seed * 1_000_000  # disjoint per planner and from the prefill
        self.unknown_seen: list[int] = []
        self.now = datetime.now(UTC)

    def scripts(self, prefix: str, events: int) -> list[Script]:
        """Calls whose deliveries add up to at least `events`."""
        out: list[Script] = []
        total = 0
        while total < events:
            out.append(self.script(f"{prefix}-{len(out)}"))
            total += len(out[-1].deliveries)
        return out

    def calls(self, prefix: str, count: int) -> list[Script]:
        """`count` calls (an open loop may start a new call in every slot)."""
        return [self.script(f"{prefix}-{i}") for i in range(count)]

    def script(self, call_id: str) -> Script:
        phone = self.rng.choice(written_forms(phone_of(self._caller())))
        start = self.now - timedelta(milliseconds=self.rng.randrange(3_600_000))
        originals = [self._delivery(b, False) for b in self._bodies(call_id, phone, start)]
        deliveries: list[Delivery] = []
        for i, delivery in enumerate(originals):
            deliveries.append(delivery)
            # 1/9 per original event makes re-deliveries 10 % of all requests
            if self.rng.random() < REPEAT_SHARE / (1 - REPEAT_SHARE):
                earlier = originals[self.rng.randrange(i + 1)]
                deliveries.append(Delivery(earlier.body, earlier.headers, True))
        return Script(deliveries)

    def _caller(self) -> int:
        if self.rng.random() < KNOWN_SHARE:
            return self.rng.randrange(self.clients)
        if self.unknown_seen and self.rng.random() < RETURNING_SHARE:
            return self.rng.choice(self.unknown_seen)
        self.next_unknown += 1
        self.unknown_seen.append(self.next_unknown)
        return self.next_unknown

    def _bodies(self, call_id: str, phone: str, start: datetime) -> list[dict[str, Any]]:
        base = {"call_id": call_id, "direction": "inbound", "from": phone, "to": LINE,
                "extension": None}
        ringing = {**base, "event": "call.ringing", "timestamp": start.isoformat()}
        if self.rng.random() >= ANSWERED_SHARE:
            ended = start + timedelta(seconds=self.rng.randrange(5, 40))
            return [ringing, {**base, "event": "call.ended", "status": "missed",
                              "timestamp": ended.isoformat()}]
        extension = str(101 + self.rng.randrange(20))
        answered = start + timedelta(seconds=self.rng.randrange(3, 20))
        duration = self.rng.randrange(10, 900)
        ended = answered + timedelta(seconds=duration)
        return [
            ringing,
            {**base, "event": "call.answered", "extension": extension,
             "timestamp": answered.isoformat()},
            {**base, "event": "call.ended", "extension": extension, "status": "answered",
             "duration": duration, "timestamp": ended.isoformat()},
        ]

    def _delivery(self, data: dict[str, Any], repeat: bool) -> Delivery:
        body = json.dumps(data, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json",
                   "X-Hub-Signature-256": sign(body, self.secret)}
        return Delivery(body, headers, repeat)


Check = Callable[[Delivery, int, bytes, Stats], None]


def check_hub(delivery: Delivery, status: int, payload: bytes, stats: Stats) -> None:
    """200, and `duplicate` true exactly for the re-deliveries."""
    if status != 200:
        stats.errors[f"HTTP {status}"] += 1
        return
    duplicate = bool(json.loads(payload).get("duplicate"))
    stats.duplicates += duplicate
    if duplicate != delivery.repeat:
        stats.errors["wrong duplicate flag"] += 1


def check_status(delivery: Delivery, status: int, payload: bytes, stats: Stats) -> None:
    """200 only (the baseline knows nothing of duplicates)."""
    if status != 200:
        stats.errors[f"HTTP {status}"] += 1


async def deliver(session: aiohttp.ClientSession, url: str, delivery: Delivery, due: float,
                  stats: Stats, check: Check) -> None:
    """POST one delivery; record its latency (from `due`) and any error."""
    stats.repeats += delivery.repeat
    try:
        async with session.post(url, data=delivery.body, headers=delivery.headers) as response:
            payload = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        stats.errors[type(exc).__name__] += 1
        return
    stats.latencies.append(time.perf_counter() - due)
    check(delivery, status, payload, stats)


async def closed_loop(session: aiohttp.ClientSession, base_url: str, scripts: list[Script],
                      concurrency: int, check: Check) -> Stats:
    """`concurrency` calls in flight; each sends its next event once the last one is answered."""
    stats, url, pending = Stats(), base_url + WEBHOOK_PATH, iter(scripts)

    async def worker() -> None:
        for script in pending:  # one shared iterator: each call goes to exactly one worker
            for delivery in script.deliveries:
                await deliver(session, url, delivery, time.perf_counter(), stats, check)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    stats.elapsed = time.perf_counter() - start
    return stats


async def open_loop(session: aiohttp.ClientSession, base_url: str, scripts: list[Script],
                    rate: float, seconds: float, check: Check) -> Stats:
    """One request due every 1/rate s for `seconds`, whatever the latency."""
    stats, url = Stats(), base_url + WEBHOOK_PATH
    fresh = iter(scripts)
    ready: deque[tuple[Script, int]] = deque()
    tasks: set[asyncio.Task[None]] = set()

    async def send(script: Script, index: int, due: float) -> None:
        await deliver(session, url, script.deliveries[index], due, stats, check)
        if index + 1 < len(script.deliveries):
            ready.append((script, index + 1))

    start = time.perf_counter()
    for slot in range(int(rate * seconds)):
        due = start + slot / rate
        if (delay := due - time.perf_counter()) > 0:
            await asyncio.sleep(delay)  # pacing only; latency is measured per request
        script, index = ready.popleft() if ready else (next(fresh), 0)
        task = asyncio.create_task(send(script, index, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    while tasks:
        await asyncio.gather(*list(tasks))
    stats.elapsed = time.perf_counter() - start
    return stats


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]
