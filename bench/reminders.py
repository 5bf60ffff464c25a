"""Reminder firing lateness with a big backlog, and exactly-once across hub processes, against
a bare poller in the same run.

1. A throwaway PostgreSQL database (or `--sqlite`: a SQLite file, one process), `hub migrate`,
   one manager (`hub managers add`), C cards and P reminders due days ahead (the backlog),
   bulk-loaded with COPY / executemany.
2. `--processes` `hub serve` processes with all their clock-driven loops; the manager holds one
   WebSocket per process (each process tells only the managers connected to it).
3. D reminders due evenly over `--spread` s go in, the first one `--lead` s later (longer than
   the scheduler's longest sleep, so every scheduler has seen them before the first falls due).
4. Lateness per reminder = the `reminder.due` event's arrival (time.time()) − its due_at; also
   fired_at − due_at from the database. Each due reminder must be announced exactly once over
   all sockets and none of the backlog may fire: any violation makes the exit status 1.
5. Baseline: the same rows in a plain table, claimed by a bare asyncio loop per process (each
   its own connection): every 10 ms one transaction of SELECT … WHERE status = 'pending' AND
   due_at <= now ORDER BY due_at LIMIT 500 FOR UPDATE SKIP LOCKED, then UPDATE … WHERE
   id = ANY(those ids); lateness = when it committed − due_at. It is the floor a minimal poller
   sets here. (On SQLite: one UPDATE … RETURNING, one poller.)

    python bench/reminders.py                          # 2 processes, 100k backlog, 10k due in 5 s
    python bench/reminders.py --processes 1
    python bench/reminders.py --sqlite                 # one process on SQLite
    python bench/reminders.py --database-url postgres://user@host:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import aiohttp

from databases import Database, database
from loadgen import percentile
from procs import Children, Server, child_env, free_port, python, run_command

DEFAULT_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
TARGET_P99_S = 1.0
POLL_S = 0.010
BATCH = 500
TAIL_S = 20.0  # how long after the last due time to wait for stragglers
GRACE_S = 0.5
BASELINE_LEAD_S = 1.0  # the baseline polls from the start: no scheduler sleep to outlast
REMINDER_COLUMNS = ("client_id", "manager_id", "due_at", "text", "status", "origin", "count",
                    "created_at")
CLIENT_COLUMNS = ("id", "name", "status", "custom_fields", "created_at", "updated_at",
                  "activity_at", "search")


@dataclass
class Fired:
    """What one firing side measured: per reminder id, lateness in seconds."""

    late: dict[int, float] = field(default_factory=dict)
    db_late: list[float] = field(default_factory=list)
    duplicates: int = 0
    unexpected: int = 0  # backlog reminders that fired
    missing: int = 0  # due reminders never announced

    def add(self, rid: int, lateness: float, due: set[int]) -> None:
        if rid not in due:
            self.unexpected += 1
        elif rid in self.late:
            self.duplicates += 1
        else:
            self.late[rid] = lateness

    @property
    def violations(self) -> int:
        return self.duplicates + self.unexpected + self.missing


# --- the rows ---------------------------------------------------------------------------------


def due_times(start: float, count: int, spread: float) -> list[datetime]:
    """`count` due times evenly over `spread` seconds from `start` (epoch seconds)."""
    return [datetime.fromtimestamp(start + spread * i / count, UTC) for i in range(count)]


def backlog_times(count: int) -> list[datetime]:
    """Due times 1–30 days ahead."""
    base = datetime.now(UTC)
    return [base + timedelta(days=1, seconds=(i * 2_591_999) % (29 * 86_400))
            for i in range(count)]


def client_rows(count: int, ts: Any) -> list[tuple[Any, ...]]:
    at = ts(datetime.now(UTC))
    return [(i, f"Client {i}", "new", "{}", at, at, at, f"client {i}")
            for i in range(1, count + 1)]


def reminder_rows(times: list[datetime], clients: int, manager: int, ts: Any,
                  label: str) -> Iterator[tuple[Any, ...]]:
    at = ts(datetime.now(UTC))
    for i, due in enumerate(times):
        yield (i % clients + 1, manager, ts(due), f"{label} {i}", "pending", "manual", 1, at)


def sqlite_ts(value: datetime) -> str:
    """The text Tortoise stores for a UTC-aware datetime on SQLite."""
    return value.isoformat(" ")


def _same(value: Any) -> Any:
    return value


def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    return f'INSERT INTO "{table}" ({", ".join(columns)}) VALUES ({", ".join("?" * len(columns))})'


class Store:
    """Bulk writes and reads on the hub's database, outside the hub."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @property
    def dsn(self) -> str:
        return self.db.url.replace("asyncpg://", "postgres://", 1)

    async def load_clients(self, count: int) -> None:
        rows = client_rows(count, sqlite_ts if self.db.sqlite_path else _same)
        await self._copy("client", CLIENT_COLUMNS, rows)
        if self.db.sqlite_path is None:
            await self._pg("SELECT setval(pg_get_serial_sequence('client', 'id'), $1)", count)

    async def load_reminders(self, times: list[datetime], clients: int, manager: int,
                             label: str) -> set[int]:
        """Insert the reminders; their ids."""
        ts = sqlite_ts if self.db.sqlite_path else _same
        rows = list(reminder_rows(times, clients, manager, ts, label))
        await self._copy("reminder", REMINDER_COLUMNS, rows)
        found = await self.query("SELECT id FROM reminder WHERE text LIKE ?", (label + " %",))
        return {int(r[0]) for r in found}

    async def _copy(self, table: str, columns: tuple[str, ...], rows: list[Any]) -> None:
        if self.db.sqlite_path is not None:
            with sqlite3.connect(self.db.sqlite_path) as con:
                con.executemany(_insert_sql(table, columns), rows)
            con.close()
            return
        import asyncpg

        con = await asyncpg.connect(self.dsn)
        try:
            await con.copy_records_to_table(table, records=rows, columns=columns)
            await con.execute(f"ANALYZE {table}")
        finally:
            await con.close()

    async def _pg(self, sql: str, *args: Any) -> None:
        import asyncpg

        con = await asyncpg.connect(self.dsn)
        try:
            await con.execute(sql, *args)
        finally:
            await con.close()

    async def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of a `?`-marked query, on either engine."""
        if self.db.sqlite_path is not None:
            con = sqlite3.connect(self.db.sqlite_path)
            try:
                return con.execute(sql, params).fetchall()
            finally:
                con.close()
        import asyncpg

        parts = sql.split("?")
        pg = "".join(p + (f"${i}" if i < len(parts) else "") for i, p in enumerate(parts, 1))
        con = await asyncpg.connect(self.dsn)
        try:
            return [tuple(r) for r in await con.fetch(pg, *params)]
        finally:
            await con.close()


def as_epoch(value: Any) -> float:
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


# --- the hub ----------------------------------------------------------------------------------


async def listen(ws: aiohttp.ClientWebSocketResponse, fired: Fired, due: set[int],
                 deadline: float) -> None:
    """Record every reminder.due event's lateness until time is up, or a moment after all due
    ids arrived (so a late duplicate still counts)."""
    while (left := deadline - time.time()) > 0:
        if len(fired.late) == len(due):
            deadline = min(deadline, time.time() + GRACE_S)
        try:
            msg = await ws.receive(timeout=min(left, 1.0))
        except TimeoutError:
            continue
        if msg.type != aiohttp.WSMsgType.TEXT:
            return
        arrived = time.time()
        event = json.loads(msg.data)
        if event.get("type") == "reminder.due":
            reminder = event["reminder"]
            fired.add(int(reminder["id"]), arrived - as_epoch(reminder["due_at"]), due)


async def connect(session: aiohttp.ClientSession, hubs: list[Server],
                  token: str) -> list[aiohttp.ClientWebSocketResponse]:
    sockets = []
    for hub in hubs:
        ws = await session.ws_connect(hub.url + "/api/stream",
                                      headers={"Authorization": f"Bearer {token}"})
        hello = await ws.receive_json(timeout=5)
        assert hello["type"] == "hello", hello
        sockets.append(ws)
    return sockets


async def check_db(store: Store, fired: Fired, due: set[int]) -> dict[str, float]:
    """fired_at − due_at of the due reminders; the backlog must still be pending."""
    rows = await store.query(
        "SELECT id, status, due_at, fired_at FROM reminder WHERE status <> ?", ("pending",))
    batches: Counter[Any] = Counter()
    for rid, _status, due_at, fired_at in rows:
        if rid not in due:
            fired.unexpected += 1
        elif fired_at is not None:
            fired.db_late.append(as_epoch(fired_at) - as_epoch(due_at))
            batches[fired_at] += 1
    not_fired = len(due) - len(fired.db_late)
    fired.missing = len(due) - len(fired.late)
    return {"db_not_fired": float(not_fired), "claims": float(len(batches)),
            "largest_claim": float(max(batches.values(), default=0))}


async def run_hub(args: argparse.Namespace, work: Path, db: Database) -> dict[str, Any]:
    store = Store(db)
    env = child_env(HUB_DATABASE_URL=db.url, HUB_LOG_LEVEL="WARNING")
    run_command([python(), "-m", "hub", "migrate"], env, work)
    token = run_command([python(), "-m", "hub", "managers", "add", "Bench Manager"], env,
                        work).strip().splitlines()[-1]
    manager = int((await store.query("SELECT max(id) FROM manager"))[0][0])
    started = time.perf_counter()
    await store.load_clients(args.clients)
    await store.load_reminders(backlog_times(args.pending), args.clients, manager, "backlog")
    load_s = time.perf_counter() - started
    with Children() as children:
        hubs = [start_hub(children, i, env, work) for i in range(args.processes)]
        async with aiohttp.ClientSession() as session:
            for hub in hubs:
                await hub.wait_healthy(session)
            sockets = await connect(session, hubs, token)
            cpu0 = sum(h.cpu_seconds() for h in hubs)
            start = time.time() + args.lead
            due = await store.load_reminders(due_times(start, args.due, args.spread),
                                             args.clients, manager, "due")
            fired = Fired()
            deadline = start + args.spread + TAIL_S
            await asyncio.gather(*(listen(ws, fired, due, deadline) for ws in sockets))
            for ws in sockets:
                await ws.close()
            extra = await check_db(store, fired, due)
            extra |= {"rss_mib": [h.rss_mib() or 0.0 for h in hubs], "load_s": load_s,
                      "cpu_s": sum(h.cpu_seconds() for h in hubs) - cpu0}
    return {"fired": fired, **extra}


def start_hub(children: Children, i: int, env: dict[str, str], work: Path) -> Server:
    port = free_port()
    return children.start(f"hub{i}", [python(), "-m", "hub", "serve", "--port", str(port)],
                          env, work, port)


# --- the baseline -----------------------------------------------------------------------------

_PG_SELECT = (
    "SELECT id, due_at FROM bench_due WHERE status = 'pending' AND due_at <= $1 "
    "ORDER BY due_at, id LIMIT $2 FOR UPDATE SKIP LOCKED"
)
_PG_UPDATE = "UPDATE bench_due SET status = 'fired', fired_at = $1 WHERE id = ANY($2::int[])"
_SQLITE_CLAIM = (
    "UPDATE bench_due SET status = 'fired', fired_at = ? WHERE id IN ("
    "SELECT id FROM bench_due WHERE status = 'pending' AND due_at <= ? "
    "ORDER BY due_at, id LIMIT ?) RETURNING id, due_at, fired_at"
)
_TABLE = ("CREATE TABLE bench_due (id INTEGER PRIMARY KEY, due_at {ts} NOT NULL, "
          "status TEXT NOT NULL, fired_at {ts})")
_INDEX = "CREATE INDEX bench_due_status_due ON bench_due (status, due_at)"


@dataclass
class Plan:
    """The baseline's rows: the backlog first, then the due ones timed from when they go in."""

    pending: int
    due: int
    spread: float
    start: float = 0.0

    def backlog(self) -> list[tuple[Any, ...]]:
        return [(i, t, "pending") for i, t in enumerate(backlog_times(self.pending), 1)]

    def due_rows(self) -> list[tuple[Any, ...]]:
        self.start = time.time() + BASELINE_LEAD_S
        times = due_times(self.start, self.due, self.spread)
        return [(self.pending + i, t, "pending") for i, t in enumerate(times, 1)]

    @property
    def due_ids(self) -> set[int]:
        return set(range(self.pending + 1, self.pending + self.due + 1))

    @property
    def deadline(self) -> float:
        return self.start + self.spread + TAIL_S


