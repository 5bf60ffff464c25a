"""Sending offers: `POST /api/clients/{id}/offers` renders a template for the card and queues
it in the durable outbox (hub.outbox) in the same transaction as its `offer` timeline entry;
202 with the entry at once, the worker sends it in the background."""

from __future__ import annotations

from aiohttp import web

from hub import clients, offers
from hub.db import now, run_program
from hub.errors import ValidationError
from hub.keys import BUS, SETTINGS
from hub.outbox import OUTBOX, queue_offer
from hub.schemas import OfferCreate
from hub.web.auth import current_manager
from hub.web.inputs import read_body

routes = web.RouteTableDef()
CHANNELS = ("email",)
LATER = ("telegram",)


@routes.post(r"/api/clients/{id:\d+}/offers")
async def send_offer(request: web.Request) -> web.Response:
    """Render a template for the card and queue it; 202 with the queued timeline entry."""
    client_id = int(request.match_info["id"])
    data = await read_body(request, OfferCreate)
    if data.channel in LATER:
        raise ValidationError(f"channel: {data.channel} is not available yet", field="channel")
    if data.channel not in CHANNELS:
        raise ValidationError(f"channel: use one of {', '.join(CHANNELS)}", field="channel")
    card = await clients.serialize(await clients.get_client(client_id))
    template = await offers.get_template(data.template)
    emails = card.get("emails") or []
    if not emails:
        raise ValidationError("channel: the card has no e-mail address", field="channel")
    worker = request.app[OUTBOX]
    if worker.sender is None:
        raise ValidationError(
            "channel: e-mail sending is not configured ([email] smtp_url and from_address)",
            field="channel",
        )
    manager = current_manager(request)
    variant = template.pick(data.language or offers.client_language(card))
    rendered = offers.render_offer(variant, card, manager, request.app[SETTINGS].company)
    to = str(emails[0])
    meta = {"template": template.name, "version": variant.version,
            "language": rendered.language, "to": to}
    message_id = worker.sender.message_id()
    when = now()
    entry = await run_program(lambda: queue_offer(
        client_id, manager.id, to, rendered.subject, rendered.text, rendered.html, message_id,
        meta, when,
    ))
    worker.wake()
    request.app[BUS].publish({"type": "timeline.added", "client_id": client_id,
                              "interaction": entry})
    return web.json_response(entry, status=202)
