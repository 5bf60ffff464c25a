"""Kamailio (own SIP proxy) call events (a stub: the adapter is being written)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import SecretStr

from channels.base import Adapter, AdapterConfig, InboundRequest
from hub.errors import PayloadError, SignatureError
from hub.events import HubEvent


class KamailioConfig(AdapterConfig):
    secret: SecretStr | None = None


class KamailioAdapter(Adapter):
    name = "kamailio"
    title = "Kamailio (own SIP proxy)"
    kind = "telephony"
    Config = KamailioConfig
    required = ("secret",)
    paths = ("/webhooks/telephony/kamailio",)

    def verify(self, request: InboundRequest) -> None:
        raise SignatureError("not implemented yet")

    def parse(self, request: InboundRequest) -> Sequence[HubEvent]:
        raise PayloadError("not implemented yet")
