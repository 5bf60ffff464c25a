"""The one webhook view for every adapter: look up → verify → parse → ingest → reply."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from channels import ADAPTERS
from channels.base import Adapter, InboundRequest
from hub.errors import (
    BusyError,
    HubError,
    MediaTypeError,
    NotFoundError,
    RateLimitError,
    SignatureError,
)
from hub.keys import INFLIGHT, METRICS, PIPELINE, REGISTRY, SETTINGS
from hub.web.throttle import WebhookLimits

log = logging.getLogger("hub.web.webhooks")
LIMITS: web.AppKey[WebhookLimits] = web.AppKey("webhook_limits", WebhookLimits)


def setup_webhook_routes(app: web.Application) -> None:
    """Route every path each adapter declares to the shared view."""
    app[LIMITS] = WebhookLimits(app[SETTINGS].webhook_rate_per_source)
    for cls in ADAPTERS:
        for path in cls.paths:
            app.router.add_post(path, _view(cls.name))
        for path in cls.check_paths:
            app.router.add_get(path, _check_view(cls.name))


def _check_view(name: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def check(request: web.Request) -> web.StreamResponse:
        """The provider's URL check; a disabled provider answers 404 here too."""
        adapter = request.app[REGISTRY].get(name)
        if adapter is None:
            raise NotFoundError(f"{name} is not configured on this hub")
        reply = adapter.check(await to_inbound(request))
        return web.Response(status=reply.status, body=reply.body,
                            content_type=reply.content_type, headers=reply.headers)

    check.__name__ = f"webhook_check_{name}"
    return check


def _view(name: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        adapter = request.app[REGISTRY].get(name)
        if adapter is None:
            raise NotFoundError(f"{name} is not configured on this hub")
        if wait := request.app[LIMITS].wait(name, request.remote):
            request.app[METRICS].webhook_rejected.labels(name, "rate").inc()
            raise RateLimitError(f"too many requests from {request.remote}; retry later", wait)
        inflight = request.app[INFLIGHT]
        if inflight.count >= request.app[SETTINGS].max_inflight_webhooks:
            # shed load early: a provider retries a 503, and a bounded queue keeps the
            # deliveries already admitted fast instead of slowing every one of them down
            request.app[METRICS].webhook_rejected.labels(name, "busy").inc()
            raise BusyError("too many deliveries in progress; retry shortly")
        inflight.count += 1
        try:
            return await handle_webhook(request, adapter)
        finally:
            inflight.count -= 1

    handle.__name__ = f"webhook_{name}"
    return handle


async def handle_webhook(request: web.Request, adapter: Adapter) -> web.StreamResponse:
    """Verify, parse and ingest one provider request; answer the way the provider expects."""
    metrics = request.app[METRICS]
    if adapter.content_types and request.content_type not in adapter.content_types:
        metrics.webhook_rejected.labels(adapter.name, "content_type").inc()
        raise MediaTypeError(f"expected Content-Type {' or '.join(adapter.content_types)}")
    inbound = await to_inbound(request)
    try:
        adapter.verify(inbound)
    except SignatureError:
        metrics.webhook_rejected.labels(adapter.name, "signature").inc()
        log.warning("rejected %s webhook from %s: bad signature", adapter.name, request.remote)
        raise
    try:
        events = adapter.parse(inbound)
    except HubError as exc:
        metrics.webhook_rejected.labels(adapter.name, exc.code).inc()
        raise
    pipeline = request.app[PIPELINE]
    results = []
    for event in events:
        result = await pipeline.ingest(event)
        metrics.events.labels(adapter.name, "duplicate" if result.duplicate else "stored").inc()
        results.append(result)
    reply = adapter.reply(inbound, results)
    return web.Response(status=reply.status, body=reply.body, content_type=reply.content_type,
                        headers=reply.headers)


async def to_inbound(request: web.Request) -> InboundRequest:
    """The framework-neutral request; the URL is the one the provider called (public base)."""
    body = await request.read()
    base = request.app[SETTINGS].public_base_url
    # plain string joins: building a yarl URL per request is a measurable share of a webhook
    origin = base.rstrip("/") if base else f"{request.scheme}://{request.host}"
    url = origin + request.path_qs
    return InboundRequest(
        method=request.method, url=url, path=request.path, headers=request.headers,
        query=request.query, body=body, remote=request.remote,
    )
