"""E-mail pushed by an MTA or a mail service: one raw RFC 822 message per request.

Webhook URL: POST {public_base_url}/webhooks/email  (Content-Type: message/rfc822)
Auth:        X-Hub-Token: <[email] inbound_token>  (HUB_EMAIL_INBOUND_TOKEN); unset → disabled
The sender becomes or matches a card; the message becomes a timeline entry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from datetime import UTC, datetime

from channels.base import Adapter, InboundRequest, secret
from channels.mime import MailKind, ParsedMail, parse_mail
from channels.signing import require_equal
from hub.errors import ValidationError
from hub.events import HubEvent, MessageEvent, Party
from hub.settings import EmailSettings

TOKEN_HEADER = "X-Hub-Token"  # noqa: S105 (a header name)
SOURCE = "email"  # the push endpoint and the IMAP listener share it: one message, one entry


class EmailAdapter(Adapter):
    name = "email"
    title = "E-mail (raw RFC 822 push)"
    kind = "email"
    Config = EmailSettings  # the [email] table of the hub settings
    required = ("inbound_token",)
    paths = ("/webhooks/email",)
    content_types = ("message/rfc822",)

    def verify(self, request: InboundRequest) -> None:
        """The shared inbound token, compared in constant time."""
        config = self.config
        assert isinstance(config, EmailSettings)
        require_equal(secret(config.inbound_token), request.headers.get(TOKEN_HEADER))

    def parse(self, request: InboundRequest) -> Sequence[HubEvent]:
        """One message event per request."""
        return [reader(self.config).event(request.body)]


def reader(config: object) -> MailReader:
    """The reader the `[email]` settings describe."""
    assert isinstance(config, EmailSettings)
    return MailReader(config.form_senders, config.form_subjects, config.from_address)


class MailReader:
    """Raw RFC 822 bytes → a hub MessageEvent, with the mailbox's own rules: which senders and
    subjects are web forms, and which address is the hub's own."""

    def __init__(
        self, form_senders: Collection[str] = (), form_subjects: Collection[str] = (),
        own_address: str | None = None,
    ) -> None:
        self.form_senders = frozenset(a.lower() for a in form_senders)
        self.form_subjects = tuple(s.lower() for s in form_subjects)
        self.own_address = own_address.lower() if own_address else None

    def event(self, raw: bytes) -> MessageEvent:
        """The message as an event; ValidationError when it names no sender at all."""
        mail = parse_mail(raw, self.form_senders, self.form_subjects)
        if mail.sender is None and mail.kind is not MailKind.FORM:
            raise ValidationError("the message has no usable From address")
        return to_event(mail, raw, self.own_address)


def parse_message(raw: bytes) -> MessageEvent:
    """A raw message as a hub MessageEvent, with no form or own-address rules."""
    return MailReader().event(raw)


def to_event(mail: ParsedMail, raw: bytes, own_address: str | None = None) -> MessageEvent:
    """The hub's view of a parsed mail: who the client is, what lands on the timeline."""
    category, reason = mail.kind.value, mail.reason
    sender_addr = mail.sender.addr.lower() if mail.sender else None
    fields: dict[str, str] = {}
    if mail.kind is MailKind.FORM:
        # the client is the person in the form, never the site's robot that sent it
        form = dict(mail.form)
        party = Party(email=form.pop("email", None), phone=form.pop("phone", None),
                      display_name=form.pop("name", None))
        fields = form
    else:
        assert mail.sender is not None
        extra = tuple(a.addr for a in mail.reply_to if a.addr.lower() != sender_addr)
        party = Party(email=mail.sender.addr, display_name=mail.sender.name,
                      extra_emails=extra)
        if own_address and sender_addr == own_address:
            category, reason = MailKind.SYSTEM.value, "our own address"
    bounce = None
    if mail.bounce is not None:
        b = mail.bounce
        bounce = {"message_id": b.original_message_id, "recipient": b.recipient,
                  "status": b.status, "diagnostic": b.diagnostic, "permanent": b.permanent}
    return MessageEvent(
        source=SOURCE,
        channel="email",
        external_id=(mail.message_id or "")[:255] or "sha256:" + hashlib.sha256(raw).hexdigest(),
        sender=party,
        text=mail.text,
        occurred_at=mail.date or datetime.now(UTC),
        subject=(mail.subject or "")[:998] or None,
        thread_ref=mail.in_reply_to,
        attachments=mail.attachments,
        fields=fields,
        references=mail.references[-50:],
        html=mail.html,
        category=category,
        reason=reason,
        bounce=bounce,
    )
