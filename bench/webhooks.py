"""Outgoing webhooks benchmark: how fast the hub records events and delivers them to a fast
receiver, next to a bare sender measured in the same run.

The receiver runs in a child process (a bare aiohttp app that checks each signature, the order
of the event ids per subscription, and counts). Stages:

1. record: N events (`client.created`, each with a card) written by `hub.outgoing.emit`, one
   per transaction as the ingest path writes them, with S subscriptions wanting them;
2. deliver: a `DeliveryWorker` pass sends every delivery (N x S); with one subscription the
   requests go one after the other (the order per subscription allows nothing else), with
   several, one stream per subscription;
3. floor: a bare aiohttp client posting the same signed bodies to the same receiver, one
   stream per subscription, without any database.

    python bench/webhooks.py                                  # SQLite, 5,000 events, 1 and 4
    python bench/webhooks.py --database-url postgres://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import multiprocessing
import os
import platform
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

from databases import database  # noqa: E402
from hub import db, outgoing  # noqa: E402
from hub.delivery import DeliveryWorker, body_of, sign  # noqa: E402
from hub.models import Webhook, WebhookDelivery  # noqa: E402
from hub.settings import WebhookSettings  # noqa: E402
from procs import free_port  # noqa: E402

SECRET = "whsec_bench"


# ---- the receiver (a child process) ------------------------------------------------------------


def receive(port: int) -> None:
    """A fast receiver: checks the signature and the order per path, counts; GET /stats."""
    counts: dict[str, int] = defaultdict(int)
    last: dict[str, int] = defaultdict(int)
    problems: list[str] = []

    async def hook(request: web.Request) -> web.Response:
        raw = await request.read()
        good = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(good, request.headers.get("X-Hub-Signature-256", "")):
            problems.append("bad signature")
        event_id = json.loads(raw)["id"]
        if event_id <= last[request.path]:
            problems.append(f"{request.path}: {event_id} after {last[request.path]}")
        last[request.path] = event_id
        counts[request.path] += 1
        return web.Response(status=204)

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"received": sum(counts.values()), "problems": problems[:10]})

    async def reset(request: web.Request) -> web.Response:
        counts.clear()
        last.clear()
        problems.clear()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook/{n}", hook)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def wait_up(base: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(base + "/stats") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    raise RuntimeError("the receiver did not start")


async def stats(base: str, reset: bool = False) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        if reset:
            async with session.post(base + "/reset"):
                return {}
        async with session.get(base + "/stats") as resp:
            data: dict[str, Any] = await resp.json()
            return data


# ---- the hub -----------------------------------------------------------------------------------


def card(i: int) -> dict[str, Any]:
    return {"client": {"id": i, "name": f"Клиент {i}", "status": "new",
                       "phones": [f"+7903{i:07d}"], "emails": [], "telegram": [],
                       "manager_id": None, "fields": {}, "created_at": "2026-12-01T10:00:00+00:00",
                       "last_interaction_at": None}}


async def hub_run(url: str, base: str, events: int, subscriptions: int) -> dict[str, float]:
    await db.init_db(url)
    try:
        at = datetime.now(UTC)
        await Webhook.all().delete()
        for n in range(subscriptions):
            await Webhook.create(url=f"{base}/hook/{n}", topics=",client.created,", secret=SECRET,
                                 status="active", created_at=at, updated_at=at)
        start = time.perf_counter()
        for i in range(events):
            when = datetime.now(UTC)
            await db.run_program(lambda i=i, when=when: outgoing.emit(  # type: ignore[misc]
                [outgoing.Outgoing("client.created", card(i), when)], when))
        recorded = time.perf_counter() - start
        worker = DeliveryWorker(WebhookSettings(timeout_seconds=10))
        await stats(base, reset=True)
        start, cpu = time.perf_counter(), time.process_time()
        await worker.run_pass()
        delivered_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu
        await worker.close()
        done = await WebhookDelivery.filter(status="delivered").count()
        received = await stats(base)
        if done != events * subscriptions or received["received"] != done:
            raise RuntimeError(f"{done} delivered, {received} received of "
                               f"{events * subscriptions}")
        if received["problems"]:
            raise RuntimeError(f"the receiver saw: {received['problems']}")
        await WebhookDelivery.all().delete()
        return {"record": events / recorded, "deliver": done / delivered_s,
                "cpu_ms": cpu_s / done * 1000}
    finally:
        await db.close_db()


async def floor_run(base: str, events: int, subscriptions: int) -> float:
    """The same signed bodies, posted one after the other per subscription, no database."""
    at = datetime.now(UTC)
    bodies = [body_of(i, "client.created", at, json.dumps(card(i)), int(time.time()))
              for i in range(1, events + 1)]
    await stats(base, reset=True)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit_per_host=4)) as session:

        async def stream(n: int) -> None:
            for body in bodies:
                headers = {"Content-Type": "application/json",
                           "X-Hub-Signature-256": sign(SECRET, body)}
                async with session.post(f"{base}/hook/{n}", data=body, headers=headers) as resp:
                    await resp.read()
                    assert resp.status == 204

        start = time.perf_counter()
        await asyncio.gather(*(stream(n) for n in range(subscriptions)))
        elapsed = time.perf_counter() - start
    received = await stats(base)
    if received["received"] != events * subscriptions or received["problems"]:
        raise RuntimeError(f"floor: {received}")
    return events * subscriptions / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--subscriptions", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--database-url", help="PostgreSQL admin URL (a throwaway database)")
    args = parser.parse_args(argv)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    child = multiprocessing.get_context("spawn").Process(target=receive, args=(port,),
                                                         daemon=True)
    child.start()
    rows = []
    try:
        asyncio.run(wait_up(base))
        with TemporaryDirectory(prefix="crm-hub-bench-webhooks-") as tmp, \
                database(args.database_url, Path(tmp)) as target:
            for subs in args.subscriptions:
                hub = asyncio.run(hub_run(target.url, base, args.events, subs))
                floor = asyncio.run(floor_run(base, args.events, subs))
                rows.append((subs, hub, floor))
            label = target.label
    finally:
        child.terminate()
        child.join()
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPUs, {platform.machine()}, Python "
          f"{platform.python_version()}, {label}; load average (1 min) {load:.2f}")
    print("| subscriptions | record (events/s, 1 per transaction) | deliver (deliveries/s) "
          "| hub CPU per delivery | floor: bare aiohttp sender | hub / floor |")
    print("|---|---|---|---|---|---|")
    for subs, hub, floor in rows:
        print(f"| {subs} | {hub['record']:,.0f} | {hub['deliver']:,.0f} | "
              f"{hub['cpu_ms']:.2f} ms | {floor:,.0f} | {hub['deliver'] / floor:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
