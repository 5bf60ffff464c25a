"""Scale benchmark: the hub over HTTP on a database of 1M cards and 10M timeline entries.

1. Migrate a fresh database (a SQLite file, or a throwaway PostgreSQL database created under
   --database-url), bulk-load N cards (prefill.py) and E timeline entries (history.py), one card
   with 100,000 of them; print the fill time.
2. Show the query plans of the reads below (EXPLAIN, the statements the hub's own code issues).
3. Start `python -m hub serve`, then measure one request at a time: lookup by phone in another
   written form, search by 4-digit phone tail and by name substring, the 50-entry timeline page of
   the long-history card (first page, a page deep in its history, and a walk through all of it by
   the cursor, checked for order and completeness).
4. Webhook ingest (ingest.py's closed loop) next to the bare aiohttp + SQLite baseline, with the
   hub's RSS at idle and its peak under load; on PostgreSQL also 2 hub processes against 1.
5. A Markdown table; `--save` keeps the figures as JSON and `--table A.json B.json` prints one
   table for a SQLite and a PostgreSQL run.

    python bench/scale.py                    # 1M cards, 10M entries, SQLite
    python bench/scale.py --database-url postgres://postgres@127.0.0.1:5432/postgres
    python bench/scale.py --quick            # 20k cards, 200k entries, under a minute

The exit status is 1 when any request failed or answered wrongly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

import history
import prefill
from cards import phone_of
from databases import _asyncpg_dsn, _create, _drop, _with_database
from ingest import SECRET, _interrupt, describe, describe_probe, load_average, machine, ms, say
from loadgen import (
    LINE,
    WEBHOOK_PATH,
    Planner,
    Stats,
    check_hub,
    check_status,
    closed_loop,
    percentile,
    sign,
)
from procs import ChildError, Children, Server, child_env, free_port, python, run_command
from queries import Probe, Reader

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BIG_ID = history.BIG_INDEX + 1
PAGE = 50
TIMELINE_TARGET_MS = 50.0
SEARCH_TARGET_MS = 50.0


@dataclass(slots=True)
class Target:
    """The database a run uses."""

    url: str  # HUB_DATABASE_URL
    label: str
    sqlite_path: Path | None = None
    reused: bool = False


@dataclass(slots=True)
class Figures:
    """What one run measured, as the table shows it (and --save keeps it)."""

    engine: str = ""
    clients: int = 0
    entries: int = 0
    fill: dict[str, float] = field(default_factory=dict)
    size_mib: float = 0.0
    rows: dict[str, str] = field(default_factory=dict)  # scenario → figure for this database
    baseline: dict[str, str] = field(default_factory=dict)  # scenario → baseline figure
    plans: list[str] = field(default_factory=list)
    machine: str = ""
    errors: int = 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--clients", type=int, help="cards (default 1,000,000; --quick 20,000)")
    add("--entries", type=int, help="timeline entries (default 10,000,000; --quick 200,000)")
    add("--big", type=int, default=100_000, help="entries of the long-history card (100,000)")
    add("--quick", action="store_true", help="small sizes for a smoke run")
    add("--database-url", help="PostgreSQL admin URL (default: a SQLite file)")
    add("--keep", action="store_true", help="keep the filled database and print where it is")
    add("--reuse", metavar="URL", help="measure on a database a --keep run filled "
        "(sqlite:///path or a PostgreSQL URL); give the same --clients")  # fmt: skip
    add("--fill-only", action="store_true", help="fill (with --keep), do not measure")
    add("--queries", type=int, help="requests per kind of read (default 300; --quick 100)")
    add("--events", type=int, help="requests per ingest run (default 20,000; --quick 2,000)")
    add("--concurrency", type=int, default=32, help="ingest requests in flight (32)")
    add("--save", metavar="PATH", help="write the figures as JSON")
    add("--table", nargs="+", metavar="JSON", help="print one table from saved runs and exit")
    args = parser.parse_args(argv)
    quick = {"clients": 20_000, "entries": 200_000, "queries": 100, "events": 2_000}
    full = {"clients": 1_000_000, "entries": 10_000_000, "queries": 300, "events": 20_000}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.fill_only and not args.keep:
        parser.error("--fill-only needs --keep")
    if args.big >= args.entries:
        parser.error("--big must be below --entries")
    return args


# --- the database --------------------------------------------------------------------------


@contextmanager
def target(args: argparse.Namespace, work: Path) -> Iterator[Target]:
    """The database: reused, or made for this run and removed after it unless --keep."""
    if args.reuse:
        path = (
            Path(args.reuse.removeprefix("sqlite://")) if args.reuse.startswith("sqlite:") else None
        )
        label = f"SQLite {sqlite3.sqlite_version}" if path else "PostgreSQL " + asyncio.run(
            _pg_version(args.reuse)
        )  # fmt: skip
        yield Target(args.reuse, label, path, reused=True)
        return
    if args.database_url is None:
        folder = Path(tempfile.gettempdir()) if args.keep else work
        path = folder / f"crm-hub-scale-{secrets.token_hex(3)}.db"
        try:
            yield Target(f"sqlite://{path}", f"SQLite {sqlite3.sqlite_version}", path)
        finally:
            if args.keep:
                say(f"kept the database: --reuse sqlite://{path}")
        return
    name = f"crm_hub_scale_{secrets.token_hex(4)}"
    version = asyncio.run(_create(args.database_url, name))
    url = _with_database(args.database_url, name)
    try:
        yield Target(url, f"PostgreSQL {version}")
    finally:
        if args.keep:
            say(f"kept the database: --reuse {url}")
        else:
            asyncio.run(_drop(args.database_url, name))


async def _pg_version(url: str) -> str:
    import asyncpg

    con = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        return str(await con.fetchval("SHOW server_version"))
    finally:
        await con.close()


def fill(db: Target, args: argparse.Namespace, env: dict[str, str], work: Path) -> dict[str, float]:
    """Migrate, then load the cards and the timelines; seconds per phase."""
    times: dict[str, float] = {}
    start = time.perf_counter()
    run_command([python(), "-m", "hub", "migrate"], env, work)
    times["migrate"] = time.perf_counter() - start
    say(f"filling {args.clients:,} cards and {args.entries:,} timeline entries ({db.label}) …")
    mark = time.perf_counter()
    if db.sqlite_path is not None:
        prefill.prefill_sqlite(db.sqlite_path, args.clients)
    else:
        asyncio.run(prefill.prefill_postgres(_asyncpg_dsn(db.url), args.clients))
    times["cards"] = time.perf_counter() - mark
    say(f"  cards: {times['cards']:.1f} s")
    if db.sqlite_path is not None:
        phases = history.fill_sqlite(db.sqlite_path, args.clients, args.entries, args.big)
    else:
        coro = history.fill_postgres(_asyncpg_dsn(db.url), args.clients, args.entries, args.big)
        phases = asyncio.run(coro)
    times["timeline rows"], times["timeline indexes"] = phases["rows"], phases["indexes"]
    times["total"] = time.perf_counter() - start
    say(f"  timeline rows: {phases['rows']:.1f} s, indexes: {phases['indexes']:.1f} s")
    say(f"  fill total (migrate + cards + timelines): {times['total']:.1f} s")
    # the fill leaves gigabytes for the kernel (or PostgreSQL's checkpointer) to write back;
    # the hub's first fsync would wait for all of it and the ingest figure would measure that
    mark = time.perf_counter()
    if db.sqlite_path is None:
        asyncio.run(_checkpoint(db.url))
    os.sync()
    times["written back"] = time.perf_counter() - mark
    say(f"  written back to disk before measuring: {times['written back']:.1f} s")
    return times


async def _checkpoint(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


def size_mib(db: Target) -> float:
    if db.sqlite_path is not None:
        return (
            sum(p.stat().st_size for p in db.sqlite_path.parent.glob(db.sqlite_path.name + "*"))
            / 2**20
        )

    async def pg() -> float:
        import asyncpg

        con = await asyncpg.connect(_asyncpg_dsn(db.url))
        try:
            return float(await con.fetchval("SELECT pg_database_size(current_database())")) / 2**20
        finally:
            await con.close()

    return asyncio.run(pg())


# --- query plans ---------------------------------------------------------------------------

# scenario → the index its plan must show, per engine
EXPECTED: dict[str, tuple[str, str] | None] = {
    "lookup by phone": ("sqlite_autoindex_identity_1", "uid_identity_kind"),
    "search: 4-digit tail": ("idx_identity_rev", "idx_identity_rev"),
    # a common fragment fills the page from the newest cards (search.WINDOW) without the index
    "search: common 4-letter fragment": None,
    "search: a whole name (few cards in the newest)": ("client_fts", "client_search_trgm"),
    "timeline: first page": ("idx_interaction_client", "idx_interaction_client"),
    "timeline: deep page": ("idx_interaction_client", "idx_interaction_client"),
}


async def query_plans(db: Target, clients: int) -> list[str]:
    """Run the reads through the hub's own functions in this process, catch the SQL they send,
    and EXPLAIN it (SQLite: EXPLAIN QUERY PLAN; PostgreSQL: EXPLAIN ANALYZE)."""
    sys.path.insert(0, str(ROOT))  # the hub of this checkout
    from tortoise import connections

    from cards import card, other_form
    from hub import clients as hub_clients
    from hub import db as hub_db
    from hub import search, timeline
    from hub.models import Interaction

    await hub_db.init_db(db.url, migrate=False)
    try:
        conn = connections.get("default")
        postgres = hub_db.is_postgres(conn)
        seen: list[tuple[str, list[Any]]] = []
        original = conn.execute_query

        async def spy(sql: str, values: list[Any] | None = None) -> Any:
            seen.append((sql, list(values or [])))
            return await original(sql, values)

        import random

        rng = random.Random(11)
        c = card(clients // 3, clients, hub_db.now())
        word = max(c.name.split(), key=len)
        phone = other_form(c.phone, rng)
        deep = await (
            Interaction.filter(client_id=BIG_ID).order_by("-occurred_at", "-id").offset(
                int(await Interaction.filter(client_id=BIG_ID).count() * 0.9)
            ).first()
        )  # fmt: skip
        cursor = timeline.encode_cursor(deep.occurred_at, deep.id) if deep else None
        reads: list[tuple[str, Any]] = [
            ("lookup by phone", lambda: hub_clients.lookup("RU", phone, None, None)),
            ("search: 4-digit tail", lambda: search.list_clients(region="RU", q=c.phone[-4:])),
            ("search: common 4-letter fragment",
             lambda: search.list_clients(region="RU", q=word[1:5])),
            ("search: a whole name (few cards in the newest)",
             lambda: search.list_clients(region="RU", q=c.name)),
            ("timeline: first page", lambda: timeline.page(BIG_ID, PAGE, None)),
            ("timeline: deep page", lambda: timeline.page(BIG_ID, PAGE, cursor)),
        ]  # fmt: skip
        lines: list[str] = []
        for scenario, read in reads:
            seen.clear()
            conn.execute_query = spy  # type: ignore[method-assign]
            try:
                await read()
            finally:
                conn.execute_query = original  # type: ignore[method-assign]
            expected = EXPECTED[scenario]
            want = expected[postgres] if expected else None
            plans: list[str] = []
            for sql, values in seen:
                if 'FROM "client" WHERE "id" IN' in sql:
                    continue  # the page's cards fetched by id: the primary key
                prefix = "EXPLAIN (ANALYZE, COSTS OFF) " if postgres else "EXPLAIN QUERY PLAN "
                _, rows = await original(prefix + sql, values)
                plan = [
                    r["QUERY PLAN"] if postgres else f"{'  ' * int(r['parent'] > 0)}{r['detail']}"
                    for r in rows
                ]
                plans.append(f"    {sql}\n" + "\n".join(f"      {p}" for p in plan))
            sort = any("TEMP B-TREE FOR ORDER BY" in p for p in plans) and "timeline" in scenario
            verdict = "(no index expected)"
            if want:
                verdict = f"uses {want}: {'yes' if any(want in p for p in plans) else 'NO'}"
            if sort:
                verdict += " (but sorts every entry of the card: USE TEMP B-TREE)"
            lines.append(f"  {scenario} — {verdict}\n" + "\n".join(plans))
        return lines
    finally:
        await hub_db.close_db()


# --- measuring -----------------------------------------------------------------------------


class Peak:
    """The highest RSS of some processes, sampled every 20 ms while running."""

    def __init__(self, servers: list[Server]) -> None:
        self.servers = servers
        self.mib = 0.0
        self.task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            for s in self.servers:
                self.mib = max(self.mib, s.rss_mib() or 0.0)
            await asyncio.sleep(0.02)

    def __enter__(self) -> Peak:
        self.task = asyncio.get_running_loop().create_task(self._sample())
        return self

    def __exit__(self, *exc: object) -> None:
        if self.task:
            self.task.cancel()


@dataclass(slots=True)
class Walk:
    """The timeline of the long-history card, page by page."""

    first: Probe
    deep: Probe
    walk: Probe
    entries: int = 0


async def timeline_reads(reader: Reader, queries: int) -> Walk:
    """The first page again and again; then every page by the cursor (each checked: newest
    first, no entry twice); then one deep page again and again."""
    path = f"/api/clients/{BIG_ID}/timeline"
    first, deep, walk = (Probe(k, wanted=queries) for k in ("first", "deep", "walk"))
    for _ in range(queries):
        status, data, took = await reader._get(path, {"limit": str(PAGE)})
        reader._record(first, status, took, len(data.get("items", [])))
        if status == 200 and len(data["items"]) != PAGE:
            first.errors["short first page"] += 1
    params = {"limit": str(PAGE)}
    seen: set[int] = set()
    last: tuple[datetime, int] | None = None
    cursors: list[str] = []
    while True:
        status, data, took = await reader._get(path, params)
        items = data.get("items", []) if status == 200 else []
        reader._record(walk, status, took, len(items))
        for item in items:
            key = (datetime.fromisoformat(item["occurred_at"]), item["id"])
            if last is not None and key >= last:
                walk.errors["out of order"] += 1
            if item["id"] in seen:
                walk.errors["entry twice"] += 1
            seen.add(item["id"])
            last = key
        if status != 200 or not data.get("next_cursor"):
            break
        cursors.append(data["next_cursor"])
        params = {"limit": str(PAGE), "cursor": data["next_cursor"]}
    walk.wanted = walk.sent
    cursor = cursors[int(len(cursors) * 0.9)] if cursors else None
    for _ in range(queries if cursor else 0):
        status, data, took = await reader._get(path, {"limit": str(PAGE), "cursor": cursor or ""})
        reader._record(deep, status, took, len(data.get("items", [])))
        if status == 200 and len(data["items"]) != PAGE:
            deep.errors["short deep page"] += 1
    return Walk(first, deep, walk, len(seen))


async def long_history_calls(reader: Reader, run: str, count: int) -> Probe:
    """Missed calls from the long-history card (tens of thousands of calls): the `ended`
    request runs the call-back rule over that card's calls; it is the one timed."""
    probe = Probe("missed call, long-history card", wanted=count)
    phone, start = phone_of(history.BIG_INDEX), datetime.now(UTC)
    for n in range(count):
        for event, extra in (("call.ringing", {}), ("call.ended", {"status": "missed"})):
            body = json.dumps({
                "event": event, "call_id": f"{run}-big-{n}", "direction": "inbound",
                "from": phone, "to": LINE, "duration": 0,
                "timestamp": (start + timedelta(seconds=n)).isoformat(), **extra}).encode()
            headers = {"Content-Type": "application/json",
                       "X-Hub-Signature-256": sign(body, SECRET)}
            began = time.perf_counter()
            async with reader.session.post(reader.base_url + WEBHOOK_PATH, data=body,
                                           headers=headers) as resp:
                answer = await resp.json()
            if event == "call.ended":
                reader._record(probe, resp.status, time.perf_counter() - began, 1)
                if resp.status == 200 and answer.get("client_id") != BIG_ID:
                    probe.errors["not on the long-history card"] += 1
    return probe