async def run_baseline(args: argparse.Namespace, db: Database) -> Fired:
    """The same backlog and due times in a plain table, claimed by bare pollers."""
    plan = Plan(args.pending, args.due, args.spread)
    fired = Fired()
    if db.sqlite_path is not None:
        await sqlite_baseline(db.sqlite_path.with_name("baseline.db"), plan, fired)
    else:
        await pg_baseline(Store(db).dsn, plan, fired, args.processes)
    fired.missing = args.due - len(fired.late)
    return fired


async def pg_baseline(dsn: str, plan: Plan, fired: Fired, pollers: int) -> None:
    import asyncpg

    con = await asyncpg.connect(dsn)
    cons = [await asyncpg.connect(dsn) for _ in range(pollers)]
    try:
        await con.execute(_TABLE.format(ts="timestamptz"))
        columns = ("id", "due_at", "status")
        await con.copy_records_to_table("bench_due", records=plan.backlog(), columns=columns)
        await con.execute(_INDEX)
        await con.execute("ANALYZE bench_due")
        await con.copy_records_to_table("bench_due", records=plan.due_rows(), columns=columns)
        due = plan.due_ids
        await asyncio.gather(*(pg_poll(c, fired, due, plan.deadline) for c in cons))
    finally:
        for c in [con, *cons]:
            await c.close()


