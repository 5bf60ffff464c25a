"""Small helpers shared by tests: signing generic webhooks, building call bodies."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

GENERIC_SECRET = "test-generic-secret"
EMAIL_TOKEN = "test-email-token"


def sign(body: bytes, secret: str = GENERIC_SECRET) -> str:
    """The X-Hub-Signature-256 value for a body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def call_body(event: str, call_id: str, phone: str = "+79123456789", **extra: Any) -> bytes:
    """A generic telephony webhook body."""
    data: dict[str, Any] = {
        "event": f"call.{event}" if "." not in event else event,
        "call_id": call_id,
        "direction": "inbound",
        "from": phone,
        "to": "+74950000000",
        "extension": None,
        "timestamp": "2026-11-22T10:00:00+00:00",
    }
    data.update(extra)
    return json.dumps(data).encode()


async def post_call(client: Any, body: bytes, secret: str = GENERIC_SECRET) -> Any:
    """POST a signed generic call event through the test client."""
    return await client.post(
        "/webhooks/telephony/generic",
        data=body,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, secret)},
    )
