"""The SQL-program runners: every database shape the hub accepts runs the same logic."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime

import pytest

from hub import db
from hub.events import CallEvent, CallState, Direction, Party
from hub.models import Client
from hub.pipeline import Pipeline
from tests.conftest import PG_SERVER

# Tortoise caches each model's INSERT with the placeholders of the first database it saw, so
# one test process sticks to one backend: these SQLite-only tests sit out the PostgreSQL pass.
sqlite_only = pytest.mark.skipif(bool(PG_SERVER), reason="SQLite runners; this is the PG pass")


def ringing(call_id: str) -> CallEvent:
    return CallEvent(
        source="generic",
        call_id=call_id,
        state=CallState.RINGING,
        direction=Direction.INBOUND,
        remote=Party(phone="+79123456789"),
        occurred_at=datetime(2026, 11, 22, 10, tzinfo=UTC),
    )


@sqlite_only
async def test_in_memory_sqlite_runs_on_tortoise_own_connection() -> None:
    await db.init_db("sqlite://:memory:")
    try:
        pipeline = Pipeline("RU")
        first = await pipeline.ingest(ringing("a"))
        second = await pipeline.ingest(ringing("b"))
        assert first.created and second.client_id == first.client_id
        assert await Client.all().count() == 1
    finally:
        await db.close_db()


@sqlite_only
async def test_a_locked_sqlite_database_backs_off_without_blocking(tmp_path: object) -> None:
    path = f"{tmp_path}/hub.db"
    await db.init_db(f"sqlite://{path}")
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        pipeline = Pipeline("RU")
        task = asyncio.create_task(pipeline.ingest(ringing("a")))
        await asyncio.sleep(0.05)
        assert not task.done()  # waiting, and the loop still runs this test
        other.execute("COMMIT")
        assert (await task).created
    finally:
        other.close()
        await db.close_db()


def test_placeholders_become_numbered_for_asyncpg() -> None:
    assert db.pg_sql("SELECT ? WHERE a = ? AND b IN (?, ?)") == (
        "SELECT $1 WHERE a = $2 AND b IN ($3, $4)"
    )


def test_a_program_that_fails_rolls_back(tmp_path: object) -> None:
    conn = sqlite3.connect(f"{tmp_path}/x.db", isolation_level=None)
    conn.execute("CREATE TABLE t (v INTEGER UNIQUE)")

    def program() -> db.Program[None]:
        yield db.Stmt("INSERT INTO t (v) VALUES (?)", (1,))
        yield db.Stmt("INSERT INTO t (v) VALUES (?)", (1,))

    with pytest.raises(db.RaceLost):
        db._run_sqlite(conn, program)
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0


@sqlite_only
async def test_an_unopenable_sqlite_path_is_a_clear_error_not_a_hang(tmp_path: object) -> None:
    from hub.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot open SQLite file"):
        await asyncio.wait_for(db.init_db(f"sqlite://{tmp_path}/missing/dir/hub.db"), 10)
    await db.close_db()


@sqlite_only
async def test_programs_arriving_together_share_a_commit_but_fail_alone(tmp_path: object) -> None:
    await db.init_db(f"sqlite://{tmp_path}/hub.db")
    try:

        def note(text: str, fail: bool = False) -> db.Program[int]:
            rows = yield db.Stmt(
                "INSERT INTO manager (name, role, is_active, created_at) "
                "VALUES (?, 'manager', 1, '2026-01-01 00:00:00+00:00') RETURNING id",
                (text,),
            )
            if fail:
                raise ValueError("this program fails after writing")
            return int(rows[0]["id"])

        results = await asyncio.gather(
            *(db.run_program(lambda i=i: note(f"m{i}", fail=i == 3)) for i in range(8)),
            return_exceptions=True,
        )
        assert isinstance(results[3], ValueError)
        assert all(isinstance(r, int) for i, r in enumerate(results) if i != 3)
        from hub.models import Manager

        names = sorted(await Manager.all().values_list("name", flat=True))
        assert names == [f"m{i}" for i in range(8) if i != 3]  # only the failing one rolled back
    finally:
        await db.close_db()


@sqlite_only
async def test_a_failing_commit_machinery_fails_the_batch_and_the_writer_goes_on(
    tmp_path: object,
) -> None:
    await db.init_db(f"sqlite://{tmp_path}/hub.db")
    try:
        pipeline = Pipeline("RU")
        await pipeline.ingest(ringing("warm-up"))  # opens the writer
        [writer] = db._writers.values()
        real = writer.conn

        class Broken:
            """The connection, with the savepoint statement failing like a full disk."""

            def execute(self, sql: str, *args: object) -> object:
                if sql.startswith("SAVEPOINT"):
                    raise sqlite3.OperationalError("disk I/O error")
                return real.execute(sql, *args)

        writer.conn = Broken()  # type: ignore[assignment]
        with pytest.raises(sqlite3.OperationalError):
            await asyncio.wait_for(pipeline.ingest(ringing("lost?")), 5)
        writer.conn = real
        again = await asyncio.wait_for(pipeline.ingest(ringing("lost?")), 5)
        assert not again.duplicate  # the failed batch stored nothing, so the retry lands
    finally:
        await db.close_db()


@sqlite_only
async def test_orm_transactions_and_the_ingest_writer_take_turns_without_failing(
    tmp_path: object,
) -> None:
    """A manager's card (an ORM transaction) and ingest (the group writer's own connection)
    writing at the same moment: each waits for the other, none fails with "locked"."""
    from hub.clients import create_client
    from hub.schemas import ClientCreate

    await db.init_db(f"sqlite://{tmp_path}/hub.db")
    try:
        pipeline = Pipeline("RU")

        async def calls(run: int) -> None:
            for i in range(60):
                await pipeline.ingest(CallEvent(
                    source="generic", call_id=f"c{run}-{i}", state=CallState.RINGING,
                    direction=Direction.INBOUND, remote=Party(phone=f"+7912{run}00{i:04d}"),
                    occurred_at=datetime(2026, 11, 22, 10, tzinfo=UTC)))

        async def cards(run: int) -> None:
            for i in range(60):
                await create_client(ClientCreate(
                    name=f"Card {i}", phones=[f"+7903{run}00{i:04d}"]), "RU")

        await asyncio.gather(calls(1), cards(1), calls(2), cards(2))
        assert await Client.all().count() == 240
    finally:
        await db.close_db()
