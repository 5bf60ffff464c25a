"""Mango Office: fixtures signed as Mango signs them, and a fake of its command API."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import web

from channels.base import InboundRequest
from channels.mango import signature
from tests.providers import fixture_items, inbound

API_KEY = "9ipl5monmwkkyg3adfx2s6frz7b"
API_SALT = "test-salt"
CONFIG: dict[str, Any] = {"api_key": API_KEY, "api_salt": API_SALT}
BASE = "/webhooks/telephony/mango"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
MISSING_RECORDING = "no-such-recording"



@dataclass
class FakeMango:
    """What the fake API received, and the result code it answers with (tests may change it)."""

    result: int = 1000
    commands: list[dict[str, Any]] = field(default_factory=list)
    recordings: list[dict[str, Any]] = field(default_factory=list)


STATE: web.AppKey[FakeMango] = web.AppKey("mango", FakeMango)


def form(payload: Any, *, key: str = API_KEY, salt: str = API_SALT,
         sign: str | None = None) -> dict[str, str]:
    """The three fields Mango posts: the payload as a JSON string, signed."""
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return {"vpbx_api_key": key, "sign": signature(key, text, salt) if sign is None else sign,
            "json": text}


def body(payload: Any, **kwargs: Any) -> bytes:
    """A signed, form-encoded notification body."""
    return urlencode(form(payload, **kwargs)).encode()


def request(item: dict[str, Any], **kwargs: Any) -> InboundRequest:
    """One fixture item ({"path", "json"}) as the webhook view hands it to the adapter."""
    return raw_request(item["path"], body(item["json"], **kwargs))


def raw_request(path: str, data: bytes) -> InboundRequest:
    return inbound(data, FORM, f"{BASE}/{path}")


def requests() -> list[InboundRequest]:
    return [request(item) for item in fixture_items("mango")]


def forgeries(genuine: InboundRequest) -> list[InboundRequest]:
    fields = dict(_pairs(genuine.body))
    path = genuine.path.removeprefix(BASE + "/")
    text = fields["json"]
    unsigned = {k: v for k, v in fields.items() if k != "sign"}
    return [
        raw_request(path, urlencode(unsigned).encode()),
        raw_request(path, body(text, salt="another-salt")),
        raw_request(path, body(text, key="another-product", salt=API_SALT)),
        raw_request(path, urlencode({**form(text), "vpbx_api_key": "another-product"}).encode()),
        raw_request(path, urlencode({**fields, "json": text + " "}).encode()),
        raw_request(path, urlencode({**fields, "sign": fields["sign"].upper()}).encode()),
        raw_request(path, b""),
    ]


def _pairs(data: bytes) -> list[tuple[str, str]]:
    return parse_qsl(data.decode(), keep_blank_values=True)


def fake_api(result: int = 1000) -> web.Application:
    """Mango's commands/callback and queries/recording/post: both check vpbx_api_key and sign
    as Mango does and record what they accepted; the callback answers {"result": <code>},
    the recording query redirects to a one-use file link."""
    app = web.Application()
    state = app[STATE] = FakeMango(result)

    async def signed(request: web.Request) -> dict[str, Any] | web.Response:
        data = await request.post()
        key, sign, text = (str(data.get(k, "")) for k in ("vpbx_api_key", "sign", "json"))
        if key != API_KEY or sign != signature(API_KEY, text, API_SALT):
            return web.json_response({"result": 3102, "message": "wrong vpbx_api_key or sign"},
                                     status=401)
        try:
            return {"form": {k: str(v) for k, v in data.items()}, "json": json.loads(text)}
        except ValueError:
            return web.json_response({"result": 3100}, status=400)

    async def callback(request: web.Request) -> web.Response:
        command = await signed(request)
        if isinstance(command, web.Response):
            return command
        state.commands.append(command)
        return web.json_response({"result": state.result})

    async def recording(request: web.Request) -> web.Response:
        query = await signed(request)
        if isinstance(query, web.Response):
            return query
        state.recordings.append(query)
        rec = str(query["json"].get("recording_id", ""))
        if rec == MISSING_RECORDING:
            return web.json_response({"result": 3100}, status=404)
        raise web.HTTPFound(f"https://files.mango-office.example/rec/{rec}.mp3?once=1")

    app.router.add_post("/vpbx/commands/callback", callback)
    app.router.add_post("/vpbx/queries/recording/post", recording)
    return app
