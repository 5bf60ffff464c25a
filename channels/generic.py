"""Provider-neutral call events: our own documented JSON, signed with HMAC-SHA256.

Webhook URL: POST {public_base_url}/webhooks/telephony/generic
Signature:   X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body, key = secret>
Settings:    [telephony.generic] secret   (HUB_TELEPHONY_GENERIC_SECRET); unset → disabled

| event          | CallState | outcome                                   |
|----------------|-----------|-------------------------------------------|
| call.ringing   | ringing   |                                           |
| call.answered  | answered  |                                           |
| call.ended     | ended     | status: answered / missed / busy / failed |
| call.recording | recording | (adds recording_url)                      |
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from channels.base import Adapter, AdapterConfig, InboundRequest, secret
from channels.payloads import load_json
from channels.signing import hmac_hex, require_equal
from hub.errors import ValidationError
from hub.events import CallEvent, CallOutcome, CallState, Direction, HubEvent, Party

SIGNATURE_HEADER = "X-Hub-Signature-256"


class GenericConfig(AdapterConfig):
    secret: SecretStr | None = None


class GenericCallBody(BaseModel):
    """The documented request body (contract.md)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    event: Literal["call.ringing", "call.answered", "call.ended", "call.recording"]
    call_id: str = Field(min_length=1, max_length=255)
    direction: Literal["inbound", "outbound"]
    from_: str = Field(alias="from", max_length=64)
    to: str = Field(max_length=64)
    extension: str | None = Field(default=None, max_length=32)
    timestamp: datetime | None = None
    duration: int | None = Field(default=None, ge=0, le=10 * 24 * 3600)
    status: Literal["answered", "missed", "busy", "failed"] | None = None
    recording_url: str | None = Field(default=None, max_length=2048)


class GenericAdapter(Adapter):
    name = "generic"
    title = "Generic PBX (JSON + HMAC-SHA256)"
    kind = "telephony"
    docs_url = "README.md#generic-pbx"
    Config = GenericConfig
    required = ("secret",)
    paths = ("/webhooks/telephony/generic",)
    content_types = ("application/json",)

    def verify(self, request: InboundRequest) -> None:
        """The header must carry the body's HMAC-SHA256 under our secret."""
        config = self.config
        assert isinstance(config, GenericConfig)
        expected = "sha256=" + hmac_hex(secret(config.secret), request.body, "sha256")
        require_equal(expected, request.headers.get(SIGNATURE_HEADER))

    def parse(self, request: InboundRequest) -> Sequence[HubEvent]:
        """One call event per request."""
        body = load_json(GenericCallBody, request.body)
        return [to_event(body)]


def to_event(body: GenericCallBody) -> CallEvent:
    """Map the documented body onto a hub CallEvent."""
    state = CallState(body.event.split(".", 1)[1])
    if state == CallState.RECORDING and not body.recording_url:
        raise ValidationError("recording_url: required for call.recording")
    inbound = body.direction == "inbound"
    return CallEvent(
        source=GenericAdapter.name,
        call_id=body.call_id,
        state=state,
        direction=Direction.INBOUND if inbound else Direction.OUTBOUND,
        remote=Party(phone=body.from_ if inbound else body.to),
        line=body.to if inbound else body.from_,
        extension=body.extension or None,
        occurred_at=body.timestamp or datetime.now(UTC),
        outcome=CallOutcome(body.status) if body.status and state == CallState.ENDED else None,
        duration_s=body.duration,
        recording_url=body.recording_url,
    )

