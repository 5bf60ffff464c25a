"""Telegram: what the company's bot receives, as hub events.

aiogram 3 is used as it is designed: a Router whose handlers receive typed updates. The
handlers here only translate (an update → a MessageEvent, a contact, a chat-member change)
and hand the result to the hub side (hub.telegram.TelegramHub), which decides what it does to
cards. Only private chats are a person: group and supergroup messages never make a card, and
service messages (members added, a pin) are not somebody writing.

A message is keyed by its chat and message id (`<chat>:<message>`), so Telegram's repeated
delivery of an update stores nothing new, and an edit (a new update for the same message)
changes the entry instead of adding one.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.filters import CommandObject, CommandStart
from aiogram.types import CallbackQuery, ChatMemberUpdated, Message, User

from hub.errors import ValidationError
from hub.events import Attachment, MessageEvent, Party

if TYPE_CHECKING:
    from hub.telegram import TelegramHub

SOURCE = "telegram"
MAX_TEXT = 100_000
# a deep link's payload (t.me/<bot>?start=<payload>): letters, digits, _ and -, at most 64
PAYLOAD_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# what makes a private message somebody writing (anything else is a service message)
CONTENT = ("text", "caption", "photo", "document", "voice", "audio", "video", "video_note",
           "sticker", "contact", "location", "animation")


def display_name(user: User) -> str:
    """The name as the person wrote it (emoji and mixed scripts kept); never the username."""
    return " ".join(part for part in (user.first_name, user.last_name) if part).strip()


def party_of(user: User, phone: str | None = None) -> Party:
    return Party(telegram_id=user.id, telegram_username=user.username,
                 display_name=display_name(user) or None, phone=phone)


def external_id(message: Message) -> str:
    return f"{message.chat.id}:{message.message_id}"


def is_content(message: Message) -> bool:
    return any(getattr(message, name, None) for name in CONTENT)


def message_event(
    message: Message, *, phone: str | None = None, fields: dict[str, str] | None = None,
) -> MessageEvent | None:
    """A private message (or its edited version) as a hub event; None for a message with no
    sender or no content. `phone` is the sender's own number (a contact they shared)."""
    user = message.from_user
    if user is None or user.is_bot or not is_content(message):
        return None
    text = message.text or message.caption or ""
    extra = _extra(message)
    if message.contact is not None:
        c = message.contact
        name = " ".join(p for p in (c.first_name, c.last_name) if p)
        text = text or f"{name} {c.phone_number}".strip()
        extra["contact"] = {"phone": c.phone_number, "name": name, "user_id": c.user_id,
                            "own": phone is not None}
    fields = dict(fields or {})
    if user.language_code:  # the card's language picks an offer's variant
        fields.setdefault("language", user.language_code)
    stamp = message.edit_date  # aiogram keeps it as Unix time (int)
    try:
        edited = datetime.fromtimestamp(stamp, UTC) if stamp else None
    except (OverflowError, OSError, ValueError):  # past year 9999: no real edit
        raise ValidationError("edited_message.edit_date: out of range") from None
    return MessageEvent(
        source=SOURCE,
        channel="telegram",
        external_id=external_id(message),
        sender=party_of(user, phone),
        text=text[:MAX_TEXT],
        occurred_at=_utc(message.date),
        attachments=tuple(_attachments(message)),
        fields=fields,
        edited_at=edited,
        extra=extra,
    )


def callback_event(query: CallbackQuery) -> MessageEvent:
    """A button pressed under one of the bot's messages, on the presser's card; the message
    may be missing (too old, or inaccessible)."""
    message = query.message
    extra: dict[str, Any] = {"callback": query.data or "", "callback_id": query.id}
    if message is not None:
        extra["on_message"] = f"{message.chat.id}:{message.message_id}"
    return MessageEvent(
        source=SOURCE, channel="telegram", external_id=f"callback:{query.id}",
        sender=party_of(query.from_user), text=f"[{query.data or ''}]",
        occurred_at=datetime.now(UTC), extra=extra,
    )


def start_payload(command: CommandObject | None) -> str | None:
    """The payload of `/start <payload>` when it is a valid deep-link payload."""
    args = (command.args or "").strip() if command is not None else ""
    return args if PAYLOAD_RE.match(args) else None


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _extra(message: Message) -> dict[str, Any]:
    extra: dict[str, Any] = {"chat_id": message.chat.id, "message_id": message.message_id}
    origin = message.forward_origin
    if origin is not None:
        extra["forwarded_from"] = _origin_name(origin)
        extra["forwarded_at"] = _utc(origin.date).isoformat()
    if message.reply_to_message is not None:
        extra["reply_to"] = external_id(message.reply_to_message)
    if message.voice is not None:
        extra["duration"] = message.voice.duration
    if message.location is not None:
        extra["location"] = {"lat": message.location.latitude,
                             "lon": message.location.longitude}
    if message.sticker is not None:
        extra["sticker"] = message.sticker.emoji or ""
    return extra


def _origin_name(origin: Any) -> str:
    user = getattr(origin, "sender_user", None)
    if isinstance(user, User):
        return display_name(user) or (user.username or str(user.id))
    for attr in ("sender_user_name", "author_signature"):
        if getattr(origin, attr, None):
            return str(getattr(origin, attr))
    chat = getattr(origin, "chat", None) or getattr(origin, "sender_chat", None)
    return str(getattr(chat, "title", None) or "hidden")


def _attachments(message: Message) -> list[Attachment]:
    found: list[Attachment] = []
    if message.photo:
        best = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        found.append(Attachment(f"photo-{best.file_unique_id}.jpg", "image/jpeg",
                                best.file_size or 0, best.file_id))
    for item, default_name, default_type in (
        (message.document, "document", "application/octet-stream"),
        (message.voice, "voice.ogg", "audio/ogg"),
        (message.audio, "audio", "audio/mpeg"),
        (message.video, "video.mp4", "video/mp4"),
        (message.animation, "animation.mp4", "video/mp4"),
    ):
        if item is not None:
            name = getattr(item, "file_name", None) or default_name
            found.append(Attachment(name[:255], getattr(item, "mime_type", None) or default_type,
                                    item.file_size or 0, item.file_id))
    if message.video_note is not None:
        note = message.video_note
        found.append(Attachment("video-note.mp4", "video/mp4", note.file_size or 0,
                                note.file_id))
    return found


def build_router(hub: TelegramHub) -> Router:
    """The bot's handlers: private chats only; each translates and hands over to `hub`."""
    router = Router(name="crm-hub")
    private = F.chat.type == ChatType.PRIVATE

    @router.message(CommandStart(), private)
    async def on_start(message: Message, command: CommandObject) -> None:
        await hub.start(message, start_payload(command))

    @router.message(private, F.contact)
    async def on_contact(message: Message) -> None:
        await hub.contact(message)

    @router.message(private)
    async def on_message(message: Message) -> None:
        event = message_event(message)
        if event is not None:
            await hub.receive(message, event)

    @router.edited_message(private)
    async def on_edit(message: Message) -> None:
        event = message_event(message)
        if event is not None:
            await hub.edit(message, event)

    @router.my_chat_member(F.chat.type == ChatType.PRIVATE)
    async def on_member(update: ChatMemberUpdated) -> None:
        await hub.member(update)

    @router.callback_query()
    async def on_callback(query: CallbackQuery) -> None:
        await hub.callback(query)

    return router
