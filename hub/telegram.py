"""The hub side of the Telegram bot: it decides what each translated update does to cards.

- A private message lands on the card matched by the sender's Telegram user id (or a new card
  named as the person is named). The bot then asks a client whose card has no phone, once, to
  share it (a request_contact keyboard).
- A shared contact whose user_id is the sender's own links that phone to the card; when an
  earlier card (a caller) holds the phone already, the Telegram card is folded into it: one
  card with both histories, recorded as a merge that can be undone. Somebody else's contact is
  kept on the timeline and never written onto the sender's card.
- `/start <payload>`: a hub-issued link token binds the chat to a card (`c-...`) or to a
  manager's account (`m-...`); any other payload is a campaign, kept as the card's
  `lead_source` when it has none yet.
- my_chat_member: the chat is blocked (kicked) or reachable again, by the latest change
  whatever order the updates came in.
- A pressed button is answered at once and put on the presser's card.

Updates arrive by webhook (POST /webhooks/telegram, aiogram's SimpleRequestHandler; the
answer waits until the update is stored, so Telegram retries what the hub did not take) or by
long polling, each update handled before the next offset is confirmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pydantic
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramAPIError
from aiogram.types import (
    CallbackQuery,
    ChatMemberUpdated,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    Update,
)
from aiogram.types.update import UpdateTypeLookupError
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from tortoise import connections

from channels.telegram import build_router, callback_event, message_event
from hub import identity
from hub.db import Stmt, execute, now
from hub.errors import NotFoundError, PayloadError, SignatureError, ValidationError
from hub.events import MessageEvent
from hub.identity import Kind
from hub.keys import TELEGRAM
from hub.loops import while_running
from hub.matching import add_identity
from hub.merges import merge_clients
from hub.models import Identity, LinkToken, Manager
from hub.pipeline import IngestResult, Pipeline
from hub.settings import Settings
from hub.tgsend import Pace

log = logging.getLogger("hub.telegram")
WEBHOOK_PATH = "/webhooks/telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
CLIENT_PREFIX, MANAGER_PREFIX = "c-", "m-"
LINK_LIFETIME = timedelta(days=30)
POLLING_TIMEOUT_S = 25
START_RETRY_S = 30.0


class TelegramHub:
    """The bot (aiogram Bot + Dispatcher with our Router) and what its updates do."""

    def __init__(self, settings: Settings, pipeline: Pipeline) -> None:
        tg = settings.telegram
        assert tg.bot_token is not None
        self.settings = settings
        self.pipeline = pipeline
        self.region = settings.phone_region
        session = AiohttpSession(api=TelegramAPIServer.from_base(tg.api_base))
        self.bot = Bot(tg.bot_token.get_secret_value(), session=session)
        self.dispatcher = Dispatcher()
        self.dispatcher.include_router(build_router(self))
        self.secret = tg.webhook_secret.get_secret_value() if tg.webhook_secret else None
        if tg.mode == "auto":
            webhook = self.secret is not None and settings.public_base_url is not None
            self.mode = "webhook" if webhook else "polling"
        else:
            self.mode = tg.mode
        self.username: str | None = None  # the bot's @username, from getMe
        self.pace = Pace()  # Telegram's limits, shared with the outbox's sender
        self._notices: set[asyncio.Task[None]] = set()

    # ---- what updates do -----------------------------------------------------------------------

    async def ingest(self, event: MessageEvent) -> IngestResult:
        return await self.pipeline.ingest(event)

    async def receive(self, message: Message, event: MessageEvent) -> IngestResult | None:
        """A client's message onto their card; then, once, the bot asks for the phone. A
        linked manager writing to the bot is not a client."""
        if await self._is_manager(message):
            return None
        result = await self.ingest(event)
        if not result.duplicate and result.client_id is not None:
            await self._ask_phone(message, result.client_id)
        return result

    async def edit(self, message: Message, event: MessageEvent) -> None:
        if not await self._is_manager(message):
            await self.ingest(event)

    async def _is_manager(self, message: Message) -> bool:
        user = message.from_user
        return user is not None and await Manager.exists(telegram_user_id=user.id)

    async def notify_manager(self, result: IngestResult) -> None:
        """A post-commit hook: a client's new message reaches their responsible manager's
        Telegram, when the manager linked it (sent beside the ingest, never holding it up)."""
        event = result.event
        if (not isinstance(event, MessageEvent) or result.duplicate or not event.makes_card
                or event.edited_at is not None or "callback" in event.extra
                or result.manager is None):
            return
        manager = await Manager.get_or_none(id=result.manager["id"], is_active=True)
        chat = manager.telegram_user_id if manager is not None else None
        if not chat or chat == event.sender.telegram_id:
            return
        name = (result.client or {}).get("name") or "клиент"
        channel = "e-mail" if event.channel == "email" else "Telegram"
        text = f"Новое сообщение от {name} ({channel}):\n{event.text[:500]}"
        task = asyncio.create_task(self._notice(int(chat), text))
        self._notices.add(task)
        task.add_done_callback(self._notices.discard)

    async def _notice(self, chat: int, text: str) -> None:
        await self.pace.wait(chat)
        try:
            await self.bot.send_message(chat, text)
        except TelegramAPIError as exc:
            log.warning("could not tell manager chat %s of a new message: %s", chat, exc)

    async def start(self, message: Message, payload: str | None) -> None:
        if payload and payload.startswith((CLIENT_PREFIX, MANAGER_PREFIX)):
            await self._link(message, payload)
            return
        event = message_event(message, fields={"lead_source": payload} if payload else None)
        if event is not None:
            await self.receive(message, event)

    async def contact(self, message: Message) -> None:
        """A shared contact: the sender's own number joins their card (and an earlier card
        with that number becomes one with it); anybody else's stays a timeline entry."""
        contact, sender = message.contact, message.from_user
        assert contact is not None
        if await self._is_manager(message):
            return
        own = sender is not None and contact.user_id == sender.id
        phone = identity.normalize_phone(contact.phone_number, self.region) if own else None
        event = message_event(message, phone=phone)
        if event is None:
            return
        result = await self.ingest(event)
        if phone and result.client_id is not None and not result.duplicate:
            await self._join_phone_card(result.client_id, phone)

    async def member(self, update: ChatMemberUpdated) -> None:
        """The client blocked the bot (kicked) or came back: the latest change wins."""
        status = "kicked" if update.new_chat_member.status == "kicked" else "member"
        await execute(connections.get("default"), Stmt(
            "INSERT INTO telegram_chat (user_id, status, status_at, updated_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET status = excluded.status, "
            "status_at = excluded.status_at, updated_at = excluded.updated_at "
            "WHERE telegram_chat.status_at IS NULL OR telegram_chat.status_at < excluded.status_at",
            (update.chat.id, status, update.date, now()),
        ))

    async def callback(self, query: CallbackQuery) -> None:
        """Answer at once (the client's button stops spinning), then keep it on their card."""
        with contextlib.suppress(TelegramAPIError):  # an old query cannot be answered any more
            await query.answer()
        if not await Manager.exists(telegram_user_id=query.from_user.id):
            await self.ingest(callback_event(query))

    # ---- helpers ------------------------------------------------------------------------------

    async def _ask_phone(self, message: Message, client_id: int) -> None:
        tg = self.settings.telegram
        if not tg.ask_phone or message.from_user is None:
            return
        if await Identity.exists(client_id=client_id, kind=Kind.PHONE):
            return
        when = now()
        claimed = await execute(connections.get("default"), Stmt(
            "INSERT INTO telegram_chat (user_id, status, asked_phone_at, updated_at) "
            "VALUES (?, 'member', ?, ?) ON CONFLICT (user_id) DO UPDATE SET "
            "asked_phone_at = excluded.asked_phone_at, updated_at = excluded.updated_at "
            "WHERE telegram_chat.asked_phone_at IS NULL RETURNING user_id",
            (message.from_user.id, when, when),
        ))
        if not claimed:
            return
        keyboard = ReplyKeyboardMarkup(
            keyboard=[[KeyboardButton(text=tg.ask_phone_button, request_contact=True)]],
            resize_keyboard=True, one_time_keyboard=True,
        )
        try:
            await self.bot.send_message(message.chat.id, tg.ask_phone_text,
                                        reply_markup=keyboard)
        except TelegramAPIError as exc:
            log.warning("could not ask chat %s for the phone: %s", message.chat.id, exc)

    async def _join_phone_card(self, client_id: int, phone: str) -> None:
        """The card of an earlier contact with this phone (a caller) absorbs this one."""
        holder = await Identity.get_or_none(kind=Kind.PHONE, value=phone)
        if holder is None or holder.client_id == client_id:  # type: ignore[attr-defined]
            return
        survivor = int(holder.client_id)  # type: ignore[attr-defined]
        merge = await merge_clients(survivor, client_id, None)
        log.info("telegram contact: card %s folded into %s (merge %s)", client_id, survivor,
                 merge.id)

    async def _link(self, message: Message, payload: str) -> None:
        user = message.from_user
        if user is None:
            return
        token, fresh = await _redeem(payload, user.id)
        if token is None:
            await self._say(message, "Ссылка устарела или уже использована.")
            return
        if not fresh:  # Telegram delivered this /start again: it is done already
            return
        if token.kind == "manager":
            await Manager.filter(telegram_user_id=user.id).update(telegram_user_id=None)
            await Manager.filter(id=token.target_id).update(telegram_user_id=user.id)
            await self._say(message, "Готово: напоминания и сообщения клиентов будут "
                                     "приходить сюда.")
            return
        await self._bind(token.target_id, message)

    async def _bind(self, client_id: int, message: Message) -> None:
        """A client's chat joins the card the link was made for (a card the chat already
        had is folded into it)."""
        user = message.from_user
        assert user is not None
        holder = await Identity.get_or_none(kind=Kind.TELEGRAM, value=str(user.id))
        if holder is not None and holder.client_id != client_id:  # type: ignore[attr-defined]
            await merge_clients(client_id, int(holder.client_id), None)  # type: ignore[attr-defined]
        elif holder is None:
            await add_identity(connections.get("default"), client_id, Kind.TELEGRAM,
                               str(user.id), now())
        event = message_event(message)
        if event is not None:
            await self.receive(message, event)

    async def _say(self, message: Message, text: str) -> None:
        try:
            await self.bot.send_message(message.chat.id, text)
        except TelegramAPIError as exc:
            log.warning("could not answer chat %s: %s", message.chat.id, exc)

    # ---- links --------------------------------------------------------------------------------

    async def link_url(self, kind: str, target_id: int) -> dict[str, Any]:
        """A one-time deep link (t.me/<bot>?start=<token>) for a card or a manager."""
        if self.username is None:
            me = await self.bot.get_me()
            self.username = me.username
        prefix = CLIENT_PREFIX if kind == "client" else MANAGER_PREFIX
        token = prefix + secrets.token_urlsafe(24)
        when = now()
        await LinkToken.create(token_hash=_hash(token), kind=kind, target_id=target_id,
                               created_at=when, expires_at=when + LINK_LIFETIME)
        return {"url": f"https://t.me/{self.username}?start={token}",
                "expires_at": (when + LINK_LIFETIME).isoformat()}

    # ---- running ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Until cancelled: learn who the bot is, then register the webhook or poll. Telegram
        unreachable at start is retried, never fatal."""
        while True:
            try:
                me = await self.bot.get_me()
                self.username = me.username
                if self.mode == "webhook":
                    await self._set_webhook()
                    return
                await self.bot.delete_webhook(drop_pending_updates=False)
                break
            except (TelegramAPIError, OSError, TimeoutError) as exc:
                log.warning("telegram: cannot reach the Bot API (%s); retrying in %.0f s", exc,
                            START_RETRY_S)
                await asyncio.sleep(START_RETRY_S)
        # each update handled before the next getUpdates confirms it: nothing is lost
        await self.dispatcher.start_polling(
            self.bot, polling_timeout=POLLING_TIMEOUT_S, handle_as_tasks=False,
            handle_signals=False, close_bot_session=False,
            allowed_updates=self.dispatcher.resolve_used_update_types(),
        )

    async def _set_webhook(self) -> None:
        base = self.settings.public_base_url
        assert base is not None and self.secret is not None
        await self.bot.set_webhook(
            base.rstrip("/") + WEBHOOK_PATH, secret_token=self.secret,
            allowed_updates=self.dispatcher.resolve_used_update_types(),
        )

    async def close(self) -> None:
        await self.bot.session.close()


class _WebhookHandler(SimpleRequestHandler):
    """aiogram's handler, with the hub's JSON errors, and the answer only once the update is
    stored (a failure is a 500, and Telegram delivers the update again)."""

    def verify_secret(self, telegram_secret_token: str, bot: Bot) -> bool:
        """Compared as bytes: a header with non-ASCII bytes is a wrong secret, not an error
        (aiogram's own comparison raises TypeError on non-ASCII text)."""
        if not self.secret_token:
            return True
        return hmac.compare_digest(telegram_secret_token.encode("utf-8", "surrogatepass"),
                                   self.secret_token.encode())

    async def handle(self, request: web.Request) -> web.Response:
        bot = await self.resolve_bot(request)
        if not self.verify_secret(request.headers.get(SECRET_HEADER, ""), bot):
            raise SignatureError(f"bad or missing {SECRET_HEADER}")
        try:
            data = json.loads(await request.read())
            # Telegram's text is Unicode: a lone surrogate escape (\ud800) cannot be stored
            # or sent back, so such an update is refused here rather than failing later
            json.dumps(data, ensure_ascii=False).encode()
        except (ValueError, UnicodeDecodeError) as exc:  # UnicodeEncodeError is a ValueError
            raise PayloadError(f"body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise PayloadError("body must be a JSON object")
        try:
            update = Update.model_validate(data, context={"bot": bot})
        except pydantic.ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise ValidationError(f"{where}: {err['msg']}") from None
        try:
            update.event_type  # noqa: B018 - raises for an update of no type aiogram knows
        except UpdateTypeLookupError:
            return web.json_response({})  # a newer Bot API's update: nothing for the hub
        await self.dispatcher.feed_update(bot, update, **self.data)
        return web.json_response({})




def make_hub(settings: Settings, pipeline: Pipeline) -> TelegramHub | None:
    """The bot, when `[telegram] bot_token` is set."""
    return TelegramHub(settings, pipeline) if settings.telegram.bot_token else None


def setup_telegram(app: web.Application, hub: TelegramHub | None) -> None:
    """POST /webhooks/telegram, which answers 404 unless the webhook is on (a bot token and
    a webhook secret: never open)."""
    app[TELEGRAM] = hub
    handler = (_WebhookHandler(hub.dispatcher, hub.bot, secret_token=hub.secret)
               if hub is not None and hub.secret is not None else None)

    async def telegram_webhook(request: web.Request) -> web.StreamResponse:
        if handler is None:
            raise NotFoundError("the Telegram webhook is not configured on this hub")
        return await handler.handle(request)

    app.router.add_post(WEBHOOK_PATH, telegram_webhook)


# the bot polls or registers its webhook while the hub runs
running = while_running(lambda app: app[TELEGRAM])


async def closing(app: web.Application) -> AsyncIterator[None]:
    """A cleanup_ctx entry: the bot's HTTP session is closed when the hub stops."""
    yield
    hub = app[TELEGRAM]
    if hub is not None:
        await hub.close()


async def _redeem(token: str, user_id: int) -> tuple[LinkToken | None, bool]:
    """Use a link token once: (the token, True) now; (the token, False) when this very user
    used it before (a repeated update); (None, False) when it is unknown, expired or somebody
    else's."""
    when = now()
    rows = await execute(connections.get("default"), Stmt(
        "UPDATE link_token SET used_at = ?, used_by = ? WHERE token_hash = ? "
        "AND used_at IS NULL AND expires_at > ? RETURNING id",
        (when, user_id, _hash(token), when),
    ))
    if rows:
        return await LinkToken.get(id=rows[0]["id"]), True
    again = await LinkToken.get_or_none(token_hash=_hash(token), used_by=user_id)
    return again, False


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
