"""Zadarma's notifications signed as its PBX signs them, and a fake of its API that checks the
Authorization header exactly as Zadarma does."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import web

from channels.base import InboundRequest
from tests.providers import FIXTURES, fixture_items, inbound

KEY = "test-zadarma-key"
SECRET = "test-zadarma-secret"
CONFIG: dict[str, Any] = {"key": KEY, "secret": SECRET}
PATH = "/webhooks/telephony/zadarma"
FORM = "application/x-www-form-urlencoded"
# the fields each event signs, concatenated (reference section 1), written out independently
SIGNED = {
    "NOTIFY_START": ("caller_id", "called_did", "call_start"),
    "NOTIFY_INTERNAL": ("caller_id", "called_did", "call_start"),
    "NOTIFY_ANSWER": ("caller_id", "destination", "call_start"),
    "NOTIFY_END": ("caller_id", "called_did", "call_start"),
    "NOTIFY_OUT_START": ("internal", "destination", "call_start"),
    "NOTIFY_OUT_END": ("internal", "destination", "call_start"),
    "NOTIFY_RECORD": ("pbx_call_id", "call_id_with_rec"),
}


def signature(fields: dict[str, str], secret: str = SECRET, *, raw: bool = False) -> str:
    """The Signature header Zadarma sends: base64 of the hex HMAC-SHA1 text (or of the raw
    digest, the TypeScript SDK's variant)."""
    text = "".join(fields[name] for name in SIGNED[fields["event"]])
    mac = hmac.new(secret.encode(), text.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest() if raw else mac.hexdigest().encode()).decode()


def encode(fields: dict[str, str]) -> bytes:
    return urlencode(fields).encode()


def headers(fields: dict[str, str], secret: str = SECRET) -> dict[str, str]:
    """The headers of a genuine delivery."""
    return {"Content-Type": FORM, "Signature": signature(fields, secret)}


def request(fields: dict[str, str], sig: str | None = None, body: bytes | None = None
            ) -> InboundRequest:
    hdrs = {"Content-Type": FORM}
    if sig is not None:
        hdrs["Signature"] = sig
    return inbound(encode(fields) if body is None else body, hdrs, PATH)


def scenario(name: str) -> list[dict[str, str]]:
    """One fixture file's notifications, in the order Zadarma sends them."""
    return list(json.loads((FIXTURES / "zadarma" / f"{name}.json").read_text()))


def requests() -> list[InboundRequest]:
    return [request(item, signature(item)) for item in fixture_items("zadarma")]


def forgeries(genuine: InboundRequest) -> list[InboundRequest]:
    fields = dict(parse_qsl(genuine.body.decode(), keep_blank_values=True))
    signed = SIGNED[fields["event"]]
    tampered = {**fields, signed[0]: fields[signed[0]] + "1"}
    return [
        request(fields),  # unsigned
        request(fields, ""),
        request(fields, signature(fields, "another-secret")),
        request(fields, signature(fields, "another-secret", raw=True)),
        request(tampered, signature(fields)),  # a signed field changed
        request(fields, base64.b64encode(b"0" * 40).decode()),
        request(fields, signature(fields).upper()),
    ]


# --- the fake API -----------------------------------------------------------------------------

RECEIVED: web.AppKey[list[dict[str, Any]]] = web.AppKey("received", list)
ANSWER: web.AppKey[dict[str, Any]] = web.AppKey("answer", dict)


def api_signature(secret: str, path: str, params: list[tuple[str, str]]) -> str:
    """What Zadarma computes for a request: ksort, RFC 1738 query, path+query+md5(query)."""
    query = urlencode(sorted(params))
    data = path + query + hashlib.md5(query.encode()).hexdigest()
    return base64.b64encode(hmac.new(secret.encode(), data.encode(), hashlib.sha1)
                            .hexdigest().encode()).decode()


def fake_api(*, status: int = 200, answer: dict[str, Any] | None = None) -> web.Application:
    """Zadarma's /v1/request/callback/ and /v1/pbx/record/request/: 401 unless
    `Authorization: <key>:<signature>` matches the received query; else `answer` (default: the
    documented success)."""
    app = web.Application()
    app[RECEIVED] = []
    app[ANSWER] = {"status": status, "body": answer}

    async def callback(req: web.Request) -> web.Response:
        params = parse_qsl(req.query_string, keep_blank_values=True)
        auth = req.headers.get("Authorization", "")
        key, _, sig = auth.partition(":")
        expected = api_signature(SECRET, req.path, params)
        good = key == KEY and hmac.compare_digest(sig.encode(), expected.encode())
        app[RECEIVED].append({"path": req.path, "params": dict(params), "authorized": good,
                              "authorization": auth})
        if not good:
            return web.json_response({"status": "error", "message": "Not authorized"}, status=401)
        query = dict(params)
        if req.path == "/v1/pbx/record/request/":
            default = {"status": "success", "lifetime_till": "2026-11-30 12:30:00",
                       "link": f"https://api.zadarma.com/v1/pbx/record/download/"
                               f"{query.get('call_id')}/1/rec.mp3"}
        else:
            default = {"status": "success", "from": query.get("from"), "to": query.get("to"),
                       "time": 1795350600}
        body = app[ANSWER]["body"] or default
        return web.json_response(body, status=app[ANSWER]["status"])

    app.router.add_get("/v1/request/callback/", callback)
    app.router.add_get("/v1/pbx/record/request/", callback)  # the recording's download link
    return app
