"""Twilio's fixtures signed as Twilio signs them, and a fake of its Calls API.

A fixture item is {"form": {name: value}, "query": {name: value}?}: the form body Twilio posts
and the query of the URL it posts to (our StatusCallback carries ?hub_dial=<token>).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import web

from channels.base import InboundRequest
from tests.providers import BASE_URL, fixture_items

ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
AUTH_TOKEN = "test-twilio-auth-token"
CALLER_ID = "+74950000001"
FORWARD_TO = "+79160000101"
PATH = "/webhooks/telephony/twilio"
CONFIG: dict[str, Any] = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN,
                          "caller_id": CALLER_ID, "forward_to": FORWARD_TO}
FORM = "application/x-www-form-urlencoded"
RECEIVED = web.AppKey("received", list[dict[str, Any]])
FAIL = web.AppKey("fail", list[tuple[int, int, str]])
OMIT_SID = web.AppKey("omit_sid", list[bool])


def twilio_signature(url: str, pairs: Sequence[tuple[str, str]], token: str = AUTH_TOKEN) -> str:
    """Written from Twilio's documentation, independently of the adapter."""
    data = url
    for name in sorted({n for n, _ in pairs}):
        for value in sorted(v for n, v in pairs if n == name):
            data += name + value
    mac = hmac.new(token.encode(), data.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def public_url(query: Mapping[str, str] | None = None, path: str = PATH) -> str:
    """The URL Twilio calls (what the hub rebuilds from public_base_url)."""
    return BASE_URL + path + (f"?{urlencode(dict(query))}" if query else "")


def signed_headers(url: str, pairs: Sequence[tuple[str, str]], token: str = AUTH_TOKEN
                   ) -> dict[str, str]:
    return {"Content-Type": FORM, "X-Twilio-Signature": twilio_signature(url, pairs, token)}


def request(
    form: Mapping[str, str], query: Mapping[str, str] | None = None, *,
    token: str | None = AUTH_TOKEN, signed_url: str | None = None, body: bytes | None = None,
) -> InboundRequest:
    """A request as the webhook view builds it; signed for `signed_url` (default: its own)."""
    pairs = list(form.items())
    headers = {"Content-Type": FORM}
    if token is not None:
        headers = signed_headers(signed_url or public_url(query), pairs, token)
    raw = urlencode(pairs).encode() if body is None else body
    return InboundRequest(method="POST", url=public_url(query), path=PATH, headers=headers,
                          query=dict(query or {}), body=raw)


def items() -> list[dict[str, Any]]:
    return fixture_items("twilio")


def requests() -> list[InboundRequest]:
    return [request(item["form"], item.get("query")) for item in items()]


def forgeries(genuine: InboundRequest) -> list[InboundRequest]:
    form = dict(genuine_form(genuine))
    query = dict(genuine.query)
    signature = genuine.headers["X-Twilio-Signature"]
    tampered = {**form, "CallStatus": "completed" if form.get("CallStatus") != "completed"
                else "busy"}
    other_account = {**form, "AccountSid": "AC" + "9" * 32}
    forged = [
        request(form, query, token=None),
        request(form, query, token="another-token"),
        request(form, query, signed_url=BASE_URL + "/elsewhere"),
        request(form, {**query, "hub_dial": "stolen"}, signed_url=genuine.url),
        request(other_account, query),  # signed right, but for another account
    ]
    body = urlencode(list(tampered.items())).encode()
    forged.append(InboundRequest(method="POST", url=genuine.url, path=PATH, query=query,
                                 headers={"Content-Type": FORM, "X-Twilio-Signature": signature},
                                 body=body))
    return forged


def genuine_form(req: InboundRequest) -> list[tuple[str, str]]:
    return parse_qsl(req.body.decode(), keep_blank_values=True)


# the fake Calls API


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message, "status": status,
                              "more_info": f"https://www.twilio.com/docs/errors/{code}"},
                             status=status)


async def _create_call(request: web.Request) -> web.Response:
    app = request.app
    form = list((await request.post()).items())
    app[RECEIVED].append({"path": request.path, "auth": request.headers.get("Authorization"),
                            "form": [(k, str(v)) for k, v in form]})
    if app[FAIL]:
        status, code, message = app[FAIL][0]
        return _error(status, code, message)
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    try:
        login, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except ValueError:
        login = password = ""
    if scheme.lower() != "basic" or (login, password) != (ACCOUNT_SID, AUTH_TOKEN):
        return _error(401, 20003, "Authenticate")
    if request.match_info["account"] != login:
        return _error(404, 20404, "The requested resource was not found")
    fields = dict(form)
    if not fields.get("To"):
        return _error(400, 21201, "No 'To' number is specified")
    if not fields.get("From"):
        return _error(400, 21603, "A 'From' phone number is required.")
    if not any(fields.get(k) for k in ("Url", "Twiml", "ApplicationSid")):
        return _error(400, 21205, "Url parameter is required.")
    sid = "CA" + uuid.uuid4().hex
    if app[OMIT_SID]:
        return web.json_response({"status": "queued"}, status=201)
    return web.json_response({"sid": sid, "account_sid": login, "status": "queued",
                              "direction": "outbound-api", "to": fields["To"],
                              "from": fields["From"], "api_version": "2010-04-01"}, status=201)


def fake_api() -> web.Application:
    """Twilio's POST /2010-04-01/Accounts/{AccountSid}/Calls.json, checking Basic auth and
    the required fields; app[RECEIVED] records what it got, app[FAIL] forces an error."""
    app = web.Application()
    app[RECEIVED] = []
    app[FAIL] = []
    app[OMIT_SID] = []
    app.router.add_post("/2010-04-01/Accounts/{account}/Calls.json", _create_call)
    return app
