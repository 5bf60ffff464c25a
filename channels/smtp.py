"""Outbound e-mail over SMTP (aiosmtplib), configured by `[email] smtp_url` and `from_address`.

`smtp://user:pass@host:port` talks plain SMTP and upgrades with STARTTLS when the server offers
it; `smtps://` speaks TLS from the first byte (port 465 by default). A message is built with the
stdlib `email` package: From, To, Subject (any language), Date, the Message-ID its outbox row
carries (so a retry re-sends the same one and receivers can drop the copy) and
multipart/alternative text + HTML. Failures raise DeliveryError: retryable for connection
trouble and 4xx answers, not for 5xx answers (permanent refusals).
"""

from __future__ import annotations

import email.utils
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import default as default_policy
from urllib.parse import unquote, urlsplit

import aiosmtplib

from hub.errors import ConfigError, DeliveryError
from hub.settings import EmailSettings

TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    to: str
    subject: str
    text: str
    html: str | None
    message_id: str
    date: datetime
    in_reply_to: str | None = None  # the client's message a manager answers
    references: tuple[str, ...] = ()
    auto_submitted: bool = False  # written by the hub itself: no autoresponder answers it
    files: tuple[MailFile, ...] = ()


@dataclass(frozen=True, slots=True)
class MailFile:
    """An attachment: its file name, MIME type and bytes."""

    name: str
    content_type: str
    data: bytes


def new_message_id(from_address: str) -> str:
    """A fresh `<...@domain>` Message-ID in the sender's domain."""
    domain = from_address.rpartition("@")[2] or "crm-hub.invalid"
    return email.utils.make_msgid(domain=domain)


def build_message(from_address: str, mail: OutgoingEmail) -> EmailMessage:
    message = EmailMessage(policy=default_policy)
    message["From"] = from_address
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = email.utils.format_datetime(mail.date)
    message["Message-ID"] = mail.message_id
    if mail.in_reply_to:
        message["In-Reply-To"] = mail.in_reply_to
        message["References"] = " ".join((*mail.references, mail.in_reply_to)[-20:])
    if mail.auto_submitted:
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834
    message.set_content(mail.text)
    if mail.html:
        message.add_alternative(mail.html, subtype="html")
    for file in mail.files:
        maintype, _, subtype = file.content_type.partition("/")
        message.add_attachment(file.data, maintype=maintype or "application",
                               subtype=subtype or "octet-stream", filename=file.name,
                               params=_text_charset(maintype, file.data))
    return message


def _text_charset(maintype: str, data: bytes) -> dict[str, str]:
    """A text file (a CSV price list) says it is UTF-8 when it is, so mail programs show it."""
    if maintype != "text":
        return {}
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return {}
    return {"charset": "utf-8"}


class SmtpSender:
    """Sends one message per call on a fresh connection (offers are few; no pooling)."""

    def __init__(
        self, url: str, from_address: str, timeout: float = TIMEOUT_S,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        """`tls_context`: how to verify the server (default: the system's CAs)."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigError("email.smtp_url: use smtp://host[:port] or smtps://host[:port]")
        self.use_tls = parts.scheme == "smtps"
        self.hostname = parts.hostname
        self.port = parts.port or (465 if self.use_tls else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.from_address = from_address
        self.timeout = timeout
        self.tls_context = tls_context

    @classmethod
    def from_settings(cls, settings: EmailSettings) -> SmtpSender | None:
        """The sender, or None when `smtp_url` or `from_address` is not configured."""
        if settings.smtp_url is None or not settings.from_address:
            return None
        return cls(settings.smtp_url.get_secret_value(), settings.from_address)

    def message_id(self) -> str:
        return new_message_id(self.from_address)

    async def send(self, mail: OutgoingEmail) -> str:
        """Send; the server's answer to DATA. DeliveryError on failure."""
        message = build_message(self.from_address, mail)
        try:
            _, answer = await aiosmtplib.send(
                message, hostname=self.hostname, port=self.port, username=self.username,
                password=self.password, use_tls=self.use_tls,
                start_tls=False if self.use_tls else None, timeout=self.timeout,
                tls_context=self.tls_context,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            reason = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            raise DeliveryError(f"SMTP refused the recipient: {reason}",
                                retryable=all(400 <= c < 500 for c in codes),
                                provider_code=str(codes[0]) if codes else None) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(f"SMTP answered {exc.code} {exc.message}",
                                retryable=400 <= exc.code < 500,
                                provider_code=str(exc.code)) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryError(f"SMTP server unreachable: {exc or type(exc).__name__}",
                                retryable=True) from None
        return answer
