"""Outbound HTTP to provider APIs: one place that turns a transport failure or an HTTP status
into DeliveryError, retryable or not."""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp

from hub.errors import DeliveryError

log = logging.getLogger("channels.http")
# statuses worth another try: the provider is overloaded, rate-limiting or briefly down
RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_ANSWER = 64 * 1024


async def request_json(
    http: aiohttp.ClientSession, provider: str, method: str, url: str, **kwargs: Any
) -> Any:
    """Send one API request and return its JSON answer; DeliveryError when it failed."""
    try:
        async with http.request(method, url, **kwargs) as resp:
            raw = await resp.content.read(MAX_ANSWER)
            status = resp.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise DeliveryError(f"{provider}: cannot reach the API ({type(exc).__name__})",
                            retryable=True) from None
    try:
        answer = json.loads(raw) if raw.strip() else None
    except ValueError:
        answer = None
    if status >= 400:
        # the provider's own error code where its answer has one (Twilio's 20003, 21211...)
        code = answer.get("code") if isinstance(answer, dict) else None
        raise DeliveryError(f"{provider}: the API answered HTTP {status}{_detail(answer)}",
                            retryable=status in RETRYABLE,
                            provider_code=str(code) if code is not None else str(status))
    return answer


def _detail(answer: Any) -> str:
    """A short reason from the provider's error body (never the request we sent)."""
    if isinstance(answer, dict):
        for key in ("message", "error", "detail"):
            if isinstance(answer.get(key), str):
                return f": {answer[key][:200]}"
    return ""