async def split_loop(session: aiohttp.ClientSession, hubs: list[Server], scripts: list[Any],
                     concurrency: int) -> Stats:  # fmt: skip
    """The closed loop with its calls and its requests in flight shared among the hubs."""
    n = len(hubs)
    start = time.perf_counter()
    cpu = [h.cpu_seconds() for h in hubs]
    parts = await asyncio.gather(*(
        closed_loop(session, h.url, scripts[i::n], concurrency // n, check_hub)
        for i, h in enumerate(hubs)
    ))  # fmt: skip
    total = Stats()
    for part in parts:
        total.latencies += part.latencies
        total.errors.update(part.errors)
        total.repeats += part.repeats
        total.duplicates += part.duplicates
    total.elapsed = time.perf_counter() - start
    total.server_cpu = sum(h.cpu_seconds() - c for h, c in zip(hubs, cpu, strict=True))
    return total


def p3(latencies: list[float]) -> str:
    return " / ".join(ms(percentile(latencies, q)) for q in (0.5, 0.95, 0.99))


def probe_row(probe: Probe) -> str:
    errors = sum(probe.errors.values())
    return f"{p3(probe.latencies)}" + (f", **{errors} errors**" if errors else "")


def ingest_row(stats: Stats) -> str:
    errors = sum(stats.errors.values())
    lat = stats.latencies
    return (
        f"{stats.rate:,.0f} ev/s, p50 {ms(percentile(lat, 0.5))}, p99 {ms(percentile(lat, 0.99))}"
        + (f", **{errors} errors**" if errors else "")
    )


async def measure(args: argparse.Namespace, db: Target, env: dict[str, str], work: Path,
                  children: Children, token: str, figures: Figures) -> None:  # fmt: skip
    hub = start_hub(children, env, work)
    base_port = free_port()
    base = children.start(
        "baseline",
        [python(), str(BENCH / "baseline_app.py"), "--port", str(base_port), "--database",
         str(work / "baseline.db")],
        child_env(), work, base_port,
    )  # fmt: skip
    rows, errors = figures.rows, 0
    connector = aiohttp.TCPConnector(limit=512)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=300)
    ) as session:
        await hub.wait_healthy(session)
        await base.wait_healthy(session)
        run = secrets.token_hex(3)  # call ids of this run: a reused database has older ones
        reader = Reader(session, hub.url, token, args.clients, budget=120.0)
        # warm-up: a few of each read and a short ingest, then the idle RSS
        await reader.lookups(20)
        await reader.searches("search: 4-digit phone tail", 20)
        await reader.searches("search: name, 3-6 letters", 20)
        planner = Planner(args.clients, SECRET, seed=3)
        warm = planner.scripts(f"{run}-warm", 300)
        await closed_loop(session, hub.url, warm, args.concurrency, check_hub)
        await closed_loop(session, base.url, warm, args.concurrency, check_status)
        await asyncio.sleep(1.0)
        figures.machine += f"; load average (1 min) when measuring started {load_average()}"
        idle = hub.rss_mib() or 0.0
        say(f"hub RSS at idle after warm-up: {idle:.0f} MiB")

        say(f"reads at {args.clients:,} cards / {args.entries:,} entries, one at a time:")
        probes = [
            await reader.lookups(args.queries),
            await reader.searches("search: 4-digit phone tail", args.queries),
            await reader.searches("search: name, 3-6 letters", args.queries),
        ]
        for probe in probes:
            say(f"  {probe.kind:<32} {describe_probe(probe)}")
        walk = await timeline_reads(reader, args.queries)
        for label, probe in (("first page", walk.first), ("deep page (90 %)", walk.deep),
                             ("every page by cursor", walk.walk)):  # fmt: skip
            say(f"  timeline {label:<23} {describe_probe(probe)}")
        if walk.entries != args.big and not db.reused:
            walk.walk.errors[f"walked {walk.entries} entries, not {args.big}"] += 1
        say(f"  timeline walk: {walk.walk.sent} pages, {walk.entries:,} entries")
        missed = await long_history_calls(reader, run, args.queries)
        say(f"  {missed.kind:<32} {describe_probe(missed)}")
        rows["Missed call on the long-history card (p50 / p95 / p99)"] = probe_row(missed)
        errors += sum(missed.errors.values())
        rows["Lookup by phone, other written form (p50 / p95 / p99)"] = probe_row(probes[0])
        rows["Search: 4-digit phone tail (p50 / p95 / p99)"] = probe_row(probes[1])
        rows["Search: name substring, 3-6 letters (p50 / p95 / p99)"] = probe_row(probes[2])
        rows[f"Timeline, first {PAGE} of {args.big:,} entries (p50 / p95 / p99)"] = probe_row(
            walk.first
        )
        rows["Timeline, a page 90 % deep by cursor (p50 / p95 / p99)"] = probe_row(walk.deep)
        rows[f"Timeline, all {walk.walk.sent:,} pages by cursor (p50 / p95 / p99)"] = probe_row(
            walk.walk
        )
        errors += sum(sum(p.errors.values()) for p in [*probes, walk.first, walk.deep, walk.walk])

        say(f"ingest, closed loop, {args.concurrency} in flight (hub and baseline take turns):")
        scripts = planner.scripts(f"{run}-max", args.events)
        hub_stats, base_stats = Stats(), Stats()
        with Peak([hub]) as peak:
            for part in range(3):
                share = scripts[part::3]
                hub_stats.add(await timed(session, hub, share, args.concurrency, check_hub))
                base_stats.add(await timed(session, base, share, args.concurrency, check_status))
        say("  hub      " + describe(hub_stats))
        say("  baseline " + describe(base_stats))
        ratio = hub_stats.rate / base_stats.rate if base_stats.rate else 0.0
        say(f"  hub / baseline: {ratio:.2f}")
        name = f"Webhook ingest, {args.concurrency} in flight"
        rows[name] = ingest_row(hub_stats)
        figures.baseline[name] = ingest_row(base_stats)
        rows["Ingest / baseline events/s"] = f"{ratio:.2f}"
        rows["Hub RSS at idle (after warm-up)"] = f"{idle:.0f} MiB"
        rows["Hub RSS, peak during ingest"] = f"{peak.mib:.0f} MiB"
        figures.baseline["Hub RSS, peak during ingest"] = f"{base.rss_mib() or 0:.0f} MiB (bare)"
        say(f"  hub RSS peak during ingest: {peak.mib:.0f} MiB (bare: {base.rss_mib() or 0:.0f})")
        errors += sum(hub_stats.errors.values()) + sum(base_stats.errors.values())

        if db.sqlite_path is None:
            errors += await two_processes(args, session, children, env, work, hub, planner, run,
                                          rows)  # fmt: skip
    figures.errors += errors


