"""Map every error to the contract's JSON form; count and time requests; check API auth."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from hub.errors import AuthError, HubError
from hub.keys import MANAGER, METRICS
from hub.web.auth import authenticate

log = logging.getLogger("hub.web")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PUBLIC_API = frozenset({"/api/openapi.json"})

_HTTP_CODES = {
    400: "malformed", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
    422: "invalid", 429: "too_many_requests",
}


def error_response(status: int, code: str, message: str, **extra: object) -> web.Response:
    """The contract's error body."""
    body: dict[str, object] = {"error": {"code": code, "message": message, **extra}, **extra}
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """HubError and HTTP errors become JSON; anything else is a logged 500 without details."""
    try:
        return await handler(request)
    except HubError as exc:
        if exc.status >= 500:
            log.error("%s %s failed: %s", request.method, request.path, exc.code)
        return error_response(exc.status, exc.code, exc.message, **exc.extra)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        return error_response(exc.status, code, exc.reason or code, **_allow(exc))
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal error; it was logged")


def _allow(exc: web.HTTPException) -> dict[str, object]:
    allowed = exc.headers.get("Allow") if exc.headers else None
    return {"allowed": allowed.split(",")} if allowed else {}


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count and time each request by its route pattern (never the raw path)."""
    start = time.perf_counter()
    response = await handler(request)
    info = request.match_info.route.resource
    route = info.canonical if info is not None else "unmatched"
    metrics = request.app[METRICS]
    metrics.http_requests.labels(route, request.method, str(response.status)).inc()
    metrics.http_latency.labels(route).observe(time.perf_counter() - start)
    return response


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every /api route needs a manager's token (the OpenAPI document excepted)."""
    if request.path.startswith("/api/") and request.path not in PUBLIC_API:
        try:
            request[MANAGER] = await authenticate(request)
        except AuthError as exc:
            return error_response(401, exc.code, exc.message)
    return await handler(request)


MIDDLEWARES = [errors_middleware, metrics_middleware, auth_middleware]
