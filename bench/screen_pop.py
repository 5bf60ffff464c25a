"""Screen-pop latency: a ringing webhook received → the call.ringing message on managers'
WebSockets, with M managers connected, against the bare baseline in the same run.

1. `hub serve` on a fresh SQLite file (or a throwaway PostgreSQL database), M managers created
   through the API, each with a WebSocket on /api/stream; the baseline (bench/baseline_app.py:
   one INSERT + COMMIT, then the body to every socket) with M sockets too.
2. N signed generic `call.ringing` webhooks, one every 1/R s (open loop), each from a new caller,
   so every manager gets every pop (new cards pop up for everyone: the widest fan-out).
3. Latency per delivered message = received on the socket − the moment the webhook was due.

    python bench/screen_pop.py                     # 20 managers, 500 calls at 20/s
    python bench/screen_pop.py --database-url postgres://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import aiohttp

from databases import database
from loadgen import percentile
from procs import Children, child_env, free_port, python, run_command

BENCH = Path(__file__).resolve().parent
SECRET = "bench-generic-secret"
TARGET_P99_MS = 50.0
RECEIVE_DEADLINE = 10.0


def sign(body: bytes) -> str:
    import hashlib
    import hmac

    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def ringing(i: int) -> bytes:
    return json.dumps({
        "event": "call.ringing", "call_id": f"pop-{i}", "direction": "inbound",
        "from": f"+7999{i:07d}", "to": "+74950000000", "extension": None,
    }).encode()


@dataclass
class Run:
    """What one server's run measured."""

    due: dict[str, float] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    last_ms: dict[str, float] = field(default_factory=dict)  # per call: the slowest manager
    errors: int = 0

    def summary(self, managers: int, calls: int) -> dict[str, float]:
        lost = managers * calls - len(self.latencies_ms)
        return {"p50": percentile(self.latencies_ms, 0.5),
                "p99": percentile(self.latencies_ms, 0.99),
                "last_p99": percentile(list(self.last_ms.values()), 0.99),
                "lost": float(lost), "errors": float(self.errors)}


def call_id_of(message: dict[str, Any]) -> str | None:
    if "interaction" in message:  # the hub's event
        meta = (message.get("interaction") or {}).get("meta") or {}
        return meta.get("call_id")
    return message.get("call_id")  # the baseline echoes the webhook body


async def listen(ws: aiohttp.ClientWebSocketResponse, run: Run, expected: int) -> None:
    seen = 0
    while seen < expected:
        msg = await ws.receive(timeout=RECEIVE_DEADLINE)
        if msg.type != aiohttp.WSMsgType.TEXT:
            return
        now = time.perf_counter()
        data = json.loads(msg.data)
        call_id = call_id_of(data)
        if call_id is None or call_id not in run.due:
            continue
        latency = (now - run.due[call_id]) * 1000
        run.latencies_ms.append(latency)
        run.last_ms[call_id] = max(run.last_ms.get(call_id, 0.0), latency)
        seen += 1


async def drive(session: aiohttp.ClientSession, url: str, tokens: list[str | None],
                calls: int, rate: float) -> Run:
    run = Run()
    sockets = []
    for token in tokens:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        ws = await session.ws_connect(url + "/api/stream", headers=headers)
        hello = await ws.receive_json(timeout=5)
        assert hello["type"] == "hello", hello
        sockets.append(ws)
    listeners = [asyncio.create_task(listen(ws, run, calls)) for ws in sockets]
    start = time.perf_counter()
    posts = []
    for i in range(calls):
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        body = ringing(i)
        run.due[f"pop-{i}"] = due
        posts.append(asyncio.create_task(post(session, url, body, run)))
    await asyncio.gather(*posts)
    await asyncio.wait(listeners, timeout=RECEIVE_DEADLINE)
    for ws in sockets:
        await ws.close()
    return run