async def timed(session: aiohttp.ClientSession, server: Server, scripts: list[Any],
                concurrency: int, check: Any) -> Stats:  # fmt: skip
    cpu = server.cpu_seconds()
    stats = await closed_loop(session, server.url, scripts, concurrency, check)
    stats.server_cpu = server.cpu_seconds() - cpu
    return stats


async def two_processes(args: argparse.Namespace, session: aiohttp.ClientSession,
                        children: Children, env: dict[str, str], work: Path, hub: Server,
                        planner: Planner, run: str, rows: dict[str, str]) -> int:  # fmt: skip
    """The same load on 1 hub process, then split over 2 on the same database, in turns."""
    second = start_hub(children, env, work, "hub2")
    await second.wait_healthy(session)
    await closed_loop(session, second.url, planner.scripts(f"{run}-warm2", 300),
                      args.concurrency, check_hub)  # fmt: skip
    say(f"ingest on PostgreSQL: 1 hub process vs 2 ({args.concurrency} in flight in all):")
    one, two = Stats(), Stats()
    scripts = planner.scripts(f"{run}-procs", args.events)
    with Peak([hub, second]) as peak:
        for part in range(3):
            share = scripts[part::3]
            one.add(await split_loop(session, [hub], share[0::2], args.concurrency))
            two.add(await split_loop(session, [hub, second], share[1::2], args.concurrency))
    say("  1 process   " + describe(one))
    say("  2 processes " + describe(two))
    gain = two.rate / one.rate if one.rate else 0.0
    say(f"  2 / 1: {gain:.2f} (peak RSS of a hub process: {peak.mib:.0f} MiB)")
    rows["Ingest, 1 hub process (same run)"] = ingest_row(one)
    rows["Ingest, 2 hub processes, load split"] = ingest_row(two) + f" ({gain:.2f}×)"
    second.stop()
    return sum(one.errors.values()) + sum(two.errors.values())


