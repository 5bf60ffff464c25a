"""Map every error to the contract's JSON form; count and time requests; check API auth."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from hub.errors import AuthError, HubError
from hub.keys import MANAGER, METRICS
from hub.web.auth import authenticate
from hub.web.pages import pages_middleware

log = logging.getLogger("hub.web")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PUBLIC_API = frozenset({"/api/openapi.json"})
# the contract puts these next to "error" too (a merged-away card answers {"merged_into": id})
TOP_LEVEL = ("merged_into",)

_HTTP_CODES = {
    400: "malformed", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
    422: "invalid", 429: "too_many_requests",
}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: object
) -> web.Response:
    """The contract's error body."""
    body: dict[str, object] = {"error": {"code": code, "message": message, **extra}}
    body.update({k: extra[k] for k in TOP_LEVEL if k in extra})
    return web.Response(status=status, text=json.dumps(body), content_type="application/json",
                        headers=headers)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """HubError and HTTP errors become JSON; anything else is a logged 500 without details."""
    try:
        return await handler(request)
    except HubError as exc:
        if exc.status >= 500:
            log.error("%s %s failed: %s", request.method, request.path, exc.code)
        return error_response(exc.status, exc.code, exc.message, exc.headers or None, **exc.extra)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _http_error(exc)
    except HttpProcessingError as exc:
        # aiohttp refused a part of the body while the handler read it (a multipart part's
        # header with control characters, a broken chunk): the client's mistake, not ours
        status = exc.code if 400 <= exc.code < 500 else 400
        return error_response(status, _HTTP_CODES.get(status, "malformed"),
                              "the request body is malformed")
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal error; it was logged")


def _http_error(exc: web.HTTPException) -> web.Response:
    code = _HTTP_CODES.get(exc.status, "http_error")
    allowed = exc.headers.get("Allow") if exc.headers else None
    extra: dict[str, object] = {"allowed": sorted(allowed.split(","))} if allowed else {}
    headers = {"Allow": allowed} if allowed else None
    return error_response(exc.status, code, exc.reason or code, headers, **extra)


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count and time each request by its route pattern (never the raw path)."""
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        info = request.match_info.route.resource
        route = info.canonical if info is not None else "unmatched"
        metrics = request.app[METRICS]
        counter, timer = metrics.http(route, request.method, status)
        counter.inc()
        timer.observe(time.perf_counter() - start)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every /api route needs a manager's token (the OpenAPI document excepted)."""
    if _protected(request.path):
        try:
            request[MANAGER] = await authenticate(request)
        except AuthError as exc:
            return error_response(401, exc.code, exc.message, {"WWW-Authenticate": "Bearer"})
    return await handler(request)


def _protected(path: str) -> bool:
    return (path == "/api" or path.startswith("/api/")) and path not in PUBLIC_API


# outermost first: metrics see every answer, including the errors turned into JSON; the pages'
# session check comes last (it leaves /api, /webhooks, /healthz and /metrics alone)
MIDDLEWARES = [metrics_middleware, errors_middleware, auth_middleware, pages_middleware]
