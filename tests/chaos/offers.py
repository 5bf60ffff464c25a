"""Offers under faults: offers sent by e-mail while the SMTP server is down (connections
refused), the hub SIGKILLed and started again while they wait, then the server comes back
answering 451 (try later) for a while, then 250. Every offer must reach the server exactly
once (counted by its Message-ID), show its failed attempts on the timeline while it waits, and
end `sent`.

The product retries after 30 s, 60 s, 120 s... and takes a `sending` row back after a 2-minute
lease; the hub runs through tests/chaos/launch.py with both shortened, since it has no setting
for them."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tests.chaos.faults import HubProcess, Report, as_dict, hub_command, hub_env, query
from tests.smtpserver import SmtpServer

FROM = "hub@example.test"
TEMPFAIL = "451 4.3.0 Try again later"


@dataclass
class OffersRun:
    offers: int = 8  # half sent before the kill, half after
    down_s: float = 2.0  # the server stays down this long after the last offer's first try
    tempfail_s: float = 2.0
    kill: bool = True
    backoff_s: float = 0.25  # the first retry's wait (then doubled each time)
    lease_s: float = 3.0
    settle_timeout_s: float = 60.0


TokenMaker = Callable[[dict[str, str], Path], Awaitable[str]]


async def cli_token(env: dict[str, str], workdir: Path) -> str:
    """An admin's API token from `hub managers add` (its last line)."""
    out = await asyncio.to_thread(hub_command, "managers", "add", "Ольга", "--email",
                                  "olga@example.test", "--role", "admin", env=env, cwd=workdir)
    return out.strip().splitlines()[-1]


async def run_offers(database_url: str, workdir: Path, run: OffersRun,
                     make_token: TokenMaker = cli_token) -> Report:
    report = Report("offers")
    smtp = SmtpServer()  # not started: the server is down
    env = hub_env(database_url, HUB_EMAIL_SMTP_URL=smtp.url, HUB_EMAIL_FROM_ADDRESS=FROM,
                  CHAOS_OUTBOX_BACKOFF_S=str(run.backoff_s), CHAOS_OUTBOX_LEASE_S=str(run.lease_s))
    hub = HubProcess(env, workdir, "hub-offers")
    hub.start()
    entries: dict[int, dict[str, Any]] = {}  # interaction id -> the queued entry
    seen_failing: set[int] = set()
    try:
        await hub.wait_healthy()
        token = await make_token(env, workdir)
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20),
                                         headers=headers) as api:
            first, second = run.offers // 2, run.offers - run.offers // 2
            entries.update(await _send_offers(api, hub.url, 0, first))
            seen_failing |= await _wait_failing(api, hub.url, entries, run)
            if run.kill:
                await hub.restart_after_kill()
                report.figure(f"hub SIGKILLed with {first} offers waiting, started again")
            entries.update(await _send_offers(api, hub.url, first, second))
            seen_failing |= await _wait_failing(api, hub.url, entries, run)
            report.figure(f"{len(seen_failing)} of {len(entries)} offers showed a failed "
                          "attempt on the timeline (queued, meta.last_error) while the server "
                          "was down")
            await asyncio.sleep(run.down_s)
            smtp.sink.answer = TEMPFAIL
            smtp.start()
            await asyncio.sleep(run.tempfail_s)
            tempfails = await _count_errors(api, hub.url, entries, "451")
            smtp.sink.answer = "250 OK"
            began = time.monotonic()
            final = await _wait_sent(api, hub.url, entries, run.settle_timeout_s)
            report.figure(f"server back: {TEMPFAIL!r} for {run.tempfail_s:g} s "
                          f"({tempfails} offers saw it), then 250; all sent "
                          f"{time.monotonic() - began:.1f} s later")
            # a row taken back after its lease would go out again now: wait past it
            await asyncio.sleep(run.lease_s + 1.0)
    finally:
        hub.stop()
        smtp.stop()
    if hub.unexpected_exits:
        report.problem(f"the hub exited by itself: {hub.unexpected_exits}")
    received = Counter(str(m["Message-ID"]).strip("<>") for m in smtp.sink.received)
    await check_offers(database_url, entries, final, received, seen_failing, report)
    return report


