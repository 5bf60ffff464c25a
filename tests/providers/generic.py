"""The generic adapter's fixtures, signed as a PBX would sign them."""

from __future__ import annotations

import json
from typing import Any

from channels.base import InboundRequest
from tests.helpers import GENERIC_SECRET, sign
from tests.providers import fixture_items, inbound

CONFIG: dict[str, Any] = {"secret": GENERIC_SECRET}
PATH = "/webhooks/telephony/generic"


def _request(body: bytes, signature: str | None) -> InboundRequest:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return inbound(body, headers, PATH)


def requests() -> list[InboundRequest]:
    return [_request(body, sign(body)) for body in
            (json.dumps(item).encode() for item in fixture_items("generic"))]


def forgeries(genuine: InboundRequest) -> list[InboundRequest]:
    body = genuine.body
    return [_request(body, None), _request(body, sign(body, "another-secret")),
            _request(body + b" ", sign(body))]
