"""Tortoise models: cards, their identities, the timeline, calls, managers, reminders.

Models hold data only: no signals, no side effects (those are explicit post-commit hooks).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class ClientStatus(StrEnum):
    NEW = "new"
    COLD = "cold"
    HOT = "hot"
    VIP = "vip"
    REGULAR = "regular"


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"


class ReminderStatus(StrEnum):
    PENDING = "pending"
    FIRED = "fired"
    DONE = "done"


class Manager(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200)
    email = fields.CharField(max_length=254, null=True, unique=True)
    extension = fields.CharField(max_length=32, null=True, unique=True)
    phone = fields.CharField(max_length=20, null=True)
    role = fields.CharEnumField(Role, default=Role.MANAGER, max_length=16)
    is_active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    # the manager's own Telegram account, linked through a one-time deep link
    telegram_user_id = fields.BigIntField(null=True, unique=True)
    # the web UI's login: an argon2 hash (hub.passwords); None: no browser login yet
    password_hash = fields.CharField(max_length=255, null=True)
    # the UI language the manager chose ("ru" | "en"); None: the browser's preference
    language = fields.CharField(max_length=8, null=True)

    class Meta:
        table = "manager"


class ApiToken(Model):
    id = fields.IntField(primary_key=True)
    manager: fields.ForeignKeyRelation[Manager] = fields.ForeignKeyField(
        "models.Manager", related_name="tokens", on_delete=fields.CASCADE
    )
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "api_token"


class Client(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=300, default="")
    status = fields.CharEnumField(ClientStatus, default=ClientStatus.NEW, max_length=16)
    manager: fields.ForeignKeyNullableRelation[Manager] = fields.ForeignKeyField(
        "models.Manager", related_name="clients", null=True, on_delete=fields.SET_NULL
    )
    custom_fields: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    last_interaction_at = fields.DatetimeField(null=True)
    # never null, so the list can page on (activity_at, id) with one index
    activity_at = fields.DatetimeField()
    # lower-cased name, e-mails and usernames: what `q` searches as text
    search = fields.TextField(default="")
    merged_into: fields.ForeignKeyNullableRelation[Client] = fields.ForeignKeyField(
        "models.Client", related_name=False, null=True, on_delete=fields.SET_NULL
    )

    class Meta:
        table = "client"
        indexes = [
            Index(fields=("activity_at", "id")),
            Index(fields=("status", "activity_at", "id")),
            Index(fields=("manager_id", "activity_at", "id")),
        ]


class Identity(Model):
    """A phone, e-mail or Telegram id; unique across the database, so it belongs to one card."""

    id = fields.IntField(primary_key=True)
    client: fields.ForeignKeyRelation[Client] = fields.ForeignKeyField(
        "models.Client", related_name="identities", on_delete=fields.CASCADE
    )
    kind = fields.CharField(max_length=20)
    value = fields.CharField(max_length=254)
    # reversed digits of a phone: a tail search becomes an indexed prefix range
    rev = fields.CharField(max_length=20, null=True, db_index=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "identity"
        unique_together = (("kind", "value"),)
        indexes = [Index(fields=("client_id",))]


class Interaction(Model):
    """One entry on a card's timeline."""

    id = fields.BigIntField(primary_key=True)
    client: fields.ForeignKeyNullableRelation[Client] = fields.ForeignKeyField(
        "models.Client", related_name="interactions", null=True, on_delete=fields.CASCADE
    )
    kind = fields.CharField(max_length=16)
    direction = fields.CharField(max_length=8, null=True)
    channel = fields.CharField(max_length=32)
    occurred_at = fields.DatetimeField()
    status = fields.CharField(max_length=16, null=True)
    text = fields.TextField(default="")
    meta: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    # (source, external_id): the provider's key, so a redelivery finds the same entry
    source = fields.CharField(max_length=32, null=True)
    external_id = fields.CharField(max_length=255, null=True)
    author: fields.ForeignKeyNullableRelation[Manager] = fields.ForeignKeyField(
        "models.Manager", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "interaction"
        unique_together = (("source", "external_id"),)
        indexes = [Index(fields=("client_id", "occurred_at", "id"))]


class Call(Model):
    """One row per provider call id; the lifecycle state only moves forward."""

    id = fields.BigIntField(primary_key=True)
    source = fields.CharField(max_length=32)
    call_id = fields.CharField(max_length=255)
    direction = fields.CharField(max_length=8)
    state = fields.CharField(max_length=16)
    outcome = fields.CharField(max_length=16, null=True)
    was_answered = fields.BooleanField(default=False)
    remote_phone = fields.CharField(max_length=20, null=True)
    line = fields.CharField(max_length=64, null=True)
    extension = fields.CharField(max_length=32, null=True)
    client: fields.ForeignKeyNullableRelation[Client] = fields.ForeignKeyField(
        "models.Client", related_name="calls", null=True, on_delete=fields.CASCADE
    )
    interaction: fields.ForeignKeyRelation[Interaction] = fields.ForeignKeyField(
        "models.Interaction", related_name=False, on_delete=fields.CASCADE
    )
    started_at = fields.DatetimeField()
    answered_at = fields.DatetimeField(null=True)
    ended_at = fields.DatetimeField(null=True)
    duration_s = fields.IntField(null=True)
    recording_url = fields.TextField(null=True)
    # every distinct event seen, keyed "call.<state>": the state is derived from this set
    events: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)

    class Meta:
        table = "call"
        unique_together = (("source", "call_id"),)
        indexes = [Index(fields=("client_id", "started_at")), Index(fields=("state", "started_at"))]


