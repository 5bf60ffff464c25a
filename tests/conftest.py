"""Fixtures: one database per test (in-memory SQLite, or PostgreSQL when
HUB_TEST_DATABASE_URL names a server), the app under an aiohttp test client, managers."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import pytest_asyncio
from tortoise import connections

from hub import db
from hub.app import create_app
from hub.managers import create_manager
from hub.models import Role
from hub.settings import Settings, load_settings
from tests.helpers import EMAIL_TOKEN, GENERIC_SECRET

PG_SERVER = os.environ.get("HUB_TEST_DATABASE_URL", "")
# shared fixtures: `smtp` (aiosmtpd), `dovecot` and `postfix` (private real mail servers),
# `telegram_api` (a local fake of the Telegram Bot API)
pytest_plugins = ("tests.smtpserver", "tests.mailservers", "tests.telegram_fake",
                  "tests.webhook_receiver")


def _pg_admin(url: str, sql: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str | None]:
    """A throwaway PostgreSQL database for the whole run, when HUB_TEST_DATABASE_URL is set."""
    if not PG_SERVER:
        yield None
        return
    name = f"hub_test_{uuid.uuid4().hex[:10]}"
    parts = urlsplit(PG_SERVER)
    _pg_admin(PG_SERVER, f'CREATE DATABASE "{name}"')
    yield urlunsplit(parts._replace(path="/" + name))
    _pg_admin(PG_SERVER, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(
    pg_database_url: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Path | None:
    """A SQLite file migrated once per run; each test starts from a copy (migrating a new
    file costs ~0.2 s, copying one ~0.01 s). None on a PostgreSQL run."""
    if pg_database_url:
        return None
    path = tmp_path_factory.mktemp("template") / "hub.db"

    async def migrate() -> None:
        await db.init_db(f"sqlite://{path}")
        await db.close_db()

    asyncio.run(migrate())
    return path


@pytest.fixture
def database_url(
    pg_database_url: str | None, tmp_path: Path, sqlite_template: Path | None
) -> str:
    """The test's database: the shared PostgreSQL one, or a fresh, migrated SQLite file (the
    real deployment shape, so the ingest writer's own connection is exercised too)."""
    if pg_database_url or sqlite_template is None:
        return str(pg_database_url)
    for suffix in ("", "-wal"):
        if (source := sqlite_template.with_name(sqlite_template.name + suffix)).exists():
            shutil.copyfile(source, tmp_path / f"hub.db{suffix}")
    return f"sqlite://{tmp_path / 'hub.db'}"


@pytest.fixture
def is_pg(database_url: str) -> bool:
    return database_url.startswith("postgres")


@pytest.fixture
def make_settings(database_url: str) -> Any:
    """Settings for a test: a known secret for every inbound source, overridable."""

    def make(**overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "database_url": database_url,
            "phone_region": "RU",
            "telephony": {"generic": {"secret": GENERIC_SECRET}},
            "email": {"inbound_token": EMAIL_TOKEN},
        }
        base.update(overrides)
        return load_settings(os.devnull, environ={}, **base)  # never a developer's own config

    return make


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    return make_settings()


async def _truncate() -> None:
    conn = connections.get("default")
    if db.is_postgres(conn):
        tables = ("manager, api_token, client, identity, interaction, call, reminder, "
                  "processed_event, merge, offer_template, outbox, mailbox_state, telegram_chat, "
                  "link_token, import_job, webhook, webhook_event, webhook_delivery, web_session, "
                  "audit_log")
        # DELETE, not TRUNCATE: on tables this small it takes ~0.3 ms against ~100 ms (TRUNCATE
        # makes new files for every table); with the foreign key triggers off, in any order
        deletes = "; ".join(f"DELETE FROM {table.strip()}" for table in tables.split(","))
        await conn.execute_script(
            f"BEGIN; SET LOCAL session_replication_role = replica; {deletes}; COMMIT; "
            "SELECT setval(c.oid::regclass, 1, false) FROM pg_class c WHERE c.relkind = 'S'")


@pytest_asyncio.fixture
async def orm(database_url: str) -> AsyncIterator[None]:
    """An open, migrated, empty database for tests that use the hub without HTTP."""
    await db.init_db(database_url)
    await _truncate()
    yield
    await db.close_db()


@pytest_asyncio.fixture
async def app_client(aiohttp_client: Any, settings: Settings, orm: None) -> Any:
    """The hub app (sharing the test's database) under aiohttp's test client, without the
    clock-driven loops (tests/hub/test_scheduler.py runs those on purpose)."""
    return await aiohttp_client(create_app(settings, manage_db=False, background=False))


@pytest.fixture
def make_client(aiohttp_client: Any, make_settings: Any, orm: None) -> Any:
    """Build an app with custom settings on the test's database."""

    async def make(**overrides: Any) -> Any:
        return await aiohttp_client(
            create_app(make_settings(**overrides), manage_db=False, background=False)
        )

    return make


@pytest_asyncio.fixture
async def admin(orm: None) -> dict[str, Any]:
    manager, token = await create_manager("Admin", email="admin@example.com", role=Role.ADMIN)
    return {"manager": manager, "token": token, "headers": {"Authorization": f"Bearer {token}"}}


@pytest_asyncio.fixture
async def manager(orm: None) -> dict[str, Any]:
    manager, token = await create_manager("Olga", email="olga@example.com", extension="101")
    return {"manager": manager, "token": token, "headers": {"Authorization": f"Bearer {token}"}}


def pytest_report_header(config: pytest.Config) -> str:
    return f"database: {'PostgreSQL at ' + PG_SERVER if PG_SERVER else 'a SQLite file per test'}"
