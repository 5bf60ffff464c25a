"""Outgoing webhooks, the sending side: one worker per hub process delivers the events
hub.outgoing recorded.

A pass claims subscriptions that have pending deliveries (a lease on the subscription row; on
PostgreSQL picked FOR UPDATE SKIP LOCKED, so hub processes take disjoint ones) and drains each
in event order, one request at a time: a subscription is served by one process at a time, so
its events go out in order and each once (at least once: a process that dies between the
receiver's 2xx and the mark sends that one again, with the same event id for the receiver to
drop).

Each request is a POST of JSON `{"id", "type", "occurred_at", "timestamp", "data"}` with
`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body, key = the subscription's secret>`,
`X-Hub-Timestamp` (the body's `timestamp`, Unix seconds, covered by the signature),
`X-Hub-Event` and `X-Hub-Delivery`. What the answer means:

- 2xx: delivered; the next event follows.
- a network error, a timeout, 408, 429 or 5xx: tried again after 10 s, 20 s, 40 s, ... (at
  most an hour; a 429's or 503's Retry-After is honoured), and the events after it wait, so the
  order holds. A delivery still failing `retry_hours` after its first attempt is given up and
  the subscription paused; admins are told. Its later events stay pending, not lost.
- 410 Gone: the receiver is gone; the delivery fails and the subscription is paused at once.
- any other answer (3xx, 4xx): the receiver refused this event; it fails at once, without
  retries, and the next event follows.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
import uuid
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web
from tortoise import connections

from hub.bus import Bus
from hub.db import Program, Row, Stmt, as_datetime, execute, now, run_program
from hub.loops import WakeableLoop, claim_sql, seconds_until, while_running
from hub.metrics import Metrics
from hub.models import Manager, Role
from hub.settings import WebhookSettings

log = logging.getLogger("hub.delivery")
LEASE = timedelta(minutes=3)
DRAIN_S = 60.0  # then the lease is let go and claimed afresh (timeout ≤ 60 s: within LEASE)
CLAIM_AT_ONCE = 16
PRUNE_EVERY_S = 3600.0
RELEASE_S = 5.0
PAGE = 50
MAX_ERROR = 500
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
ACTIVE, PAUSED = "active", "paused"
USER_AGENT = "crm-hub-webhooks/1"

_workers: weakref.WeakSet[DeliveryWorker] = weakref.WeakSet()


def kick() -> None:
    """Deliveries were queued (after their transaction committed): look now, not at the next
    scheduled pass."""
    for worker in list(_workers):
        worker.wake()


def sign(secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 value of a body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def body_of(event_id: int, event_type: str, occurred_at: datetime, payload: str,
            timestamp: int) -> bytes:
    """The request body; `payload` is the event's stored JSON, spliced in as it is."""
    head = json.dumps({"id": event_id, "type": event_type,
                       "occurred_at": occurred_at.isoformat(), "timestamp": timestamp})
    return (head[:-1] + ', "data": ' + payload + "}").encode()


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt went: `delivered`, `retry` (after `wait`), `refused` or `gone`."""

    verdict: str
    status: int | None = None
    error: str | None = None
    wait: float | None = None


def judge(status: int, headers: Any = None) -> Outcome:
    """What a receiver's HTTP status means for the delivery."""
    if 200 <= status < 300:
        return Outcome("delivered", status)
    error = f"the receiver answered {status}"
    if status == 410:
        return Outcome("gone", status, error + " (Gone): the subscription is paused")
    if status in (408, 429) or status >= 500:
        return Outcome("retry", status, error, _retry_after(headers))
    if 300 <= status < 400:
        error += " (a redirect: the hub does not follow them; change the subscription's URL)"
    return Outcome("refused", status, error)


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the back-off applies


CLAIM = claim_sql(
    "UPDATE webhook SET lease_owner = ?, lease_until = ?",
    "SELECT w.id FROM webhook w WHERE w.status = ? "
    "AND (w.lease_until IS NULL OR w.lease_until < ?) AND (w.retry_at IS NULL OR w.retry_at <= ?) "
    "AND EXISTS (SELECT 1 FROM webhook_delivery d WHERE d.webhook_id = w.id AND d.status = ?) "
    "ORDER BY w.id LIMIT ?",
    "RETURNING id, url, secret, failing_since",
)


def claim(owner: str, when: datetime, limit: int) -> Program[list[Row]]:
    sqlite, postgres = CLAIM
    rows = yield Stmt(sqlite, (owner, when + LEASE, ACTIVE, when, when, PENDING, limit),
                      pg=postgres)
    return rows


def _heads(webhook_id: int) -> Stmt:
    """The subscription's next pending deliveries, in event order."""
    return Stmt(
        "SELECT d.id, d.event_id, d.attempts, d.first_attempt_at, e.type, e.payload, "
        "e.occurred_at FROM webhook_delivery d JOIN webhook_event e ON e.id = d.event_id "
        "WHERE d.webhook_id = ? AND d.status = ? ORDER BY d.event_id, d.id LIMIT ?",
        (webhook_id, PENDING, PAGE))