class Reminder(Model):
    id = fields.IntField(primary_key=True)
    client: fields.ForeignKeyRelation[Client] = fields.ForeignKeyField(
        "models.Client", related_name="reminders", on_delete=fields.CASCADE
    )
    manager: fields.ForeignKeyNullableRelation[Manager] = fields.ForeignKeyField(
        "models.Manager", related_name="reminders", null=True, on_delete=fields.SET_NULL
    )
    due_at = fields.DatetimeField()
    text = fields.TextField(default="")
    status = fields.CharEnumField(ReminderStatus, default=ReminderStatus.PENDING, max_length=16)
    origin = fields.CharField(max_length=32, default="manual")
    count = fields.IntField(default=1)
    created_at = fields.DatetimeField()
    fired_at = fields.DatetimeField(null=True)
    done_at = fields.DatetimeField(null=True)
    escalated_at = fields.DatetimeField(null=True)  # overdue: the admins were told

    class Meta:
        table = "reminder"
        indexes = [Index(fields=("status", "due_at")), Index(fields=("client_id", "status"))]


class ProcessedEvent(Model):
    """Idempotency: one row per (source, external id, event) ever ingested."""

    id = fields.BigIntField(primary_key=True)
    source = fields.CharField(max_length=32)
    external_id = fields.CharField(max_length=255)
    event = fields.CharField(max_length=32)
    created_at = fields.DatetimeField()

    class Meta:
        table = "processed_event"
        unique_together = (("source", "external_id", "event"),)


