"""Throttles, each answering 429 with Retry-After before the costly part of a request runs.

Failed logins slow a guesser down: after a few wrong passwords for one e-mail, or many from one
address, further attempts are refused for a while, before any password is even checked (an
argon2 check costs real CPU). Webhooks: each source address has a request rate per provider,
so a runaway PBX or a retry storm cannot crowd out the others. (Bad signatures are not counted
against an address: behind a reverse proxy every provider shares the proxy's address, and a
stranger's bad requests must not lock the real provider out; checking an HMAC is cheap.)

Kept in memory per hub process: with several processes behind a balancer each counts its own
share, which still bounds a source."""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque

WINDOW_S = 15 * 60.0
PER_EMAIL = 5  # wrong passwords for one e-mail within the window
PER_ADDRESS = 30  # wrong passwords from one client address within the window
MAX_KEYS = 10_000  # the oldest keys are forgotten past this (memory stays bounded)


class FailedLogins:
    """Sliding windows of failure times per key ("email:..." and "addr:...")."""

    def __init__(self) -> None:
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    @staticmethod
    def keys(email: str, address: str | None) -> list[tuple[str, int]]:
        return [(f"email:{email.strip().lower()}", PER_EMAIL),
                (f"addr:{address or '?'}", PER_ADDRESS)]

    def wait(self, email: str, address: str | None) -> int:
        """Seconds until the next attempt may be tried (0: now)."""
        at = time.monotonic()
        longest = 0.0
        for key, limit in self.keys(email, address):
            times = self._recent(key, at)
            if len(times) >= limit:
                longest = max(longest, times[0] + WINDOW_S - at)
        return int(longest) + 1 if longest > 0 else 0

    def failed(self, email: str, address: str | None) -> None:
        at = time.monotonic()
        for key, _ in self.keys(email, address):
            times = self._failures.setdefault(key, deque())
            times.append(at)
            self._failures.move_to_end(key)
        while len(self._failures) > MAX_KEYS:
            self._failures.popitem(last=False)

    def succeeded(self, email: str) -> None:
        """The right password: this e-mail's count starts again (the address keeps its)."""
        self._failures.pop(f"email:{email.strip().lower()}", None)

    def _recent(self, key: str, at: float) -> deque[float]:
        times = self._failures.get(key) or deque()
        while times and times[0] <= at - WINDOW_S:
            times.popleft()
        return times


class WebhookLimits:
    """A token bucket per (provider, address): `rate` requests a second, bursts of 2 × rate;
    0: no limit."""

    def __init__(self, rate: int) -> None:
        self.rate = float(rate)
        self.burst = 2.0 * rate
        self._buckets: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()

    def wait(self, provider: str, address: str | None) -> int:
        """0 if the request may go on (a token is taken), else whole seconds to wait."""
        if self.rate <= 0:
            return 0
        at = time.monotonic()
        key = (provider, address or "?")
        tokens, then = self._buckets.pop(key, (self.burst, at))
        tokens = min(self.burst, tokens + (at - then) * self.rate)
        wait = 0 if tokens >= 1.0 else math.ceil((1.0 - tokens) / self.rate)
        self._buckets[key] = (tokens - 1.0 if not wait else tokens, at)  # now the most recent
        while len(self._buckets) > MAX_KEYS:
            self._buckets.popitem(last=False)
        return wait
