"""The one inbound path: every normalized event lands here, exactly once, in one transaction.

dedupe → match or create the card → fold into the timeline → commit → post-commit hooks.
Nothing in here keeps state between events, so several processes on one database agree.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from hub import calls, reminders, timeline
from hub.db import insert_ignore, now
from hub.events import CallEvent, HubEvent, MessageEvent
from hub.identity import Kind
from hub.matching import RaceLost, match_or_create_client, party_keys
from hub.models import Call, Client, Interaction, Manager

log = logging.getLogger("hub.pipeline")
ATTEMPTS = 4


@dataclass(slots=True)
class IngestResult:
    """What one ingest did; hooks and webhook replies read it."""

    event: HubEvent
    client_id: int | None = None
    created: bool = False
    duplicate: bool = False
    manager: dict[str, Any] | None = None
    interaction: dict[str, Any] | None = None
    client: dict[str, Any] | None = None
    call_status_before: str | None = None
    call_status: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def reply(self) -> dict[str, Any]:
        """The contract's webhook answer."""
        return {
            "client_id": self.client_id,
            "created": self.created,
            "duplicate": self.duplicate,
            "manager": self.manager,
        }


Hook = Callable[[IngestResult], Awaitable[None]]


class Pipeline:
    """Ingests events; holds only configuration and the post-commit hooks."""

    def __init__(self, region: str) -> None:
        self.region = region
        self.hooks: list[Hook] = []

    async def ingest(self, event: HubEvent) -> IngestResult:
        """Store the event (once), then run the post-commit hooks."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with in_transaction() as conn:
                    result = await self._apply(conn, event, now())
                break
            except (IntegrityError, RaceLost):
                # a concurrent ingest created the same card or call first; the retry finds it
                if attempt == ATTEMPTS:
                    raise
                await asyncio.sleep(0.005 * attempt)
        if not result.duplicate:
            await self._run_hooks(result)
        return result

    async def _run_hooks(self, result: IngestResult) -> None:
        for hook in self.hooks:
            try:
                await hook(result)
            except Exception:
                log.exception("post-commit hook %s failed", getattr(hook, "__name__", hook))

    async def _apply(self, conn: BaseDBAsyncClient, event: HubEvent, when: datetime) -> IngestResult:
        source, external_id, name = event.dedupe_key
        row = {"source": source, "external_id": external_id, "event": name, "created_at": when}
        if await insert_ignore(conn, "processed_event", row, ("source", "external_id", "event")) is None:
            return await self._duplicate(conn, event)
        if isinstance(event, CallEvent):
            return await self._apply_call(conn, event, when)
        return await self._apply_message(conn, event, when)

    async def _apply_call(self, conn: BaseDBAsyncClient, event: CallEvent, when: datetime) -> IngestResult:
        result = IngestResult(event)
        call = await calls.load_call(conn, event)
        keys = party_keys(event.remote, self.region)
        phone = next((v for k, v in keys.items if k == Kind.PHONE), None)
        client = await self._call_client(conn, call, keys, result, when)
        change = await calls.apply_call_event(
            conn, event, call, client.id if client else None, phone, when
        )
        result.call_status_before = change.before.status if change.before else None
        result.call_status = change.after.status
        result.interaction = timeline.serialize(change.interaction)
        if client is not None:
            await _touch(conn, client, change.after.started_at)
            await self._call_reminders(conn, client, change, when)
            await _describe_client(conn, client, result)
        return result

    async def _call_client(
        self, conn: BaseDBAsyncClient, call: Call | None, keys: Any, result: IngestResult, when: datetime
    ) -> Client | None:
        if call is not None:
            client_id = call.client_id  # type: ignore[attr-defined]
            return await Client.get(id=client_id).using_db(conn) if client_id else None
        if not keys:
            return None  # anonymous or hidden number: a call without a card
        client, result.created = await match_or_create_client(conn, keys, when)
        return client

    async def _call_reminders(
        self, conn: BaseDBAsyncClient, client: Client, change: calls.CallChange, when: datetime
    ) -> None:
        direction = change.call.direction
        was = change.before is not None and calls.is_missed_inbound(change.before, direction)
        missed = calls.is_missed_inbound(change.after, direction)
        manager_id = client.manager_id  # type: ignore[attr-defined]
        if missed and not was:
            await reminders.on_missed_call(conn, client.id, manager_id, when)
        elif was and not missed:
            await reminders.on_missed_call_revoked(conn, client.id, when)
        if change.after.was_answered and not (change.before and change.before.was_answered):
            await reminders.on_connected_call(conn, client.id, when)

    async def _apply_message(
        self, conn: BaseDBAsyncClient, event: MessageEvent, when: datetime
    ) -> IngestResult:
        result = IngestResult(event)
        keys = party_keys(event.sender, self.region)
        client = None
        if keys:
            client, result.created = await match_or_create_client(conn, keys, when)
        entry = await timeline.append_message(conn, event, client.id if client else None, when)
        result.interaction = timeline.serialize(entry)
        if client is not None:
            await _touch(conn, client, event.occurred_at)
            await _describe_client(conn, client, result)
        return result

    async def _duplicate(self, conn: BaseDBAsyncClient, event: HubEvent) -> IngestResult:
        result = IngestResult(event, duplicate=True)
        if isinstance(event, CallEvent):
            query = Call.filter(source=event.source, call_id=event.call_id)
        else:
            query = Interaction.filter(source=event.source, external_id=event.external_id)
        client_id = await query.using_db(conn).first().values_list("client_id", flat=True)
        if client_id:
            client = await Client.get(id=client_id).using_db(conn)
            await _describe_client(conn, client, result)
        return result


async def _touch(conn: BaseDBAsyncClient, client: Client, at: datetime) -> None:
    last = client.last_interaction_at
    if last is None or at > last:
        await Client.filter(id=client.id).using_db(conn).update(
            last_interaction_at=at, activity_at=max(at, client.activity_at)
        )
        client.last_interaction_at = at


async def _describe_client(conn: BaseDBAsyncClient, client: Client, result: IngestResult) -> None:
    result.client_id = client.id
    result.client = {"id": client.id, "name": client.name, "status": str(client.status)}
    manager_id = client.manager_id  # type: ignore[attr-defined]
    if manager_id:
        manager = await Manager.get_or_none(id=manager_id).using_db(conn)
        if manager is not None:
            result.manager = {"id": manager.id, "name": manager.name, "extension": manager.extension}
