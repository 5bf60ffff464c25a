"""The bare baseline: an aiohttp endpoint doing one SQLite INSERT + COMMIT per request, then
sending the stored body to every WebSocket connected on /api/stream (the screen-pop floor).

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
SOCKETS: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("sockets")
SCHEMA = """CREATE TABLE IF NOT EXISTS event (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
)"""


async def ingest(request: web.Request) -> web.Response:
    """Store the raw body (bytes that are not UTF-8 kept as U+FFFD); answer with the new row's
    id."""
    body = (await request.read()).decode(errors="replace")
    db = request.app[DB]
    cursor = await db.execute(
        "INSERT INTO event (body, created_at) VALUES (?, ?)",
        (body, datetime.now(UTC).isoformat(" ")),
    )
    await db.commit()
    for ws in list(request.app[SOCKETS]):
        await ws.send_str(body)
    return web.json_response({"id": cursor.lastrowid})


async def stream(request: web.Request) -> web.WebSocketResponse:
    """Every stored body, as it is stored."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    try:
        await ws.send_json({"type": "hello"})
        async for _ in ws:
            pass
    finally:
        request.app[SOCKETS].discard(ws)
    return ws


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app(path: str) -> web.Application:
    app = web.Application()
    app[SOCKETS] = set()

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
    app.router.add_post("/webhooks/email", ingest)  # a raw RFC 822 message per request
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/stream", stream)
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
