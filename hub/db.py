"""Database set-up: the Tortoise config, migrations through aerich, and small SQL helpers."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tortoise import BaseDBAsyncClient, Tortoise, connections

log = logging.getLogger("hub.db")

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


async def init_db(database_url: str, *, migrate: bool = True) -> None:
    """Open the connections and bring the schema up to date."""
    await Tortoise.init(config=tortoise_config(database_url))
    if migrate:
        await migrate_db(database_url)


async def close_db() -> None:
    """Close every connection Tortoise opened."""
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


def placeholders(conn: BaseDBAsyncClient, count: int, start: int = 1) -> list[str]:
    """Parameter markers for raw SQL in the connection's dialect."""
    if is_postgres(conn):
        return [f"${i}" for i in range(start, start + count)]
    return ["?"] * count


async def insert_ignore(
    conn: BaseDBAsyncClient, table: str, values: dict[str, Any], conflict: Sequence[str]
) -> int | None:
    """INSERT … ON CONFLICT DO NOTHING; the new row's id, or None when the row existed."""
    cols = list(values)
    marks = ", ".join(placeholders(conn, len(cols)))
    sql = (
        f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks}) "
        f"ON CONFLICT ({', '.join(conflict)}) DO NOTHING RETURNING id"
    )
    rows = await conn.execute_query_dict(sql, [values[c] for c in cols])
    return int(rows[0]["id"]) if rows else None
