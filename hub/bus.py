"""Live events for connected managers (screen pop, new messages). In-process fan-out;
delivery is best effort and never decides correctness: the database is the record."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("hub.bus")
QUEUE_SIZE = 256


class Subscription:
    """One connected manager's queue of events, each already encoded as JSON text; None
    tells the reader to stop."""

    def __init__(self, manager_id: int) -> None:
        self.manager_id = manager_id
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(QUEUE_SIZE)

    def close(self) -> None:
        """Wake the reader to stop (its socket closed)."""
        try:
            self.queue.put_nowait(None)
        except asyncio.QueueFull:
            self.queue.get_nowait()
            self.queue.put_nowait(None)


class Bus:
    """Publish a hub event to every subscription whose manager should see it."""

    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        # on PostgreSQL, hub.relay passes what is published here on to the other processes
        self.relay: Callable[[str, set[int] | None], None] | None = None

    def subscribe(self, manager_id: int) -> Subscription:
        sub = Subscription(manager_id)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def close_all(self) -> None:
        """Tell every stream to end (the hub is shutting down: sockets must not hold it up)."""
        for sub in list(self._subs):
            sub.close()

    @property
    def online(self) -> int:
        return len(self._subs)

    def publish(self, event: dict[str, Any], manager_ids: set[int] | None = None) -> None:
        """Queue the event for the given managers (None: everyone online), encoded once, here
        and (through the relay) in the other hub processes."""
        if self.relay is None and not self._subs:
            return
        text = json.dumps(event, ensure_ascii=False)
        self.deliver(text, manager_ids)
        if self.relay is not None:
            self.relay(text, manager_ids)

    def deliver(self, text: str, manager_ids: set[int] | None = None) -> None:
        """Queue an encoded event for this process's managers among `manager_ids`."""
        for sub in list(self._subs):
            if manager_ids is not None and sub.manager_id not in manager_ids:
                continue
            try:
                sub.queue.put_nowait(text)
            except asyncio.QueueFull:
                log.warning("manager %s is not reading live events; one dropped", sub.manager_id)
