"""Mango Office VPBX (API v1.9): call, summary and recording events; click-to-call.

Webhook URL: in the Mango console (Integrations → API → "External system address") paste
{public_base_url}/webhooks/telephony/mango; Mango appends events/call, events/summary,
events/recording, result/callback (events/record/added answers 200, nothing stored).
Body:        form fields vpbx_api_key, sign, json (the event as a JSON string).
Signature:   vpbx_api_key must be ours and sign = lowercase hex sha256(api_key + json + api_salt)
             over the json field exactly as received; our commands are signed the same way.
Settings:    [telephony.mango] api_key (the VPBX "unique code"), api_salt (the "key for the
             signature"), both on the console's API page; api_base, extensions.

| Mango event                                | CallState | outcome / fields                     |
|--------------------------------------------|-----------|--------------------------------------|
| call Appeared                              | ringing   | extension of the ringing side        |
| call Connected, location abonent           | answered  | extension of the answering side      |
| call Connected at ivr/queue                | —         | a robot answering is not a person    |
| call OnHold, Disconnected                  | —         | a leg ending is not the call ending  |
| call or summary extension → extension      | —         | internal call, no client             |
| summary entry_result 1 and talk_time > 0   | ended     | answered, duration end − talk_time   |
| summary inbound, not talked                | ended     | missed                               |
| summary outbound, not talked, 11xx / none  | ended     | missed (normal clearing: no answer)  |
| summary outbound, 2xxx 3xxx 4xxx 5xxx      | ended     | failed (billing, wrong number,       |
|                                            |           | unreachable, overload, technical)    |
| recording Completed (Started/Continued: —) | recording | /api/recordings/mango/<recording_id> |

/api/recordings/mango/<id> redirects to a one-use link from queries/recording/post.

The whole call is `entry_id` (stable across transfers); a leg's `call_id` tells apart several
ringing/answered events. Click-to-call sends command_id "hub-<token>"; events echoing it
carry the token as correlation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import quote

import aiohttp
from aiohttp import ClientSession
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from channels.base import (
    Adapter,
    Agent,
    DialerConfig,
    DialRequest,
    InboundRequest,
    secret,
)
from channels.forms import FORM_TYPES, form_fields
from channels.http import RETRYABLE, request_json
from channels.payloads import load_json
from channels.signing import require_equal
from hub.errors import DeliveryError, PayloadError
from hub.events import CallEvent, CallOutcome, CallState, Direction, HubEvent, Party

BASE = "/webhooks/telephony/mango"
COMMAND_PREFIX = "hub-"
ACCEPTED = 1000
Id = Annotated[str, Field(min_length=1, max_length=255)]
UnixTime = Annotated[int, Field(ge=0, le=253402300799)]  # seconds, up to year 9999


def signature(api_key: str, payload: str, salt: str) -> str:
    """Mango's sign: lowercase hex sha256 of key + json + salt."""
    return hashlib.sha256((api_key + payload + salt).encode()).hexdigest()


class MangoConfig(DialerConfig):
    api_key: SecretStr | None = None
    api_salt: SecretStr | None = None
    api_base: str = "https://app.mango-office.ru"

    @field_validator("api_base")
    @classmethod
    def _without_vpbx(cls, value: str) -> str:
        # commands live under /vpbx/: accept the base written with or without it
        return value.removesuffix("/vpbx")


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, coerce_numbers_to_str=True)


_M = TypeVar("_M", bound=_Body)


class Side(_Body):
    extension: str | None = Field(default=None, max_length=32)
    number: str | None = Field(default=None, max_length=255)
    line_number: str | None = Field(default=None, max_length=64)


class CallBody(_Body):
    entry_id: Id
    call_id: Id
    timestamp: UnixTime
    seq: int | None = None
    call_state: Literal["Appeared", "Connected", "OnHold", "Disconnected"]
    location: str | None = None
    from_: Side = Field(default_factory=Side, alias="from")
    to: Side = Field(default_factory=Side)
    command_id: str | None = Field(default=None, max_length=255)


class SummaryBody(_Body):
    entry_id: Id
    call_direction: Literal[0, 1, 2]
    from_: Side = Field(default_factory=Side, alias="from")
    to: Side = Field(default_factory=Side)
    line_number: str | None = Field(default=None, max_length=64)
    talk_time: UnixTime = 0
    end_time: UnixTime
    entry_result: Literal[0, 1]
    disconnect_reason: int | None = None


