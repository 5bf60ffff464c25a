"""The adapter registry: one line per provider. A broken import fails loudly at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pydantic

from channels.base import Adapter
from channels.email import EmailAdapter
from channels.generic import GenericAdapter
from channels.kamailio import KamailioAdapter
from channels.mango import MangoAdapter
from channels.twilio import TwilioAdapter
from channels.zadarma import ZadarmaAdapter
from hub.errors import ConfigError
from hub.settings import Settings

ADAPTERS: tuple[type[Adapter], ...] = (
    GenericAdapter,
    ZadarmaAdapter,
    MangoAdapter,
    TwilioAdapter,
    KamailioAdapter,
    EmailAdapter,
)


@dataclass(slots=True)
class Registry:
    """The configured adapters by name; a disabled one is absent (its routes answer 404)."""

    adapters: dict[str, Adapter] = field(default_factory=dict)

    def get(self, name: str) -> Adapter | None:
        return self.adapters.get(name)


def build_registry(settings: Settings) -> Registry:
    """Validate every adapter's settings and instantiate the enabled ones."""
    registry = Registry()
    known = {cls.name for cls in ADAPTERS if cls.kind == "telephony"}
    for name in settings.telephony:
        if name not in known:
            names = ", ".join(sorted(known))
            raise ConfigError(f"telephony.{name}: no such provider (known: {names})")
    for cls in ADAPTERS:
        config = _config(settings, cls)
        if cls.enabled(config):
            registry.adapters[cls.name] = cls(config, public_base_url=settings.public_base_url)
    return registry


def _config(settings: Settings, cls: type[Adapter]) -> Any:
    """The adapter's validated settings: `[telephony.<name>]`, or the `[email]`-style section."""
    if cls.kind != "telephony":
        return getattr(settings, cls.name)  # already validated with the settings
    prefix = f"telephony.{cls.name}"
    try:
        return cls.Config.model_validate(settings.provider(cls.name))
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{prefix}.{key}: {err['msg']}") from None
