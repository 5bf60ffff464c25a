"""Kamailio's fixtures, signed as config/kamailio/kamailio.cfg signs them (crypto_hmac_sha256:
base64url without padding), plus the helpers the Kamailio tests share. Kamailio has no API
to fake: it never places calls for the hub."""

from __future__ import annotations

import json
from typing import Any

from channels.base import InboundRequest
from channels.kamailio import SIGNATURE_HEADER, signature
from tests.providers import fixture_items, inbound

SECRET = "test-kamailio-secret"
CONFIG: dict[str, Any] = {"secret": SECRET}
PATH = "/webhooks/telephony/kamailio"


def body_of(item: dict[str, Any]) -> bytes:
    """The body as Kamailio's jansson module writes it: compact JSON."""
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode()


def sign(body: bytes, secret: str = SECRET) -> str:
    """The X-Hub-Signature-256 value the shipped config sends."""
    return signature(secret, body)


def headers(body: bytes, secret: str = SECRET) -> dict[str, str]:
    """The headers the shipped config sends with a body."""
    return {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, secret)}


def request(body: bytes, sig: str | None) -> InboundRequest:
    """A webhook request as the hub's view hands it to the adapter."""
    hdrs = {"Content-Type": "application/json"}
    if sig is not None:
        hdrs[SIGNATURE_HEADER] = sig
    return inbound(body, hdrs, PATH)


def requests() -> list[InboundRequest]:
    return [request(body, sign(body)) for body in map(body_of, fixture_items("kamailio"))]


def forgeries(genuine: InboundRequest) -> list[InboundRequest]:
    body = genuine.body
    given = genuine.headers[SIGNATURE_HEADER]
    item = json.loads(body)
    tampered = body_of({**item, "from": "89990000000"})
    return [
        request(body, None),
        request(body, ""),
        request(body, "sha256="),
        request(body, sign(body, "another-secret")),
        request(body + b" ", given),
        request(tampered, given),
        request(body, given.removeprefix("sha256=")),  # the prefix is part of the value
        request(body, given.replace("sha256=", "sha1=")),
        request(body, given[:-4]),  # truncated
        request(body, "sha256=" + bytes.fromhex("00" * 32).hex()),
    ]
