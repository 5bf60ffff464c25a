"""The one inbound path: every normalized event lands here, exactly once, in one transaction.

dedupe → match or create the card → fold into the timeline → commit → post-commit hooks.
Nothing in here keeps state between events, so several processes on one database agree.
The transaction is a SQL program (see hub.db): the same logic runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub import calls, mail, outgoing, reminders, timeline
from hub.clients import card_object
from hub.db import Program, RaceLost, Row, Stmt, as_datetime, as_json, now, run_program, to_json
from hub.events import CallEvent, HubEvent, MessageEvent
from hub.identity import Kind
from hub.matching import (
    CLIENT_COLUMNS,
    MANAGER_JOIN,
    ClientRef,
    Keys,
    card,
    client_ref,
    create_card,
    find_card,
    live_card,
    match_or_create,
    party_keys,
)

log = logging.getLogger("hub.pipeline")
ATTEMPTS = 5


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
    # the manager whose extension the event names (rung, answered): they see the screen pop too
    extension_manager_id: int | None = None
    # the responsible manager's own phone (E.164), for providers that ring it (Twilio)
    manager_phone: str | None = None
    # live events: `quiet` tells nobody (a newsletter landed); `live_type` overrides the kind
    quiet: bool = False
    live_type: str | None = None
    # deliveries queued for outgoing webhooks (hub.outgoing) in this event's transaction
    reported: int = 0

    def reply(self) -> dict[str, Any]:
        """The contract's webhook answer."""
        return {
            "client_id": self.client_id,
            "created": self.created,
            "duplicate": self.duplicate,
            "manager": self.manager,
        }

    def describe(self, client: ClientRef | None) -> None:
        if client is not None:
            self.client_id, self.client, self.manager = client.id, client.summary(), client.manager
            self.manager_phone = client.manager_phone


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
                result = await run_program(lambda: self._program(event, now()))
                break
            except RaceLost:
                # a concurrent ingest created the same card or call first; the retry finds it
                if attempt == ATTEMPTS:
                    raise
                await asyncio.sleep(0.002 * attempt)
        if not result.duplicate:
            await self._run_hooks(result)
        return result

    async def _run_hooks(self, result: IngestResult) -> None:
        for hook in self.hooks:
            try:
                await hook(result)
            except Exception:
                log.exception("post-commit hook %s failed", getattr(hook, "__name__", hook))

    def _program(self, event: HubEvent, when: datetime) -> Program[IngestResult]:
        source, external_id, name = event.dedupe_key
        # an e-mail also learns, in the same statement, whether a reply to it came first
        mail_in = isinstance(event, MessageEvent) and event.channel == "email"
        fresh = yield Stmt(
            "INSERT INTO processed_event (source, external_id, event, created_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (source, external_id, event) DO NOTHING RETURNING id"
            + (mail.WAITING_REPLY if mail_in else ""),
            (source, external_id, name, when,
             *(mail.waiting_params(external_id) if mail_in else ())),
        )
        if not fresh:
            if isinstance(event, MessageEvent) and event.edited_at is None:
                yield from _late_original(event)
            return (yield from _duplicate(event))
        if isinstance(event, CallEvent):
            return (yield from self._call(event, when))
        return (yield from self._message(event, when, bool(mail_in and fresh[0]["waiting"])))

    def _call(self, event: CallEvent, when: datetime) -> Program[IngestResult]:
        result = IngestResult(event)
        found = yield calls.find_call(event)
        phone = None
        if not found and event.correlation:
            found = yield from _claim_dial(event, None, when)
        if found:  # a known call already has its card: no need to match again
            client = client_ref(found[0])
            if client and (client.merged_into or client.id != found[0]["k_client"]):
                # a merge moved the call while this ingest waited for its lock
                client = yield from card(found[0]["k_client"])
        elif keys := party_keys(event.remote, self.region):
            client, result.created = yield from match_or_create(keys, when)
            phone = keys.first(Kind.PHONE)
            if not result.created:
                found = yield from _claim_dial(event, client.id, when)
        else:
            client = None  # anonymous or hidden number: a call without a card
        if found and client is None and (keys := party_keys(event.remote, self.region)):
            # the call's first event named nobody (a recording notice came first): this one does
            client, result.created = yield from match_or_create(keys, when)
            phone = keys.first(Kind.PHONE)
            yield from calls.attach_card(found[0], client.id, phone)
            found = [{**found[0], "k_client": client.id, "k_phone": phone}]
        if event.extension:
            rows = yield Stmt("SELECT id FROM manager WHERE extension = ? AND is_active = ?",
                              (event.extension, True))
            result.extension_manager_id = int(rows[0]["id"]) if rows else None
        change = yield from calls.apply_event(
            event, found[0] if found else None, client.id if client else None, phone, when
        )
        result.call_status_before = change.before.status if change.before else None
        result.call_status = change.after.status
        result.interaction = change.interaction
        result.describe(client)
        reports = []
        if client is not None:
            yield from _touch(client, change.after.started_at)
            yield from _call_reminders(client, change, when)
            if result.created and keys:
                reports.append(_card_made(client, keys, when))
        if (report := _call_report(change, client)) is not None:
            reports.append(report)
        result.reported = yield from outgoing.emit(reports, when)
        return result

    def _message(
        self, event: MessageEvent, when: datetime, replies_waiting: bool = False
    ) -> Program[IngestResult]:
        if not event.makes_card:
            return (yield from self._no_card_message(event, when))
        if event.edited_at is not None:
            rows = yield Stmt(
                "SELECT id, client_id, kind, direction, channel, occurred_at, status, text, meta "
                "FROM interaction WHERE source = ? AND external_id = ?",
                (event.source, event.external_id),
            )
            if rows:
                return (yield from self._edit(event, rows[0], when))
            # the edit came first: the message lands as its edited self, and the original,
            # when it comes, finds itself stored already
            yield Stmt(
                "INSERT INTO processed_event (source, external_id, event, created_at) "
                "VALUES (?, ?, 'message', ?) ON CONFLICT (source, external_id, event) DO NOTHING",
                (event.source, event.external_id, when),
            )
        result = IngestResult(event)
        keys = party_keys(event.sender, self.region)
        client = None
        if keys:
            client, result.created = yield from match_or_create(keys, when, event.occurred_at)
        elif event.category == "form" and keys.display_name:
            client, result.created = (yield from create_card(keys, when, event.occurred_at)), True
        if client is not None and (event.category == "form" or event.fields):
            # a web form, or a Telegram deep link's campaign: what the card lacks is filled in
            yield from mail.fill_card(client.id, keys.display_name, event.fields, when)
        # a card made just now holds nothing a mail could answer or be answered by
        threaded = client is not None and event.channel == "email" and not result.created
        parent = None
        if threaded and client is not None:
            parent = yield from mail.thread_parent(event, client.id)
        elif (client is not None and not result.created and event.channel == "telegram"
              and "reply_to" in event.extra):
            parent = yield from mail.telegram_parent(event, client.id)
        extra = mail.thread_fields(parent) if parent else None
        result.interaction = yield from timeline.append_message(
            event, client.id if client else None, when, extra
        )
        if parent:
            yield from mail.mark_replied(parent, result.interaction["id"], event.occurred_at, when)
        if replies_waiting and client is not None:
            yield from mail.adopt_replies(event, client.id, result.interaction["id"],
                                          extra["thread_id"] if extra else None)
        if client is not None and event.channel == "email" and event.thread_ref and not parent:
            yield from mail.wait_for_parent(event.thread_ref, when)
        result.describe(client)
        if client is not None:
            yield from _touch(client, event.occurred_at)
            reports = []
            if result.created:
                fields = ({k[:100]: v[:2000] for k, v in event.fields.items()}
                          if event.category == "form" or event.fields else {})
                reports.append(_card_made(client, keys, when, fields))
            reports.append(outgoing.Outgoing("message.received", {
                "client": client.summary(), "interaction": result.interaction},
                event.occurred_at))
            result.reported = yield from outgoing.emit(reports, when)
        return result

    def _edit(self, event: MessageEvent, row: Row, when: datetime) -> Program[IngestResult]:
        """A new version of a stored message: its text changes, the earlier one goes to the
        entry's history (an older version that arrives late only joins the history)."""
        result = IngestResult(event, live_type="message.edited")
        meta = as_json(row["meta"]) or {}
        history = list(meta.get("history") or [])
        occurred_at = as_datetime(row["occurred_at"]) or when
        shown_at = meta.get("edited_at") or occurred_at.isoformat()
        stamp = event.edited_at.isoformat() if event.edited_at else when.isoformat()
        text = row["text"]
        if stamp > shown_at:
            history.append({"text": row["text"], "at": shown_at})
            text, meta["edited_at"] = event.text, stamp
        elif event.text != row["text"] and all(h.get("at") != stamp for h in history):
            history.append({"text": event.text, "at": stamp})
        meta["history"] = sorted(history, key=lambda h: str(h.get("at")))
        yield Stmt("UPDATE interaction SET text = ?, meta = ?, updated_at = ? WHERE id = ?",
                   (text, to_json(meta), when, row["id"]))
        result.interaction = timeline.entry_dict(
            int(row["id"]), row["client_id"], row["kind"], row["direction"], row["channel"],
            occurred_at, row["status"], text, meta)
        if row["client_id"] is not None:
            result.describe((yield from card(int(row["client_id"]))))
        return result

    def _no_card_message(self, event: MessageEvent, when: datetime) -> Program[IngestResult]:
        """A bounce, auto-reply, list or robot mail: kept, never a card, never a reply from us.
        A bounce fails the e-mail of ours it reports (that entry is what managers see change);
        an auto-reply from a known client shows on their card."""
        result = IngestResult(event, quiet=True)
        client = None
        if event.bounce:
            entry = yield from mail.apply_bounce(event.bounce, when)
            if entry is not None and entry["client_id"] is not None:
                client = yield from card(int(entry["client_id"]))
                result.interaction, result.live_type = entry, f"{entry['kind']}.updated"
                result.quiet = False
                summary = client.summary() if client is not None else None
                if (report := outgoing.send_report(entry, summary)) is not None:
                    result.reported = yield from outgoing.emit([report], when)
        elif event.category == "auto_reply":
            client = yield from find_card(party_keys(event.sender, self.region))
        stored = yield from timeline.append_message(
            event, client.id if client is not None and not event.bounce else None, when
        )
        result.interaction = result.interaction or stored
        result.describe(client)
        return result


