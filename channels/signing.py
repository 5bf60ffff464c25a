"""Signature helpers shared by adapters: HMAC digests and constant-time comparison."""

from __future__ import annotations

import hmac

from hub.errors import SignatureError


def hmac_hex(key: str | bytes, message: bytes, digest: str = "sha256") -> str:
    """Hex HMAC of a message."""
    return hmac.new(_bytes(key), message, digest).hexdigest()


def require_equal(expected: str, given: str | None) -> None:
    """Raise SignatureError unless the two match; the comparison takes constant time."""
    if not given or not hmac.compare_digest(expected.encode(), header_bytes(given.strip())):
        raise SignatureError("signature does not match")


def header_bytes(value: str) -> bytes:
    """A received header value as bytes to compare. Bytes that were not UTF-8 reach us as
    surrogate escapes (aiohttp decodes headers so), which a plain encode() refuses; they
    simply never match."""
    return value.encode("utf-8", "surrogatepass")


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value
