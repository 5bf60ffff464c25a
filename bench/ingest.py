"""Ingest benchmark: the real hub over HTTP against a bare aiohttp + SQLite baseline.

1. Migrate a fresh database (a temp SQLite file, or a throwaway PostgreSQL database created under
   --database-url) and bulk-load N client cards into it.
2. Start `python -m hub serve` and the baseline (bench/baseline_app.py) as child processes.
3. Drive both with the same signed generic-webhook call lifecycles (10 % re-deliveries):
   a closed loop at C requests in flight (max throughput) and an open loop at R events/s.
4. Time lookups by phone and client searches against the hub at N cards, one request at a time.
5. Print the figures, then a Markdown table for the README's Performance section.

    python bench/ingest.py                        # 10k cards, SQLite, about a minute
    python bench/ingest.py --clients 1000000      # the search target is set at 1M cards
    python bench/ingest.py --database-url postgres://postgres@127.0.0.1:5432/postgres
    python bench/ingest.py --quick --profile /tmp/hub.prof   # hub under cProfile

Child processes and temp files are removed however the run ends (Ctrl-C included).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory
from types import FrameType

import aiohttp

from databases import Database, database
from loadgen import (
    Check,
    Planner,
    Script,
    Stats,
    check_hub,
    check_status,
    closed_loop,
    open_loop,
    percentile,
)
from procs import ChildError, Children, Server, child_env, free_port, python, run_command
from queries import SEARCHES, Probe, Reader

BENCH = Path(__file__).resolve().parent
SECRET = "bench-generic-secret"
SEARCH_P95_TARGET_MS = 50.0
RATE_P99_TARGET_MS = 10.0
RATIO_TARGET = 1 / 3
ROUNDS = 3  # closed-loop rounds, hub and baseline taking turns
Drive = Callable[[str, list[Script], Check], Awaitable[Stats]]


@dataclass(slots=True)
class Results:
    """Everything measured in one run."""

    prefill_s: float = 0.0
    hub_max: Stats = field(default_factory=Stats)
    base_max: Stats = field(default_factory=Stats)
    hub_rate: Stats = field(default_factory=Stats)
    base_rate: Stats = field(default_factory=Stats)
    probes: list[Probe] = field(default_factory=list)
    hub_rss_mib: float | None = None
    base_rss_mib: float | None = None
    load: list[str] = field(default_factory=list)  # 1-minute load average, start and end


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, help="cards to prefill (default 10000)")
    parser.add_argument("--events", type=int, help="requests per closed-loop run (default 20000)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (32)")
    parser.add_argument("--rate", type=float, default=1000.0, help="open-loop events/s (1000)")
    parser.add_argument("--seconds", type=float, help="open-loop duration (default 10)")
    parser.add_argument("--queries", type=int, help="lookups and searches of each kind (200)")
    parser.add_argument("--read-budget", type=float, default=30.0, metavar="SECONDS",
                        help="time limit per kind of lookup/search (30)")
    parser.add_argument("--database-url", help="PostgreSQL admin URL: a throwaway database is "
                        "created under it (default: a temp SQLite file)")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--profile", metavar="PATH", help="run the hub under cProfile, save the "
                        "stats to PATH and print the hot spots")
    args = parser.parse_args(argv)
    quick = {"clients": 2000, "events": 1500, "seconds": 3.0, "queries": 50}
    full = {"clients": 10_000, "events": 20_000, "seconds": 10.0, "queries": 200}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    for key in ("clients", "events", "concurrency", "rate", "seconds", "queries", "read_budget"):
        if getattr(args, key) <= 0:
            parser.error(f"--{key.replace('_', '-')} must be positive")
    return args


def machine(db: Database) -> str:
    """Cores, CPU model, Python, database engine, hub revision."""
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    cores = len(os.sched_getaffinity(0))
    return (f"{cores} cores, {model}; Python {platform.python_version()}; {db.label}; "
            f"hub {revision()}")


def revision() -> str:
    """The checkout's commit, marked when the working tree differs from it."""
    git = ["git", "-C", str(BENCH.parent)]
    try:
        head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "(not a git checkout)"
    return head + (" + uncommitted changes" if dirty else "")


def load_average() -> str:
    """The 1-minute load: other work on the machine skews every figure here."""
    return Path("/proc/loadavg").read_text().split()[0]


def say(text: str) -> None:
    print(text, flush=True)


