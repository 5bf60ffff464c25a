"""Reading raw e-mail: headers, bodies, attachments and what kind of mail it is.

``parse_mail`` turns one raw RFC 822 message into a ``ParsedMail``: decoded sender and subject,
a plain-text body, a sanitized HTML copy, the list of real attachments, thread references, and a
classification (a person's message, a web-site form, a bounce, an auto reply, a mailing list or
a robot notice). It is best-effort on purpose: broken MIME, unknown charsets and bad encodings
give a partial result, never an exception (only an empty message is refused).
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.errors import HeaderParseError
from email.header import decode_header
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from enum import StrEnum
from html.parser import HTMLParser

import nh3

from hub.errors import ValidationError
from hub.events import Attachment

# The MIME structure is parsed with compat32, which keeps header values as they came; the
# headers people read (From, Reply-To, Subject) are then built by policy.default's own header
# factory, which decodes RFC 2047 words and parses addresses. Parsing the whole message with
# policy.default builds a header object on every header access (the parser itself asks for
# each part's Content-Type several times) and is about ten times slower on real mail.
_POLICY = policy.compat32
_HEADERS = policy.default


MAX_TEXT = 100_000
MAX_HTML = 200_000
MAX_HTML_INPUT = 1_000_000
MAX_DIAGNOSTIC = 500
MAX_HEADER = 998
MAX_NAME = 255
MAX_DEPTH = 40
MAX_FORM_FIELDS = 60
MAX_FORM_VALUE = 2_000


class MailKind(StrEnum):
    MESSAGE = "message"  # a person wrote
    FORM = "form"  # a web-site form submission
    BOUNCE = "bounce"  # a delivery failure report (DSN or plain-text bounce)
    AUTO_REPLY = "auto_reply"  # vacation / out-of-office / autoresponder / request received
    LIST = "list"  # mailing list or newsletter
    SYSTEM = "system"  # a robot sender (mailer-daemon, noreply, ...) that is not a bounce


@dataclass(frozen=True, slots=True)
class MailAddress:
    addr: str  # addr-spec as written (case kept)
    name: str | None  # decoded display name or comment, None if absent


@dataclass(frozen=True, slots=True)
class Bounce:
    original_message_id: str | None
    recipient: str | None
    status: str | None
    diagnostic: str | None
    permanent: bool


@dataclass(frozen=True, slots=True)
class ParsedMail:
    message_id: str | None
    sender: MailAddress | None
    reply_to: tuple[MailAddress, ...]
    subject: str | None
    date: datetime | None
    text: str
    html: str | None
    attachments: tuple[Attachment, ...]
    in_reply_to: str | None
    references: tuple[str, ...]
    kind: MailKind
    reason: str | None
    bounce: Bounce | None
    form: dict[str, str]
    defects: int


# --- charsets ------------------------------------------------------------------------------

_FALLBACK_CHARSETS = ("utf-8", "windows-1251")


def _charset_chain(declared: str | None) -> Iterator[str]:
    if declared:
        name = declared.strip().strip("\"'").strip().lower()
        if name:
            yield name
            squeezed = re.sub(r"[-_\s]+", "", name)
            if squeezed != name:
                yield squeezed
            if squeezed.startswith("win") and squeezed[3:].isdigit():
                yield "cp" + squeezed[3:]
    yield from _FALLBACK_CHARSETS


def _decode_bytes(data: bytes, charset: str | None) -> str:
    """Bytes as text: the declared charset, then UTF-8, then Windows-1251, then Latin-1."""
    for name in _charset_chain(charset):
        try:
            return data.decode(name)
        except (LookupError, UnicodeError, ValueError, TypeError):
            continue
    return data.decode("latin-1", "replace")


_SURROGATES = re.compile("[\ud800-\udfff]")


def _fix_surrogates(value: str) -> str:
    """Raw 8-bit bytes the parser kept as surrogate escapes, decoded as text."""
    if not _SURROGATES.search(value):
        return value
    try:
        data = value.encode("utf-8", "surrogateescape")
    except UnicodeError:  # a lone surrogate that was not an escaped byte
        return _SURROGATES.sub("\ufffd", value)
    return _decode_bytes(data, None)


# --- headers --------------------------------------------------------------------------------

def _decode_words(value: str) -> str:
    """RFC 2047 words decoded by the stdlib (email.header); a word in a charset Python does not
    know is decoded through the fallback chain instead."""
    try:
        chunks = decode_header(value)
    except (HeaderParseError, ValueError, LookupError, UnicodeError):
        return value
    pieces = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            pieces.append(chunk)
        else:
            pieces.append(_decode_bytes(chunk, charset if charset != "unknown-8bit" else None))
    # decode_header keeps the blanks between a plain word and an encoded one on the plain side
    return "".join(pieces)


def _decode_header_value(value: str) -> str:
    """A raw header value with RFC 2047 words decoded in any charset; whitespace unfolded."""
    value = _fix_surrogates(value.replace("\r", "").replace("\n", ""))
    return _decode_words(value) if "=?" in value else value


def _headers(msg: Message) -> dict[str, str]:
    """First raw value of every header, keyed by lower-cased name (no header objects built)."""
    found: dict[str, str] = {}
    for name, value in msg.raw_items():
        key = str(name).strip().lower()
        if key not in found:
            found[key] = value if isinstance(value, str) else str(value)
    return found


def _text_header(headers: dict[str, str], name: str) -> str | None:
    """A header as text: policy.default's decoded value; the raw value decoded by guessing
    when it carries 8-bit bytes (no charset declared) or defeats the header parser."""
    raw = headers.get(name)
    if raw is None:
        return None
    value = None
    if not _SURROGATES.search(raw):
        try:
            value = str(_HEADERS.header_fetch_parse(name, raw))
        except Exception:  # noqa: BLE001 - a value too broken for the header registry
            value = None
    if value is None or "\ufffd" in value:
        value = _decode_header_value(raw)
    value = " ".join(value.split())
    return value[:MAX_HEADER] or None


_ANGLE_ID = re.compile(r"<([^<>\s]+)>")


def _message_id(raw: str | None) -> str | None:
    if raw is None:
        return None
    value = _fix_surrogates(raw).strip()
    match = _ANGLE_ID.search(value)
    if match:
        return f"<{match.group(1)}>"[:MAX_HEADER]
    token = value.split()[0] if value.split() else ""
    return f"<{token}>"[:MAX_HEADER] if token else None


def _ids(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    return tuple(f"<{m}>"[:MAX_HEADER] for m in _ANGLE_ID.findall(_fix_surrogates(raw)))


def _date(raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        value = parsedate_to_datetime(_fix_surrogates(raw).strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if value is None:  # pragma: no cover - older Pythons returned None
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        value.astimezone(UTC)
    except OverflowError:  # the edge of the calendar in another zone: no time in UTC
        return None
    return value


_BARE_ADDR = re.compile(r"[^\s<>()\[\]\",;:@]+@[^\s<>()\[\]\",;:@]+")


def _comment_names(value: str) -> dict[str, str]:
    """Names written as comments (`p@x.ru (Пётр Иванов)`), which the header registry drops."""
    try:
        pairs = getaddresses([value])
    except (ValueError, TypeError, IndexError):
        return {}
    return {addr.lower(): name for name, addr in pairs if name and addr}


def _addresses(headers: dict[str, str], name: str) -> tuple[MailAddress, ...]:
    """The addresses of an address header: split by the stdlib's getaddresses, names decoded by
    email.header (RFC 2047, any charset); policy.default's header registry, then a bare address
    search, when the value defeats it. (The registry alone is about ten times slower.)"""
    raw = headers.get(name)
    if not raw:
        return ()
    value = _fix_surrogates(raw.replace("\r", "").replace("\n", ""))
    try:
        pairs = getaddresses([value])
    except (ValueError, TypeError, IndexError):
        pairs = []
    if not any("@" in addr for _, addr in pairs):
        # a value getaddresses cannot split: policy.default's header registry tries harder
        try:
            parsed = getattr(_HEADERS.header_fetch_parse(name, raw), "addresses", ())
            pairs = [(a.display_name, a.addr_spec) for a in parsed]
        except Exception:  # noqa: BLE001 - a value too broken for the header registry
            pairs = []
    comments: dict[str, str] | None = None
    found: list[MailAddress] = []
    for display, addr in pairs:
        addr = addr.strip()
        if "@" not in addr or addr.startswith("@") or addr.endswith("@"):
            continue
        if not display and "(" in value:
            comments = _comment_names(value) if comments is None else comments
            display = comments.get(addr.lower(), "")
        if _SURROGATES.search(display) or "=?" in display or "\ufffd" in display:
            display = _decode_header_value(display) if "\ufffd" not in display else ""
        display = " ".join(display.split())
        found.append(MailAddress(addr=addr[:MAX_NAME], name=display[:MAX_NAME] or None))
    if not found:
        match = _BARE_ADDR.search(value)
        if match:
            found.append(MailAddress(addr=match.group(0)[:MAX_NAME], name=None))
    return tuple(found)


# --- MIME structure ---------------------------------------------------------------------------


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type().lower()
    except Exception:  # noqa: BLE001 - a Content-Type value too odd to split
        return "text/plain"


def _param(part: Message, name: str, header: str = "content-type") -> str | None:
    source = part
    raw = next((v for k, v in part.raw_items() if k.lower() == header), None)
    if isinstance(raw, str) and _SURROGATES.search(raw):
        source = Message()  # raw 8-bit parameters, decoded before the parameter parser sees them
        source[header] = _fix_surrogates(raw)
    try:
        value = source.get_param(name, header=header)
    except Exception:  # noqa: BLE001
        return None
    if isinstance(value, tuple):
        charset, _lang, text = value
        value = _decode_bytes(str(text).encode("latin-1", "replace"), charset)
    return _fix_surrogates(str(value)) if value is not None else None


def _disposition(part: Message) -> str | None:
    try:
        value = part.get_content_disposition()
    except Exception:  # noqa: BLE001
        return None
    return value.lower() if isinstance(value, str) else None


def _filename(part: Message) -> str | None:
    text = _param(part, "filename", "content-disposition") or _param(part, "name")
    if not text:
        return None
    if _SURROGATES.search(text):
        text = _fix_surrogates(text)
    if "=?" in text:
        text = _decode_header_value(text)
    text = re.sub(r"[\x00-\x1f\x7f]", "", text).replace("\\", "/").rsplit("/", 1)[-1].strip()
    return text[:MAX_NAME] or None


def _payload_bytes(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001
        return b""
    return data if isinstance(data, bytes) else b""


def _part_text(part: Message) -> str:
    data = _payload_bytes(part)
    if not data:
        return ""
    try:
        charset = part.get_content_charset()
    except Exception:  # noqa: BLE001
        charset = None
    return _decode_bytes(data, charset)


def _inner_message(part: Message) -> Message | None:
    try:
        payload = part.get_payload()
    except Exception:  # noqa: BLE001
        return None
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    return None


def _message_size(part: Message) -> int:
    inner = _inner_message(part)
    if inner is None:
        return len(_payload_bytes(part))
    try:
        return len(inner.as_bytes())
    except Exception:  # noqa: BLE001
        return 0


@dataclass(slots=True)
class _Leaf:
    part: Message
    ctype: str
    disposition: str | None
    filename: str | None
    related: bool


@dataclass(slots=True)
class _Structure:
    text: Message | None = None
    html: Message | None = None
    leaves: list[_Leaf] = field(default_factory=list)
    delivery_status: Message | None = None
    original_headers: Message | None = None
    original: Message | None = None


_REPORT_HEADERS = ("text/rfc822-headers", "message/rfc822-headers", "message/global-headers")
_REPORT_STATUS = ("message/delivery-status", "message/global-delivery-status")
_EMBEDDED = ("message/rfc822", "message/global")


def _structure(msg: Message) -> _Structure:
    found = _Structure()
    stack: list[tuple[Message, int, bool]] = [(msg, 0, False)]
    while stack:
        part, depth, related = stack.pop()
        ctype = _content_type(part)
        if ctype.startswith("multipart/") and part.is_multipart():
            children = part.get_payload()
            if isinstance(children, list) and depth < MAX_DEPTH:
                inside = related or ctype == "multipart/related"
                stack.extend(
                    (child, depth + 1, inside)
                    for child in reversed(children)
                    if isinstance(child, Message)
                )
            continue
        if ctype.startswith("multipart/"):
            ctype = "text/plain"  # a multipart without usable parts: read it as text
        _place(found, part, ctype, related)
    return found


def _place(found: _Structure, part: Message, ctype: str, related: bool) -> None:
    if ctype in _REPORT_STATUS:
        found.delivery_status = found.delivery_status or part
        return
    if ctype in _REPORT_HEADERS:
        found.original_headers = found.original_headers or part
        return
    disposition = _disposition(part)
    filename = _filename(part)
    if ctype in _EMBEDDED and found.original is None:
        found.original = part
    if disposition != "attachment" and filename is None:
        if ctype == "text/plain":
            if found.text is None:
                found.text = part
            return
        if ctype == "text/html":
            if found.html is None:
                found.html = part
            return
    found.leaves.append(_Leaf(part, ctype, disposition, filename, related))


def _content_id(part: Message) -> str | None:
    raw = part.get("content-id") if "content-id" in part else None
    if raw is None:
        return None
    value = _fix_surrogates(str(raw)).strip().strip("<>").strip()
    return value.lower() or None


def _extension(ctype: str) -> str:
    if ctype in _EMBEDDED:
        return ".eml"
    ext = mimetypes.guess_extension(ctype, strict=False)
    return ext if ext else ".bin"


def _attachments(leaves: list[_Leaf], html: str | None) -> tuple[Attachment, ...]:
    html_lower = html.lower() if html else ""
    found: list[Attachment] = []
    for leaf in leaves:
        if leaf.ctype.startswith("image/") and _is_inline_image(leaf, html_lower):
            continue
        if leaf.ctype in _EMBEDDED:
            size = _message_size(leaf.part)
            name = leaf.filename or _embedded_name(leaf.part)
        else:
            size = len(_payload_bytes(leaf.part))
            name = leaf.filename
        if not name:
            name = f"attachment-{len(found) + 1}{_extension(leaf.ctype)}"
        found.append(Attachment(name=name[:MAX_NAME], content_type=leaf.ctype, size=size))
    return tuple(found)


def _is_inline_image(leaf: _Leaf, html_lower: str) -> bool:
    cid = _content_id(leaf.part)
    if cid and "cid:" + cid in html_lower:
        return True
    if leaf.disposition == "inline":
        # an inline image shown in the body (related part or one with a Content-ID);
        # a named inline image straight in multipart/mixed is a sent photo, kept as a file
        return leaf.related or cid is not None or leaf.filename is None
    return False


def _embedded_name(part: Message) -> str | None:
    inner = _inner_message(part)
    if inner is None:
        return None
    subject = _text_header(_headers(inner), "subject")
    if not subject:
        return None
    safe = re.sub(r"[\\/\x00-\x1f\x7f]+", " ", subject).strip()
    return (safe[: MAX_NAME - 4] + ".eml") if safe else None


# --- HTML -----------------------------------------------------------------------------------

_SKIP_TAGS = frozenset({"script", "style", "head", "title", "noscript", "template", "svg"})
_LINE_TAGS = frozenset(
    {
        "br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol",
        "blockquote", "section", "article", "header", "footer", "hr", "pre", "dt", "dd",
        "address", "form", "fieldset", "tbody", "thead", "tfoot", "caption",
    }
)  # fmt: skip
_CELL_TAGS = frozenset({"td", "th"})


class _HtmlText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._pre = 0
        self._cells = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag in _CELL_TAGS:
            if self._cells:
                self.parts.append("\t")
            self._cells += 1
        elif tag in _LINE_TAGS:
            self.parts.append("\n")
            if tag == "tr":
                self._cells = 0
            elif tag == "pre":
                self._pre += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _LINE_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag in _LINE_TAGS:
            self.parts.append("\n")
            if tag == "tr":
                self._cells = 0
            elif tag == "pre":
                self._pre = max(0, self._pre - 1)

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.parts.append(data if self._pre else re.sub(r"[ \t\r\n\f\v]+", " ", data))


def _html_to_text(html: str) -> str:
    """Readable text of an HTML body: one line per block, table cells split by a tab."""
    parser = _HtmlText()
    try:
        parser.feed(html)
        parser.close()
        text = "".join(parser.parts)
    except Exception:  # noqa: BLE001 - markup the stdlib parser chokes on
        text = re.sub(r"<[^>]*>", "\n", html)
    lines = []
    for line in text.replace("\xa0", " ").splitlines():
        cells = [" ".join(cell.split()) for cell in line.split("\t")]
        joined = "\t".join(cell for cell in cells if cell)
        if joined:
            lines.append(joined)
    return "\n".join(lines)


_URL_SCHEMES = frozenset({"http", "https", "mailto", "tel", "cid"})
_CLEAN_CONTENT = frozenset({"script", "style", "title", "noscript", "template"})


def _keep_attribute(tag: str, attr: str, value: str) -> str | None:
    if tag == "img" and attr == "src" and not value.strip().lower().startswith("cid:"):
        return None  # remote images are tracking pixels more often than not
    return value


def _sanitize_html(html: str) -> str:
    """HTML safe to show: no scripts, styles, event handlers, javascript: URLs, remote images."""
    cleaned: str = nh3.clean(
        html[:MAX_HTML_INPUT],
        clean_content_tags=set(_CLEAN_CONTENT),
        attribute_filter=_keep_attribute,
        url_schemes=set(_URL_SCHEMES),
    )
    if len(cleaned) > MAX_HTML:
        cleaned = nh3.clean(cleaned[:MAX_HTML], url_schemes=set(_URL_SCHEMES))[:MAX_HTML]
    return cleaned


# --- classification ---------------------------------------------------------------------------

_DAEMON_LOCAL = re.compile(r"^(mailer-daemon|postmaster|mail-daemon)([-+._].*)?$", re.I)
_ROBOT_LOCAL = re.compile(
    r"^(mailer-daemon|postmaster|no[-_.]?reply|do[-_.]?not[-_.]?reply)([-+._].*)?$", re.I
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|returned mail|returned to sender|mail delivery failed|delivery failure"
    r"|delivery status notification|failure notice|mail failure|delivery has failed"
    r"|could not be delivered|could not send message|delivery (?:is )?delayed|delayed mail"
    r"|недоставленное сообщение|не доставлено|не было доставлено|ошибка доставки",
    re.I,
)
_BOUNCE_BODY = re.compile(
    r"could not be delivered|couldn't be delivered|permanent error|permanent fatal error"
    r"|delivery to the following recipient|undeliverable|user unknown|mailbox unavailable"
    r"|не может быть доставлено|не удалось доставить|не доставлено",
    re.I,
)
_TRANSIENT = re.compile(
    r"\(delay\)|delayed|warning|will (?:be )?retr|not yet been delivered|задерж", re.I
)
_VACATION_PREFIX = re.compile(
    r"^\s*(?:auto:|automatic reply|auto[- ]?reply|auto[- ]?respon|out of (?:the )?office"
    r"|автоответ|автоматический ответ|я в отпуске|vacation|\[?ooo\]?:)",
    re.I,
)
_VACATION_ANYWHERE = re.compile(
    r"out of (?:the )?office|automatic reply|autoreply|auto-reply|автоответ|в отпуске"
    r"|нет на месте|your request (?:has been|was) received|ваше обращение (?:принято|получено"
    r"|зарегистрировано)|мы получили ваше (?:письмо|обращение)",
    re.I,
)
_SUPPRESS_AUTO = re.compile(r"\b(?:oof|autoreply|all)\b", re.I)
_BULK = frozenset({"bulk", "list", "junk"})


def _local_part(address: MailAddress | None) -> str:
    return address.addr.rsplit("@", 1)[0].strip('"') if address else ""


def _auto_reply_reason(headers: dict[str, str], subject: str) -> str | None:
    submitted = " ".join(_fix_surrogates(headers.get("auto-submitted", "")).split()).lower()
    if submitted and not submitted.startswith("no"):
        return "auto-submitted: " + submitted.split("(")[0].split(";")[0].strip()[:40]
    for name in ("x-autoreply", "x-autorespond", "x-autoresponder"):
        if name in headers:
            return name
    precedence = headers.get("precedence", "").strip().lower()
    if precedence == "auto_reply":
        return "precedence: auto_reply"
    if _VACATION_PREFIX.search(subject):
        return "vacation subject"
    suppress = headers.get("x-auto-response-suppress", "")
    if suppress and _SUPPRESS_AUTO.search(suppress) and _VACATION_ANYWHERE.search(subject):
        return "x-auto-response-suppress + vacation subject"
    if re.search(r"your request (?:has been|was) received|ваше обращение (?:принято|получено)",
                 subject, re.I):  # fmt: skip
        return "request received subject"
    return None


def _list_reason(headers: dict[str, str]) -> str | None:
    if "list-id" in headers:
        return "list-id"
    precedence = headers.get("precedence", "").strip().lower()
    if precedence in _BULK:
        if "list-unsubscribe" in headers:
            return f"list-unsubscribe + precedence: {precedence}"
        return f"precedence: {precedence}"
    return None


# --- bounces ----------------------------------------------------------------------------------

_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_SMTP_CODE = re.compile(r"\b([45])\d\d[\s-]")
_QUOTED_ID = re.compile(r"(?im)^[ \t>]*message-id:[ \t]*(<[^<>\s]+>)")
_ORIGINAL_START = re.compile(
    r"(?im)^[ \t]*(?:-{2,}.*\b(?:copy|original|returned|undelivered|below this line|headers)\b"
    r"|(?:return-path|received|message-id|from|subject|date|to):[ \t])"
)
_RECIPIENT_FIELD = re.compile(
    r"(?im)^[ \t]*(?:final|original)-recipient:[ \t]*(?:rfc822;)?[ \t]*"
    r"<?([^\s<>;]+@[^\s<>;]+?)>?[ \t]*$"
)
_ADDRESS_LINE = re.compile(r"(?m)^[ \t]*<?([^\s<>\"():,;]+@[^\s<>\"():,;]+?)>?:?[ \t]*$")
_ADDRESS_COLON = re.compile(r"<([^\s<>]+@[^\s<>]+)>:")
_RCPT_TO = re.compile(r"(?i)rcpt to:[ \t]*<([^\s<>]+@[^\s<>]+)>")


def _one_line(value: str | None, limit: int = MAX_DIAGNOSTIC) -> str | None:
    if not value:
        return None
    text = " ".join(value.split())
    return text[:limit] or None


def _dsn_fields(part: Message) -> list[dict[str, str]]:
    """The field blocks of a message/delivery-status part, names lower-cased."""
    payload = part.get_payload()
    blocks: list[dict[str, str]] = []
    if isinstance(payload, list):
        for block in payload:
            if isinstance(block, Message):
                fields = {k: _fix_surrogates(v) for k, v in _headers(block).items()}
                if fields:
                    blocks.append(fields)
        if blocks:
            return blocks
    return _text_fields(_part_text(part) if not isinstance(payload, list) else "")


def _text_fields(text: str) -> list[dict[str, str]]:
    blocks: list[dict[str, str]] = []
    for chunk in re.split(r"\n[ \t]*\n", text.replace("\r", "")):
        fields: dict[str, str] = {}
        last = None
        for line in chunk.split("\n"):
            if line[:1] in (" ", "\t") and last:
                fields[last] += " " + line.strip()
                continue
            name, sep, value = line.partition(":")
            if sep and name.strip() and " " not in name.strip():
                last = name.strip().lower()
                fields.setdefault(last, value.strip())
        if fields:
            blocks.append(fields)
    return blocks


def _field_address(value: str | None) -> str | None:
    if not value:
        return None
    address = value.split(";", 1)[-1].strip().strip("<>").strip()
    return address[:MAX_NAME] if "@" in address else None


def _quoted_id(part: Message) -> str | None:
    inner = _inner_message(part)
    if inner is not None:
        value = _message_id(_headers(inner).get("message-id"))
        if value:
            return value
    match = _QUOTED_ID.search(_part_text(part))
    return match.group(1) if match else None


def _original_id(found: _Structure, notification: str) -> str | None:
    for part in (found.original, found.original_headers):
        value = _quoted_id(part) if part is not None else None
        if value:
            return value
    match = _QUOTED_ID.search(notification)
    return match.group(1) if match else None


def _notification_head(text: str) -> str:
    match = _ORIGINAL_START.search(text)
    return text[: match.start()] if match else text


def _text_recipient(head: str) -> str | None:
    for pattern in (_RECIPIENT_FIELD, _ADDRESS_LINE, _ADDRESS_COLON, _RCPT_TO):
        match = pattern.search(head)
        if match:
            return match.group(1)[:MAX_NAME]
    return None


_DECORATION = re.compile(r"(?m)^[ \t]*(?:-{3,}.*-{3,}|[*#=]{3,}.*)[ \t]*$")


def _text_diagnostic(head: str, recipient: str | None) -> str | None:
    head = _DECORATION.sub("", head.replace("\r", ""))
    paragraphs = [p for p in re.split(r"\n[ \t]*\n", head) if p.strip()]
    for paragraph in paragraphs:
        if _SMTP_CODE.search(paragraph) or _STATUS.search(paragraph):
            return _one_line(paragraph)
    if recipient:
        for paragraph in paragraphs:
            if recipient in paragraph:
                return _one_line(paragraph)
    return None


def _bounce(found: _Structure, text: str, headers: dict[str, str], subject: str) -> Bounce:
    head = _notification_head(text)
    recipient = status = diagnostic = None
    action = ""
    if found.delivery_status is not None:
        blocks = _dsn_fields(found.delivery_status)
        per_recipient = [b for b in blocks if "final-recipient" in b or "action" in b]
        chosen = next(
            (b for b in per_recipient if b.get("action", "").strip().lower() == "failed"),
            per_recipient[0] if per_recipient else {},
        )
        recipient = _field_address(chosen.get("final-recipient")) or _field_address(
            chosen.get("original-recipient")
        )
        status_match = _STATUS.search(chosen.get("status", ""))
        status = status_match.group(1) if status_match else None
        diagnostic = _one_line(chosen.get("diagnostic-code", "").split(";", 1)[-1])
        action = chosen.get("action", "").strip().lower()
    failed = headers.get("x-failed-recipients")
    if recipient is None and failed:
        recipient = next((a.addr for a in _addresses(headers, "x-failed-recipients")),
                         None)
    recipient = recipient or _text_recipient(head)
    if status is None:
        status_match = _STATUS.search(head)
        status = status_match.group(1) if status_match else None
    diagnostic = diagnostic or _text_diagnostic(head, recipient)
    if action or status:
        permanent = action != "delayed" and not (status or "").startswith("4.")
    else:
        code = _SMTP_CODE.search(diagnostic or "")
        transient = (code is not None and code.group(1) == "4") or bool(_TRANSIENT.search(subject))
        permanent = not transient
    return Bounce(
        original_message_id=_original_id(found, text),
        recipient=recipient,
        status=status,
        diagnostic=diagnostic,
        permanent=permanent,
    )


def _bounce_reason(
    msg: Message,
    found: _Structure,
    headers: dict[str, str],
    sender: MailAddress | None,
    subject: str,
    text: str,
) -> str | None:
    ctype = _content_type(msg)
    if ctype == "multipart/report":
        report = (_param(msg, "report-type") or "").lower()
        if report in ("delivery-status", "global-delivery-status"):
            return "dsn"
    if found.delivery_status is not None and (
        _DAEMON_LOCAL.match(_local_part(sender)) or _BOUNCE_SUBJECT.search(subject)
    ):
        return "dsn"
    if "x-failed-recipients" in headers:
        return "x-failed-recipients"
    if _DAEMON_LOCAL.match(_local_part(sender)):
        if _BOUNCE_SUBJECT.search(subject):
            return "bounce subject"
        if _BOUNCE_BODY.search(text[:5000]):
            return "bounce text"
    return None


# --- forms ------------------------------------------------------------------------------------


def _label_key(label: str) -> str:
    return " ".join(label.lower().replace("ё", "е").strip(" \t*:").split())


_FORM_ALIASES: dict[str, str] = {
    _label_key(label): key
    for key, labels in {
        "name": ("Имя", "ФИО", "Ваше имя", "Контактное лицо", "Name", "Full name", "Your name"),
        "phone": (
            "Телефон", "Тел.", "Тел", "Моб. телефон", "Мобильный", "Мобильный телефон",
            "Ваш телефон", "Phone", "Phone number", "Tel", "Tel.", "Mobile", "Telephone",
        ),
        "email": (
            "E-mail", "Email", "Эл. почта", "Почта", "Электронная почта", "Mail", "Ваш e-mail",
            "Your email", "Email address", "E-mail address",
        ),
    }.items()
    for label in labels
}  # fmt: skip

_LABEL_OK = re.compile(r"^[^\W\d_][\w .,()/№#'*-]{0,59}$")


def _form_line(line: str) -> tuple[str, str] | None:
    if "\t" in line:
        label, _, value = line.partition("\t")
        if label.rstrip().endswith(":") or ":" not in label:
            return label.strip().rstrip(":").strip(), value.replace("\t", " ").strip()
    label, sep, value = line.partition(":")
    if sep and not value.startswith("//"):
        return label.strip(), value.strip()
    label, sep, value = line.partition(" - ")
    if sep and _label_key(label) in _FORM_ALIASES:
        return label.strip(), value.strip()
    return None


def _parse_form(text: str) -> dict[str, str]:
    """The "Label: value" fields of a form mail; name, phone and email under fixed keys."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line[:1] in (" ", ">"):
            continue
        pair = _form_line(line)
        if pair is None:
            continue
        label, value = pair
        label = label.strip().rstrip("*").strip()
        if not value or not _LABEL_OK.match(label):
            continue
        key = _FORM_ALIASES.get(_label_key(label), label)
        if key not in fields:
            fields[key] = value[:MAX_FORM_VALUE]
            if len(fields) >= MAX_FORM_FIELDS:
                break
    return fields


