"""Live events across hub processes on one PostgreSQL: what one process publishes on its bus is
sent with NOTIFY, and every other process LISTENing hands it to the managers connected to it.
So a manager whose browser is connected to process A gets the screen pop of a call whose
webhook process B received.

Best effort, like the bus itself: the database stays the record. A payload over PostgreSQL's
NOTIFY limit goes without the entry's HTML and attachments list (the page fetches the entry
anyway); a lost connection is re-opened with back-off, and what was published meanwhile reaches
only this process's managers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator

from aiohttp import web

from hub.bus import Bus
from hub.keys import BUS, SETTINGS

log = logging.getLogger("hub.relay")
CHANNEL = "hub_live"
MAX_PAYLOAD = 7900  # NOTIFY takes up to 8000 bytes
QUEUE_SIZE = 1024
BACKOFF_S = (0.5, 1, 2, 5, 10, 30)
CLOSE_S = 3.0


class LiveRelay:
    """One LISTEN connection per process, also used to NOTIFY."""

    def __init__(self, bus: Bus, dsn: str) -> None:
        self.bus = bus
        self.dsn = dsn
        self.origin = uuid.uuid4().hex[:12]
        self.outgoing: asyncio.Queue[str] = asyncio.Queue(QUEUE_SIZE)
        self.connected = asyncio.Event()
        bus.relay = self.send

    def send(self, text: str, manager_ids: set[int] | None) -> None:
        """Called by the bus for every event it publishes here."""
        payload = _payload(self.origin, text, manager_ids)
        if payload is None:
            log.warning("a live event too large to relay was shown on this process only")
            return
        try:
            self.outgoing.put_nowait(payload)
        except asyncio.QueueFull:
            log.warning("the live relay is behind; an event reached this process only")

    def receive(self, payload: str) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            return
        if message.get("o") == self.origin:
            return  # our own, already delivered here
        targets = message.get("t")
        self.bus.deliver(message["e"], set(targets) if targets is not None else None)

    async def run(self) -> None:
        """Listen and send until cancelled, reconnecting after a failure."""
        import asyncpg

        attempt = 0
        while True:
            try:
                conn = await asyncpg.connect(self.dsn)
            except (OSError, asyncpg.PostgresError) as exc:
                await self._wait(attempt, exc)
                attempt += 1
                continue
            attempt = 0
            try:
                await conn.add_listener(CHANNEL, lambda *args: self.receive(args[3]))
                self.connected.set()
                while True:
                    payload = await self.outgoing.get()
                    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                self.connected.clear()
                await self._wait(attempt, exc)
            finally:
                try:
                    await asyncio.wait_for(conn.close(), CLOSE_S)
                except asyncio.CancelledError:
                    conn.terminate()  # stopping: do not wait for the server
                    raise
                except Exception:
                    conn.terminate()  # the server is gone: do not wait for it

    @staticmethod
    async def _wait(attempt: int, exc: BaseException) -> None:
        delay = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
        log.warning("live relay: %s; trying again in %s s", type(exc).__name__, delay)
        await asyncio.sleep(delay)


def _payload(origin: str, text: str, manager_ids: set[int] | None) -> str | None:
    targets = sorted(manager_ids) if manager_ids is not None else None
    payload = json.dumps({"o": origin, "t": targets, "e": text}, ensure_ascii=False)
    if len(payload.encode()) <= MAX_PAYLOAD:
        return payload
    event = json.loads(text)
    meta = (event.get("interaction") or {}).get("meta")
    if isinstance(meta, dict):
        for key in ("html", "attachments", "references", "history", "fields"):
            meta.pop(key, None)
    slim = json.dumps({"o": origin, "t": targets, "e": json.dumps(event, ensure_ascii=False)},
                      ensure_ascii=False)
    return slim if len(slim.encode()) <= MAX_PAYLOAD else None


def dsn_of(database_url: str) -> str | None:
    """The asyncpg address of a PostgreSQL database URL; None for SQLite (one process)."""
    if database_url.startswith("asyncpg://"):
        return database_url.replace("asyncpg://", "postgres://", 1)
    if database_url.startswith(("postgres://", "postgresql://")):
        return database_url
    return None


RELAY: web.AppKey[LiveRelay] = web.AppKey("relay", LiveRelay)


async def relaying(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: on PostgreSQL, relay live events to and from the other hub processes."""
    dsn = dsn_of(app[SETTINGS].database_url)
    if dsn is None:
        yield
        return
    relay = app[RELAY] = LiveRelay(app[BUS], dsn)
    task = asyncio.create_task(relay.run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    app[BUS].relay = None