async def pg_poll(con: Any, fired: Fired, due: set[int], deadline: float) -> None:
    """SELECT … FOR UPDATE SKIP LOCKED, then UPDATE those ids, in one transaction."""
    while len(fired.late) < len(due) and time.time() < deadline:
        at = datetime.now(UTC)
        async with con.transaction():
            rows = await con.fetch(_PG_SELECT, at, BATCH)
            if rows:
                await con.execute(_PG_UPDATE, at, [row["id"] for row in rows])
        claimed = time.time()
        for row in rows:
            fired.add(row["id"], claimed - row["due_at"].timestamp(), due)
            fired.db_late.append(at.timestamp() - row["due_at"].timestamp())
        await asyncio.sleep(POLL_S)


async def sqlite_baseline(path: Path, plan: Plan, fired: Fired) -> None:
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute(_TABLE.format(ts="TIMESTAMP"))
        sqlite_insert(con, plan.backlog())
        con.execute(_INDEX)
        sqlite_insert(con, plan.due_rows())
        due = plan.due_ids
        while len(fired.late) < len(due) and time.time() < plan.deadline:
            at = sqlite_ts(datetime.now(UTC))
            for rid, due_at, fired_at in con.execute(_SQLITE_CLAIM, (at, at, BATCH)).fetchall():
                fired.add(rid, time.time() - as_epoch(due_at), due)
                fired.db_late.append(as_epoch(fired_at) - as_epoch(due_at))
            await asyncio.sleep(POLL_S)
    finally:
        con.close()