class RecordingBody(_Body):
    entry_id: Id
    recording_id: Id
    recording_state: Literal["Started", "Continued", "Completed"]
    seq: int | None = None
    extension: str | None = Field(default=None, max_length=32)
    timestamp: UnixTime


class ResultBody(_Body):
    command_id: str = Field(max_length=255)
    result: int


class MangoAdapter(Adapter):
    name = "mango"
    title = "Mango Office VPBX"
    kind = "telephony"
    docs_url = "README.md#mango-office"
    Config = MangoConfig
    required = ("api_key", "api_salt")
    paths = tuple(BASE + p for p in ("/events/call", "/events/summary", "/events/recording",
                                     "/events/record/added", "/result/callback"))
    content_types = FORM_TYPES

    def _secrets(self) -> tuple[str, str]:
        config = self.config
        assert isinstance(config, MangoConfig)
        return secret(config.api_key), secret(config.api_salt)

    def verify(self, request: InboundRequest) -> None:
        """vpbx_api_key must be ours and sign must cover the json field under our salt."""
        key, salt = self._secrets()
        fields = form_fields(request)
        require_equal(key, fields.get("vpbx_api_key"))
        require_equal(signature(key, fields.get("json", ""), salt), fields.get("sign"))

    def parse(self, request: InboundRequest) -> Sequence[HubEvent]:
        """The events of one notification; the path says which kind it is."""
        handler = _HANDLERS.get(request.path.rstrip("/").removeprefix(BASE))
        if handler is None:
            return []  # record/added: nothing for the timeline
        raw = form_fields(request).get("json")
        if raw is None:
            raise PayloadError("form field 'json' is missing")
        model, convert = handler
        return convert(_load(model, raw))

    def cannot_dial(self, agent: Agent) -> str | None:
        """Mango rings a manager by extension."""
        return None if agent.extension else "the manager has no extension"

    async def dial(self, http: ClientSession, request: DialRequest) -> str | None:
        """commands/callback: ring the manager's extension, then the client."""
        url, form = self._command("commands/callback", {
            "command_id": COMMAND_PREFIX + request.token,
            "from": {"extension": request.agent.extension},
            "to_number": "".join(ch for ch in request.number if ch.isdigit()),
        })
        answer = await request_json(http, self.name, "POST", url, data=form)
        code = answer.get("result") if isinstance(answer, dict) else None
        if code == ACCEPTED:
            return None  # Mango's call id comes with the events, bound by command_id
        retryable = isinstance(code, int) and 5000 <= code < 6000
        raise DeliveryError(f"mango: the callback command was refused (result {code})",
                            retryable=retryable, provider_code=str(code))

    async def recording_link(self, http: ClientSession, ref: str) -> str:
        """A one-use link to the recording: queries/recording/post answers with a redirect."""
        url, form = self._command("queries/recording/post", {"recording_id": ref,
                                                             "action": "play"})
        try:
            async with http.post(url, data=form, allow_redirects=False) as resp:
                status, link = resp.status, resp.headers.get("Location", "")
        except (aiohttp.ClientError, TimeoutError):
            raise DeliveryError("mango: cannot reach the API", retryable=True) from None
        if 300 <= status < 400 and link.startswith(("https://", "http://")):
            return link  # never fetched here: Mango's link works once
        raise DeliveryError(f"mango: the API gave no recording link (HTTP {status})",
                            retryable=status in RETRYABLE, provider_code=str(status))

    def _command(self, path: str, data: dict[str, Any]) -> tuple[str, dict[str, str]]:
        """The URL and signed form fields of one API request."""
        key, salt = self._secrets()
        assert isinstance(self.config, MangoConfig)
        payload = json.dumps(data, separators=(",", ":"))
        form = {"vpbx_api_key": key, "sign": signature(key, payload, salt), "json": payload}
        return f"{self.config.api_base}/vpbx/{path}", form


def _load(model: type[_M], raw: str) -> _M:
    return load_json(model, raw, "json")


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _phone(side: Side) -> Party:
    # hidden callers come without a number or as a word; a SIP URI names a device
    number = (side.number or "").strip()
    if number.startswith("sip:") or not any(ch.isdigit() for ch in number):
        return Party()
    return Party(phone=number)


