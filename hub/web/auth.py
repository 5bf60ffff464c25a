"""Who is calling: an API client's Bearer token (or `?token=` for a WebSocket), or a manager's
browser with the web UI's session cookie. A browser that changes something must also send its
session's CSRF token (the `X-CSRF-Token` header, or a form's `csrf` field): the cookie alone
never does, so another site cannot act in a manager's name."""

from __future__ import annotations

import hmac

from aiohttp import web

from hub import sessions
from hub.errors import AuthError, ForbiddenError
from hub.keys import MANAGER, WEB_SESSION
from hub.managers import manager_for_token
from hub.models import Manager, Role

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def authenticate(request: web.Request) -> Manager:
    """The manager behind the request's token or session cookie; AuthError when neither."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header and request.path == "/api/stream" and request.query.get("token"):
        token, scheme = request.query.get("token", ""), "bearer"
    if not header and scheme != "bearer":
        cookie = request.cookies.get(sessions.SESSION_COOKIE)
        if cookie:
            return await _from_session(request, cookie)
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("missing Bearer token")
    return await manager_for_token(token.strip())


async def _from_session(request: web.Request, cookie: str) -> Manager:
    found = await sessions.session_for(cookie)
    if found is None:
        raise AuthError("the session ended; log in again")
    manager, session = found
    request[WEB_SESSION] = session
    if request.method not in SAFE_METHODS and request.path != "/api/stream":
        check_csrf(request, request.headers.get("X-CSRF-Token"))
    return manager


def check_csrf(request: web.Request, given: str | None) -> None:
    """403 unless `given` is the session's CSRF token."""
    session = request.get(WEB_SESSION)
    if session is None or not given or not hmac.compare_digest(given, session.csrf):
        raise ForbiddenError("missing or wrong CSRF token; reload the page")


def current_manager(request: web.Request) -> Manager:
    """The authenticated manager of this request."""
    manager = request.get(MANAGER)
    if not isinstance(manager, Manager):
        raise AuthError("missing Bearer token")
    return manager


def require_admin(request: web.Request) -> Manager:
    """The manager, who must be an admin (403 otherwise)."""
    manager = current_manager(request)
    if manager.role != Role.ADMIN:
        raise ForbiddenError("only an admin may do this")
    return manager
