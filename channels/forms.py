"""Form bodies as providers post them: urlencoded or multipart, read from the raw bytes so
that parse stays a pure function and signatures see the values exactly as sent."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from urllib.parse import parse_qsl

from channels.base import InboundRequest
from hub.errors import PayloadError

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def form_pairs(request: InboundRequest) -> list[tuple[str, str]]:
    """Every (name, value) of the form body in the order sent; repeated names repeat."""
    content_type = request.headers.get("Content-Type", "")
    if content_type.split(";", 1)[0].strip().lower() == "multipart/form-data":
        return _multipart(content_type, request.body)
    try:
        text = request.body.decode("utf-8")
        return parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text),
                         errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise PayloadError("body is not a valid form (application/x-www-form-urlencoded)") from None


def form_fields(request: InboundRequest) -> dict[str, str]:
    """The form as a dict; the first value wins when a name repeats."""
    fields: dict[str, str] = {}
    for name, value in form_pairs(request):
        fields.setdefault(name, value)
    return fields


def _multipart(content_type: str, body: bytes) -> list[tuple[str, str]]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=policy.default).parsebytes(head + body)
    if not message.is_multipart() or message.defects:
        raise PayloadError("body is not a valid multipart/form-data form")
    pairs = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise PayloadError("a multipart form part has no name")
        payload = part.get_payload(decode=True)
        charset = part.get_content_charset() or "utf-8"
        try:
            value = payload.decode(charset) if isinstance(payload, bytes) else ""
        except (LookupError, UnicodeDecodeError):
            raise PayloadError(f"form field {name!r} is not valid {charset}") from None
        pairs.append((name, value))
    return pairs


def require(fields: dict[str, str], *names: str) -> list[str]:
    """The named fields' values; PayloadError naming the first one missing."""
    missing = [n for n in names if n not in fields]
    if missing:
        raise PayloadError(f"form field {missing[0]!r} is missing")
    return [fields[n] for n in names]
