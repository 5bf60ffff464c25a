"""Database set-up: the Tortoise config, migrations through aerich, and small SQL helpers."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tortoise import BaseDBAsyncClient, Tortoise, connections

from hub.errors import BusyError, ConfigError

log = logging.getLogger("hub.db")
T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
MODEL_MODULES = ["hub.models", "aerich.models"]
_MIGRATION_LOCK_ID = 0x6875625F6D6967  # an arbitrary constant: "hub_mig"


def now() -> datetime:
    """The current time, timezone-aware UTC (the one clock every module uses)."""
    return datetime.now(UTC)


def tortoise_config(database_url: str) -> dict[str, Any]:
    """The Tortoise config for one database URL."""
    return {
        "connections": {"default": _with_sqlite_pragmas(database_url)},
        "apps": {"models": {"models": MODEL_MODULES, "default_connection": "default"}},
        "use_tz": True,
        "timezone": "UTC",
    }


def _with_sqlite_pragmas(url: str) -> str:
    # WAL + synchronous=NORMAL: durable across process crashes, one fsync per checkpoint
    if not url.startswith("sqlite:"):
        return url
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.setdefault("journal_mode", "WAL")
    query.setdefault("synchronous", "NORMAL")
    query.setdefault("busy_timeout", "5000")
    return urlunsplit(parts._replace(query=urlencode(query)))


def is_postgres(conn: BaseDBAsyncClient | None = None) -> bool:
    """True on PostgreSQL, False on SQLite."""
    client = conn or connections.get("default")
    return client.capabilities.dialect == "postgres"


# The drivers log every statement with its values at DEBUG: names, phones, message texts.
# Personal data and message bodies never go to the hub's logs, whatever the log level.
STATEMENT_LOGGERS = ("tortoise.db_client", "aiosqlite", "asyncpg")


async def init_db(database_url: str, *, migrate: bool = True) -> None:
    """Open the connections and bring the schema up to date."""
    for name in STATEMENT_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)
    await Tortoise.init(config=tortoise_config(database_url))
    _check_sqlite_file(connections.get("default"))
    if migrate:
        await migrate_db(database_url)


async def _begin_immediate(self: Any) -> None:
    try:
        await self._connection.commit()
        await self._connection.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        from tortoise.exceptions import TransactionManagementError

        raise TransactionManagementError(exc) from None


def _immediate_sqlite_transactions() -> None:
    """Tortoise opens a SQLite transaction with a plain (deferred) BEGIN, so its first write
    must upgrade a read snapshot. In WAL mode that fails at once with "database is locked",
    without waiting out the busy timeout, whenever another connection (the ingest writer)
    committed in between. BEGIN IMMEDIATE takes the write lock up front and waits for it.
    Every `in_transaction()` of the hub writes, so nothing is lost by taking it early."""
    from tortoise.backends.sqlite.client import SqliteTransactionWrapper

    SqliteTransactionWrapper.begin = _begin_immediate  # type: ignore[method-assign]


_immediate_sqlite_transactions()


def _check_sqlite_file(client: BaseDBAsyncClient) -> None:
    # aiosqlite never answers again after a failed open, so a bad path would hang start-up
    filename = str(getattr(client, "filename", ":memory:"))
    if is_postgres(client) or filename == ":memory:":
        return
    try:
        sqlite3.connect(filename).close()
    except sqlite3.Error as exc:
        raise ConfigError(f"database_url: cannot open SQLite file {filename!r}: {exc}") from None


async def close_db() -> None:
    """Close every connection Tortoise (and the ingest writer) opened."""
    _close_writers()
    await Tortoise.close_connections()


async def migrate_db(database_url: str) -> list[str]:
    """Apply pending aerich migrations; several processes starting at once take turns."""
    from aerich import Command

    async with _migration_lock(database_url):
        command = Command(tortoise_config(database_url), app="models", location=str(MIGRATIONS_DIR))
        await command.init()
        applied = await command.upgrade(run_in_transaction=True)
    if applied:
        log.info("applied migrations: %s", ", ".join(applied))
    return applied


@contextlib.asynccontextmanager
async def _migration_lock(database_url: str) -> AsyncIterator[None]:
    if not database_url.startswith(("postgres", "asyncpg")):
        yield  # SQLite serializes writers itself
        return
    import asyncpg

    dsn = database_url.replace("asyncpg://", "postgres://", 1)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_ID)
        yield
    finally:
        await conn.close()  # closing the session releases the lock


async def execute(conn: BaseDBAsyncClient, stmt: Stmt) -> list[dict[str, Any]]:
    """Run one statement on a Tortoise connection (inside its transaction, if any)."""
    sql = stmt.postgres_sql if is_postgres(conn) else stmt.sql
    return await conn.execute_query_dict(sql, list(stmt.params))


# --- SQL programs -----------------------------------------------------------------------------
# The ingest path is written as a generator that yields statements and receives their rows:
# the logic stays free of I/O and of the dialect, and a runner executes it either in one hop
# to SQLite's thread (one transaction, no per-statement thread round trip) or on asyncpg.


class RaceLost(Exception):
    """A unique constraint fired or a deadlock was broken: a concurrent transaction won;
    retry the whole program."""


@dataclass(frozen=True, slots=True)
class Stmt:
    """One statement with `?` markers; `pg_suffix` is appended on PostgreSQL only, and
    `pg` replaces the whole text there (a lock clause inside a subquery)."""

    sql: str
    params: tuple[Any, ...] = ()
    pg_suffix: str = ""
    pg: str | None = None

    @property
    def postgres_sql(self) -> str:
        return pg_sql(self.pg or self.sql) + self.pg_suffix


Row = Mapping[str, Any]
Program = Generator[Stmt, list[Row], T]


@functools.lru_cache(maxsize=256)
def pg_sql(sql: str) -> str:
    """`?` markers as asyncpg's `$n`."""
    parts = sql.split("?")
    return "".join(p + (f"${i}" if i < len(parts) else "") for i, p in enumerate(parts, 1))


