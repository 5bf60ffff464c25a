"""Operations endpoints: health, metrics, and the live stream."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import WSMsgType, web
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from tortoise import connections

from hub.bus import Subscription
from hub.keys import BUS, METRICS
from hub.web.auth import current_manager

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """200 when the database answers, 503 otherwise."""
    try:
        await connections.get("default").execute_query("SELECT 1")
    except Exception:
        return web.json_response({"status": "unavailable", "database": "down"}, status=503)
    return web.json_response({"status": "ok", "database": "up"})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format."""
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4,
                                            "X-Content-Type-Options": "nosniff"})


@routes.get("/api/stream")
async def stream(request: web.Request) -> web.StreamResponse:
    """The manager's WebSocket of live events (screen pop, new timeline entries)."""
    manager = current_manager(request)
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    bus, gauge = request.app[BUS], request.app[METRICS].online
    sub = bus.subscribe(manager.id)
    gauge.set(bus.online)
    reader = asyncio.create_task(_drain(ws, sub))
    try:
        await ws.send_json({"type": "hello", "manager_id": manager.id})
        while (text := await sub.queue.get()) is not None and not ws.closed:
            await ws.send_str(text)
    finally:
        bus.unsubscribe(sub)
        gauge.set(bus.online)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await ws.close()
    return ws


async def _drain(ws: web.WebSocketResponse, sub: Subscription) -> None:
    """Read (and ignore) what the browser sends; when the socket closes, stop the writer."""
    try:
        async for msg in ws:
            if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break
    finally:
        sub.close()