def _claim_dial(event: CallEvent, client_id: int | None, when: datetime) -> Program[list[Row]]:
    """The click-to-call entry this provider call completes, now under the provider's id."""
    stmt = calls.find_dial(event, client_id, when)
    rows = (yield stmt) if stmt is not None else []
    if rows:
        yield from calls.claim_dial(rows[0], event.call_id)
    return rows


def _call_reminders(client: ClientRef, change: calls.CallChange, when: datetime) -> Program[None]:
    was = change.before is not None and calls.is_missed_inbound(change.before, change.direction)
    missed = calls.is_missed_inbound(change.after, change.direction)
    started = change.after.started_at
    before = change.before
    connected = change.after.was_answered and not (before and before.was_answered)
    moved = before is not None and started < before.started_at  # its ringing came late
    if missed != was or connected or moved:
        yield reminders.one_at_a_time(client.id)
    if missed and not was:
        yield from reminders.on_missed_call(client.id, client.manager_id, started, when)
    elif was and not missed:
        yield from reminders.on_missed_call_revoked(client.id, when)
    if connected:
        yield from reminders.on_connected_call(client.id, started, when)
    if moved and before is not None:
        if change.after.was_answered and before.was_answered:
            yield from reminders.on_connected_call_moved(
                client.id, client.manager_id, started, before.started_at, when)
        elif missed and was:
            yield from reminders.on_missed_call_moved(client.id, when)