def record(
    webhook_id: int, owner: str, row: Row, outcome: Outcome, when: datetime,
    retry_at: datetime | None, pause: str | None, was_failing: bool,
) -> Program[bool]:
    """Write one attempt's outcome on the delivery (and, when its state changes, on the
    subscription); False when this process no longer holds the subscription (its lease ran
    out and another process took it). A success on a healthy subscription is one statement."""
    status = {"delivered": DELIVERED, "retry": PENDING}.get(outcome.verdict, FAILED)
    if pause is not None:
        status = FAILED
    held = yield Stmt(
        "UPDATE webhook_delivery SET status = ?, attempts = attempts + 1, "
        "first_attempt_at = COALESCE(first_attempt_at, ?), last_attempt_at = ?, "
        "next_attempt_at = ?, last_status = ?, last_error = ?, delivered_at = ?, updated_at = ? "
        "WHERE id = ? AND EXISTS (SELECT 1 FROM webhook w WHERE w.id = ? AND w.lease_owner = ?) "
        "RETURNING id",
        (status, when, when, retry_at if status == PENDING else None, outcome.status,
         outcome.error, when if status == DELIVERED else None, when, row["id"], webhook_id,
         owner))
    if not held:
        return False
    if pause is not None:
        yield Stmt(
            "UPDATE webhook SET status = ?, paused_reason = ?, retry_at = NULL, "
            "failing_since = COALESCE(failing_since, ?), updated_at = ? WHERE id = ?",
            (PAUSED, pause, when, when, webhook_id))
    elif outcome.verdict == "retry":
        yield Stmt(
            "UPDATE webhook SET retry_at = ?, failing_since = COALESCE(failing_since, ?) "
            "WHERE id = ?", (retry_at, when, webhook_id))
    elif was_failing:
        yield Stmt("UPDATE webhook SET retry_at = NULL, failing_since = NULL WHERE id = ?",
                   (webhook_id,))
    return True


