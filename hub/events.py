"""Normalized events: the only thing adapters hand to the hub. No provider payloads here."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from hub.errors import ValidationError


def utc(value: datetime) -> datetime:
    """An aware UTC time (naive values are taken as UTC): every stored time is UTC, so that
    times compare and sort the same on SQLite, where they are text, as on PostgreSQL."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, tuple):
        return tuple(_without_nul(v) for v in value)
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    return value


def _normalize(event: Any) -> None:
    """Make an event storable as built: times in UTC, text without NUL characters (JSON and
    MIME can carry U+0000, PostgreSQL text cannot; refusing the event would make a provider
    retry it forever)."""
    for f in fields(event):
        value = getattr(event, f.name)
        try:
            clean = utc(value) if isinstance(value, datetime) else _without_nul(value)
        except OverflowError:  # e.g. 9999-12-31T23:59-10:00: no such time in UTC
            raise ValidationError(f"{f.name}: the time is out of range") from None
        if clean is not value:
            object.__setattr__(event, f.name, clean)


EVENT_NAME_MAX = 32  # processed_event.event


class CallState(StrEnum):
    RINGING = "ringing"
    ANSWERED = "answered"
    ENDED = "ended"
    RECORDING = "recording"


class CallOutcome(StrEnum):
    ANSWERED = "answered"
    MISSED = "missed"
    BUSY = "busy"
    FAILED = "failed"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


@dataclass(frozen=True, slots=True)
class Party:
    """Who is on the other side; the hub normalizes every field again."""

    phone: str | None = None
    email: str | None = None
    telegram_id: int | None = None
    telegram_username: str | None = None
    display_name: str | None = None
    extra_emails: tuple[str, ...] = ()
    extra_phones: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _normalize(self)


@dataclass(frozen=True, slots=True)
class CallEvent:
    """One provider notification about one call."""

    source: str
    call_id: str
    state: CallState
    direction: Direction
    remote: Party
    occurred_at: datetime
    line: str | None = None
    extension: str | None = None
    outcome: CallOutcome | None = None
    duration_s: int | None = None
    recording_url: str | None = None
    # tells apart several notifications of one state for one call (a PBX rings extension 101,
    # then 102: two "ringing" events); None when the provider sends one per state
    event_key: str | None = None
    # the provider's own counter for the call's events (Mango's `seq`): breaks ties between
    # events of one state that carry different values
    seq: int | None = None
    # the hub's click-to-call token when the provider carries it back (Mango's command_id,
    # Twilio's StatusCallback query): binds the provider's call to the entry the click made
    correlation: str | None = None

    def __post_init__(self) -> None:
        _normalize(self)

    @property
    def name(self) -> str:
        """The event's name in the call's event set: `call.<state>[/<event_key>]`."""
        base = f"call.{self.state.value}"
        if not self.event_key:
            return base
        name = f"{base}/{self.event_key}"
        if len(name) <= EVENT_NAME_MAX:
            return name
        # the idempotency table keeps 32 characters: a long key (a leg id) goes in as a digest
        return f"{base}/{hashlib.blake2b(self.event_key.encode(), digest_size=8).hexdigest()}"

    @property
    def dedupe_key(self) -> tuple[str, str, str]:
        return (self.source, self.call_id, self.name)


@dataclass(frozen=True, slots=True)
class Attachment:
    name: str
    content_type: str
    size: int
    ref: str | None = None  # where the file can be fetched from (a Telegram file_id)

    def __post_init__(self) -> None:
        _normalize(self)


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """One inbound message (e-mail, Telegram) from a customer."""

    source: str
    channel: str
    external_id: str
    sender: Party
    text: str
    occurred_at: datetime
    subject: str | None = None
    thread_ref: str | None = None
    attachments: tuple[Attachment, ...] = ()
    fields: dict[str, str] = field(default_factory=dict)
    # e-mail threading: every Message-ID the References header names, oldest first
    references: tuple[str, ...] = ()
    html: str | None = None  # a sanitized HTML body, when the message had one
    # what kind of mail this is (channels.mime.MailKind): only a person's message or a web
    # form makes or matches a card; bounces, auto-replies, lists and robots never do
    category: str = "message"
    reason: str | None = None  # why it is not a plain message ("list-id", "dsn", ...)
    # a delivery failure report: which of our messages bounced and why
    bounce: dict[str, Any] | None = None
    # set on a new version of a message already sent (a Telegram edit): the entry's text
    # changes, the earlier text goes to its history
    edited_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # channel facts for the entry's meta

    def __post_init__(self) -> None:
        _normalize(self)

    @property
    def makes_card(self) -> bool:
        return self.category in PERSON_CATEGORIES

    @property
    def dedupe_key(self) -> tuple[str, str, str]:
        if self.edited_at is not None:
            return (self.source, self.external_id, f"edit:{self.edited_at.timestamp():.0f}")
        return (self.source, self.external_id, "message")


PERSON_CATEGORIES = frozenset({"message", "form"})


HubEvent = CallEvent | MessageEvent