# --- entry point ------------------------------------------------------------------------------


def _defects(msg: Message) -> int:
    total = 0
    try:
        for part in msg.walk():
            total += len(getattr(part, "defects", ()))
    except Exception:  # noqa: BLE001
        return total
    return total


def _body_text(found: _Structure, html: str | None) -> str:
    if found.text is not None:
        text = _part_text(found.text)
    elif html is not None:
        text = _html_to_text(html[:MAX_HTML_INPUT])
    else:
        return ""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()[:MAX_TEXT]


def parse_mail(
    raw: bytes, form_senders: Collection[str] = (), form_subjects: Collection[str] = ()
) -> ParsedMail:
    """One raw message, read best-effort; only an empty message is refused."""
    if not raw.strip():
        raise ValidationError("empty message")
    try:
        msg = BytesParser(policy=_POLICY).parsebytes(raw)
        return _parse(msg, form_senders, form_subjects)
    except ValidationError:
        raise
    except Exception:  # noqa: BLE001 - the last guard: a crude reading beats a lost mail
        return _crude(raw)


def _parse(
    msg: Message, form_senders: Collection[str], form_subjects: Collection[str]
) -> ParsedMail:
    headers = _headers(msg)
    senders = _addresses(headers, "from")
    sender = senders[0] if senders else None
    subject = _text_header(headers, "subject")
    subject_text = subject or ""
    found = _structure(msg)
    raw_html = _part_text(found.html) if found.html is not None else None
    text = _body_text(found, raw_html)
    kind, reason, bounce, form = _classify(
        msg, found, headers, sender, subject_text, text, form_senders, form_subjects
    )
    in_reply_to = _ids(headers.get("in-reply-to"))
    return ParsedMail(
        message_id=_message_id(headers.get("message-id")),
        sender=sender,
        reply_to=_addresses(headers, "reply-to"),
        subject=subject,
        date=_date(headers.get("date")),
        text=text,
        html=_sanitize_html(raw_html) if raw_html is not None else None,
        attachments=_attachments(found.leaves, raw_html),
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=_ids(headers.get("references")),
        kind=kind,
        reason=reason,
        bounce=bounce,
        form=form,
        defects=_defects(msg),
    )