class DeliveryWorker(WakeableLoop):
    """One per hub process; `kick()` (or `wake()`) after deliveries were queued."""

    name = "webhooks"

    def __init__(self, settings: WebhookSettings, bus: Bus | None = None,
                 metrics: Metrics | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.bus = bus
        self.metrics = metrics
        self.owner = uuid.uuid4().hex
        self.session: aiohttp.ClientSession | None = None
        self.prune_at = time.monotonic() + PRUNE_EVERY_S
        self.failing: set[int] = set()  # subscriptions whose last attempt failed
        _workers.add(self)

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failure in a row."""
        base = self.settings.backoff_seconds * 2 ** max(attempts - 1, 0)
        return float(min(base, self.settings.backoff_cap_seconds))

    async def close(self) -> None:
        if self.session is not None:
            session, self.session = self.session, None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(session.close(), RELEASE_S)

    def _session(self) -> aiohttp.ClientSession:
        if self.session is None:
            timeout = aiohttp.ClientTimeout(total=self.settings.timeout_seconds)
            self.session = aiohttp.ClientSession(
                timeout=timeout, headers={"User-Agent": USER_AGENT},
                connector=aiohttp.TCPConnector(limit_per_host=4))
        return self.session

    async def run_pass(self, when: datetime | None = None) -> int:
        """Claim the subscriptions with something to send and drain them; how many
        attempts this pass made. Once an hour, old finished deliveries are forgotten."""
        if time.monotonic() >= self.prune_at:
            self.prune_at = time.monotonic() + PRUNE_EVERY_S
            keep = timedelta(days=self.settings.keep_days)
            await run_program(lambda: prune((when or now()) - keep))
        attempts = 0
        while True:
            subs = await run_program(lambda: claim(self.owner, when or now(), CLAIM_AT_ONCE))
            if not subs:
                return attempts
            done = await asyncio.gather(*(self._drain(sub) for sub in subs))
            attempts += sum(done)
            if (len(subs) < CLAIM_AT_ONCE and not any(done)) or self.stopping:
                return attempts

    async def _drain(self, sub: Row) -> int:
        """Send the subscription's pending deliveries in order until one must wait, the
        queue is empty or DRAIN_S is up; then let the lease go."""
        webhook_id = int(sub["id"])
        if sub["failing_since"] is not None:
            self.failing.add(webhook_id)
        else:
            self.failing.discard(webhook_id)
        started, attempts = time.monotonic(), 0
        try:
            while time.monotonic() - started < DRAIN_S:
                rows = await execute(connections.get("default"), _heads(webhook_id))
                for row in rows:
                    attempts += 1
                    if (not await self._attempt(sub, row) or self.stopping
                            or time.monotonic() - started > DRAIN_S):
                        return attempts
                if len(rows) < PAGE:
                    return attempts
            return attempts
        except Exception:
            log.exception("webhook %s: the pass failed; the next one retries", webhook_id)
            return attempts
        finally:
            # let the lease go; if that cannot happen now (stopping, the database away), it
            # simply runs out and another pass or process takes the subscription
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(execute(connections.get("default"), Stmt(
                    "UPDATE webhook SET lease_owner = NULL, lease_until = NULL "
                    "WHERE id = ? AND lease_owner = ?", (webhook_id, self.owner))), RELEASE_S)

    async def _attempt(self, sub: Row, row: Row) -> bool:
        """Send one delivery and record it; whether the next one may follow now."""
        occurred_at = as_datetime(row["occurred_at"]) or now()
        stamp = int(time.time())
        body = body_of(int(row["event_id"]), row["type"], occurred_at, row["payload"], stamp)
        headers = {
            "Content-Type": "application/json", "X-Hub-Event": row["type"],
            "X-Hub-Delivery": str(row["id"]), "X-Hub-Timestamp": str(stamp),
            "X-Hub-Signature-256": sign(sub["secret"], body),
        }
        try:
            async with self._session().post(sub["url"], data=body, headers=headers,
                                            allow_redirects=False) as response:
                await response.read()
                outcome = judge(response.status, response.headers)
        except TimeoutError:
            outcome = Outcome("retry", None, f"no answer within "
                              f"{self.settings.timeout_seconds:g} s")
        except aiohttp.ClientError as exc:
            outcome = Outcome("retry", None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR])
        return await self._settle(sub, row, outcome)

    async def _settle(self, sub: Row, row: Row, outcome: Outcome) -> bool:
        when = now()
        attempts = int(row["attempts"]) + 1
        first = as_datetime(row["first_attempt_at"]) or when
        retry_at, pause = None, None
        if outcome.verdict == "retry":
            wait = self.backoff(attempts)
            if outcome.wait is not None:
                wait = min(max(outcome.wait, wait), self.settings.backoff_cap_seconds)
            retry_at = when + timedelta(seconds=wait)
            if when - first >= timedelta(hours=self.settings.retry_hours):
                pause = (f"delivery {row['id']} (event {row['event_id']}) kept failing for "
                         f"{self.settings.retry_hours:g} h; last: {outcome.error}")
        elif outcome.verdict == "gone":
            pause = outcome.error
        webhook_id = int(sub["id"])
        failing = webhook_id in self.failing
        held = await run_program(lambda: record(
            webhook_id, self.owner, row, outcome, when, retry_at, pause, failing))
        if not held:
            return False
        if outcome.verdict == "retry" or pause is not None:
            self.failing.add(webhook_id)
        else:
            self.failing.discard(webhook_id)
        label = {"delivered": "delivered", "retry": "retry"}.get(outcome.verdict, "failed")
        if pause is not None:
            label = "failed"
        if self.metrics is not None:
            self.metrics.webhook_deliveries.labels(label).inc()
        if label != "delivered":
            later = f"; retrying at {retry_at.isoformat()}" if retry_at and pause is None else ""
            log.warning("webhook %s: delivery %s, attempt %d: %s%s", sub["id"], row["id"],
                        attempts, outcome.error, later)
        if pause is not None:
            await self._tell_admins(int(sub["id"]), pause)
            return False
        return label != "retry"

    async def _tell_admins(self, webhook_id: int, reason: str) -> None:
        log.warning("webhook %s paused: %s", webhook_id, reason)
        if self.bus is None:
            return
        try:
            found = await Manager.filter(role=Role.ADMIN, is_active=True).values("id")
            self.bus.publish({"type": "webhook.paused",
                              "webhook": {"id": webhook_id, "reason": reason}},
                             {int(admin["id"]) for admin in found})
        except Exception:
            log.exception("could not tell the admins that webhook %s paused", webhook_id)

    async def next_due_in(self) -> float:
        """Seconds until a subscription's oldest waiting delivery may be tried again (or its
        holder's lease runs out)."""
        rows = await execute(connections.get("default"), Stmt(
            "SELECT w.retry_at, w.lease_until FROM webhook w WHERE w.status = ? AND EXISTS "
            "(SELECT 1 FROM webhook_delivery d WHERE d.webhook_id = w.id AND d.status = ?)",
            (ACTIVE, PENDING)))
        at = now()
        due = [max(t for t in (as_datetime(r["retry_at"]), as_datetime(r["lease_until"]), at)
                   if t is not None) for r in rows]
        return seconds_until(min(due) if due else None)

    async def run(self) -> None:
        try:
            await super().run()
        finally:
            await self.close()


def prune(before: datetime) -> Program[int]:
    """Forget finished deliveries older than `before`, and the events no delivery needs."""
    gone = yield Stmt("DELETE FROM webhook_delivery WHERE status IN (?, ?) AND updated_at < ? "
                      "RETURNING id", (DELIVERED, FAILED, before))
    yield Stmt("DELETE FROM webhook_event WHERE created_at < ? AND NOT EXISTS (SELECT 1 FROM "
               "webhook_delivery d WHERE d.event_id = webhook_event.id)", (before,))
    return len(gone)


DELIVERY: web.AppKey[DeliveryWorker] = web.AppKey("delivery", DeliveryWorker)

delivering = while_running(lambda app: app[DELIVERY])