class Merge(Model):
    """A recorded merge: what moved from `merged` to `survivor`, so it can be undone."""

    id = fields.IntField(primary_key=True)
    survivor: fields.ForeignKeyRelation[Client] = fields.ForeignKeyField(
        "models.Client", related_name="merges", on_delete=fields.CASCADE
    )
    merged: fields.ForeignKeyRelation[Client] = fields.ForeignKeyField(
        "models.Client", related_name=False, on_delete=fields.CASCADE
    )
    by: fields.ForeignKeyNullableRelation[Manager] = fields.ForeignKeyField(
        "models.Manager", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    moved: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    created_at = fields.DatetimeField()
    undone_at = fields.DatetimeField(null=True)

    class Meta:
        table = "merge"


class OfferTemplate(Model):
    """One version of one language variant of an offer template, written by an admin; a name's
    newest version of a language overrides the bundled file of that name and language."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=64)
    # "" is the default variant (not NULL: NULLs never clash in a unique constraint)
    language = fields.CharField(max_length=16, default="")
    version = fields.IntField()
    subject = fields.TextField()
    text = fields.TextField()
    html = fields.TextField(null=True)
    author: fields.ForeignKeyNullableRelation[Manager] = fields.ForeignKeyField(
        "models.Manager", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField()

    class Meta:
        table = "offer_template"
        unique_together = (("name", "language", "version"),)


class Outbox(Model):
    """One outbound message waiting to be sent, being sent, sent or failed (hub.outbox); the
    durable half of `POST /api/clients/{id}/offers`. Written and claimed through SQL programs."""

    id = fields.BigIntField(primary_key=True)
    interaction: fields.ForeignKeyRelation[Interaction] = fields.ForeignKeyField(
        "models.Interaction", related_name=False, on_delete=fields.CASCADE
    )
    channel = fields.CharField(max_length=16)
    to_address = fields.CharField(max_length=320)
    subject = fields.TextField()
    text = fields.TextField()
    html = fields.TextField(null=True)
    # generated once, so a retry re-sends the same one; replies and bounces name it
    message_id = fields.CharField(max_length=255, db_index=True)
    # e-mail thread headers: a manager's reply names the client's message it answers
    in_reply_to = fields.CharField(max_length=255, null=True)
    thread_refs = fields.TextField(null=True)  # References, space-separated
    # written by the hub itself (a reminder), not by a person: Auto-Submitted: auto-generated
    auto_submitted = fields.BooleanField(default=False)
    # files that go with it: JSON [{"path", "name", "content_type"}], path under the templates
    attachments = fields.TextField(null=True)
    status = fields.CharField(max_length=16)  # queued | sending | sent | failed
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField()
    last_error = fields.TextField(null=True)
    sent_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "outbox"
        indexes = [Index(fields=("status", "next_attempt_at"))]


class MailboxState(Model):
    """Where the IMAP listener stopped in one mailbox (UIDVALIDITY + the last ingested UID) and
    which hub process holds the mailbox until when (hub.mailbox)."""

    id = fields.IntField(primary_key=True)
    mailbox = fields.CharField(max_length=255, unique=True)
    uidvalidity = fields.BigIntField(null=True)
    last_uid = fields.BigIntField(default=0)
    owner = fields.CharField(max_length=64, null=True)
    lease_until = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField()

    class Meta:
        table = "mailbox_state"


class TelegramChat(Model):
    """A private chat with the bot (its id is the user's): reachable or blocked (by the
    latest my_chat_member, whatever order they came in), and whether the bot asked for the
    phone already."""

    user_id = fields.BigIntField(primary_key=True)
    status = fields.CharField(max_length=16, default="member")  # member | kicked
    status_at = fields.DatetimeField(null=True)
    asked_phone_at = fields.DatetimeField(null=True)
    language = fields.CharField(max_length=16, null=True)
    updated_at = fields.DatetimeField()

    class Meta:
        table = "telegram_chat"


class LinkToken(Model):
    """A one-time deep-link token (only its hash is kept): `/start <token>` binds the chat
    to a card (kind "client") or to a manager's account (kind "manager")."""

    id = fields.IntField(primary_key=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    kind = fields.CharField(max_length=16)
    target_id = fields.IntField()
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    used_by = fields.BigIntField(null=True)

    class Meta:
        table = "link_token"


class ImportJob(Model):
    """A client import started through the API (`POST /api/imports`): it runs in the
    background; its progress and report are read from here by any hub process."""

    id = fields.IntField(primary_key=True)
    status = fields.CharField(max_length=16)  # running | done | failed
    file_name = fields.CharField(max_length=255)
    dry_run = fields.BooleanField(default=False)
    expected = fields.IntField(null=True)  # about how many rows the file has
    done = fields.IntField(default=0)
    report: fields.JSONField[dict[str, Any]] = fields.JSONField(null=True)
    error = fields.TextField(null=True)
    by: fields.ForeignKeyNullableRelation[Manager] = fields.ForeignKeyField(
        "models.Manager", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField()
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "import_job"


class Webhook(Model):
    """A subscription of another system to the hub's events (hub.outgoing): where they go,
    which types, the secret that signs them, and whether deliveries flow or are paused. One
    hub process at a time delivers its events (the lease), so they go out in order."""

    id = fields.IntField(primary_key=True)
    url = fields.CharField(max_length=2000)
    topics = fields.TextField()  # ",client.created,call.missed," or ",*," (every type)
    description = fields.CharField(max_length=200, default="")
    secret = fields.CharField(max_length=128)
    status = fields.CharField(max_length=16)  # active | paused
    paused_reason = fields.TextField(null=True)
    failing_since = fields.DatetimeField(null=True)  # the first failure of the current streak
    retry_at = fields.DatetimeField(null=True)  # the oldest waiting delivery is retried then
    lease_owner = fields.CharField(max_length=64, null=True)
    lease_until = fields.DatetimeField(null=True)
    created_by: fields.ForeignKeyNullableRelation[Manager] = fields.ForeignKeyField(
        "models.Manager", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "webhook"


class WebhookEvent(Model):
    """Something the hub reports (a card created, a call missed, ...), as it was when it
    happened; written in the transaction of the change, and only when a subscription wants it."""

    id = fields.BigIntField(primary_key=True)
    type = fields.CharField(max_length=64)
    payload = fields.TextField()  # the JSON `data` of the delivered body
    occurred_at = fields.DatetimeField()
    created_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "webhook_event"


class WebhookDelivery(Model):
    """One event on its way to one subscription: pending, delivered or failed, with its
    attempts (written and claimed through SQL programs in hub.delivery)."""

    id = fields.BigIntField(primary_key=True)
    webhook: fields.ForeignKeyRelation[Webhook] = fields.ForeignKeyField(
        "models.Webhook", related_name=False, on_delete=fields.CASCADE
    )
    event: fields.ForeignKeyRelation[WebhookEvent] = fields.ForeignKeyField(
        "models.WebhookEvent", related_name=False, on_delete=fields.CASCADE
    )
    status = fields.CharField(max_length=16)  # pending | delivered | failed
    attempts = fields.IntField(default=0)
    first_attempt_at = fields.DatetimeField(null=True)
    last_attempt_at = fields.DatetimeField(null=True)
    next_attempt_at = fields.DatetimeField(null=True)
    last_status = fields.IntField(null=True)  # the receiver's HTTP status, if it answered
    last_error = fields.TextField(null=True)
    delivered_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "webhook_delivery"
        indexes = [Index(fields=("webhook_id", "status", "event_id"))]


class WebSession(Model):
    """A manager's browser session of the web UI (hub.sessions). Only the SHA-256 of the cookie
    is kept, so a copy of the database opens no session; it ends after SESSION_DAYS, after a
    long idle spell, on logout, or when the password changes."""

    id = fields.IntField(primary_key=True)
    manager: fields.ForeignKeyRelation[Manager] = fields.ForeignKeyField(
        "models.Manager", related_name="web_sessions", on_delete=fields.CASCADE
    )
    token_hash = fields.CharField(max_length=64, unique=True)
    csrf = fields.CharField(max_length=64)  # the session's CSRF token, sent back by its forms
    created_at = fields.DatetimeField()
    last_seen_at = fields.DatetimeField()  # refreshed at most once a minute
    expires_at = fields.DatetimeField(db_index=True)
    user_agent = fields.CharField(max_length=255, null=True)

    class Meta:
        table = "web_session"
        indexes = [Index(fields=("manager_id",))]


class AuditLog(Model):
    """Who did what to which object (hub.privacy): an export or erasure of a client's data. The
    detail holds ids, counts and reasons only, never personal data or message bodies, so the
    log outlives the erasures it records; a deleted manager leaves their rows unsigned."""

    id = fields.BigIntField(primary_key=True)
    at = fields.DatetimeField()
    manager: fields.ForeignKeyNullableRelation[Manager] = fields.ForeignKeyField(
        "models.Manager", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    action = fields.CharField(max_length=64)  # e.g. "client.erased", "client.exported"
    target_type = fields.CharField(max_length=32)  # e.g. "client"
    target_id = fields.BigIntField(null=True)
    detail: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)

    class Meta:
        table = "audit_log"
        indexes = [Index(fields=("target_type", "target_id")), Index(fields=("at",))]
