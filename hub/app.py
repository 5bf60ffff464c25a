"""create_app(settings): the ORM, the adapters, the routes, the middlewares, the live bus."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from channels import build_registry
from channels.smtp import SmtpSender
from hub import clients, db, delivery
from hub.bus import Bus
from hub.delivery import DELIVERY, DeliveryWorker, delivering
from hub.errors import NotFoundError
from hub.events import HubEvent
from hub.housekeeping import housekeeping
from hub.keys import (
    BUS,
    HTTP,
    INFLIGHT,
    METRICS,
    PIPELINE,
    REGISTRY,
    SETTINGS,
    TELEGRAM,
    Counter,
)
from hub.mailbox import MAILBOX, MailboxListener, listening
from hub.metrics import Metrics
from hub.models import Client
from hub.outbox import OUTBOX, OutboxWorker, sending
from hub.pipeline import IngestResult, Pipeline
from hub.relay import relaying
from hub.scheduler import SCHEDULER, Scheduler, scheduling
from hub.settings import Settings
from hub.tgsend import TelegramSender
from hub.web import (
    api,
    offers_api,
    openapi,
    ops,
    pages,
    privacy_api,
    subscriptions_api,
    telegram_api,
    templates_api,
    transfer_api,
)
from hub.web.middlewares import MIDDLEWARES
from hub.web.webhooks import setup_webhook_routes

if TYPE_CHECKING:
    from hub.telegram import TelegramHub

log = logging.getLogger("hub.app")


def create_app(
    settings: Settings, *, manage_db: bool = True, background: bool = True
) -> web.Application:
    """The hub as an aiohttp application; `manage_db=False` when the caller opened the ORM,
    `background=False` to leave out the loops that act by the clock (the reminder scheduler,
    housekeeping and the outbox worker): tests that check states a reminder firing would move
    use it; the IMAP listener is one of those loops too."""
    app = web.Application(middlewares=MIDDLEWARES, client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[REGISTRY] = build_registry(settings)  # settings errors surface here, at start-up
    app[METRICS] = Metrics()
    app[BUS] = Bus()
    app.on_shutdown.append(_end_streams)
    app[INFLIGHT] = inflight = Counter()
    app[METRICS].webhooks_in_progress.set_function(lambda: inflight.count)
    app[PIPELINE] = pipeline = Pipeline(settings.phone_region)
    pipeline.hooks.append(_live_hook(app[BUS]))
    bot = _telegram_hub(settings, pipeline)
    app[OUTBOX] = OutboxWorker(SmtpSender.from_settings(settings.email), app[BUS],
                               app[METRICS], TelegramSender(bot.bot, bot.pace) if bot else None)
    if bot is not None:
        pipeline.hooks.append(bot.notify_manager)
    app[SCHEDULER] = scheduler = Scheduler(
        app[BUS], timedelta(minutes=settings.reminder_escalate_minutes), app[OUTBOX],
        settings.public_base_url,
    )
    pipeline.hooks.append(_wake_hook(scheduler))
    app[DELIVERY] = DeliveryWorker(settings.webhooks, app[BUS], app[METRICS])
    pipeline.hooks.append(_kick_hook)
    app[MAILBOX] = (MailboxListener(settings.email, _counted(pipeline, app[METRICS], "imap"))
                    if settings.email.imap_url is not None else None)
    app.add_routes(api.routes)
    app.add_routes(ops.routes)
    app.add_routes(openapi.routes)
    app.add_routes(templates_api.routes)
    app.add_routes(offers_api.routes)
    app.add_routes(telegram_api.routes)
    app.add_routes(transfer_api.routes)
    app.add_routes(subscriptions_api.routes)
    app.add_routes(privacy_api.routes)
    pages.setup_pages(app)
    app.cleanup_ctx.append(transfer_api.stopping_imports)
    setup_webhook_routes(app)
    if bot is not None:
        from hub import telegram

        telegram.setup_telegram(app, bot)
        app.cleanup_ctx.append(telegram.closing)
    else:
        app[TELEGRAM] = None
        app.router.add_post("/webhooks/telegram", _telegram_off)
    if manage_db:
        app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_http_session)
    app.cleanup_ctx.append(relaying)
    if background:
        app.cleanup_ctx.append(scheduling)
        app.cleanup_ctx.append(housekeeping)
        app.cleanup_ctx.append(sending)
        app.cleanup_ctx.append(delivering)
        app.cleanup_ctx.append(listening)
        if bot is not None:
            from hub.telegram import running

            app.cleanup_ctx.append(running)
    return app


def _telegram_hub(settings: Settings, pipeline: Pipeline) -> TelegramHub | None:
    """The bot, when `[telegram] bot_token` is set. aiogram is imported only then: its types
    cost a hub without Telegram ~125 MiB of memory and 2 s of start-up."""
    if not settings.telegram.bot_token:
        return None
    from hub import telegram

    return telegram.make_hub(settings, pipeline)


async def _telegram_off(request: web.Request) -> web.StreamResponse:
    """POST /webhooks/telegram on a hub without a bot: 404, like any disabled provider."""
    raise NotFoundError("the Telegram webhook is not configured on this hub")


async def _end_streams(app: web.Application) -> None:
    """Live streams end when the hub stops, so shutting down does not wait on open sockets."""
    app[BUS].close_all()


def _counted(pipeline: Pipeline, metrics: Metrics, source: str) -> Any:
    async def ingest(event: HubEvent) -> IngestResult:
        """Ingest, counted in hub_ingested_events like a webhook's events."""
        result = await pipeline.ingest(event)
        metrics.events.labels(source, "duplicate" if result.duplicate else "stored").inc()
        return result

    return ingest