def run(args: argparse.Namespace) -> tuple[Results, str]:
    """Set everything up, measure, tear everything down."""
    with ExitStack() as stack:
        work = Path(stack.enter_context(TemporaryDirectory(prefix="crm-hub-bench-")))
        db = stack.enter_context(database(args.database_url, work))
        children = stack.enter_context(Children())
        env = child_env(HUB_DATABASE_URL=db.url, HUB_TELEPHONY_GENERIC_SECRET=SECRET,
                        HUB_LOG_LEVEL="WARNING")
        results = Results(load=[load_average()])
        run_command([python(), "-m", "hub", "migrate"], env, work)
        say(f"prefilling {args.clients:,} clients ({db.label}) …")
        start = time.perf_counter()
        db.prefill(args.clients)
        results.prefill_s = time.perf_counter() - start
        say(f"  done in {results.prefill_s:.1f} s")
        token = run_command([python(), "-m", "hub", "managers", "add", "Bench Reader"], env,
                            work).strip().splitlines()[-1]
        hub = start_hub(children, env, work, args.profile)
        base_port = free_port()
        base = children.start("baseline", [python(), str(BENCH / "baseline_app.py"), "--port",
                              str(base_port), "--database", str(work / "baseline.db")],
                              child_env(), work, base_port)
        asyncio.run(measure(args, hub, base, token, results))
        results.hub_rss_mib, results.base_rss_mib = hub.rss_mib(), base.rss_mib()
        results.load.append(load_average())
        hub.stop()  # under --profile, this is when the stats are written
        return results, machine(db)


def start_hub(children: Children, env: dict[str, str], work: Path, profile: str | None) -> Server:
    port = free_port()
    argv = [python(), "-m", "hub"]
    if profile:
        argv = [python(), str(BENCH / "profile_hub.py"), str(Path(profile).resolve())]
    return children.start("hub", [*argv, "serve", "--port", str(port)],
                          {**env, "HUB_PORT": str(port)}, work, port)


async def measure(args: argparse.Namespace, hub: Server, base: Server, token: str,
                  results: Results) -> None:
    connector = aiohttp.TCPConnector(limit=512)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await hub.wait_healthy(session)
        await base.wait_healthy(session)
        planner = Planner(args.clients, SECRET, seed=1)
        warm = planner.scripts("warm", min(500, args.events))
        await closed_loop(session, hub.url, warm, args.concurrency, check_hub)
        await closed_loop(session, base.url, warm, args.concurrency, check_status)
        results.hub_max, results.base_max = await both(
            planner.scripts("max", args.events),
            lambda url, s, check: closed_loop(session, url, s, args.concurrency, check),
            hub, base, f"closed loop, {args.concurrency} in flight", ROUNDS)
        results.hub_rate, results.base_rate = await both(
            planner.calls("rate", int(args.rate * args.seconds)),
            lambda url, s, check: open_loop(session, url, s, args.rate, args.seconds, check),
            hub, base, f"open loop, {args.rate:,.0f} events/s offered for {args.seconds:g} s", 1)
        results.probes = await read_latency(session, hub, token, args)


async def both(scripts: list[Script], drive: Drive, hub: Server, base: Server,
               label: str, rounds: int) -> tuple[Stats, Stats]:
    """The same scripts against the hub and the baseline, alternating in rounds so that
    whatever else the machine does at the time weighs on both alike."""
    say(f"{label}:")
    hub_stats, base_stats = Stats(), Stats()
    for part in range(rounds):
        share = scripts[part::rounds]
        hub_stats.add(await timed(drive, hub, share, check_hub))
        base_stats.add(await timed(drive, base, share, check_status))
    say("  hub      " + describe(hub_stats))
    say("  baseline " + describe(base_stats))
    return hub_stats, base_stats


async def timed(drive: Drive, server: Server, scripts: list[Script], check: Check) -> Stats:
    """One run, with the CPU time the server and this process spent on it."""
    server_cpu, client_cpu = server.cpu_seconds(), time.process_time()
    stats = await drive(server.url, scripts, check)
    stats.server_cpu = server.cpu_seconds() - server_cpu
    stats.client_cpu = time.process_time() - client_cpu
    return stats


async def read_latency(session: aiohttp.ClientSession, hub: Server, token: str,
                       args: argparse.Namespace) -> list[Probe]:
    reader = Reader(session, hub.url, token, args.clients, args.read_budget)
    say(f"reads at {args.clients:,} clients, {args.queries} sequential requests each:")
    probes = [await reader.lookups(args.queries)]
    for kind in SEARCHES:
        probes.append(await reader.searches(kind, args.queries))
    probes.append(await reader.filters(args.queries))
    for probe in probes:
        say(f"  {probe.kind:<30} {describe_probe(probe)}")
    return probes


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def describe(stats: Stats) -> str:
    lat = stats.latencies
    errors = ", ".join(f"{k}: {v}" for k, v in stats.errors.items()) or "none"
    rounds = ""
    if len(stats.round_rates) > 1:
        rounds = f"rounds {' / '.join(f'{r:,.0f}' for r in stats.round_rates)} events/s; "
    return (f"{stats.rate:8,.0f} events/s  p50 {ms(percentile(lat, 0.5))}  "
            f"p99 {ms(percentile(lat, 0.99))}  server CPU {ms(stats.server_cpu_per_event)}/event  "
            f"({rounds}{stats.sent} requests in {stats.elapsed:.1f} s, "
            f"{stats.repeats} re-deliveries, {stats.duplicates} answered duplicate; "
            f"server CPU {stats.server_cpu:.1f} s, load generator CPU {stats.client_cpu:.1f} s; "
            f"errors: {errors})")


