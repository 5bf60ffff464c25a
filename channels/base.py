"""What every channel adapter is: declared metadata, verify → parse → reply. Adapters
translate provider bytes into hub events; they never touch the database or read settings."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from aiohttp import ClientSession
from pydantic import SecretStr, field_validator

from hub.errors import NotFoundError
from hub.events import HubEvent
from hub.settings import Section, check_http_url, split_list

if TYPE_CHECKING:
    from hub.pipeline import IngestResult


# every adapter's settings table is a strict settings Section (unknown keys are errors,
# secret values are SecretStr and masked in repr)
AdapterConfig = Section


class DialerConfig(AdapterConfig):
    """The settings of a provider with an API that places calls: where its API is (a
    self-hosted or test endpoint) and which manager extensions it places calls for."""

    api_base: str
    extensions: tuple[str, ...] = ()  # empty: every extension

    @field_validator("api_base")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return check_http_url(value)

    @field_validator("extensions", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return split_list(value)


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


@dataclass(frozen=True, slots=True)
class Agent:
    """The manager on whose behalf a call is placed."""

    id: int
    name: str
    extension: str | None
    phone: str | None  # E.164


@dataclass(frozen=True, slots=True)
class DialRequest:
    """Click-to-call: ring the manager, then connect the client.

    `token` is the hub's id for this click; a provider that can carry a value back in its
    webhooks (a command id, a callback URL's query) returns it as CallEvent.correlation.
    `webhook_url` is this adapter's public webhook URL (None when public_base_url is unset).
    """

    agent: Agent
    number: str  # the client's phone, E.164
    token: str
    webhook_url: str | None = None


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
    # paths where the provider checks the URL with a GET before it sends events (see check)
    check_paths: ClassVar[tuple[str, ...]] = ()

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

    def check(self, request: InboundRequest) -> WebhookReply:
        """Answer the provider's URL check (a GET on `check_paths`)."""
        raise NotFoundError("this provider sends no URL check")

    @property
    def dials(self) -> bool:
        """True when the adapter can place calls (it overrides dial)."""
        return type(self).dial is not Adapter.dial

    def serves(self, extension: str | None) -> bool:
        """True when this provider places calls for that manager extension (setting
        `extensions`; empty: every extension)."""
        served: tuple[str, ...] = getattr(self.config, "extensions", ())
        return not served or (extension is not None and extension in served)

    def cannot_dial(self, agent: Agent) -> str | None:
        """Why this provider cannot place a call for that manager (None: it can)."""
        return None

    async def dial(self, http: ClientSession, request: DialRequest) -> str | None:
        """Ask the provider to place the call; its call id if the answer names one.
        Raises DeliveryError (retryable or not) when the provider refuses or cannot be
        reached, ValidationError when the manager or client lacks what the provider needs."""
        raise NotImplementedError

    async def recording_link(self, http: ClientSession, ref: str) -> str:
        """A fresh, playable URL of a call recording the provider keeps (for providers whose
        webhooks name a recording instead of giving its address: `/api/recordings/<name>/<ref>`)."""
        raise NotFoundError(f"{self.name} keeps no recordings the hub can fetch")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.config!r}>"


def secret(value: SecretStr | None) -> str:
    """The plain value of a secret setting (callers check enabled() first)."""
    return value.get_secret_value() if value is not None else ""


def _is_set(value: object) -> bool:
    if isinstance(value, SecretStr):
        return bool(value.get_secret_value())
    return bool(value)