def start_hub(children: Children, env: dict[str, str], work: Path, name: str = "hub") -> Server:
    port = free_port()
    return children.start(name, [python(), "-m", "hub", "serve", "--port", str(port)],
                          {**env, "HUB_PORT": str(port)}, work, port)  # fmt: skip


# --- the report ----------------------------------------------------------------------------


def table(runs: list[Figures]) -> str:
    """scenario | SQLite | PostgreSQL | baseline (a column per engine that ran)."""
    sqlite = next((r for r in runs if r.engine.startswith("SQLite")), None)
    pg = next((r for r in runs if r.engine.startswith("PostgreSQL")), None)
    scenarios: list[str] = []
    for r in runs:
        scenarios += [s for s in dict.fromkeys([*r.rows, *r.baseline]) if s not in scenarios]
    head = [f"{r.engine}" for r in (sqlite, pg) if r]
    lines = [f"| scenario | {' | '.join(head)} | baseline |", "|---" * (len(head) + 2) + "|"]
    for scenario in scenarios:
        cells = [(r.rows.get(scenario, "—")) for r in (sqlite, pg) if r]
        base = next((r.baseline[scenario] for r in runs if scenario in r.baseline), "—")
        lines.append(f"| {scenario} | {' | '.join(cells)} | {base} |")
    notes = [
        f"{r.engine}: {r.clients:,} cards, {r.entries:,} entries, filled in "
        f"{r.fill.get('total', 0):.0f} s (cards {r.fill.get('cards', 0):.0f} s, timeline rows "
        f"{r.fill.get('timeline rows', 0):.0f} s, their indexes "
        f"{r.fill.get('timeline indexes', 0):.0f} s),"
        f" {r.size_mib:,.0f} MiB. {r.machine}"
        for r in runs
    ]
    return "\n".join(lines) + "\n\n" + "\n".join(notes)


