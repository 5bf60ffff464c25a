"""What managers send: `POST /api/clients/{id}/offers` renders a template for the card, and
`POST /api/clients/{id}/messages` takes a manager's own text. Both queue in the durable outbox
(hub.outbox) in the same transaction as their timeline entry; 202 with the entry at once, the
worker sends it in the background. `POST /api/interactions/{id}/retry` sends a failed one
again."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from tortoise import connections

from channels.smtp import OutgoingEmail
from hub import clients, offers, tgsend
from hub.db import Stmt, as_json, execute, now, run_program
from hub.errors import ConflictError, NotFoundError, ValidationError
from hub.keys import BUS, SETTINGS
from hub.outbox import OUTBOX, OutboxWorker, Sender, queue_email, requeue
from hub.schemas import MessageCreate, OfferCreate
from hub.web.auth import current_manager
from hub.web.inputs import path_id, read_body

routes = web.RouteTableDef()
CHANNELS = ("email", "telegram")
REPLY_PREFIXES = ("re:", "ответ:", "aw:", "fwd:", "fw:")


def _check_channel(channel: str) -> None:
    if channel not in CHANNELS:
        raise ValidationError(f"channel: use one of {', '.join(CHANNELS)}", field="channel")


def _email_worker(request: web.Request, card: dict[str, Any]) -> tuple[OutboxWorker, Sender]:
    """The outbox worker and its e-mail sender, once sure the card can be written to."""
    if not card.get("emails"):
        raise ValidationError("channel: the card has no e-mail address", field="channel")
    worker = request.app[OUTBOX]
    if worker.sender is None:
        raise ValidationError(
            "channel: e-mail sending is not configured ([email] smtp_url and from_address)",
            field="channel",
        )
    return worker, worker.sender


async def _telegram_chat(request: web.Request, card: dict[str, Any]) -> tuple[int, Sender]:
    """The card's Telegram chat and the bot's sender, once sure the chat can be written to."""
    chats = [t for t in card.get("telegram") or [] if isinstance(t, int)]
    if not chats:
        raise ValidationError("channel: the card has no Telegram chat (the client has not "
                              "written to the bot)", field="channel")
    sender = request.app[OUTBOX].telegram
    if sender is None:
        raise ValidationError("channel: the Telegram bot is not configured ([telegram] "
                              "bot_token)", field="channel")
    if await tgsend.blocked(chats[0]):
        raise ValidationError("channel: the client has blocked the bot", field="channel")
    return chats[0], sender


async def _queue(
    request: web.Request, kind: str, client_id: int, mail: OutgoingEmail, meta: dict[str, Any],
    attachments: tuple[offers.AttachmentFile, ...] = (), channel: str = "email",
) -> web.Response:
    manager = current_manager(request)
    entry = await run_program(lambda: queue_email(
        kind, client_id, manager.id, mail, meta, mail.date, attachments=attachments,
        channel=channel))
    request.app[OUTBOX].wake()
    request.app[BUS].publish({"type": "timeline.added", "client_id": client_id,
                              "interaction": entry})
    return web.json_response(entry, status=202)


@routes.post(r"/api/clients/{id:\d+}/offers")
async def send_offer(request: web.Request) -> web.Response:
    """Render a template for the card and queue it; 202 with the queued timeline entry."""
    client_id = path_id(request)
    data = await read_body(request, OfferCreate)
    _check_channel(data.channel)
    card = await clients.serialize(await clients.get_client(client_id))
    template = await offers.get_template(data.template)
    if data.channel == "telegram":
        chat, sender = await _telegram_chat(request, card)
        to, html = str(chat), False
    else:
        _, sender = _email_worker(request, card)
        to, html = str(card["emails"][0]), True
    manager = current_manager(request)
    variant = template.pick(data.language or offers.client_language(card))
    rendered = offers.render_offer(variant, card, manager, request.app[SETTINGS].company)
    meta = {"template": template.name, "version": variant.version,
            "language": rendered.language}
    # Telegram has no subject line: the subject heads the text
    text = rendered.text if html else f"{rendered.subject}\n\n{rendered.text}"
    mail = OutgoingEmail(to=to, subject=rendered.subject, text=text,
                         html=rendered.html if html else None,
                         message_id=sender.message_id(), date=now())
    return await _queue(request, "offer", client_id, mail, meta, rendered.attachments,
                        channel=data.channel)


@routes.post(r"/api/clients/{id:\d+}/messages")
async def send_message(request: web.Request) -> web.Response:
    """A manager's message; an e-mail answers the client's latest one (its thread, its
    address). 202 with the queued timeline entry."""
    client_id = path_id(request)
    data = await read_body(request, MessageCreate)
    _check_channel(data.channel)
    card = await clients.serialize(await clients.get_client(client_id))
    if data.channel == "telegram":
        chat, bot = await _telegram_chat(request, card)
        message = OutgoingEmail(to=str(chat), subject="", text=data.text, html=None,
                                message_id=bot.message_id(), date=now())
        return await _queue(request, "telegram", client_id, message, {}, channel="telegram")
    _, sender = _email_worker(request, card)
    latest = await _latest_from_client(client_id)
    to = str(card["emails"][0])
    subject = data.subject or _default_subject(request, data.text)
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    if latest is not None:
        meta = as_json(latest["meta"]) or {}
        if str(meta.get("from") or "").lower() in card["emails"]:
            to = str(meta["from"]).lower()
        if not data.subject and meta.get("subject"):
            subject = reply_subject(str(meta["subject"]))
        if not str(latest["external_id"]).startswith("sha256:"):
            in_reply_to = str(latest["external_id"])
            references = tuple(str(r) for r in (meta.get("references") or [])[-10:])
    mail = OutgoingEmail(to=to, subject=subject, text=data.text, html=None,
                         message_id=sender.message_id(), date=now(),
                         in_reply_to=in_reply_to, references=references)
    return await _queue(request, "email", client_id, mail, {"subject": subject})


async def _latest_from_client(client_id: int) -> dict[str, Any] | None:
    """The client's latest own e-mail (never an auto-reply: nothing we send answers one)."""
    rows = await execute(connections.get("default"), Stmt(
        "SELECT external_id, meta FROM interaction WHERE client_id = ? AND kind = 'email' "
        "AND direction = 'in' AND status = 'received' ORDER BY occurred_at DESC, id DESC LIMIT 1",
        (client_id,),
    ))
    return rows[0] if rows else None


