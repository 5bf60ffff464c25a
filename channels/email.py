"""E-mail pushed by an MTA or a mail service: one raw RFC 822 message per request.

Webhook URL: POST {public_base_url}/webhooks/email  (Content-Type: message/rfc822)
Auth:        X-Hub-Token: <[email] inbound_token>  (HUB_EMAIL_INBOUND_TOKEN); unset → disabled
The sender becomes or matches a card; the message becomes a timeline entry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser

from channels.base import Adapter, InboundRequest, secret
from channels.signing import require_equal
from hub.errors import ValidationError
from hub.events import Attachment, HubEvent, MessageEvent, Party
from hub.settings import EmailSettings

TOKEN_HEADER = "X-Hub-Token"  # noqa: S105 (a header name)
MAX_TEXT = 100_000


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
        return [parse_message(request.body)]


def parse_message(raw: bytes, source: str = "email") -> MessageEvent:
    """A raw message as a hub MessageEvent (stdlib email, policy.default)."""
    if not raw.strip():
        raise ValidationError("empty message")
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    sender = _sender(msg)
    if sender is None:
        raise ValidationError("the message has no usable From address")
    message_id = (str(msg.get("Message-ID") or "")).strip()
    return MessageEvent(
        source=source,
        channel="email",
        external_id=message_id[:255] or "sha256:" + hashlib.sha256(raw).hexdigest(),
        sender=Party(email=sender.addr_spec, display_name=sender.display_name or None),
        text=_text(msg)[:MAX_TEXT],
        occurred_at=_date(msg),
        subject=str(msg.get("Subject") or "")[:998] or None,
        thread_ref=(str(msg.get("In-Reply-To") or "").strip() or None),
        attachments=tuple(_attachments(msg)),
    )


def _sender(msg: EmailMessage) -> Address | None:
    try:
        header = msg.get("From")
        addresses = getattr(header, "addresses", ())
    except (IndexError, ValueError, TypeError):
        return None
    return next((a for a in addresses if a.addr_spec and "@" in a.addr_spec), None)


def _date(msg: EmailMessage) -> datetime:
    try:
        return parsedate_to_datetime(str(msg.get("Date") or ""))  # MessageEvent makes it UTC
    except (TypeError, ValueError, IndexError):
        return datetime.now(UTC)


def _text(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError, AssertionError):
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return ""
    return _strip_html(content) if part.get_content_type() == "text/html" else content.strip()


def _attachments(msg: EmailMessage) -> list[Attachment]:
    found = []
    for part in msg.iter_attachments():
        payload = part.get_payload(decode=True)
        size = len(payload) if isinstance(payload, bytes) else 0
        name = part.get_filename() or "attachment"
        found.append(Attachment(name=name[:255], content_type=part.get_content_type(), size=size))
    return found


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self._skip += tag in ("script", "style")
        if tag in ("br", "p", "div", "tr", "li"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("script", "style") and self._skip > 0

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _strip_html(html: str) -> str:
    parser = _TextOnly()
    parser.feed(html)
    lines = (line.strip() for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)