def sqlite_insert(con: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    con.execute("BEGIN")
    con.executemany("INSERT INTO bench_due (id, due_at, status) VALUES (?, ?, ?)",
                    [(i, sqlite_ts(t), status) for i, t, status in rows])
    con.execute("COMMIT")


# --- the report -------------------------------------------------------------------------------


def stats(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (f"p50 {percentile(ms, 0.5):7.1f} ms  p95 {percentile(ms, 0.95):7.1f} ms  "
            f"p99 {percentile(ms, 0.99):7.1f} ms  max {max(ms, default=0.0):7.1f} ms  "
            f"(n={len(ms)})")


def report(args: argparse.Namespace, label: str, hub: dict[str, Any], base: Fired) -> None:
    fired: Fired = hub["fired"]
    procs = args.processes
    print(f"database: {label}; {procs} hub process(es); {args.clients} cards, backlog "
          f"{args.pending} reminders due in 1-30 days, {args.due} due over {args.spread:g} s "
          f"(loaded in {hub['load_s']:.1f} s)")
    print(f"  hub events    {stats(list(fired.late.values()))}")
    print(f"  hub fired_at  {stats(fired.db_late)}")
    print(f"  baseline      {stats(list(base.late.values()))}  (claim returned)")
    print(f"  baseline db   {stats(base.db_late)}  (fired_at, the poll's clock)")
    for name, f in (("hub", fired), ("baseline", base)):
        print(f"  {name:8s} exactly once: {len(f.late)} of {args.due} due announced; duplicates "
              f"{f.duplicates}, never announced {f.missing}, backlog fired {f.unexpected}")
    print(f"  hub: {hub['claims']:.0f} claims, largest {hub['largest_claim']:.0f} rows; not fired "
          f"in the db {hub['db_not_fired']:.0f}; CPU {hub['cpu_s']:.1f} s over the run; RSS "
          + ", ".join(f"{r:.0f} MiB" for r in hub["rss_mib"]))
    p99 = percentile(list(fired.late.values()), 0.99)
    base_p99 = percentile(list(base.late.values()), 0.99)
    print()
    print("| scenario | figure | target |")
    print("|---|---|---|")
    print(f"| reminders, {procs} process(es), {args.due // 1000}k due in {args.spread:g} s over a "
          f"{args.pending // 1000}k backlog | p50 "
          f"{percentile(list(fired.late.values()), 0.5) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
          f"max {max(fired.late.values(), default=0.0) * 1000:.0f} ms late (baseline p99 "
          f"{base_p99 * 1000:.0f} ms); {fired.violations} exactly-once violations | "
          f"p99 ≤ {TARGET_P99_S:g} s |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1_000)
    parser.add_argument("--pending", type=int, default=100_000, help="backlog, due in days")
    parser.add_argument("--due", type=int, default=10_000, help="reminders due during the run")
    parser.add_argument("--spread", type=float, default=5.0, help="seconds the due ones span")
    parser.add_argument("--lead", type=float, default=7.0,
                        help="seconds from loading the due ones to the first due time")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--database-url", default=DEFAULT_ADMIN_URL,
                        help="PostgreSQL admin URL: a throwaway database is made under it")
    parser.add_argument("--sqlite", action="store_true", help="one process on a SQLite file")
    args = parser.parse_args()
    if args.sqlite:
        args.processes = 1
    with TemporaryDirectory(prefix="hub-bench-rem-") as tmp, \
            database(None if args.sqlite else args.database_url, Path(tmp)) as db:
        hub = asyncio.run(run_hub(args, Path(tmp), db))
        base = asyncio.run(run_baseline(args, db))
    report(args, db.label, hub, base)
    return 1 if hub["fired"].violations or hub["db_not_fired"] or base.violations else 0


if __name__ == "__main__":
    sys.exit(main())
