"""Request and response bodies of the manager API (pydantic); the OpenAPI document uses them too.

Unknown keys are refused; the API validates JSON bodies in strict mode (types must match)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hub import identity, outgoing
from hub.models import ClientStatus, ReminderStatus, Role

DbId = Annotated[int, Field(ge=1, le=2**31 - 1)]
Minutes = Annotated[int, Field(ge=1, le=525_600)]  # one minute to one year
EARLIEST, LATEST = 2000, 9000


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClientCreate(Body):
    name: str = Field(default="", max_length=300)
    status: ClientStatus = ClientStatus.NEW
    phones: list[str] = Field(default_factory=list, max_length=20)
    emails: list[str] = Field(default_factory=list, max_length=20)
    telegram: list[int | str] = Field(default_factory=list, max_length=20)
    manager_id: DbId | None = None
    fields: dict[str, Any] = Field(default_factory=dict)


class ClientPatch(Body):
    name: str | None = Field(default=None, max_length=300)
    status: ClientStatus | None = None
    phones: list[str] | None = Field(default=None, max_length=20)
    emails: list[str] | None = Field(default=None, max_length=20)
    telegram: list[int | str] | None = Field(default=None, max_length=20)
    manager_id: DbId | None = None
    fields: dict[str, Any] | None = None


class MergeRequest(Body):
    other_id: DbId


class CallRequest(Body):
    manager_id: DbId | None = None


class NoteCreate(Body):
    text: str = Field(min_length=1, max_length=20_000)


class ManagerCreate(Body):
    name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=254)
    extension: str | None = Field(default=None, min_length=1, max_length=32)
    phone: str | None = Field(default=None, max_length=64)
    role: Role = Role.MANAGER

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str | None) -> str | None:
        if value is None:
            return None
        address = identity.normalize_email(value)
        if address is None:
            raise ValueError("not a valid e-mail address")
        return address


def utc_time(value: datetime) -> datetime:
    """A time as aware UTC (a naive one is taken as UTC), within sane years."""
    try:
        at = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except OverflowError:
        at = None
    if at is None or not EARLIEST <= at.year <= LATEST:
        raise ValueError(f"must be a time between the years {EARLIEST} and {LATEST}")
    return at


class ReminderCreate(Body):
    """Exactly one of `due_at` (a naive time is UTC) and `in_minutes`."""

    due_at: datetime | None = None
    in_minutes: Minutes | None = None
    text: str = Field(min_length=1, max_length=2_000)
    manager_id: DbId | None = None

    @field_validator("due_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return None if value is None else utc_time(value)

    @model_validator(mode="after")
    def _one_time(self) -> ReminderCreate:
        if (self.due_at is None) == (self.in_minutes is None):
            raise ValueError("give exactly one of due_at and in_minutes")
        return self


class ReminderSnooze(Body):
    minutes: Minutes


TEMPLATE_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"
LANGUAGE = r"^[a-z]{2,3}$"


class TemplateUpdate(Body):
    """A new version of one language variant of an offer template (`language` absent or null:
    the default variant). Bodies are Jinja2, rendered in the sandbox."""

    language: str | None = Field(default=None, pattern=LANGUAGE)
    subject: str = Field(min_length=1, max_length=1_000)
    text: str = Field(min_length=1, max_length=100_000)
    html: str | None = Field(default=None, max_length=200_000)


class TemplateCreate(TemplateUpdate):
    name: str = Field(pattern=TEMPLATE_NAME)


class OfferCreate(Body):
    """Send an offer template to a card over a channel ("email" or "telegram"). `language`
    picks a variant; absent, the card's language, else the default."""

    template: str = Field(pattern=TEMPLATE_NAME)
    channel: str = Field(min_length=1, max_length=32)
    language: str | None = Field(default=None, pattern=LANGUAGE)


class MessageCreate(Body):
    """A manager's message to the client over a channel ("email" or "telegram"). An e-mail
    answers the client's latest message: its subject (unless one is given), its thread, the
    address it came from."""

    channel: str = Field(min_length=1, max_length=32)
    text: str = Field(min_length=1, max_length=100_000)
    subject: str | None = Field(default=None, min_length=1, max_length=998)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("subject")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None and ("\n" in value or "\r" in value or not value.strip()):
            raise ValueError("must be one line of text")
        return value.strip() if value else value


def _webhook_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL")
    if parts.username or parts.password:
        raise ValueError("must not carry a user name or password; the signature proves the hub")
    return value.strip()


