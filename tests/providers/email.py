"""The e-mail push endpoint's fixtures, with the inbound token an MTA would send."""

from __future__ import annotations

from typing import Any

from channels.base import InboundRequest
from tests.helpers import EMAIL_TOKEN
from tests.providers import fixture_items, inbound

CONFIG: dict[str, Any] = {"inbound_token": EMAIL_TOKEN}
PATH = "/webhooks/email"


def _request(body: bytes, token: str | None) -> InboundRequest:
    headers = {"Content-Type": "message/rfc822"}
    if token is not None:
        headers["X-Hub-Token"] = token
    return inbound(body, headers, PATH)


def requests() -> list[InboundRequest]:
    return [_request(body, EMAIL_TOKEN) for body in fixture_items("email", ".eml")]


def forgeries(genuine: InboundRequest) -> list[InboundRequest]:
    return [_request(genuine.body, None), _request(genuine.body, EMAIL_TOKEN[:-2] + "00")]