def _card_made(
    client: ClientRef, keys: Keys, when: datetime, fields: dict[str, str] | None = None
) -> outgoing.Outgoing:
    """`client.created` for a card this event made, as the API would show it now."""
    return outgoing.Outgoing("client.created", {"client": card_object(
        client.id, client.name, client.status, client.manager_id, fields or {}, when,
        client.last_interaction_at, [*keys.items, *keys.secondary])}, when)


def _call_report(change: calls.CallChange, client: ClientRef | None) -> outgoing.Outgoing | None:
    """`call.missed` or `call.completed` when this event moved the call there (a late event
    that changes an ended call's outcome reports the new one)."""
    status = change.after.status
    if change.before is not None and change.before.status == status:
        return None
    kind = {"completed": "call.completed", "missed": "call.missed", "busy": "call.missed",
            "failed": "call.missed"}.get(status)
    if kind is None:
        return None
    at = change.after.ended_at or change.after.started_at
    return outgoing.Outgoing(kind, {
        "client": client.summary() if client is not None else None,
        "interaction": change.interaction}, at)


def _touch(client: ClientRef, at: datetime) -> Program[None]:
    """Move the card's last interaction forward (never back: events arrive out of order)."""
    if client.last_interaction_at is not None and at <= client.last_interaction_at:
        return
    yield Stmt(
        "UPDATE client SET last_interaction_at = ?, "
        "activity_at = CASE WHEN activity_at < ? THEN ? ELSE activity_at END "
        "WHERE id = ? AND (last_interaction_at IS NULL OR last_interaction_at < ?)",
        (at, at, at, client.id, at),
    )
    client.last_interaction_at = at


def _late_original(event: MessageEvent) -> Program[None]:
    """A message that arrives after its own edit (delivered out of order) joins the entry's
    history, so the entry ends as if they had come in order."""
    rows = yield Stmt("SELECT id, text, meta FROM interaction WHERE source = ? AND external_id = ?",
                      (event.source, event.external_id))
    if not rows:
        return
    meta = as_json(rows[0]["meta"]) or {}
    at = event.occurred_at.isoformat()
    history = list(meta.get("history") or [])
    if "edited_at" not in meta or any(h.get("at") == at for h in history):
        return
    history.append({"text": event.text, "at": at})
    meta["history"] = sorted(history, key=lambda h: str(h.get("at")))
    yield Stmt("UPDATE interaction SET meta = ? WHERE id = ?", (to_json(meta), rows[0]["id"]))


def _duplicate(event: HubEvent) -> Program[IngestResult]:
    result = IngestResult(event, duplicate=True)
    if isinstance(event, CallEvent):
        table, key_col, key = "call", "call_id", event.call_id
    else:
        table, key_col, key = "interaction", "external_id", event.external_id
    rows = yield Stmt(  # table and column names are constants chosen above
        f"SELECT {CLIENT_COLUMNS} FROM {table} x JOIN client c ON c.id = x.client_id "  # noqa: S608
        f"{MANAGER_JOIN} WHERE x.source = ? AND x.{key_col} = ?",
        (event.source, key),
    )
    client = client_ref(rows[0]) if rows else None
    result.describe((yield from live_card(client)) if client else None)
    return result
