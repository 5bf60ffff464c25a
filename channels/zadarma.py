"""Zadarma (and Novofon classic) PBX call notifications, and click-to-call via its API.

Webhook URL: {public_base_url}/webhooks/telephony/zadarma, pasted in my.zadarma.com → Settings
→ Integrations and API → "Notifications about calls in PBX" (tick the NOTIFY_* events below).
Zadarma first checks it with GET ?zd_echo=<token>; the hub answers the token as text/plain.
Signature:   header `Signature` = base64(lowercase hex HMAC-SHA1(secret, the event's signed
             fields concatenated)); base64 of the raw digest is accepted too (TypeScript SDK).
Settings:    [telephony.zadarma] key, secret (Settings → Integrations and API → Keys),
             api_base, extensions, timezone (the PBX's zone: call_start is local time),
             route_to_manager; unset key or secret → disabled.

| event            | CallState | direction | notes                                             |
|------------------|-----------|-----------|---------------------------------------------------|
| NOTIFY_START     | ringing   | inbound   | reply {"caller_name"[, "redirect"]}               |
| NOTIFY_INTERNAL  | ringing   | inbound   | one per extension rung (event_key)                |
| NOTIFY_ANSWER    | answered  | inbound   | extension = internal                              |
| NOTIFY_END       | ended     | inbound   | disposition: answered / busy / cancel, no answer  |
| NOTIFY_OUT_START | ringing   | outbound  | remote = destination (claims a click-to-call)     |
| NOTIFY_OUT_END   | ended     | outbound  | → answered / busy / missed; anything else failed  |
| NOTIFY_RECORD    | recording |           | recording_url = /api/recordings/zadarma/<id>      |

Other event names are refused with 422 (they cannot be verified: their signed fields are unknown).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import ClientSession
from pydantic import SecretStr, field_validator

from channels.base import (
    Adapter,
    Agent,
    DialerConfig,
    DialRequest,
    InboundRequest,
    WebhookReply,
)
from channels.base import secret as plain
from channels.forms import FORM_TYPES, form_fields, require
from channels.http import request_json
from channels.signing import header_bytes
from hub.errors import DeliveryError, PayloadError, SignatureError, ValidationError
from hub.events import CallEvent, CallOutcome, CallState, Direction, HubEvent, Party
from hub.identity import ANONYMOUS

if TYPE_CHECKING:
    from hub.pipeline import IngestResult

SIGNATURE_HEADER = "Signature"
CALLBACK_PATH = "/v1/request/callback/"
RECORD_PATH = "/v1/pbx/record/request/"
RECORDING_PREFIX = "/api/recordings/zadarma/"
# the fields whose raw values, concatenated, each event signs
SIGNED: dict[str, tuple[str, ...]] = {
    "NOTIFY_START": ("caller_id", "called_did", "call_start"),
    "NOTIFY_INTERNAL": ("caller_id", "called_did", "call_start"),
    "NOTIFY_ANSWER": ("caller_id", "destination", "call_start"),
    "NOTIFY_END": ("caller_id", "called_did", "call_start"),
    "NOTIFY_OUT_START": ("internal", "destination", "call_start"),
    "NOTIFY_OUT_END": ("internal", "destination", "call_start"),
    "NOTIFY_RECORD": ("pbx_call_id", "call_id_with_rec"),
}
INBOUND = ("NOTIFY_START", "NOTIFY_INTERNAL", "NOTIFY_ANSWER", "NOTIFY_END")
OUTCOMES = {"answered": CallOutcome.ANSWERED, "busy": CallOutcome.BUSY,
            "cancel": CallOutcome.MISSED, "no answer": CallOutcome.MISSED}
_ECHO = re.compile(r"[A-Za-z0-9_-]{1,128}")
_REC_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_MAX_DURATION = 10 * 24 * 3600


class ZadarmaConfig(DialerConfig):
    key: SecretStr | None = None
    secret: SecretStr | None = None
    api_base: str = "https://api.zadarma.com"
    timezone: str = "UTC"
    route_to_manager: bool = False

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zone(value.strip())
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Moscow)") from None
        return value.strip()


def zone(name: str) -> tzinfo:
    """The PBX's time zone (UTC needs no time zone database)."""
    return UTC if name == "UTC" else ZoneInfo(name)


def webhook_signature(secret: str, text: str) -> str:
    """The documented `Signature`: base64 of the hex HMAC-SHA1 text."""
    return base64.b64encode(_hmac_hex(secret, text).encode()).decode()


def api_signature(secret: str, path: str, params: dict[str, str]) -> tuple[str, str]:
    """The sorted RFC 1738 query and its API signature base64(hex HMAC-SHA1(path+query+md5))."""
    query = urlencode(sorted(params.items()))  # quote_plus: space → "+" as in PHP's RFC 1738
    digest = hashlib.md5(query.encode(), usedforsecurity=False).hexdigest()
    return query, webhook_signature(secret, path + query + digest)