class Busy(BusyError):
    """Another connection held SQLite's write lock for too long; the request may be retried."""


async def run_program(make: Callable[[], Program[T]]) -> T:
    """Run a SQL program as one transaction; RaceLost when a unique constraint fired."""
    client = connections.get("default")
    if is_postgres(client):
        return await _run_asyncpg(client, make)
    writer = _sqlite_writer(client)
    if writer is None:  # an in-memory database exists only on Tortoise's own connection
        async with client.acquire_connection() as aconn:
            return cast(T, await aconn._execute(_run_sqlite, aconn._conn, make))
    return cast(T, await writer.submit(make))


# SQLite: the ingest transactions run on a connection of their own on the event-loop thread.
# A program is a few index lookups and writes (well under a millisecond): cheaper than a hop
# to a worker thread, which would also fight the loop for the GIL. The programs that arrive
# within one loop iteration share one transaction (group commit; each in its own savepoint),
# and their callers hear back only after the COMMIT. The writer never waits for SQLite's lock
# (busy_timeout=0): while another connection holds it, the batch is retried later.
_BUSY_BACKOFF = [0.001 * 2**i for i in range(8)] + [0.2] * 50


class _GroupWriter:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.pending: list[tuple[Callable[[], Program[Any]], asyncio.Future[Any]]] = []
        self.busy_tries = 0
        self.scheduled = False

    def submit(self, make: Callable[[], Program[Any]]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self.pending.append((make, future))
        if not self.scheduled:
            self.scheduled = True
            loop.call_soon(self.flush)
        return future

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        try:
            self.conn.execute("BEGIN IMMEDIATE")  # the write lock now: no upgrade, no deadlock
        except sqlite3.OperationalError as exc:
            self._retry_later(batch, exc)
            return
        self.busy_tries = 0
        try:
            outcomes = [(future, *self._run_one(make)) for make, future in batch]
            self.conn.execute("COMMIT")
        except Exception as exc:
            # the transaction machinery itself failed (savepoint, commit, disk): nothing of
            # the batch is stored, every caller hears so, and the next batch starts clean
            self._rollback()
            outcomes = [(future, None, exc) for _, future in batch]
        for future, value, error in outcomes:
            if not future.done():
                future.set_exception(error) if error else future.set_result(value)
        self._next_batch()

    def _rollback(self) -> None:
        try:
            self.conn.execute("ROLLBACK")
        except sqlite3.Error:
            log.exception("rollback after a failed batch failed too")

    def _run_one(self, make: Callable[[], Program[Any]]) -> tuple[Any, BaseException | None]:
        self.conn.execute("SAVEPOINT program")
        try:
            value = _drive(self.conn, make)
        except Exception as exc:
            self.conn.execute("ROLLBACK TO program")
            self.conn.execute("RELEASE program")
            if isinstance(exc, sqlite3.IntegrityError):
                return None, RaceLost(str(exc))
            return None, exc
        self.conn.execute("RELEASE program")
        return value, None

    def _retry_later(self, batch: list[Any], exc: Exception) -> None:
        self.pending = batch + self.pending
        if self.busy_tries >= len(_BUSY_BACKOFF):
            self.busy_tries, failed, self.pending = 0, self.pending, []
            for _, future in failed:
                if not future.done():
                    future.set_exception(Busy(f"the SQLite database stayed locked: {exc}"))
            self._next_batch()
            return
        delay = _BUSY_BACKOFF[self.busy_tries]
        self.busy_tries += 1
        asyncio.get_running_loop().call_later(delay, self.flush)

    def _next_batch(self) -> None:
        self.scheduled = bool(self.pending)
        if self.pending:
            asyncio.get_running_loop().call_soon(self.flush)


_writers: dict[str, _GroupWriter] = {}


def _sqlite_writer(client: BaseDBAsyncClient) -> _GroupWriter | None:
    filename = str(getattr(client, "filename", ":memory:"))
    if filename == ":memory:" or "mode=memory" in filename:
        return None
    writer = _writers.get(filename)
    if writer is None:
        conn = sqlite3.connect(filename, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        for pragma, value in getattr(client, "pragmas", {}).items():
            if pragma != "busy_timeout":
                conn.execute(f"PRAGMA {pragma}={value}")
        conn.execute("PRAGMA busy_timeout=0")
        conn.execute("PRAGMA cache_size=-32768")  # 32 MiB: the indexes of a million cards
        writer = _writers[filename] = _GroupWriter(conn)
    return writer


def _close_writers() -> None:
    for writer in _writers.values():
        writer.conn.close()
    _writers.clear()


def _drive(conn: sqlite3.Connection, make: Callable[[], Program[T]]) -> T:
    """Run a program's statements on a connection already inside a transaction."""
    program = make()
    stmt = next(program)
    while True:
        rows = conn.execute(stmt.sql, stmt.params).fetchall()
        try:
            stmt = program.send(rows)
        except StopIteration as done:
            return cast(T, done.value)


def _run_sqlite(conn: sqlite3.Connection, make: Callable[[], Program[T]]) -> T:
    """One program as one transaction (Tortoise's own connection, for in-memory databases)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        value = _drive(conn, make)
    except sqlite3.IntegrityError as exc:
        conn.execute("ROLLBACK")
        raise RaceLost(str(exc)) from None
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return value


async def _run_asyncpg(client: BaseDBAsyncClient, make: Callable[[], Program[T]]) -> T:
    import asyncpg

    async with client.acquire_connection() as conn:
        try:
            async with conn.transaction():
                program = make()
                stmt = next(program)
                while True:
                    rows = await conn.fetch(stmt.postgres_sql, *stmt.params)
                    try:
                        stmt = program.send(rows)
                    except StopIteration as done:  # inside the block: it commits
                        return cast(T, done.value)
        except (asyncpg.UniqueViolationError, asyncpg.DeadlockDetectedError) as exc:
            # a concurrent ingest won the race, or PostgreSQL broke a lock cycle by failing
            # this transaction: either way, running the whole program again is safe
            raise RaceLost(str(exc)) from None


def as_datetime(value: Any) -> datetime | None:
    """A timestamp column as an aware datetime (SQLite hands back text)."""
    if value is None or isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def as_json(value: Any) -> Any:
    """A JSON column as Python data (both drivers hand back text)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def to_json(value: Any) -> str:
    """Python data as a JSON column value."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
