"""Background loops that act by the clock: do a pass, sleep until the next thing is due or
until woken, again. The reminder scheduler and the outbox worker are such loops; the database
is their record, so several processes may run them at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import datetime
from typing import Any, Protocol

from aiohttp import web

from hub.db import now

log = logging.getLogger("hub.loops")
MAX_SLEEP_S = 5.0  # never sleep longer: the wall clock is read afresh, jumps only shift work
# on SIGTERM a loop ends the pass it is in (a message being handed to the SMTP server, a webhook
# being posted) for up to this long, then is cancelled; what it had claimed waits for its lease
STOP_GRACE_S = 20.0


def seconds_until(due: datetime | None, cap: float = MAX_SLEEP_S) -> float:
    """How long to sleep for something due then (0 if due already; `cap` at most)."""
    if due is None:
        return cap
    return min(max((due - now()).total_seconds(), 0.0), cap)


def claim_sql(update: str, pick: str, returning: str) -> tuple[str, str]:
    """A claim for SQLite and for PostgreSQL: UPDATE the rows `pick` selects. On PostgreSQL the
    picked rows are locked FOR UPDATE SKIP LOCKED, so processes take disjoint batches, and taken
    by `id = ANY(ARRAY(...))` rather than `id IN (...)`: with IN, the generic plan of the
    prepared statement (asyncpg's, from the sixth run on) hash-joins a sequential scan of the
    whole reminder table on every pass; ARRAY(...) runs once and the primary key finds its ids."""
    return (f"{update} WHERE id IN ({pick}) {returning}",
            f"{update} WHERE id = ANY(ARRAY({pick} FOR UPDATE SKIP LOCKED)) {returning}")


class WakeableLoop(ABC):
    """A pass, then a sleep that `wake()` cuts short; one per hub process."""

    name = "loop"

    def __init__(self) -> None:
        self._wake = asyncio.Event()
        self.stopping = False

    def wake(self) -> None:
        """Look again now (something was added that may be due)."""
        self._wake.set()

    def stop(self) -> None:
        """Finish the pass in progress (taking no new work where a pass loops), then return."""
        self.stopping = True
        self._wake.set()

    @abstractmethod
    async def run_pass(self) -> object:
        """Do whatever is due now."""

    @abstractmethod
    async def next_due_in(self) -> float:
        """Seconds until the next thing falls due."""

    async def run(self) -> None:
        """Pass, sleep until the next one is due or a wake-up, again; until stopped."""
        while not self.stopping:
            self._wake.clear()  # before looking: a wake-up during the pass is not lost
            try:
                await self.run_pass()
                if self.stopping:
                    return
                delay = await self.next_due_in()
            except Exception:
                log.exception("%s pass failed; the next one retries", self.name)
                delay = MAX_SLEEP_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)


class Runs(Protocol):
    def run(self) -> Coroutine[Any, Any, None]: ...


async def stop_gracefully(runner: Runs, task: asyncio.Task[None]) -> None:
    """Ask a loop that can stop to finish what it is doing, wait up to STOP_GRACE_S for it,
    then cancel it (at once for a loop that only waits, such as an IMAP IDLE)."""
    stop = getattr(runner, "stop", None)
    if stop is not None and not task.done():
        stop()
        done, _ = await asyncio.wait({task}, timeout=STOP_GRACE_S)
        if not done:
            log.warning("%s did not finish within %.0f s of the stop; cancelled",
                        getattr(runner, "name", "loop"), STOP_GRACE_S)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def while_running(
    get: Callable[[web.Application], Runs | None],
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup_ctx entry that runs the app's loop (found by `get`; None: nothing to run,
    e.g. a channel that is not configured) while the hub runs."""

    async def running(app: web.Application) -> AsyncIterator[None]:
        runner = get(app)
        task = asyncio.create_task(runner.run()) if runner is not None else None
        yield
        if runner is not None and task is not None:
            await stop_gracefully(runner, task)

    return running