def describe_probe(probe: Probe) -> str:
    lat = probe.latencies
    hits = sum(probe.hits) / len(probe.hits) if probe.hits else 0
    errors = ", ".join(f"{k}: {v}" for k, v in probe.errors.items()) or "none"
    return (f"p50 {ms(percentile(lat, 0.5))}  p95 {ms(percentile(lat, 0.95))}  "
            f"p99 {ms(percentile(lat, 0.99))}  max {ms(max(lat, default=0))}  "
            f"({sent_of(probe)}, mean hits {hits:.1f}; errors: {errors})")


def sent_of(probe: Probe) -> str:
    if probe.sent == probe.wanted:
        return f"{probe.sent} requests"
    return f"{probe.sent} of {probe.wanted} requests: time budget spent"


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def table(results: Results, args: argparse.Namespace, host: str) -> str:
    """The Markdown summary: scenario | figure | target."""
    r = results
    ratio = r.hub_max.rate / r.base_max.rate if r.base_max.rate else 0.0
    p99_rate = percentile(r.hub_rate.latencies, 0.99) * 1000
    kept_up = r.hub_rate.rate >= 0.98 * args.rate and not r.hub_rate.errors
    rows = [
        (f"Prefill {args.clients:,} clients", f"{r.prefill_s:.1f} s", "—"),
        (f"Ingest, max throughput ({args.concurrency} in flight)", figure(r.hub_max), "—"),
        ("Bare aiohttp + 1 SQLite insert, same load", figure(r.base_max), "—"),
        ("Ingest / bare events/s", f"{ratio:.2f}",
         f"≥ 0.33 — {verdict(ratio >= RATIO_TARGET)}"),
        (f"Ingest at {args.rate:,.0f} events/s offered", "achieved " + figure(r.hub_rate),
         f"p99 ≤ 10 ms — {verdict(kept_up and p99_rate <= RATE_P99_TARGET_MS)}"),
        (f"Bare at {args.rate:,.0f} events/s offered", "achieved " + figure(r.base_rate), "—"),
    ]
    for probe in r.probes:
        p95 = percentile(probe.latencies, 0.95) * 1000
        target = "—"
        if probe.kind.startswith("search"):
            met = p95 <= SEARCH_P95_TARGET_MS and not probe.errors
            target = f"p95 ≤ 50 ms at 1M — {verdict(met)}"
        rows.append((f"{probe.kind} ({args.clients:,} clients)", probe_figure(probe), target))
    rss = f"{r.hub_rss_mib:.0f} MiB" if r.hub_rss_mib else "n/a"
    rows.append(("Hub RSS at the end", f"{rss} (bare: {r.base_rss_mib or 0:.0f} MiB)", "—"))
    lines = ["| scenario | figure | target |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return ("\n".join(lines) + f"\n\nMachine: {host}. Load average (1 min) at start / end: "
            f"{' / '.join(r.load)}.")


def figure(stats: Stats) -> str:
    errors = sum(stats.errors.values())
    lat = stats.latencies
    return (f"{stats.rate:,.0f} events/s, p50 {ms(percentile(lat, 0.5))}, "
            f"p99 {ms(percentile(lat, 0.99))}" + (f", {errors} errors" if errors else ""))


def probe_figure(probe: Probe) -> str:
    lat = probe.latencies
    errors = sum(probe.errors.values())
    short = ""
    if probe.sent < probe.wanted:
        short = f" ({probe.sent} of {probe.wanted} in the time budget)"
    return (f"p50 {ms(percentile(lat, 0.5))}, p95 {ms(percentile(lat, 0.95))}, "
            f"p99 {ms(percentile(lat, 0.99))}" + (f", {errors} errors" if errors else "") + short)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # a SIGTERM unwinds like Ctrl-C: children stopped, temp files gone


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        results, host = run(args)
    except KeyboardInterrupt:
        print("interrupted; child processes stopped and temp files removed", file=sys.stderr)
        return 130
    except ChildError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    say(f"\nhub RSS {results.hub_rss_mib or 0:.0f} MiB, bare {results.base_rss_mib or 0:.0f} MiB")
    if args.profile:
        from profile_hub import report

        say("\nhub profile (cProfile, event-loop thread):\n" + report(args.profile))
    say("\n" + table(results, args, host))
    errors = sum(sum(s.errors.values()) for s in (results.hub_max, results.hub_rate,
                                                  results.base_max, results.base_rate))
    errors += sum(sum(p.errors.values()) for p in results.probes)
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
