"""Zadarma call events (a stub: the adapter is being written)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import SecretStr

from channels.base import Adapter, AdapterConfig, InboundRequest
from hub.errors import PayloadError, SignatureError
from hub.events import HubEvent


class ZadarmaConfig(AdapterConfig):
    key: SecretStr | None = None
    secret: SecretStr | None = None


class ZadarmaAdapter(Adapter):
    name = "zadarma"
    title = "Zadarma"
    kind = "telephony"
    Config = ZadarmaConfig
    required = ("key", "secret")
    paths = ("/webhooks/telephony/zadarma",)

    def verify(self, request: InboundRequest) -> None:
        raise SignatureError("not implemented yet")

    def parse(self, request: InboundRequest) -> Sequence[HubEvent]:
        raise PayloadError("not implemented yet")
