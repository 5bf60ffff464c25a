"""Who is calling the manager API: a Bearer token (or `?token=` for the browser's WebSocket)."""

from __future__ import annotations

from aiohttp import web

from hub.errors import AuthError, ForbiddenError
from hub.keys import MANAGER
from hub.managers import manager_for_token
from hub.models import Manager, Role


async def authenticate(request: web.Request) -> Manager:
    """The manager behind the request's token; AuthError when missing or wrong."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header and request.path == "/api/stream":
        token, scheme = request.query.get("token", ""), "bearer"
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("missing Bearer token")
    return await manager_for_token(token.strip())


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
