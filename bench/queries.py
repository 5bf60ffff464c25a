"""Manager-API read latency at N cards: lookup by phone and the client-list search.

Requests go one at a time (a manager typing, not a flood), each for a random prefilled card:
the phone in another written form, its 4-digit tail, 3–6 letters of the name (Cyrillic for most
cards), a piece of the e-mail.
"""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from cards import Card, card, other_form


@dataclass(slots=True)
class Probe:
    """Latencies of one kind of request, and what went wrong."""

    kind: str
    latencies: list[float] = field(default_factory=list)
    hits: list[int] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    wanted: int = 0  # requests asked for; fewer were sent when the time budget ran out

    @property
    def sent(self) -> int:
        return len(self.latencies)


_PHONE_LIKE = re.compile(r"^[\d\s()+\-.]+$")
Term = Callable[[Card, random.Random], str | None]


def phone_term(c: Card, rng: random.Random) -> str:
    return other_form(c.phone, rng)


def tail_term(c: Card, rng: random.Random) -> str:
    return c.phone[-4:]


def name_term(c: Card, rng: random.Random) -> str:
    word = max(c.name.replace("«", " ").replace("»", " ").split(), key=len)
    size = min(len(word), rng.randint(3, 6))
    start = rng.randrange(len(word) - size + 1)
    return word[start:start + size]


def email_term(c: Card, rng: random.Random) -> str | None:
    if not c.email:
        return None
    while True:
        size = rng.randint(5, 8)
        start = rng.randrange(max(1, len(c.email) - size + 1))
        piece = c.email[start:start + size]
        if not _PHONE_LIKE.match(piece):  # the hub reads digits-only input as a phone
            return piece


SEARCHES: dict[str, Term] = {
    "search: phone, other form": phone_term,
    "search: 4-digit phone tail": tail_term,
    "search: name, 3-6 letters": name_term,
    "search: e-mail substring": email_term,
}


class Reader:
    """Sequential GETs against the manager API of a running hub."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str,
                 clients: int, budget: float, seed: int = 7) -> None:
        self.session = session
        self.budget = budget  # seconds per kind: a slow query plan must not stall the run
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {token}"}
        self.clients = clients
        self.rng = random.Random(seed)
        self.now = datetime.now(UTC)

    def pick(self, want_email: bool = False) -> Card:
        """A random prefilled card (one with an e-mail when asked)."""
        while True:
            c = card(self.rng.randrange(self.clients), self.clients, self.now)
            if c.email or not want_email:
                return c

    async def lookups(self, count: int) -> Probe:
        """GET /api/lookup?phone=… must find the very card."""
        probe = Probe("lookup by phone, other form", wanted=count)
        deadline = time.perf_counter() + self.budget
        while probe.sent < count and time.perf_counter() < deadline:
            c = self.pick()
            phone = other_form(c.phone, self.rng)
            status, data, took = await self._get("/api/lookup", {"phone": phone})
            self._record(probe, status, took, 1 if status == 200 else 0)
            if status == 200 and data.get("id") != c.id:
                probe.errors["found another card"] += 1
        return probe

    async def searches(self, kind: str, count: int) -> Probe:
        """GET /api/clients?q=…; the card the term came from must be among the hits when few."""
        probe, term = Probe(kind, wanted=count), SEARCHES[kind]
        deadline = time.perf_counter() + self.budget
        while probe.sent < count and time.perf_counter() < deadline:
            c = self.pick(want_email=term is email_term)
            q = term(c, self.rng)
            assert q is not None
            status, data, took = await self._get("/api/clients", {"q": q, "limit": "50"})
            items = data.get("items", []) if status == 200 else []
            self._record(probe, status, took, len(items))
            if status == 200 and len(items) < 50 and c.id not in {i["id"] for i in items}:
                probe.errors["card not found"] += 1
        return probe

    async def filters(self, count: int) -> Probe:
        """GET /api/clients with the list page's filters (status, channel, "no contact for N
        months", manager), the first page and then up to four more by the cursor, as a manager
        leafing through the list does."""
        probe = Probe("list: filters, pages 1-5", wanted=count)
        deadline = time.perf_counter() + self.budget
        choices: list[dict[str, str]] = [
            {"status": "hot"}, {"channel": "email"}, {"channel": "telegram"},
            {"idle_months": "3"}, {"channel": "email", "idle_months": "6"},
            {"status": "new", "channel": "phone"}, {"manager_id": "2"},
        ]
        while probe.sent < count and time.perf_counter() < deadline:
            params = {**self.rng.choice(choices), "limit": "50"}
            for _ in range(self.rng.randint(1, 5)):
                status, data, took = await self._get("/api/clients", params)
                self._record(probe, status, took, len(data.get("items", [])))
                if status != 200 or not data.get("next_cursor"):
                    break
                params["cursor"] = data["next_cursor"]
        return probe

    async def _get(self, path: str, params: dict[str, str]) -> tuple[int, dict[str, Any], float]:
        start = time.perf_counter()
        async with self.session.get(self.base_url + path, params=params,
                                    headers=self.headers) as response:
            data = await response.json()
            return response.status, data, time.perf_counter() - start

    @staticmethod
    def _record(probe: Probe, status: int, took: float, hits: int) -> None:
        probe.latencies.append(took)
        probe.hits.append(hits)
        if status != 200:
            probe.errors[f"HTTP {status}"] += 1