def _classify(
    msg: Message,
    found: _Structure,
    headers: dict[str, str],
    sender: MailAddress | None,
    subject: str,
    text: str,
    form_senders: Collection[str],
    form_subjects: Collection[str],
) -> tuple[MailKind, str | None, Bounce | None, dict[str, str]]:
    reason = _bounce_reason(msg, found, headers, sender, subject, text)
    if reason:
        return MailKind.BOUNCE, reason, _bounce(found, text, headers, subject), {}
    reason = _auto_reply_reason(headers, subject)
    if reason:
        return MailKind.AUTO_REPLY, reason, None, {}
    if sender is not None and sender.addr.lower() in form_senders:
        return MailKind.FORM, "form sender", None, _parse_form(text)
    reason = _list_reason(headers)
    if reason:
        return MailKind.LIST, reason, None, {}
    local = _local_part(sender)
    if _ROBOT_LOCAL.match(local):
        label = "mailer-daemon" if _DAEMON_LOCAL.match(local) else local.lower()
        return MailKind.SYSTEM, f"{label} sender"[:60], None, {}
    lowered = subject.lower()
    if any(s and s in lowered for s in form_subjects):
        return MailKind.FORM, "form subject", None, _parse_form(text)
    return MailKind.MESSAGE, None, None, {}


def _crude(raw: bytes) -> ParsedMail:
    """What is left when the structured reading failed: the bytes as text."""
    _, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    return ParsedMail(
        message_id=None,
        sender=None,
        reply_to=(),
        subject=None,
        date=None,
        text=_decode_bytes(body, None).strip()[:MAX_TEXT],
        html=None,
        attachments=(),
        in_reply_to=None,
        references=(),
        kind=MailKind.MESSAGE,
        reason=None,
        bounce=None,
        form={},
        defects=1,
    )