def _hmac_hex(secret: str, text: str) -> str:
    return hmac.new(secret.encode(), text.encode(), "sha1").hexdigest()


class ZadarmaAdapter(Adapter):
    name = "zadarma"
    title = "Zadarma"
    kind = "telephony"
    docs_url = "README.md#zadarma"
    Config = ZadarmaConfig
    required = ("key", "secret")
    paths = ("/webhooks/telephony/zadarma",)
    check_paths = ("/webhooks/telephony/zadarma",)
    content_types = FORM_TYPES

    @property
    def settings(self) -> ZadarmaConfig:
        assert isinstance(self.config, ZadarmaConfig)
        return self.config

    def check(self, request: InboundRequest) -> WebhookReply:
        """Echo the zd_echo token, only when it is a plain token (nothing else is reflected)."""
        token = request.query.get("zd_echo")
        if token is None or not _ECHO.fullmatch(token):
            raise PayloadError("zd_echo must be 1-128 characters of A-Z a-z 0-9 _ -")
        return WebhookReply(body=token.encode(), content_type="text/plain")

    def verify(self, request: InboundRequest) -> None:
        """The Signature header must sign the event's documented fields under our secret."""
        given = request.headers.get(SIGNATURE_HEADER, "").strip()
        if not given:
            raise SignatureError("the Signature header is missing")
        fields = form_fields(request)
        text = "".join(require(fields, *_signed(fields)))
        key = plain(self.settings.secret)
        hexed = _hmac_hex(key, text)
        raw = base64.b64encode(bytes.fromhex(hexed)).decode()
        ok = [hmac.compare_digest(header_bytes(given), candidate.encode())
              for candidate in (base64.b64encode(hexed.encode()).decode(), raw)]
        if not any(ok):
            raise SignatureError("signature does not match")

    def parse(self, request: InboundRequest) -> Sequence[HubEvent]:
        """One call event per notification."""
        fields = form_fields(request)
        _signed(fields)
        event = fields["event"]
        call_id = require(fields, "pbx_call_id")[0].strip()
        if not 0 < len(call_id) <= 255:
            raise ValidationError("pbx_call_id: must be 1-255 characters")
        if event == "NOTIFY_RECORD":
            return [self._recording(call_id, fields)]
        at = self._time(require(fields, "call_start")[0])
        internal = fields.get("internal", "").strip() or None
        if internal is not None and len(internal) > 32:
            raise ValidationError("internal: at most 32 characters")
        kw: dict[str, Any] = {"source": self.name, "call_id": call_id, "extension": internal,
                              "event_key": None, "line": None}
        if event in INBOUND:
            kw.update(direction=Direction.INBOUND, remote=_caller(fields))
            if event != "NOTIFY_ANSWER":  # NOTIFY_ANSWER's destination is not always the DID
                kw["line"] = _line(fields, "called_did")
        else:
            kw.update(direction=Direction.OUTBOUND, remote=_callee(fields))
        if event == "NOTIFY_INTERNAL" and not require(fields, "internal")[0].strip():
            raise ValidationError("internal: required for NOTIFY_INTERNAL")
        if event in ("NOTIFY_START", "NOTIFY_INTERNAL"):  # one ringing per extension rung
            kw["event_key"] = f"{event}:{internal}" if event == "NOTIFY_INTERNAL" else event
        if event in ("NOTIFY_START", "NOTIFY_INTERNAL", "NOTIFY_OUT_START"):
            return [CallEvent(state=CallState.RINGING, occurred_at=at, **kw)]
        if event == "NOTIFY_ANSWER":
            return [CallEvent(state=CallState.ANSWERED, occurred_at=at, **kw)]
        if event == "NOTIFY_OUT_END":
            kw["line"] = _line(fields, "caller_id")  # the caller id shown: our number
        duration = _duration(fields.get("duration", ""))
        # no hang-up time is sent: the end is the start plus the talk time (0 when unanswered)
        ended = at + timedelta(seconds=duration or 0)
        return [CallEvent(state=CallState.ENDED, occurred_at=ended, duration_s=duration,
                          outcome=_outcome(fields.get("disposition", "")), **kw)]

    def _recording(self, call_id: str, fields: dict[str, str]) -> CallEvent:
        rec = require(fields, "call_id_with_rec")[0].strip()
        if not _REC_ID.fullmatch(rec):
            raise ValidationError("call_id_with_rec: 1-128 characters of A-Z a-z 0-9 . _ -")
        # Zadarma sends no URL (the file is fetched through its API): a hub-relative reference;
        # the notification carries no time, direction or numbers either: the earlier events
        # of the call have set those (the hub keeps a call's first direction)
        return CallEvent(
            source=self.name, call_id=call_id, state=CallState.RECORDING,
            direction=Direction.INBOUND, remote=Party(), occurred_at=datetime.now(UTC),
            recording_url=RECORDING_PREFIX + quote(rec, safe=""), event_key=rec,
        )

    def _time(self, value: str) -> datetime:
        """call_start is the PBX's local time without a zone."""
        try:
            local = datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S")
        except ValueError:
            raise ValidationError("call_start: expected YYYY-MM-DD HH:MM:SS") from None
        return local.replace(tzinfo=zone(self.settings.timezone)).astimezone(UTC)

    def reply(self, request: InboundRequest, results: Sequence[IngestResult]) -> WebhookReply:
        """NOTIFY_START: the card's name to show on the phone (and the manager to route to)."""
        client = results[0].client if results else None
        start = bool(results) and getattr(results[0].event, "event_key", None) == "NOTIFY_START"
        if not start or not client or not client.get("name"):
            return WebhookReply(content_type="text/plain")
        answer = {"caller_name": str(client["name"])}
        manager = results[0].manager
        if self.settings.route_to_manager and manager and manager.get("extension"):
            answer["redirect"] = str(manager["extension"])
        return WebhookReply(body=json.dumps(answer, ensure_ascii=False).encode())

    def cannot_dial(self, agent: Agent) -> str | None:
        """Zadarma rings the manager's extension, else the manager's phone."""
        if not agent.extension and not agent.phone:
            return "the manager has neither an extension nor a phone number"
        return None

    async def dial(self, http: ClientSession, request: DialRequest) -> str | None:
        """Request a callback; Zadarma names no call id (NOTIFY_OUT_START claims the entry)."""
        agent = request.agent
        params = {"from": agent.extension or _digits(agent.phone or ""),
                  "to": _digits(request.number), "format": "json"}
        if agent.extension:
            params["sip"] = agent.extension
        await self._api_get(http, CALLBACK_PATH, params)
        return None

    async def recording_link(self, http: ClientSession, ref: str) -> str:
        """A fresh link to the recording NOTIFY_RECORD named (Zadarma's links expire)."""
        answer = await self._api_get(http, RECORD_PATH, {"call_id": ref, "format": "json"})
        links = [answer.get("link"), *(answer.get("links") or [])]
        link = next((x for x in links if isinstance(x, str) and x.startswith("http")), None)
        if link is None:
            raise DeliveryError("zadarma: the answer names no recording link", retryable=False)
        return link

    async def _api_get(
        self, http: ClientSession, path: str, params: dict[str, str]
    ) -> dict[str, Any]:
        """A signed GET to Zadarma's API; its answer when the status is success."""
        config = self.settings
        query, signature = api_signature(plain(config.secret), path, params)
        answer = await request_json(
            http, self.name, "GET", f"{config.api_base}{path}?{query}",
            headers={"Authorization": f"{plain(config.key)}:{signature}"},
        )
        if isinstance(answer, dict) and answer.get("status") == "success":
            return answer
        message = answer.get("message") if isinstance(answer, dict) else None
        detail = message if isinstance(message, str) and message else "unexpected answer"
        raise DeliveryError(f"zadarma: {detail[:200]}", retryable=False)


