"""Kamailio (a company's own SIP proxy): the call events our shipped config posts.

Webhook URL: POST {public_base_url}/webhooks/telephony/kamailio — the HUB_URL define of
             config/kamailio/kamailio.cfg (see config/kamailio/README.md).
Signature:   X-Hub-Signature-256: sha256=<base64url HMAC-SHA256 of the raw body, key = secret>.
             Kamailio computes it itself with crypto_hmac_sha256 (module crypto, Debian package
             kamailio-tls-modules), whose result is base64url WITHOUT padding; a padded value is
             accepted too. No hex: that is what the module gives.
Settings:    [telephony.kamailio] secret (HUB_TELEPHONY_KAMAILIO_SECRET); unset → disabled.
             The same value is the config's HUB_SECRET define.

The body, one JSON object per event (unknown keys are ignored):
  event      "invite" | "answered" | "ended" | "failed"
  call_id    the SIP Call-ID (the call's id for every event)
  from, to   the caller's user part, the dialled user part
  direction  "inbound" | "outbound": the config calls a call outbound when the caller's user
             part is one of the company's extensions (its LOCAL_EXT regex)
  time       "<unix seconds>.<microseconds>" (Kamailio's $TV(Sn)); or "ts": unix seconds
  code       the final SIP status, on "failed"

| event    | CallState | outcome                                                     |
|----------|-----------|-------------------------------------------------------------|
| invite   | ringing   |                                                             |
| answered | answered  |                                                             |
| ended    | ended     | answered (no duration: the hub takes ended − answered time) |
| failed   | ended     | code 486/600/603 busy; 408/480/487 missed; other failed     |
|          |           | (no code: left to the hub, i.e. missed)                     |

Parties: inbound, the remote party is `from` and `to` is the manager's extension when it
looks like one (2-6 digits), else our line (a DID); outbound, the remote party is `to` and
`from` is the extension. A caller without digits ("anonymous", empty, a SIP user name) gives
a call without a phone (and without a card).

No click-to-call: a SIP proxy relays calls, it does not originate them (no `dial`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from channels.base import Adapter, AdapterConfig, InboundRequest, secret
from channels.payloads import load_json
from channels.signing import require_equal
from hub.errors import ValidationError
from hub.events import CallEvent, CallOutcome, CallState, Direction, HubEvent, Party

SIGNATURE_HEADER = "X-Hub-Signature-256"
_STATE = {
    "invite": CallState.RINGING,
    "answered": CallState.ANSWERED,
    "ended": CallState.ENDED,
    "failed": CallState.ENDED,
}
_BUSY = frozenset({486, 600, 603})
_MISSED = frozenset({408, 480, 487})
_EXTENSION = re.compile(r"[0-9]{2,6}")
_TIME = re.compile(r"([0-9]{1,11})(?:\.([0-9]{1,6}))?")


class KamailioConfig(AdapterConfig):
    secret: SecretStr | None = None


class KamailioBody(BaseModel):
    """What config/kamailio/kamailio.cfg posts."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    event: Literal["invite", "answered", "ended", "failed"]
    call_id: str = Field(min_length=1, max_length=255)
    from_: str = Field(default="", alias="from", max_length=128)
    to: str = Field(default="", max_length=128)
    direction: Literal["inbound", "outbound"]
    time: str | None = Field(default=None, max_length=32)
    ts: int | None = Field(default=None, ge=0, le=10**11)
    code: int | None = Field(default=None, ge=100, le=699)


def signature(key: str | bytes, body: bytes) -> str:
    """The X-Hub-Signature-256 value Kamailio's crypto_hmac_sha256 gives for a body."""
    raw = key.encode() if isinstance(key, str) else key
    digest = hmac.new(raw, body, hashlib.sha256).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


class KamailioAdapter(Adapter):
    name = "kamailio"
    title = "Kamailio (own SIP proxy)"
    kind = "telephony"
    docs_url = "config/kamailio/README.md"
    Config = KamailioConfig
    required = ("secret",)
    paths = ("/webhooks/telephony/kamailio",)
    content_types = ("application/json",)

    def verify(self, request: InboundRequest) -> None:
        """The header must carry the body's HMAC-SHA256 (base64url) under our secret."""
        config = self.config
        assert isinstance(config, KamailioConfig)
        given = request.headers.get(SIGNATURE_HEADER)
        require_equal(signature(secret(config.secret), request.body),
                      given.strip().rstrip("=") if given else None)

    def parse(self, request: InboundRequest) -> Sequence[HubEvent]:
        """One call event per request."""
        body = load_json(KamailioBody, request.body)
        return [to_event(body)]


def to_event(body: KamailioBody) -> CallEvent:
    """Map one posted event onto a hub CallEvent."""
    inbound = body.direction == "inbound"
    caller, callee = body.from_.strip(), body.to.strip()
    if inbound:
        remote, ours = caller, callee
        extension = ours if _EXTENSION.fullmatch(ours) else None
        line = None if extension else ours or None
    else:
        remote, extension, line = callee, caller or None, None
    return CallEvent(
        source=KamailioAdapter.name,
        call_id=body.call_id,
        state=_STATE[body.event],
        direction=Direction.INBOUND if inbound else Direction.OUTBOUND,
        remote=Party(phone=remote) if any(c.isdigit() for c in remote) else Party(),
        line=line,
        extension=extension,
        occurred_at=_when(body),
        outcome=_outcome(body),
    )


def _outcome(body: KamailioBody) -> CallOutcome | None:
    if body.event == "ended":
        return CallOutcome.ANSWERED
    if body.event != "failed" or body.code is None:
        return None
    if body.code in _BUSY:
        return CallOutcome.BUSY
    if body.code in _MISSED:
        return CallOutcome.MISSED
    return CallOutcome.FAILED


def _when(body: KamailioBody) -> datetime:
    """`time` ("seconds.micros", exact: no float rounding), else `ts`, else now."""
    if body.time is not None:
        match = _TIME.fullmatch(body.time.strip())
        if not match:
            raise ValidationError("time: expected <unix seconds>.<microseconds>")
        micros = int((match.group(2) or "0").ljust(6, "0"))
        return datetime.fromtimestamp(int(match.group(1)), UTC) + timedelta(microseconds=micros)
    if body.ts is not None:
        return datetime.fromtimestamp(body.ts, UTC)
    return datetime.now(UTC)
