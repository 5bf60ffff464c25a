"""Twilio Programmable Voice: the voice webhook, call status and recording callbacks.

Webhook URL: POST {public_base_url}/webhooks/telephony/twilio — paste it in the Twilio console
(Phone Numbers → your number → Voice: "A call comes in" and "Call status changes", HTTP POST).
Signature:   X-Twilio-Signature = base64(HMAC-SHA1(auth_token, URL + sorted name+value pairs));
             the URL is public_base_url + path + query, tried with and without the default port;
             JSON bodies: the URL's bodySHA256 must be the body's SHA-256. AccountSid must be ours.
Credentials: Console → Account Info: Account SID and Auth Token.

| request (CallStatus / other)               | CallState | outcome                        |
|--------------------------------------------|-----------|--------------------------------|
| queued / initiated / ringing               | ringing   | (event_key = CallStatus)       |
| in-progress                                | answered  |                                |
| in-progress (click-to-call: our manager)   | ringing   | (the client's phone rings now) |
| completed (outbound)                       | ended     | answered (CallDuration)        |
| completed (inbound, click-to-call)         | ended     | left to the hub (see below)    |
| busy                                       | ended     | busy                           |
| no-answer / canceled                       | ended     | missed                         |
| failed                                     | ended     | failed                         |
| Dial action DialCallStatus=completed       | answered  | (DialCallDuration)             |
| Dial action DialCallStatus=other           | ended     | as CallStatus (event_key dial) |
| RecordingStatus=completed                  | recording | RecordingUrl + ".mp3"          |

An incoming call gets TwiML that rings the client's responsible manager (the phone on their
profile) and `forward_to` together (its <Dial action> reports whether someone picked up), or a
busy <Reject> when the hub knows neither. Twilio reports an inbound call it ran
TwiML for as "completed" even when the forwarded phone never answered, so inbound "completed"
carries no outcome: the Dial action decides answered or missed. Click-to-call is the same the
other way round: its call rings our manager, whose answer is not the client's; the TwiML's
<Dial action> (with our token in its URL) says whether the client answered.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit
from xml.sax.saxutils import escape, quoteattr

import aiohttp
from pydantic import Field, SecretStr, field_validator

from channels.base import (
    Adapter,
    Agent,
    DialerConfig,
    DialRequest,
    InboundRequest,
    WebhookReply,
    secret,
)
from channels.forms import FORM_TYPES, form_fields, form_pairs, require
from channels.http import request_json
from channels.signing import header_bytes
from hub.errors import PayloadError, SignatureError, ValidationError
from hub.events import CallEvent, CallOutcome, CallState, Direction, HubEvent, Party

SIGNATURE_HEADER = "X-Twilio-Signature"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
# what Twilio puts in From for withheld numbers (including its documented fake numbers)
HIDDEN = frozenset({"", "anonymous", "restricted", "unknown", "private", "+266696687",
                    "+7378742833", "+2562533", "+86282452253", "+8656696"})
RINGING = frozenset({"queued", "initiated", "ringing"})
ENDED = {"completed": CallOutcome.ANSWERED, "busy": CallOutcome.BUSY,
         "no-answer": CallOutcome.MISSED, "canceled": CallOutcome.MISSED,
         "failed": CallOutcome.FAILED}
EMPTY = "<Response/>"
XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>'


class TwilioConfig(DialerConfig):
    account_sid: SecretStr | None = None
    auth_token: SecretStr | None = None
    api_base: str = "https://api.twilio.com"
    caller_id: str | None = None  # our Twilio number: From of click-to-call
    forward_to: str | None = None  # the phone incoming calls ring
    ring_timeout: int = Field(default=25, ge=5, le=600)
    record: bool = False

    @field_validator("caller_id", "forward_to")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        value = re.sub(r"[\s()-]", "", value) if value else None
        if value and not E164.match(value):
            raise ValueError("must be a phone number in E.164 form, e.g. +74951234567")
        return value


def signature(token: str, url: str, pairs: Sequence[tuple[str, str]]) -> str:
    """Twilio's X-Twilio-Signature for a URL and its form parameters."""
    message = url + "".join(name + value for name, value in sorted(pairs))
    digest = hmac.new(token.encode(), message.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def url_variants(url: str) -> list[str]:
    """The URL as given, and with the scheme's default port added or removed (as Twilio's
    SDK does; a proxy may or may not show it)."""
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    try:
        port = parts.port
    except ValueError:
        return [url]
    if default is None or port not in (None, default):
        return [url]
    other = f"{parts.netloc}:{default}" if port is None else parts.netloc.rsplit(":", 1)[0]
    return [url, urlunsplit(parts._replace(netloc=other))]


class TwilioAdapter(Adapter):
    name = "twilio"
    title = "Twilio Programmable Voice"
    kind = "telephony"
    docs_url = "README.md#twilio"
    Config = TwilioConfig
    required = ("account_sid", "auth_token")
    paths = ("/webhooks/telephony/twilio",)
    content_types = (*FORM_TYPES, "application/json")

    @property
    def _config(self) -> TwilioConfig:
        assert isinstance(self.config, TwilioConfig)
        return self.config

    def verify(self, request: InboundRequest) -> None:
        """The signature must match the URL (either port form) and body; AccountSid ours."""
        given = request.headers.get(SIGNATURE_HEADER)
        token = secret(self._config.auth_token)
        if _is_json(request):
            body_hash = request.query.get("bodySHA256", "")
            if not hmac.compare_digest(hashlib.sha256(request.body).hexdigest(), body_hash):
                raise SignatureError("bodySHA256 does not match the body")
            pairs: list[tuple[str, str]] = []
            account = _json(request).get("AccountSid")
        else:
            pairs = form_pairs(request)
            account = dict(reversed(pairs)).get("AccountSid")
        if not given or not any(hmac.compare_digest(signature(token, url, pairs).encode(),
                                                    header_bytes(given.strip()))
                                for url in url_variants(request.url)):
            raise SignatureError("signature does not match")
        ours = secret(self._config.account_sid)
        if not isinstance(account, str) or not hmac.compare_digest(account.encode(), ours.encode()):
            raise SignatureError("the request is for another Twilio account")

    def parse(self, request: InboundRequest) -> Sequence[HubEvent]:
        """One call event per request; [] for recordings that are not ready."""
        fields = _json(request) if _is_json(request) else form_fields(request)
        (call_sid,) = require(fields, "CallSid")
        if not 1 <= len(call_sid) <= 64:
            raise ValidationError("CallSid: must be 1 to 64 characters")
        token = request.query.get("hub_dial") or None
        when = _timestamp(fields.get("Timestamp"))
        base: dict[str, Any] = {"source": self.name, "call_id": call_sid, "correlation": token,
                                "occurred_at": when, "seq": _int(fields, "SequenceNumber")}
        if "RecordingStatus" in fields:
            if fields["RecordingStatus"] != "completed":
                return []
            (url,) = require(fields, "RecordingUrl")
            if not url.startswith(("https://", "http://")):
                raise ValidationError("RecordingUrl: must be an http(s) URL")
            # recording callbacks carry no Direction/From/To; our inbound TwiML puts the
            # caller in the callback URL (signed by Twilio) in case it arrives first
            caller = None if token else request.query.get("hub_from")
            return [CallEvent(state=CallState.RECORDING, remote=_party(caller, None),
                              direction=Direction.OUTBOUND if token else Direction.INBOUND,
                              recording_url=url + ".mp3",
                              event_key=fields.get("RecordingSid") or None, **base)]
        status, direction = require(fields, "CallStatus", "Direction")
        inbound = _direction(direction) == Direction.INBOUND
        remote, line = (fields.get("From"), fields.get("To"))
        if not inbound:
            remote, line = line, remote
        party = _party(remote, fields.get("CallerName") if inbound else None)
        if token and not inbound:
            party = Party()  # a click-to-call's first leg rings our manager, not the client
        common = {**base, "direction": _direction(direction), "remote": party, "line": line or None}
        dial_status = fields.get("DialCallStatus")
        if dial_status in ("completed", "answered"):  # <Dial action>: the forwarded phone answered
            talk = _int(fields, "DialCallDuration")
            common["occurred_at"] = when - timedelta(seconds=talk or 0)
            return [CallEvent(state=CallState.ANSWERED, duration_s=talk, **common)]
        if dial_status:  # keyed apart from the call's own end, whichever arrives first
            return [CallEvent(state=CallState.ENDED, outcome=_outcome(dial_status),
                              event_key="dial", **common)]
        click = bool(token) and not inbound
        if status in RINGING or (click and status == "in-progress"):
            # keyed: the hub's own click-to-call "call.ringing" (with the manager's extension)
            # must survive Twilio's; each of queued/initiated/ringing still dedupes. A click's
            # first leg in progress is our manager picking up: the client's phone rings now
            return [CallEvent(state=CallState.RINGING, event_key=status, **common)]
        if status == "in-progress":
            return [CallEvent(state=CallState.ANSWERED, **common)]
        outcome: CallOutcome | None = _outcome(status)
        duration = _int(fields, "CallDuration")
        if (inbound or click) and outcome == CallOutcome.ANSWERED:
            # see the module docstring: the leg Twilio calls "completed" was answered by
            # Twilio or by our manager, maybe by nobody else; whether the other side talked
            # comes from the <Dial action> (DialCallStatus, DialCallDuration)
            outcome = duration = None
        return [CallEvent(state=CallState.ENDED, outcome=outcome, duration_s=duration, **common)]

    def reply(self, request: InboundRequest, results: Sequence[Any]) -> WebhookReply:
        """TwiML: an incoming call rings forward_to (or hears busy); callbacks get <Response/>."""
        fields = _json(request) if _is_json(request) else form_fields(request)
        incoming = (fields.get("Direction") == "inbound" and fields.get("CallStatus") == "ringing"
                    and not {"CallbackSource", "DialCallStatus", "RecordingStatus"} & set(fields))
        url = request.url.split("?", 1)[0]
        manager_phone = getattr(results[0], "manager_phone", None) if results else None
        twiml = self._incoming(url, fields.get("From", ""), manager_phone) if incoming else EMPTY
        return WebhookReply(body=(XML_HEAD + twiml).encode(), content_type="text/xml")

    def _incoming(self, url: str, caller: str, manager_phone: str | None) -> str:
        """Ring the client's responsible manager (their phone on file) and forward_to at once;
        busy when the hub knows neither."""
        config = self._config
        targets = list(dict.fromkeys(n for n in (manager_phone, config.forward_to) if n))
        if not targets:
            return '<Response><Reject reason="busy"/></Response>'
        hidden = _party(caller, None).phone is None
        recordings = url if hidden else f"{url}?{urlencode({'hub_from': caller.strip()})}"
        numbers = "".join(f"<Number>{escape(n)}</Number>" for n in targets)
        # no callerId: Twilio passes the caller's own number through to the forwarded phone;
        # several <Number>s ring together and the first to answer takes the call
        return (f'<Response><Dial timeout="{config.ring_timeout}" action={quoteattr(url)} '
                f'method="POST"{self._record(recordings)}>{numbers}</Dial></Response>')

    def _record(self, callback: str) -> str:
        if not self._config.record:
            return ""
        return (' record="record-from-answer-dual" recordingStatusCallbackMethod="POST" '
                f"recordingStatusCallback={quoteattr(callback)}")

    def cannot_dial(self, agent: Agent) -> str | None:
        """What click-to-call through Twilio lacks for that manager, if anything."""
        if not self._config.caller_id:
            return "caller_id (the Twilio number calls come from) is not set"
        if not agent.phone:
            return "the manager has no phone number"
        if not self.public_base_url:
            return "public_base_url is not set (Twilio reports the call's progress to it)"
        return None

    async def dial(self, http: aiohttp.ClientSession, request: DialRequest) -> str | None:
        """Ring the manager's phone; when they answer, Twilio dials the client."""
        config = self._config
        problem = self.cannot_dial(request.agent)
        if problem or request.webhook_url is None:
            raise ValidationError(f"twilio: {problem or 'public_base_url is not set'}")
        callback = f"{request.webhook_url}?hub_dial={request.token}"
        caller_id = config.caller_id or ""
        # the <Dial action> reports whether the client answered (the call's own status only
        # says whether our manager did)
        twiml = (f"<Response><Dial callerId={quoteattr(caller_id)} action={quoteattr(callback)} "
                 f'method="POST"{self._record(callback)}>'
                 f"<Number>{escape(request.number)}</Number></Dial></Response>")
        form = [("To", request.agent.phone or ""), ("From", caller_id), ("Twiml", twiml),
                ("Timeout", str(config.ring_timeout)), ("StatusCallback", callback),
                ("StatusCallbackMethod", "POST")]
        form += [("StatusCallbackEvent", e) for e in ("initiated", "ringing", "answered",
                                                      "completed")]
        sid = secret(config.account_sid)
        url = f"{config.api_base}/2010-04-01/Accounts/{sid}/Calls.json"
        basic = base64.b64encode(f"{sid}:{secret(config.auth_token)}".encode()).decode()
        answer = await request_json(http, self.name, "POST", url, data=form,
                                    headers={"Authorization": f"Basic {basic}"})
        call_sid = answer.get("sid") if isinstance(answer, dict) else None
        return call_sid if isinstance(call_sid, str) and call_sid else None


def _is_json(request: InboundRequest) -> bool:
    content_type = request.headers.get("Content-Type", "")
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


def _json(request: InboundRequest) -> dict[str, str]:
    try:
        data = json.loads(request.body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise PayloadError("body must be a JSON object")
    return {str(k): str(v) for k, v in data.items() if v is not None}


def _direction(value: str) -> Direction:
    if value == "inbound":
        return Direction.INBOUND
    if value.startswith("outbound"):
        return Direction.OUTBOUND
    raise ValidationError(f"Direction: unknown value {value[:40]!r}")


def _outcome(status: str) -> CallOutcome:
    if status not in ENDED:
        raise ValidationError(f"CallStatus: unknown value {status[:40]!r}")
    return ENDED[status]


def _party(number: str | None, caller_name: str | None) -> Party:
    number = (number or "").strip()
    if number.lower() in HIDDEN or number.lower().startswith("client:"):
        return Party()
    name = (caller_name or "").strip()
    digits = re.sub(r"\D", "", name)
    same = bool(digits) and digits == re.sub(r"\D", "", number)
    return Party(phone=number, display_name=name if name and not same else None)


def _int(fields: dict[str, str], name: str) -> int | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    if not re.fullmatch(r"[0-9]{1,9}", value):
        raise ValidationError(f"{name}: must be a whole number of at most 9 digits")
    return int(value)


def _timestamp(value: str | None) -> datetime:
    if not value:
        return datetime.now(UTC)
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        raise ValidationError("Timestamp: not an RFC 2822 date") from None
