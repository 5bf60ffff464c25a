"""Bulk-load N synthetic cards straight into a migrated hub schema (SQLite or PostgreSQL).

The hub's own code path (one transaction per card) would take hours for a million cards, so
rows go in with executemany / COPY. Secondary indexes and the FTS5 triggers are dropped for the
load and recreated from the very SQL the migration stored in sqlite_master.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cards import MANAGERS, Card, card, reversed_digits

CHUNK = 50_000
CLIENT_COLUMNS = (
    "id", "name", "status", "custom_fields", "created_at", "updated_at",
    "last_interaction_at", "activity_at", "search", "manager_id",
)
IDENTITY_COLUMNS = ("kind", "value", "rev", "created_at", "client_id")
MANAGER_COLUMNS = ("id", "name", "email", "extension", "phone", "role", "is_active", "created_at")


def chunks(total: int, now: datetime) -> Iterator[list[Card]]:
    """The cards in slices of CHUNK."""
    for start in range(0, total, CHUNK):
        yield [card(i, total, now) for i in range(start, min(start + CHUNK, total))]


def client_row(c: Card, ts: Any) -> tuple[Any, ...]:
    last = ts(c.last_interaction_at) if c.last_interaction_at else None
    created = ts(c.created_at)
    return (c.id, c.name, c.status, "{}", created, created, last, ts(c.activity_at), c.search,
            c.manager_id)


def identity_rows(c: Card, ts: Any) -> list[tuple[Any, ...]]:
    created = ts(c.created_at)
    rows: list[tuple[Any, ...]] = [("phone", c.phone, reversed_digits(c.phone), created, c.id)]
    if c.email:
        rows.append(("email", c.email, None, created, c.id))
    return rows


def manager_rows(ts: Any, now: datetime) -> list[tuple[Any, ...]]:
    created = ts(now)
    return [
        (i, f"Менеджер {i}", f"manager{i}@bench.local", str(100 + i), None, "manager", True,
         created)
        for i in range(1, MANAGERS + 1)
    ]


def sqlite_ts(value: datetime) -> str:
    """The text Tortoise stores for a UTC-aware datetime on SQLite."""
    return value.isoformat(" ")


def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    return f'INSERT INTO "{table}" ({", ".join(columns)}) VALUES ({", ".join("?" * len(columns))})'


def prefill_sqlite(path: Path, total: int) -> None:
    """Fill the migrated SQLite database at `path` with `total` cards."""
    now = datetime.now(UTC)
    con = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in ("synchronous=OFF", "cache_size=-262144", "temp_store=MEMORY"):
            con.execute(f"PRAGMA {pragma}")
        restore = _detach_indexes_and_triggers(con)
        con.execute("BEGIN")
        con.executemany(_insert_sql("manager", MANAGER_COLUMNS), manager_rows(sqlite_ts, now))
        for batch in chunks(total, now):
            con.executemany(_insert_sql("client", CLIENT_COLUMNS),
                            [client_row(c, sqlite_ts) for c in batch])
            con.executemany(_insert_sql("identity", IDENTITY_COLUMNS),
                            [r for c in batch for r in identity_rows(c, sqlite_ts)])
        con.execute("COMMIT")
        con.execute("INSERT INTO client_fts(client_fts) VALUES ('rebuild')")
        for sql in restore:
            con.execute(sql)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()


def _detach_indexes_and_triggers(con: sqlite3.Connection) -> list[str]:
    """Drop the secondary indexes and triggers of client/identity; the SQL that recreates them."""
    rows = con.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE type IN ('index', 'trigger') "
        "AND tbl_name IN ('client', 'identity') AND sql IS NOT NULL"
    ).fetchall()
    for kind, name, _ in rows:
        con.execute(f'DROP {kind.upper()} "{name}"')
    return [sql for _, _, sql in rows]


async def prefill_postgres(dsn: str, total: int) -> None:
    """Fill the migrated PostgreSQL database with `total` cards through COPY."""
    import asyncpg

    now = datetime.now(UTC)
    con = await asyncpg.connect(dsn)
    try:
        async with con.transaction():
            await con.copy_records_to_table("manager", records=manager_rows(_same, now),
                                            columns=MANAGER_COLUMNS)
            for batch in chunks(total, now):
                await con.copy_records_to_table(
                    "client", records=[client_row(c, _same) for c in batch], columns=CLIENT_COLUMNS)
                await con.copy_records_to_table(
                    "identity", records=[r for c in batch for r in identity_rows(c, _same)],
                    columns=IDENTITY_COLUMNS)
            for table in ("manager", "client"):
                await con.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))")
        # autovacuum would analyze the loaded tables within a minute (where it runs); the
        # tables the hub fills during the run are left as a fresh install has them
        await con.execute("ANALYZE client, identity, manager")
    finally:
        await con.close()


def _same(value: Any) -> Any:
    return value
