"""Typed application state keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from aiohttp import ClientSession

    from channels import Registry
    from hub.bus import Bus
    from hub.metrics import Metrics
    from hub.models import Manager, WebSession
    from hub.pipeline import Pipeline
    from hub.settings import Settings
    from hub.telegram import TelegramHub

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
REGISTRY: web.AppKey[Registry] = web.AppKey("registry")
PIPELINE: web.AppKey[Pipeline] = web.AppKey("pipeline")
BUS: web.AppKey[Bus] = web.AppKey("bus")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
HTTP: web.AppKey[ClientSession] = web.AppKey("http")  # outbound calls to provider APIs

MANAGER: web.RequestKey[Manager] = web.RequestKey("manager")
# the browser session a web UI request came with (None for API tokens)
WEB_SESSION: web.RequestKey[WebSession] = web.RequestKey("web_session")


@dataclass(slots=True)
class Counter:
    """A mutable count kept in the app (webhook deliveries in progress)."""

    count: int = 0


INFLIGHT: web.AppKey[Counter] = web.AppKey("inflight")
# the bot (None when `[telegram] bot_token` is unset: aiogram is then never imported)
TELEGRAM: web.AppKey[TelegramHub | None] = web.AppKey("telegram")
