"""The hub's database for one run: a fresh SQLite file, or a throwaway PostgreSQL database."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import prefill


@dataclass(frozen=True, slots=True)
class Database:
    """Where the hub keeps its data during the run."""

    url: str  # HUB_DATABASE_URL
    label: str  # for the report: engine and version
    sqlite_path: Path | None = None

    def prefill(self, clients: int) -> None:
        """Bulk-load the cards (the schema must exist: run `hub migrate` first)."""
        if self.sqlite_path is not None:
            prefill.prefill_sqlite(self.sqlite_path, clients)
        else:
            asyncio.run(prefill.prefill_postgres(_asyncpg_dsn(self.url), clients))


@contextmanager
def database(admin_url: str | None, workdir: Path) -> Iterator[Database]:
    """A database for this run, removed afterwards (the SQLite file goes with the temp dir)."""
    if admin_url is None:
        path = workdir / "hub.db"
        yield Database(f"sqlite://{path}", f"SQLite {sqlite3.sqlite_version}", path)
        return
    name = f"crm_hub_bench_{secrets.token_hex(4)}"
    version = asyncio.run(_create(admin_url, name))
    try:
        yield Database(_with_database(admin_url, name), f"PostgreSQL {version}")
    finally:
        asyncio.run(_drop(admin_url, name))


def _asyncpg_dsn(url: str) -> str:
    return url.replace("asyncpg://", "postgres://", 1)


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


async def _create(admin_url: str, name: str) -> str:
    import asyncpg

    con = await asyncpg.connect(_asyncpg_dsn(admin_url))
    try:
        await con.execute(f'CREATE DATABASE "{name}"')
        return str(await con.fetchval("SHOW server_version"))
    finally:
        await con.close()


async def _drop(admin_url: str, name: str) -> None:
    import asyncpg

    con = await asyncpg.connect(_asyncpg_dsn(admin_url))
    try:
        await con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await con.close()