async def _http_session(app: web.Application) -> AsyncIterator[None]:
    """One client session for provider APIs; every request has a deadline."""
    timeout = aiohttp.ClientTimeout(total=15, connect=5)
    async with aiohttp.ClientSession(timeout=timeout, raise_for_status=False) as session:
        app[HTTP] = session
        yield


async def _database(app: web.Application) -> AsyncIterator[None]:
    await db.init_db(app[SETTINGS].database_url)
    yield
    await db.close_db()


_CALL_EVENT = {"ringing": "call.ringing", "answered": "call.answered"}


def screen_pop_targets(result: IngestResult) -> set[int] | None:
    """Who sees a live event: the card's responsible manager and the manager whose extension
    the call names; everyone (None) when the card is new, unassigned or unknown."""
    if result.client is None or result.manager is None:
        return None
    targets = {int(result.manager["id"])}
    if result.extension_manager_id is not None:
        targets.add(result.extension_manager_id)
    return targets


def _wake_hook(scheduler: Scheduler) -> Any:
    async def wake_scheduler(result: IngestResult) -> None:
        """A call that ended may have opened a call-back reminder, due at once."""
        if result.call_status not in (None, "ringing", "answered"):
            scheduler.wake()

    return wake_scheduler


async def _kick_hook(result: IngestResult) -> None:
    """The event queued outgoing webhook deliveries: send them now."""
    if result.reported:
        delivery.kick()


def _live_hook(bus: Bus) -> Any:
    async def publish_live(result: IngestResult) -> None:
        """Tell online managers what just landed on a card (never the provider's payload)."""
        if (not bus.online and bus.relay is None) or result.quiet:
            return
        targets = screen_pop_targets(result)
        if result.call_status is not None:
            kind = _CALL_EVENT.get(result.call_status, "call.ended")
            if result.call_status == result.call_status_before:
                if kind != "call.ringing" or result.extension_manager_id is None:
                    return  # e.g. a recording link arrived: nothing to pop up
                # the call now rings another extension: its manager's screen pops too
                targets = {result.extension_manager_id}
        else:
            kind = result.live_type or "message.in"
        client = result.client  # id, name and status: enough for a screen pop elsewhere
        if result.client_id is not None and bus.online:
            # the card as the API shows it; it may have been merged or removed since
            found = await Client.get_or_none(id=result.client_id)
            client = await clients.serialize(found) if found else result.client
        bus.publish({
            "type": kind,
            "client": client,
            "created": result.created,
            "manager": result.manager,
            "interaction": result.interaction,
        }, targets)

    return publish_live