def reply_subject(subject: str) -> str:
    """`Re: <subject>`, without piling up prefixes."""
    text = subject.strip()
    return text if text.lower().startswith(REPLY_PREFIXES[:3]) else f"Re: {text}"


def _default_subject(request: web.Request, text: str) -> str:
    """The company's name, else the message's first line (in whatever language it is)."""
    company = request.app[SETTINGS].company.name
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return company or (first[:77] + "..." if len(first) > 80 else first)


@routes.post(r"/api/interactions/{id:\d+}/retry")
async def retry_send(request: web.Request) -> web.Response:
    """Send a failed offer, e-mail or reminder notice again; 202 with the entry (queued
    again), 409 unless it had failed, 404 for an entry that was never sent."""
    interaction_id = path_id(request)
    entry = await run_program(lambda: requeue(interaction_id, now()))
    if entry is None:
        exists = await execute(connections.get("default"), Stmt(
            "SELECT status FROM outbox WHERE interaction_id = ?", (interaction_id,)))
        if not exists:
            raise NotFoundError("no mail of ours has this id")
        raise ConflictError(f"only a failed send can be retried; this one is "
                            f"{exists[0]['status']}")
    request.app[OUTBOX].wake()
    request.app[BUS].publish({"type": f"{entry['kind']}.updated", "interaction": entry})
    return web.json_response(entry, status=202)
