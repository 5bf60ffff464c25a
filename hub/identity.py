"""Pure normalizers for the ways a person is reached: phone, e-mail, Telegram. No I/O."""

from __future__ import annotations

import functools
import re
from email.headerregistry import Address
from email.utils import parseaddr
from enum import StrEnum

import phonenumbers

ANONYMOUS = frozenset({"", "0", "anonymous", "unknown", "private", "restricted", "unavailable",
                       "hidden", "withheld", "null", "none"})
_EMAIL_RE = re.compile(r"^[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+\.[^@\s<>()\[\],;:\"]+$")
_USERNAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")


class Kind(StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    TELEGRAM = "telegram"
    TELEGRAM_USERNAME = "telegram_username"


@functools.lru_cache(maxsize=8192)  # the same callers ring again and again; parsing is slow
def normalize_phone(raw: str | None, region: str) -> str | None:
    """E.164 for a valid number written any way, None for garbage or anonymous callers."""
    if raw is None:
        return None
    text = str(raw).strip()
    if text.lower() in ANONYMOUS or len(text) > 64:
        return None
    digits = re.sub(r"\D", "", text)
    if not digits or set(digits) == {"0"}:
        return None
    candidates = [text]
    if not text.startswith("+") and len(digits) > 10:
        candidates.append("+" + digits)  # a provider's 79123456789 carries its country code
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


def phone_digits(text: str) -> str:
    """Only the digits of what a user typed."""
    return re.sub(r"\D", "", text)


def reversed_digits(e164: str) -> str:
    """The key that turns a phone-tail search into an indexed prefix search."""
    return phone_digits(e164)[::-1]


def normalize_email(raw: str | None) -> str | None:
    """A lower-cased bare address, with any display name or angle brackets dropped."""
    if not raw:
        return None
    _, address = parseaddr(str(raw).strip())
    address = address.strip().lower()
    if len(address) > 254 or not _EMAIL_RE.match(address):
        return None
    return address


def format_address(name: str | None, address: str) -> str:
    """A header-ready `Name <address>`."""
    return str(Address(display_name=name or "", addr_spec=address))


def normalize_telegram_id(raw: object) -> int | None:
    """A Telegram user id as an int (positive: users; chats and groups are not people)."""
    if isinstance(raw, bool):
        return None
    try:
        value = int(str(raw).strip())
    except (TypeError, ValueError):
        return None
    return value if 0 < value < 2**53 else None


def normalize_username(raw: str | None) -> str | None:
    """A Telegram @username, lower-cased, without the @."""
    if not raw:
        return None
    name = str(raw).strip().removeprefix("@")
    return name.lower() if _USERNAME_RE.match(name) else None