async def post(session: aiohttp.ClientSession, url: str, body: bytes, run: Run) -> None:
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body)}
    async with session.post(url + "/webhooks/telephony/generic", data=body,
                            headers=headers) as resp:
        if resp.status != 200:
            run.errors += 1
        await resp.read()


async def make_managers(session: aiohttp.ClientSession, url: str, admin: str,
                        count: int) -> list[str | None]:
    tokens: list[str | None] = [admin]
    for i in range(1, count):
        async with session.post(url + "/api/managers", headers={"Authorization": f"Bearer {admin}"},
                                json={"name": f"Manager {i}", "extension": str(200 + i)}) as resp:
            assert resp.status == 201, await resp.text()
            tokens.append((await resp.json())["token"])
    return tokens


async def measure(args: argparse.Namespace, work: Path,
                  db_url: str) -> dict[str, dict[str, float]]:
    with Children() as children:
        env = child_env(HUB_DATABASE_URL=db_url, HUB_TELEPHONY_GENERIC_SECRET=SECRET,
                        HUB_LOG_LEVEL="WARNING")
        run_command([python(), "-m", "hub", "migrate"], env, work)
        admin = run_command([python(), "-m", "hub", "managers", "add", "Bench Admin", "--role",
                             "admin"], env, work).strip().splitlines()[-1]
        hub = children.start("hub", [python(), "-m", "hub", "serve", "--port",
                                     str(hub_port := free_port())], env, work, hub_port)
        base = children.start("baseline", [python(), str(BENCH / "baseline_app.py"), "--port",
                                           str(base_port := free_port()), "--database",
                                           str(work / "baseline.db")], env, work, base_port)
        async with aiohttp.ClientSession() as session:
            for server in (hub, base):
                await server.wait_healthy(session)
            tokens = await make_managers(session, hub.url, admin, args.managers)
            results = {}
            for name, server, toks in (("baseline", base, [None] * args.managers),
                                       ("hub", hub, tokens)):
                run = await drive(session, server.url, toks, args.calls, args.rate)
                results[name] = run.summary(args.managers, args.calls)
            results["hub"]["rss_mib"] = hub.rss_mib() or 0.0
            return results


def report(args: argparse.Namespace, results: dict[str, dict[str, float]]) -> None:
    hub, base = results["hub"], results["baseline"]
    print(f"screen pop: {args.managers} managers connected, {args.calls} ringing webhooks at "
          f"{args.rate:g}/s, each a new caller (every manager gets every pop)")
    for name, r in results.items():
        print(f"  {name:8s} p50 {r['p50']:6.1f} ms  p99 {r['p99']:6.1f} ms  slowest manager p99 "
              f"{r['last_p99']:6.1f} ms  lost {r['lost']:.0f}  errors {r['errors']:.0f}")
    ratio = hub["p99"] / base["p99"] if base["p99"] else float("inf")
    print(f"  hub / baseline p99: {ratio:.1f}x; hub RSS {hub['rss_mib']:.0f} MiB")
    print()
    print("| scenario | figure | target |")
    print("|---|---|---|")
    print(f"| screen pop, {args.managers} managers, {args.rate:g} calls/s | "
          f"p50 {hub['p50']:.1f} ms, p99 {hub['p99']:.1f} ms "
          f"(baseline p99 {base['p99']:.1f} ms, {ratio:.1f}x) | "
          f"p99 ≤ {TARGET_P99_MS:g} ms |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--managers", type=int, default=20)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--rate", type=float, default=20.0, help="ringing webhooks per second")
    parser.add_argument("--database-url", help="PostgreSQL admin URL (default: a SQLite file)")
    args = parser.parse_args()
    with TemporaryDirectory(prefix="hub-bench-pop-") as tmp, \
            database(args.database_url, Path(tmp)) as db:
        results = asyncio.run(measure(args, Path(tmp), db.url))
        print(f"database: {db.label}")
    report(args, results)
    failed = any(r["lost"] or r["errors"] for r in results.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