def run(args: argparse.Namespace) -> Figures:
    figures = Figures(clients=args.clients, entries=args.entries)
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="crm-hub-scale-")))
        db = stack.enter_context(target(args, work))
        figures.engine = db.label.split(" ")[0]
        env = child_env(
            HUB_DATABASE_URL=db.url, HUB_TELEPHONY_GENERIC_SECRET=SECRET, HUB_LOG_LEVEL="WARNING",
            PYTHONPATH=str(ROOT),  # the hub of this checkout, not whatever is installed
        )  # fmt: skip
        figures.machine = machine(db)  # type: ignore[arg-type]
        if not db.reused:
            figures.fill = fill(db, args, env, work)
        figures.size_mib = size_mib(db)
        say(f"database size: {figures.size_mib:,.0f} MiB")
        if args.fill_only:
            return figures
        say("query plans (the statements the hub's code sends for each read):")
        figures.plans = asyncio.run(query_plans(db, args.clients))
        for line in figures.plans:
            say(line)
        token = run_command(
            [python(), "-m", "hub", "managers", "add", f"Scale Reader {secrets.token_hex(2)}"],
            env, work,
        ).strip().splitlines()[-1]  # fmt: skip
        children = stack.enter_context(Children())
        asyncio.run(measure(args, db, env, work, children, token, figures))
        figures.machine += f", at the end {load_average()}"
    return figures


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.table:
        runs = [Figures(**json.loads(Path(p).read_text())) for p in args.table]
        print(table(runs))
        return 0
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        figures = run(args)
    except KeyboardInterrupt:
        print("interrupted; child processes stopped and temp files removed", file=sys.stderr)
        return 130
    except ChildError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    if args.save:
        Path(args.save).write_text(json.dumps(asdict(figures), ensure_ascii=False, indent=1))
    if not args.fill_only:
        say("\n" + table([figures]))
    if figures.errors:
        say(f"\n{figures.errors} failed or wrong requests")
    return 1 if figures.errors else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