def _event_types(value: list[str]) -> list[str]:
    unknown = [t for t in value if t != outgoing.EVERYTHING and t not in outgoing.TYPES]
    if unknown:
        raise ValueError(f"unknown event type(s) {', '.join(map(repr, unknown))}; known: "
                         f"{', '.join(outgoing.TYPES)}, or \"*\" for all")
    return sorted(set(value))


class WebhookCreate(Body):
    """A subscription: where to POST, which event types (`"*"`: all, including types added
    later). The hub makes its signing secret and shows it once, in the answer."""

    url: str = Field(min_length=1, max_length=2000)
    events: list[str] = Field(min_length=1, max_length=50)
    description: str = Field(default="", max_length=200)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _webhook_url(value)

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str]) -> list[str]:
        return _event_types(value)


class WebhookPatch(Body):
    """Change a subscription; `"status": "active"` resumes a paused one where it stopped,
    `"paused"` holds its deliveries (they keep being recorded)."""

    url: str | None = Field(default=None, min_length=1, max_length=2000)
    events: list[str] | None = Field(default=None, min_length=1, max_length=50)
    description: str | None = Field(default=None, max_length=200)
    status: Literal["active", "paused"] | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _webhook_url(value)

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _event_types(value)


class WebhookReplay(Body):
    """Send again every delivery of the subscription made at or after `since` (a naive time
    is UTC)."""

    since: datetime

    @field_validator("since")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return utc_time(value)


class WebhookOut(BaseModel):
    id: int
    url: str
    events: list[str]
    description: str
    status: Literal["active", "paused"]
    paused_reason: str | None
    failing_since: datetime | None
    retry_at: datetime | None
    pending: int  # deliveries waiting to go out
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str  # shown here only: sign-check every request with it


class WebhookSecret(BaseModel):
    secret: str


class DeliveryOut(BaseModel):
    id: int
    event: dict[str, Any]  # {"id", "type", "occurred_at"}
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_status: int | None  # the receiver's HTTP status
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime


class ClientOut(BaseModel):
    id: int
    name: str
    status: ClientStatus
    phones: list[str]
    emails: list[str]
    telegram: list[int | str]
    manager_id: int | None
    fields: dict[str, Any]
    created_at: datetime
    last_interaction_at: datetime | None


class InteractionOut(BaseModel):
    id: int
    client_id: int | None
    kind: str
    direction: str | None
    channel: str
    occurred_at: datetime
    status: str | None
    text: str
    meta: dict[str, Any]


class ManagerOut(BaseModel):
    id: int
    name: str
    email: str | None
    extension: str | None
    phone: str | None
    role: Role


class ManagerCreated(ManagerOut):
    token: str


class ReminderOut(BaseModel):
    id: int
    client_id: int
    manager_id: int | None
    due_at: datetime
    text: str
    status: ReminderStatus
    origin: str
    count: int
    fired_at: datetime | None
    late: bool  # it fired over a minute after it fell due (no hub was running)


class MergeOut(BaseModel):
    id: int
    survivor_id: int
    merged_id: int
    by_id: int | None
    created_at: datetime
    undone_at: datetime | None


class MergeResult(ClientOut):
    """The surviving card, as GET shows it, plus the merge record (its id undoes it)."""

    merge: MergeOut


class TemplateVariantOut(BaseModel):
    language: str | None  # null: the default variant
    source: str  # "bundled" (a file shipped with the hub) or "custom" (written by an admin)
    version: int  # 0 for a bundled file
    author: str | None
    created_at: datetime | None


class TemplateOut(BaseModel):
    name: str
    languages: list[str]  # the language variants besides the default
    default: bool  # there is a default variant (used when the client's language has none)
    source: str  # "custom" when any variant was written by an admin
    version: int
    author: str | None
    updated_at: datetime | None
    variants: list[TemplateVariantOut]


class TemplateVersionOut(TemplateVariantOut):
    name: str
    subject: str
    text: str
    html: str | None


class AttachmentOut(BaseModel):
    name: str
    content_type: str
    size: int


class TemplatePreview(BaseModel):
    template: str
    version: int
    language: str | None  # the variant used: the client's language, else the default
    subject: str
    text: str
    html: str | None
    attachments: list[AttachmentOut]  # files that go with it, e.g. a price list


class WebhookAnswer(BaseModel):
    client_id: int | None
    created: bool
    duplicate: bool
    manager: dict[str, Any] | None


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody
    merged_into: int | None = None
