"""The bare baseline: an aiohttp endpoint doing one SQLite INSERT + COMMIT per request.

It runs with the hub's SQLite settings (WAL, synchronous=NORMAL, one aiosqlite connection), so
the ratio hub / baseline shows what the hub's own work per event costs on top of the floor that
HTTP + one durable write set on this machine.

    python bench/baseline_app.py --port 8081 --database /tmp/baseline.db
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiosqlite
from aiohttp import web

DB: web.AppKey[aiosqlite.Connection] = web.AppKey("db")
SCHEMA = """CREATE TABLE IF NOT EXISTS event (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
)"""


async def ingest(request: web.Request) -> web.Response:
    """Store the raw body; answer with the new row's id."""
    body = await request.read()
    db = request.app[DB]
    cursor = await db.execute(
        "INSERT INTO event (body, created_at) VALUES (?, ?)",
        (body.decode(), datetime.now(UTC).isoformat(" ")),
    )
    await db.commit()
    return web.json_response({"id": cursor.lastrowid})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app(path: str) -> web.Application:
    app = web.Application()

    async def database(app: web.Application) -> AsyncIterator[None]:
        db = await aiosqlite.connect(path)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=5000"):
            await db.execute(f"PRAGMA {pragma}")
        await db.execute(SCHEMA)
        await db.commit()
        app[DB] = db
        yield
        await db.close()

    app.cleanup_ctx.append(database)
    app.router.add_post("/webhooks/telephony/generic", ingest)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database", required=True, help="SQLite file")
    args = parser.parse_args()
    web.run_app(create_app(args.database), host=args.host, port=args.port, print=None,
                access_log=None)


if __name__ == "__main__":
    main()
