"""Background upkeep that keeps the record right when a provider loses a notification.
Each pass is safe to run in several processes at once: what it stores goes through the
pipeline, whose idempotency makes it happen once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from aiohttp import web
from tortoise import connections

from hub import calls, sessions
from hub.db import execute, now
from hub.keys import METRICS, PIPELINE, SETTINGS
from hub.metrics import Metrics
from hub.pipeline import Pipeline

log = logging.getLogger("hub.housekeeping")
INTERVAL_S = 60.0
BATCH = 200


async def end_stale_calls(
    pipeline: Pipeline, after: timedelta, when: datetime | None = None
) -> int:
    """End the calls still ringing `after` the hub first heard of them (their end was lost);
    how many it ended."""
    when = when or now()
    ended = 0
    while True:
        rows = await execute(connections.get("default"), calls.find_stale(when - after, BATCH))
        for row in rows:
            result = await pipeline.ingest(calls.stale_end(row, when))
            ended += not result.duplicate
        if len(rows) < BATCH:
            return ended


async def housekeeping(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: one pass a minute while the hub runs."""
    task = asyncio.create_task(
        _loop(app[PIPELINE], app[SETTINGS].stale_call_minutes, app[METRICS])
    )
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _loop(pipeline: Pipeline, minutes: int, metrics: Metrics) -> None:
    while True:
        # first wait: a pass right at start-up would race the first requests for nothing
        await asyncio.sleep(INTERVAL_S)
        try:
            ended = await end_stale_calls(pipeline, timedelta(minutes=minutes))
            metrics.stale_calls.inc(ended)
            if ended:
                log.info("ended %d call(s) still ringing after %d min: their end never came",
                         ended, minutes)
            await sessions.prune_sessions(now())  # web UI sessions past their end
        except Exception:
            log.exception("housekeeping pass failed; the next one retries")