def _signed(fields: dict[str, str]) -> tuple[str, ...]:
    event = require(fields, "event")[0]
    if event not in SIGNED:
        raise ValidationError(f"event: {event[:40]!r} is not a call notification the hub handles")
    return SIGNED[event]


def _caller(fields: dict[str, str]) -> Party:
    """The inbound caller; hidden numbers come as "", "0", "anonymous", "unknown"..."""
    value = require(fields, "caller_id")[0].strip()
    return Party() if value.lower() in ANONYMOUS else Party(phone=value[:64])


def _callee(fields: dict[str, str]) -> Party:
    value = require(fields, "destination")[0].strip()
    return Party(phone=value[:64]) if value else Party()


def _line(fields: dict[str, str], name: str) -> str | None:
    value = fields.get(name, "").strip()
    return value[:64] if value and value.lower() not in ANONYMOUS else None


def _duration(value: str) -> int | None:
    if not value.strip():
        return None
    if not re.fullmatch(r"[0-9]{1,7}", value.strip()) or int(value) > _MAX_DURATION:
        raise ValidationError("duration: must be a whole number of seconds")
    return int(value)


def _outcome(disposition: str) -> CallOutcome | None:
    """answered / busy / cancel, no answer (missed); every other reason is a failure."""
    value = disposition.strip().lower()
    return OUTCOMES.get(value, CallOutcome.FAILED) if value else None


def _digits(number: str) -> str:
    return re.sub(r"\D", "", number)