def _correlation(command_id: str | None) -> str | None:
    if command_id and command_id.startswith(COMMAND_PREFIX):
        return command_id.removeprefix(COMMAND_PREFIX)
    return None


def _call(body: CallBody) -> list[HubEvent]:
    """A leg's state change: ringing or answered, from the side that is ours."""
    if body.call_state in ("OnHold", "Disconnected"):
        return []  # one leg ending is not the call ending (transfers): summary ends it
    ours, theirs = body.from_.extension, body.to.extension
    correlation = _correlation(body.command_id)
    if ours and theirs:
        return []  # extension to extension: no client
    if ours or (correlation and not theirs):
        direction, remote, extension = Direction.OUTBOUND, _phone(body.to), ours
    elif correlation:  # our callback ringing the manager first: the client is not on yet
        if body.call_state == "Connected":
            return []
        direction, remote, extension = Direction.OUTBOUND, Party(), theirs
    else:
        direction, remote, extension = Direction.INBOUND, _phone(body.from_), theirs
    answered = body.call_state == "Connected"
    if answered and body.location not in (None, "abonent"):
        return []  # the IVR or a queue picked up, not a person
    return [CallEvent(
        source=MangoAdapter.name, call_id=body.entry_id,
        state=CallState.ANSWERED if answered else CallState.RINGING,
        direction=direction, remote=remote, occurred_at=_at(body.timestamp),
        line=body.to.line_number, extension=extension,
        event_key=f"{body.call_id}:{body.call_state}", seq=body.seq, correlation=correlation,
    )]


def _summary(body: SummaryBody) -> list[HubEvent]:
    """The one final record of a call."""
    if body.call_direction == 0:
        return []
    inbound = body.call_direction == 1
    talked = body.entry_result == 1 and body.talk_time > 0
    if talked:
        outcome = CallOutcome.ANSWERED
    elif inbound or (body.disconnect_reason or 1100) // 1000 == 1:
        outcome = CallOutcome.MISSED
    else:
        outcome = CallOutcome.FAILED
    return [CallEvent(
        source=MangoAdapter.name, call_id=body.entry_id, state=CallState.ENDED,
        direction=Direction.INBOUND if inbound else Direction.OUTBOUND,
        remote=_phone(body.from_ if inbound else body.to), occurred_at=_at(body.end_time),
        line=body.line_number or (body.to if inbound else body.from_).line_number,
        extension=body.to.extension if inbound else body.from_.extension, outcome=outcome,
        duration_s=max(body.end_time - body.talk_time, 0) if talked else 0,
    )]


def _recording(body: RecordingBody) -> list[HubEvent]:
    """A finished recording; the hub serves it under its own path."""
    if body.recording_state != "Completed":
        return []
    # the recording notice names no parties: the direction is a placeholder the call's
    # other events already fixed (the first event of a call sets it)
    return [CallEvent(
        source=MangoAdapter.name, call_id=body.entry_id, state=CallState.RECORDING,
        direction=Direction.INBOUND, remote=Party(), occurred_at=_at(body.timestamp),
        extension=body.extension,
        recording_url="/api/recordings/mango/" + quote(body.recording_id, safe="="),
        event_key=body.recording_id, seq=body.seq,
    )]


def _result(body: ResultBody) -> list[HubEvent]:
    """Mango's verdict on our callback command: a refusal fails the click's entry."""
    token = _correlation(body.command_id)
    if token is None or body.result == ACCEPTED:
        return []
    return [CallEvent(
        source=MangoAdapter.name, call_id=body.command_id, state=CallState.ENDED,
        direction=Direction.OUTBOUND, remote=Party(), occurred_at=datetime.now(UTC),
        outcome=CallOutcome.FAILED, event_key=f"result:{body.result}", correlation=token,
    )]


_HANDLERS: dict[str, tuple[type[Any], Callable[[Any], list[HubEvent]]]] = {
    "/result/callback": (ResultBody, _result),
    "/events/call": (CallBody, _call),
    "/events/summary": (SummaryBody, _summary),
    "/events/recording": (RecordingBody, _recording),
}
