"""What every channel adapter is: declared metadata, verify → parse → reply. Adapters
translate provider bytes into hub events; they never touch the database or read settings."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from pydantic import SecretStr

from hub.events import HubEvent
from hub.settings import Section

if TYPE_CHECKING:
    from hub.pipeline import IngestResult


# every adapter's settings table is a strict settings Section (unknown keys are errors,
# secret values are SecretStr and masked in repr)
AdapterConfig = Section


@dataclass(frozen=True, slots=True)
class InboundRequest:
    """A webhook request, neutral of the web framework, so verify/parse test without a server."""

    method: str
    url: str  # the public URL the provider called (public_base_url + path + query)
    path: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes
    remote: str | None = None


@dataclass(frozen=True, slots=True)
class WebhookReply:
    """What the provider expects back."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class Adapter(ABC):
    """A webhook source. Subclasses declare the class attributes and implement verify/parse."""

    name: ClassVar[str]
    title: ClassVar[str]
    kind: ClassVar[str]  # telephony | email | telegram
    docs_url: ClassVar[str] = ""
    Config: ClassVar[type[AdapterConfig]]
    # the config keys without which the adapter stays disabled (never open)
    required: ClassVar[tuple[str, ...]]
    # paths under which the webhook view routes to this adapter
    paths: ClassVar[tuple[str, ...]]
    # request content types accepted (None: any)
    content_types: ClassVar[tuple[str, ...] | None] = None

    def __init__(self, config: AdapterConfig, *, public_base_url: str | None = None) -> None:
        self.config = config
        self.public_base_url = public_base_url

    @classmethod
    def enabled(cls, config: AdapterConfig) -> bool:
        """True when every required secret is set."""
        return all(_is_set(getattr(config, key, None)) for key in cls.required)

    @abstractmethod
    def verify(self, request: InboundRequest) -> None:
        """Raise SignatureError unless the request is authentic."""

    @abstractmethod
    def parse(self, request: InboundRequest) -> Sequence[HubEvent]:
        """The hub events in the request (pure, no I/O); PayloadError or ValidationError if bad."""

    def reply(self, request: InboundRequest, results: Sequence[IngestResult]) -> WebhookReply:
        """The answer the provider expects; by default the contract's JSON for the first event."""
        body = results[0].reply() if results else {"ok": True}
        return WebhookReply(body=json.dumps(body).encode())

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.config!r}>"


def secret(value: SecretStr | None) -> str:
    """The plain value of a secret setting (callers check enabled() first)."""
    return value.get_secret_value() if value is not None else ""


def _is_set(value: object) -> bool:
    if isinstance(value, SecretStr):
        return bool(value.get_secret_value())
    return bool(value)