async def _send_offers(api: aiohttp.ClientSession, url: str, start: int,
                       count: int) -> dict[int, dict[str, Any]]:
    out = {}
    for i in range(start, start + count):
        async with api.post(url + "/api/clients", json={
                "name": f"Клиент {i}", "emails": [f"buyer{i}@client.test"]}) as response:
            assert response.status == 201, await response.text()
            client = await response.json()
        async with api.post(url + f"/api/clients/{client['id']}/offers",
                            json={"template": "price", "channel": "email"}) as response:
            assert response.status == 202, await response.text()
            entry = await response.json()
        out[int(entry["id"])] = {**entry, "client_id": client["id"]}
    return out


async def _timeline(api: aiohttp.ClientSession, url: str,
                    entries: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """The offers as each card's timeline shows them now."""
    found = {}
    for client_id in {e["client_id"] for e in entries.values()}:
        async with api.get(url + f"/api/clients/{client_id}/timeline") as response:
            assert response.status == 200, await response.text()
            for item in (await response.json())["items"]:
                if item["id"] in entries:
                    found[int(item["id"])] = item
    return found


async def _wait_failing(api: aiohttp.ClientSession, url: str, entries: dict[int, dict[str, Any]],
                        run: OffersRun) -> set[int]:
    """Until every offer shows a failed attempt (queued with meta.last_error)."""
    deadline = time.monotonic() + run.settle_timeout_s
    failing: set[int] = set()
    while time.monotonic() < deadline and len(failing) < len(entries):
        for key, item in (await _timeline(api, url, entries)).items():
            if item["status"] == "queued" and item["meta"].get("last_error"):
                failing.add(key)
        await asyncio.sleep(0.1)
    return failing


async def _count_errors(api: aiohttp.ClientSession, url: str,
                        entries: dict[int, dict[str, Any]], needle: str) -> int:
    items = await _timeline(api, url, entries)
    return sum(1 for item in items.values() if needle in str(item["meta"].get("last_error")))


async def _wait_sent(api: aiohttp.ClientSession, url: str, entries: dict[int, dict[str, Any]],
                     limit_s: float) -> dict[int, dict[str, Any]]:
    deadline = time.monotonic() + limit_s
    items: dict[int, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        items = await _timeline(api, url, entries)
        if all(item["status"] in ("sent", "failed") for item in items.values()):
            break
        await asyncio.sleep(0.2)
    return items


async def check_offers(database_url: str, entries: dict[int, dict[str, Any]],
                       final: dict[int, dict[str, Any]], received: Counter[str],
                       seen_failing: set[int], report: Report) -> None:
    ids = {key: str(e["meta"]["message_id"]).strip("<>") for key, e in entries.items()}
    report.expect("offers showing a failed attempt while the server was down",
                  len(seen_failing), len(entries))
    report.expect("offers sent", sum(1 for e in final.values() if e["status"] == "sent"),
                  len(entries))
    report.expect("messages the SMTP server received", sum(received.values()), len(entries))
    once = sum(1 for m in ids.values() if received[m] == 1)
    report.expect("offers received exactly once", once, len(entries))
    doubled = {m: n for m, n in received.items() if n > 1}
    if doubled:
        report.problem(f"received more than once: {doubled}")
    attempts = [int(e["meta"].get("attempts") or 0) for e in final.values()]
    report.figure(f"attempts per offer on the timeline: {sorted(attempts)}")
    if any(a < 2 for a in attempts):
        report.problem("an offer shows fewer than 2 attempts although the server was down")
    rows = await query(database_url, "SELECT status, COUNT(*) AS n FROM outbox GROUP BY status")
    report.expect("outbox rows by status", {r["status"]: int(r["n"]) for r in rows},
                  {"sent": len(entries)})
    metas = await query(database_url, "SELECT id, status, meta FROM interaction "
                                      "WHERE kind = 'offer'")
    stuck = [m["id"] for m in metas if m["status"] != "sent"
             or as_dict(m["meta"]).get("last_error")]
    report.expect("offer entries not sent or still carrying an error", len(stuck), 0)
