"""Telegram deep links in the manager API: a one-time link that binds a client's chat to their
card (to put in an offer: "continue in Telegram"), and one that links a manager's own account
(their reminders and client notices then reach them there)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from hub import clients
from hub.errors import ValidationError
from hub.keys import TELEGRAM
from hub.web.auth import current_manager
from hub.web.inputs import path_id

if TYPE_CHECKING:
    from hub.telegram import TelegramHub

routes = web.RouteTableDef()


def _bot(request: web.Request) -> TelegramHub:
    hub = request.app[TELEGRAM]
    if hub is None:
        raise ValidationError("telegram: the bot is not configured ([telegram] bot_token)")
    return hub


@routes.post(r"/api/clients/{id:\d+}/telegram-link")
async def client_link(request: web.Request) -> web.Response:
    """201 {"url", "expires_at"}: t.me/<bot>?start=c-<token>, usable once."""
    client_id = path_id(request)
    await clients.get_client(client_id)  # 404 / 410 for a card that is not there
    return web.json_response(await _bot(request).link_url("client", client_id), status=201)


@routes.post("/api/managers/me/telegram-link")
async def manager_link(request: web.Request) -> web.Response:
    """201 {"url", "expires_at"}: t.me/<bot>?start=m-<token> for the calling manager."""
    manager = current_manager(request)
    return web.json_response(await _bot(request).link_url("manager", manager.id), status=201)
