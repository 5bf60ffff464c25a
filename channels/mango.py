"""Mango Office VPBX call events (a stub: the adapter is being written)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import SecretStr

from channels.base import Adapter, AdapterConfig, InboundRequest
from hub.errors import PayloadError, SignatureError
from hub.events import HubEvent


class MangoConfig(AdapterConfig):
    api_key: SecretStr | None = None
    api_salt: SecretStr | None = None


class MangoAdapter(Adapter):
    name = "mango"
    title = "Mango Office VPBX"
    kind = "telephony"
    Config = MangoConfig
    required = ("api_key", "api_salt")
    paths = ("/webhooks/telephony/mango/events/call",)

    def verify(self, request: InboundRequest) -> None:
        raise SignatureError("not implemented yet")

    def parse(self, request: InboundRequest) -> Sequence[HubEvent]:
        raise PayloadError("not implemented yet")
