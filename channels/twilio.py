"""Twilio Programmable Voice call events (a stub: the adapter is being written)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import SecretStr

from channels.base import Adapter, AdapterConfig, InboundRequest
from hub.errors import PayloadError, SignatureError
from hub.events import HubEvent


class TwilioConfig(AdapterConfig):
    account_sid: SecretStr | None = None
    auth_token: SecretStr | None = None


class TwilioAdapter(Adapter):
    name = "twilio"
    title = "Twilio Programmable Voice"
    kind = "telephony"
    Config = TwilioConfig
    required = ("account_sid", "auth_token")
    paths = ("/webhooks/telephony/twilio",)

    def verify(self, request: InboundRequest) -> None:
        raise SignatureError("not implemented yet")

    def parse(self, request: InboundRequest) -> Sequence[HubEvent]:
        raise PayloadError("not implemented yet")
