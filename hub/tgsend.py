"""Sending through the Telegram bot, within Telegram's limits.

The outbox hands over a message (a manager's reply, an offer, a reminder to a manager); this
sends it to the chat in parts of at most 4,096 characters (split at paragraph, line, then word
ends), with the offer's files as documents. Pace: at most one message a second per chat and
thirty a second overall (per hub process); a 429 answer is waited out (its retry_after) and the
same part sent again, so a message is never repeated from its start. A chat that blocked the
bot (403) is marked so and the send fails at once with that reason; bad requests fail at once;
network and server trouble are retried by the outbox.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import TYPE_CHECKING

from tortoise import connections

from channels.smtp import MailFile, OutgoingEmail
from hub.db import Stmt, execute, now
from hub.errors import DeliveryError

if TYPE_CHECKING:  # aiogram is imported only by a hub with a bot (it costs ~125 MiB and 2 s)
    from aiogram import Bot
    from aiogram.types import BufferedInputFile

log = logging.getLogger("hub.tgsend")
MAX_TEXT = 4096
PER_CHAT_S = 1.1  # Telegram: "about one message a second" per chat; a margin for jitter
GLOBAL_PER_S = 30
MAX_WAIT_S = 30.0  # a longer retry_after goes back to the outbox's own backoff


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Parts of at most `limit` characters, cut at a paragraph, a line or a word end."""
    parts: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n\n"), window.rfind("\n"), window.rfind(" "))
        cut = cut if cut > limit // 2 else limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts


class Pace:
    """Telegram's limits in one process: one message a second per chat, thirty overall."""

    def __init__(self, per_chat_s: float = PER_CHAT_S, per_second: int = GLOBAL_PER_S) -> None:
        self.per_chat_s = per_chat_s
        self.gap = 1.0 / per_second
        self._next_any = 0.0
        self._next_chat: dict[int, float] = {}
        self._lock = asyncio.Lock()

    async def wait(self, chat_id: int) -> None:
        """Sleep until this chat may get its next message."""
        async with self._lock:
            clock = time.monotonic()
            at = max(clock, self._next_any, self._next_chat.get(chat_id, 0.0))
            self._next_any = at + self.gap
            self._next_chat[chat_id] = at + self.per_chat_s
            if len(self._next_chat) > 10_000:  # forget chats long quiet
                self._next_chat = {c: t for c, t in self._next_chat.items() if t > clock}
        await asyncio.sleep(max(at - time.monotonic(), 0.0))


class TelegramSender:
    """The outbox's sender for the `telegram` channel."""

    def __init__(self, bot: Bot, pace: Pace | None = None) -> None:
        self.bot = bot
        self.pace = pace or Pace()

    def message_id(self) -> str:
        """The outbox row's own id for the message (Telegram numbers its parts itself)."""
        return f"<tg-{uuid.uuid4().hex}@crm-hub>"

    async def send(self, mail: OutgoingEmail) -> str:
        """Send; Telegram's message ids of the parts. DeliveryError on failure."""
        chat_id = int(mail.to)
        if await blocked(chat_id):
            raise DeliveryError("the client has blocked the bot", retryable=False,
                                provider_code="403")
        sent: list[int] = []
        for part in split_text(mail.text):
            sent.append(await self._one(chat_id, lambda part=part: self.bot.send_message(
                chat_id, part)))
        for file in mail.files:
            sent.append(await self._one(chat_id, lambda file=file: self.bot.send_document(
                chat_id, _document(file))))
        return "telegram message " + ", ".join(map(str, sent))

    async def _one(self, chat_id: int, call: object) -> int:
        from aiogram.exceptions import (
            TelegramBadRequest,
            TelegramForbiddenError,
            TelegramNetworkError,
            TelegramRetryAfter,
            TelegramServerError,
        )

        assert callable(call)
        while True:
            await self.pace.wait(chat_id)
            try:
                message = await call()
                return int(message.message_id)
            except TelegramRetryAfter as exc:
                if exc.retry_after > MAX_WAIT_S:
                    raise DeliveryError(f"Telegram asks to wait {exc.retry_after} s",
                                        retryable=True, provider_code="429") from None
                log.info("telegram: chat %s waits %s s (429)", chat_id, exc.retry_after)
                await asyncio.sleep(exc.retry_after)
            except TelegramForbiddenError as exc:
                await mark_blocked(chat_id)
                raise DeliveryError(f"the client has blocked the bot: {exc.message}",
                                    retryable=False, provider_code="403") from None
            except TelegramBadRequest as exc:
                raise DeliveryError(f"Telegram refused the message: {exc.message}",
                                    retryable=False, provider_code="400") from None
            except (TelegramNetworkError, TelegramServerError, TimeoutError, OSError) as exc:
                raise DeliveryError(f"Telegram could not be reached: {exc}",
                                    retryable=True) from None


def message_ids(answer: str) -> list[int]:
    """Telegram's ids of the parts, from what `TelegramSender.send` answered."""
    return [int(part) for part in answer.removeprefix("telegram message ").split(", ")
            if part.isdigit()]


def _document(file: MailFile) -> BufferedInputFile:
    from aiogram.types import BufferedInputFile

    return BufferedInputFile(file.data, filename=file.name)


async def blocked(chat_id: int) -> bool:
    """True when the client blocked the bot (the latest my_chat_member, or a 403)."""
    rows = await execute(connections.get("default"), Stmt(
        "SELECT status FROM telegram_chat WHERE user_id = ?", (chat_id,)))
    return bool(rows) and rows[0]["status"] == "kicked"


async def mark_blocked(chat_id: int) -> None:
    when = now()
    await execute(connections.get("default"), Stmt(
        "INSERT INTO telegram_chat (user_id, status, status_at, updated_at) "
        "VALUES (?, 'kicked', ?, ?) ON CONFLICT (user_id) DO UPDATE SET status = 'kicked', "
        "status_at = excluded.status_at, updated_at = excluded.updated_at",
        (chat_id, when, when),
    ))
