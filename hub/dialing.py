"""Click-to-call: record the outbound call, then ask the provider to dial. The provider's own
webhooks complete the same timeline entry (hub.calls claims it for them)."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from aiohttp import ClientSession

from channels import Registry
from channels.base import Adapter, Agent, DialRequest
from hub import calls
from hub.db import Program, RaceLost, Stmt, now, run_program
from hub.errors import ConflictError, HubError, ValidationError
from hub.events import CallEvent, CallOutcome, CallState, Direction, Party
from hub.identity import Kind
from hub.metrics import Metrics
from hub.models import Client, Identity, Manager
from hub.pipeline import Pipeline

log = logging.getLogger("hub.dialing")


def choose_dialer(registry: Registry, extension: str | None) -> Adapter:
    """The first enabled provider that places calls for this extension (registry order)."""
    dialers = [a for a in registry.adapters.values() if a.dials]
    if not dialers:
        raise ConflictError("no telephony provider that places calls is configured")
    for adapter in dialers:
        if adapter.serves(extension):
            return adapter
    raise ValidationError(f"no telephony provider places calls for extension {extension!r}",
                          field="manager_id")


def agent_of(manager: Manager) -> Agent:
    return Agent(id=manager.id, name=manager.name, extension=manager.extension,
                 phone=manager.phone)


async def place_call(
    pipeline: Pipeline, registry: Registry, http: ClientSession, public_base_url: str | None,
    client: Client, manager: Manager, metrics: Metrics,
) -> dict[str, Any]:
    """Ring the manager and connect the client; the call's timeline entry (queued as ringing,
    failed with the reason when the provider refuses)."""
    phone = await Identity.filter(client_id=client.id, kind=Kind.PHONE).order_by("id").first()
    if phone is None:
        raise ValidationError(f"client {client.id} has no phone number to call")
    adapter = choose_dialer(registry, manager.extension)
    agent = agent_of(manager)
    problem = adapter.cannot_dial(agent)
    if problem:
        raise ValidationError(f"{adapter.name}: {problem}", field="manager_id")
    token = secrets.token_urlsafe(12)
    call_id = calls.dial_call_id(token)
    # record first: the provider's webhooks may arrive before its API answers
    placed = await pipeline.ingest(
        _event(adapter, call_id, phone.value, manager, CallState.RINGING)
    )
    webhook_url = (public_base_url.rstrip("/") + adapter.paths[0]) if public_base_url else None
    try:
        provider_id = await adapter.dial(http, DialRequest(agent, phone.value, token, webhook_url))
    except HubError as exc:
        metrics.dials.labels(adapter.name, "refused").inc()
        log.warning("click-to-call through %s failed: %s", adapter.name, exc.code)
        await _failed(pipeline, adapter, call_id, phone.value, manager, exc.message)
        raise
    metrics.dials.labels(adapter.name, "placed").inc()
    if provider_id:
        try:
            await run_program(lambda: _bind(adapter.name, call_id, provider_id))
        except RaceLost:
            log.info("%s call %s was already recorded by its webhooks", adapter.name, provider_id)
    entry = dict(placed.interaction or {})
    entry["meta"] = {**entry.get("meta", {}), "provider_call_id": provider_id}
    return entry


def _event(
    adapter: Adapter, call_id: str, phone: str, manager: Manager, state: CallState,
    outcome: CallOutcome | None = None,
) -> CallEvent:
    return CallEvent(
        source=adapter.name, call_id=call_id, state=state, direction=Direction.OUTBOUND,
        remote=Party(phone=phone), occurred_at=now(), extension=manager.extension,
        outcome=outcome,
    )


async def _failed(
    pipeline: Pipeline, adapter: Adapter, call_id: str, phone: str, manager: Manager, reason: str
) -> None:
    """The provider refused the call: the entry ends as failed and says why."""
    await pipeline.ingest(
        _event(adapter, call_id, phone, manager, CallState.ENDED, CallOutcome.FAILED)
    )
    await run_program(lambda: _reason(adapter.name, call_id, reason))


def _reason(source: str, call_id: str, reason: str) -> Program[None]:
    yield Stmt(
        "UPDATE interaction SET text = ? WHERE id = "
        "(SELECT interaction_id FROM call WHERE source = ? AND call_id = ?)",
        (f"Call not placed: {reason}"[:2000], source, call_id),
    )


def _bind(source: str, call_id: str, provider_id: str) -> Program[None]:
    """The provider named its call id: the entry waits under it from now on."""
    rows = yield Stmt("SELECT id, interaction_id FROM call WHERE source = ? AND call_id = ?",
                      (source, call_id), pg_suffix=" FOR UPDATE")
    if rows:  # else a webhook carrying our token claimed it already
        yield from calls.claim_dial(
            {"k_id": rows[0]["id"], "k_interaction": rows[0]["interaction_id"]}, provider_id
        )

