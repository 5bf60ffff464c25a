"""A local stand-in for the Telegram Bot API, for tests of the Telegram channel.

`FakeBotAPI` is an aiohttp server on a free loopback port that answers `/bot<TOKEN>/<method>`
the way the published Bot API does (the `{"ok": ..., "result": ...}` envelope, error codes and
descriptions), so aiogram 3 and plain HTTP clients work against it unchanged. It queues updates
for `getUpdates` (or POSTs them to a registered webhook), records every call, and can be told to
refuse sends: a chat that blocked the bot (403), flood control (429 with `retry_after`) and,
optionally, Telegram's per-chat and global send rates.

Parameters are recorded in JSON types whatever the transport: form fields such as `chat_id` become
ints, flags become bools and `reply_markup` / `reply_parameters` become dicts; an uploaded file is
an `UploadedFile`.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import mimetypes
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
import pytest_asyncio
from aiohttp import web

from tests.helpers import free_port

TOKEN = "123456:TEST-token_abc"
BOT_ID = 123456
BOT_USERNAME = "hub_test_bot"
FIXTURES = Path(__file__).parent / "fixtures" / "telegram"
LINK_PLACEHOLDER = "LINK_TOKEN"

MAX_TEXT = 4096
MAX_CAPTION = 1024
BASE_DATE = 1795341600  # 2026-11-22 10:00:00 UTC

Json = dict[str, Any]

_INT_FIELDS = frozenset({
    "chat_id", "message_id", "reply_to_message_id", "offset", "limit", "timeout",
    "max_connections", "cache_time", "message_thread_id", "from_chat_id",
})
_BOOL_FIELDS = frozenset({
    "disable_notification", "protect_content", "show_alert", "drop_pending_updates",
    "allow_sending_without_reply", "disable_web_page_preview", "disable_content_type_detection",
})
_JSON_FIELDS = frozenset({
    "reply_markup", "reply_parameters", "entities", "caption_entities", "allowed_updates",
    "link_preview_options",
})
# methods that put a message into a chat (flood control, blocking and rate limits apply)
_MESSAGE_METHODS = frozenset({"sendmessage", "senddocument"})
_CANONICAL = {
    name.lower(): name
    for name in (
        "getMe", "getUpdates", "sendMessage", "sendDocument", "sendChatAction", "setWebhook",
        "deleteWebhook", "getWebhookInfo", "answerCallbackQuery", "getFile", "logOut", "close",
    )
}
_BLOCKED = {
    "private": "Forbidden: bot was blocked by the user",
    "group": "Forbidden: bot was kicked from the group chat",
    "supergroup": "Forbidden: bot was kicked from the supergroup chat",
    "channel": "Forbidden: bot is not a member of the channel chat",
}
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
_TAG_RE = re.compile(r"<[^>]*>")


class Call(NamedTuple):
    """One request that reached the fake: method (canonical spelling), parameters, when."""

    method: str
    params: Json
    at: float


@dataclass(frozen=True)
class UploadedFile:
    """A file sent in a multipart body."""

    filename: str
    content_type: str
    data: bytes


class ApiError(Exception):
    """A Bot API error answer."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def body(self) -> Json:
        data: Json = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            data["parameters"] = {"retry_after": self.retry_after}
        return data


def bad_request(what: str) -> ApiError:
    return ApiError(400, f"Bad Request: {what}")


def bot_user() -> Json:
    """The fake bot as a Telegram User."""
    return {"id": BOT_ID, "is_bot": True, "first_name": "Hub", "username": BOT_USERNAME}


def _coerce(key: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if key in _JSON_FIELDS:
        try:
            return json.loads(value)
        except ValueError:
            raise bad_request(f"can't parse {key} JSON object") from None
    if key in _INT_FIELDS and re.fullmatch(r"-?\d+", value):
        return int(value)
    if key in _BOOL_FIELDS:
        return value.lower() in ("true", "1")
    return value


async def _read_params(request: web.Request) -> Json:
    raw: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            if not isinstance(body, dict):
                raise bad_request("JSON object expected")
            raw.update(body)
        else:
            for key, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    raw[key] = UploadedFile(
                        value.filename, value.content_type, value.file.read())
                else:
                    raw[key] = value
    return {key: _coerce(key, value) for key, value in raw.items()}


def _visible_text(text: str, parse_mode: str | None) -> str:
    """The text a user sees: HTML tags and entities resolved (other modes are left as is)."""
    if (parse_mode or "").lower() == "html":
        return html.unescape(_TAG_RE.sub("", text))
    return text


class FakeBotAPI:
    """A fake Bot API server; see the module docstring."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.port = free_port()
        self.calls: list[Call] = []
        self.errors: list[tuple[str, Json, int]] = []
        self.updates: list[Json] = []
        self.webhook: Json | None = None
        self.webhook_deliveries: list[tuple[int, int]] = []
        self.enforce_limits = False
        self.require_https = False
        self.delivery_wait = 5.0
        self.chats: dict[int, Json] = {}
        self.files: dict[str, Json] = {}
        self.uploads: dict[str, UploadedFile] = {}
        self.file_paths: dict[str, str] = {}
        self.messages: dict[tuple[int, int], Json] = {}
        self._outbox: list[tuple[str, Json]] = []
        self._next_update_id = 700000001
        self._last_message_id: dict[int, int] = {}
        self._blocked: dict[int, str | None] = {}
        self._flood: list[int] = []
        self._send_times: list[tuple[int, float]] = []
        self._file_ids = itertools.count(1)
        self._wake = asyncio.Event()
        self._poller: object | None = None
        self._terminated: set[object] = set()
        self._closing = False
        self._delivery: asyncio.Task[None] | None = None
        self._last_error: tuple[int, str] | None = None
        self._client: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None

    # ---- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The API base (`https://api.telegram.org` for the real thing)."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._closing = False
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self._client = aiohttp.ClientSession()

    async def stop(self) -> None:
        self._closing = True
        self._notify()
        if self._delivery is not None:
            self._delivery.cancel()
            await asyncio.gather(self._delivery, return_exceptions=True)
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ---- fault injection ---------------------------------------------------------------------

    def block(self, chat_id: int, description: str | None = None) -> None:
        """Later sends to `chat_id` answer 403 (the user blocked the bot / kicked it)."""
        self._blocked[int(chat_id)] = description

    def unblock(self, chat_id: int) -> None:
        self._blocked.pop(int(chat_id), None)

    def flood(self, n: int = 1, retry_after: int = 3) -> None:
        """The next `n` sends answer 429 with `retry_after` seconds."""
        self._flood.extend([retry_after] * n)

    # ---- what was sent -----------------------------------------------------------------------

    def sent(self, chat_id: int | None = None) -> list[Json]:
        """Parameters of accepted sendMessage / sendDocument calls, in order."""
        return [p for _, p in self._outbox if chat_id is None or p.get("chat_id") == chat_id]

    def texts(self, chat_id: int | None = None) -> list[str]:
        """Texts (or captions) of accepted sends, in order."""
        return [str(p.get("text", p.get("caption", ""))) for p in self.sent(chat_id)]

    def called(self, method: str) -> list[Json]:
        """Parameters of every call of `method` (any spelling), refused ones included."""
        return [c.params for c in self.calls if c.method.lower() == method.lower()]

    # ---- updates ------------------------------------------------------------------------------

    def push(self, update: Json) -> Json:
        """Queue an update (given an `update_id` if missing); wake long polls / the webhook."""
        if "update_id" not in update:
            update = {"update_id": self._next_update_id, **update}
        self._next_update_id = max(self._next_update_id, int(update["update_id"]) + 1)
        self._learn(update)
        self.updates.append(update)
        self._notify()
        if self.webhook is not None:
            self._start_delivery()
        return update

    def push_all(self, updates: list[Json]) -> list[Json]:
        return [self.push(u) for u in updates]

    def push_text(self, chat_id: int, text: str, **user: Any) -> Json:
        """A private text message from user `chat_id`."""
        return self.push(text_update(chat_id, text, self._message_id(chat_id), **user))

    def push_contact(self, chat_id: int, phone: str, user_id: int | None = None) -> Json:
        """A shared contact (the sender's own unless `user_id` says otherwise)."""
        return self.push(contact_update(chat_id, phone, self._message_id(chat_id), user_id))

    def push_callback(self, chat_id: int, data: str, message_id: int | None = None) -> Json:
        """A button press under bot message `message_id` (no message: an inline/old one)."""
        message = self.messages.get((chat_id, message_id)) if message_id is not None else None
        return self.push(callback_update(chat_id, data, message))

    def push_chat_member(self, chat_id: int, status: str, old_status: str = "member") -> Json:
        """The bot's own membership changed in a private chat (`kicked`: blocked; `member`)."""
        return self.push(my_chat_member_update(chat_id, status, old_status))

    async def wait_delivered(self) -> None:
        """Wait (at most `delivery_wait` seconds) until the webhook delivery in progress ends."""
        if self._delivery is not None:
            await asyncio.wait_for(asyncio.shield(self._delivery), self.delivery_wait)

    def _notify(self) -> None:
        self._wake.set()
        self._wake = asyncio.Event()

    def _learn(self, update: Json) -> None:
        """Remember chats, message ids and file ids an update reveals."""
        for key in ("message", "edited_message", "channel_post", "my_chat_member"):
            self._learn_message(update.get(key))
        callback = update.get("callback_query") or {}
        self._learn_message(callback.get("message"))

    def _learn_message(self, message: Json | None) -> None:
        if not message or "chat" not in message:
            return
        chat = message["chat"]
        self.chats[int(chat["id"])] = chat
        if "message_id" in message:
            chat_id = int(chat["id"])
            self.messages[(chat_id, int(message["message_id"]))] = message
            last = self._last_message_id.get(chat_id, 0)
            self._last_message_id[chat_id] = max(last, int(message["message_id"]))
        for key in ("document", "voice", "audio", "video", "sticker", "animation"):
            if key in message:
                self.files[message[key]["file_id"]] = message[key]
        for size in message.get("photo", []):
            self.files[size["file_id"]] = size
        self._learn_message(message.get("reply_to_message"))

    def _message_id(self, chat_id: int) -> int:
        self._last_message_id[chat_id] = self._last_message_id.get(chat_id, 0) + 1
        return self._last_message_id[chat_id]

    # ---- HTTP ---------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        name = _CANONICAL.get(method.lower(), method)
        try:
            params: Json = {}
            params = await _read_params(request)
            if request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            result = await self._dispatch(name.lower(), params)
        except ApiError as error:
            self.calls.append(Call(name, params, time.monotonic()))
            self.errors.append((name, params, error.code))
            return web.json_response(error.body(), status=error.code)
        self.calls.append(Call(name, params, time.monotonic()))
        return web.json_response({"ok": True, "result": result})

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            raise web.HTTPUnauthorized()
        for file_id, path in self.file_paths.items():
            if path == request.match_info["path"]:
                upload = self.uploads.get(file_id)
                return web.Response(body=upload.data if upload else b"")
        raise web.HTTPNotFound()

    async def _dispatch(self, method: str, p: Json) -> Any:
        handlers: dict[str, Callable[[Json], Any]] = {
            "getme": lambda _: {**bot_user(), "can_join_groups": True,
                                "can_read_all_group_messages": False,
                                "supports_inline_queries": False},
            "sendmessage": self._send_message,
            "senddocument": self._send_document,
            "sendchataction": self._send_chat_action,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": lambda _: self._webhook_info(),
            "answercallbackquery": self._answer_callback,
            "getfile": self._get_file,
            "logout": lambda _: True,
            "close": lambda _: True,
        }
        if method == "getupdates":
            return await self._get_updates(p)
        if method not in handlers:
            raise ApiError(404, "Not Found")
        return handlers[method](p)

    # ---- getUpdates -------------------------------------------------------------------------

    async def _get_updates(self, p: Json) -> list[Json]:
        if self.webhook is not None:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                "use deleteWebhook to delete the webhook first")
        self._confirm(int(p.get("offset") or 0))
        limit = min(max(int(p.get("limit") or 100), 1), 100)
        timeout = max(float(p.get("timeout") or 0), 0.0)
        me = object()
        if self._poller is not None:
            self._terminated.add(self._poller)
            self._notify()
        self._poller = me
        deadline = time.monotonic() + timeout
        while not self.updates and not self._closing and me not in self._terminated:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            wake = self._wake
            try:
                await asyncio.wait_for(wake.wait(), remaining)
            except TimeoutError:
                break
        if me in self._terminated:
            self._terminated.discard(me)
            raise ApiError(409, "Conflict: terminated by other getUpdates request; "
                                "make sure that only one bot instance is running")
        if self._poller is me:
            self._poller = None
        return self.updates[:limit]

    def _confirm(self, offset: int) -> None:
        """Forget updates below `offset` (a negative offset keeps the last -offset ones)."""
        if offset > 0:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        elif offset < 0:
            self.updates = self.updates[offset:]

    # ---- sending ------------------------------------------------------------------------------

    def _chat(self, p: Json) -> Json:
        chat_id = p.get("chat_id")
        if chat_id is None or chat_id == "":
            raise bad_request("chat_id is empty")
        if isinstance(chat_id, str):
            for chat in self.chats.values():
                if chat_id.startswith("@") and chat.get("username") == chat_id[1:]:
                    return chat
            raise bad_request("chat not found")
        chat_id = int(chat_id)
        if chat_id in self.chats:
            return self.chats[chat_id]
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": "User"}
        kind = "supergroup" if str(chat_id).startswith("-100") else "group"
        return {"id": chat_id, "type": kind, "title": "Group"}

    def _gate(self, chat: Json, message: bool = True) -> None:
        """Flood control, blocked chats and (optionally) rate limits, in that order."""
        if message and self._flood:
            wait = self._flood.pop(0)
            raise ApiError(429, f"Too Many Requests: retry after {wait}", retry_after=wait)
        chat_id = int(chat["id"])
        if chat_id in self._blocked:
            default = _BLOCKED.get(chat["type"], _BLOCKED["private"])
            raise ApiError(403, self._blocked[chat_id] or default)
        if message and self.enforce_limits:
            self._check_rate(chat)

    def _check_rate(self, chat: Json) -> None:
        now = time.monotonic()
        self._send_times = [(c, t) for c, t in self._send_times if now - t < 60]
        in_chat = [t for c, t in self._send_times if c == chat["id"]]
        last_second = [t for _, t in self._send_times if now - t < 1]
        busy = (
            (chat["type"] == "private" and in_chat and now - in_chat[-1] < 1)
            or (chat["type"] != "private" and len(in_chat) >= 20)
            or len(last_second) >= 30
        )
        if busy:
            wait = 1 if chat["type"] == "private" else max(1, int(60 - (now - in_chat[0])) + 1)
            raise ApiError(429, f"Too Many Requests: retry after {wait}", retry_after=wait)
        self._send_times.append((chat["id"], now))

    def _new_message(self, chat: Json, p: Json) -> Json:
        chat_id = int(chat["id"])
        message: Json = {
            "message_id": self._message_id(chat_id),
            "from": bot_user(),
            "chat": chat,
            "date": int(time.time()),
        }
        reply_to = (p.get("reply_parameters") or {}).get("message_id", p.get("reply_to_message_id"))
        if reply_to is not None and (chat_id, int(reply_to)) in self.messages:
            earlier = dict(self.messages[(chat_id, int(reply_to))])
            earlier.pop("reply_to_message", None)
            message["reply_to_message"] = earlier
        markup = p.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup  # only inline keyboards come back in a Message
        return message

    def _remember(self, method: str, p: Json, message: Json) -> Json:
        self.messages[(int(message["chat"]["id"]), message["message_id"])] = message
        self._outbox.append((method, p))
        return message

    def _send_message(self, p: Json) -> Json:
        chat = self._chat(p)
        text = _visible_text(str(p.get("text") or ""), p.get("parse_mode"))
        if not text.strip():
            raise bad_request("message text is empty")
        if len(text) > MAX_TEXT:
            raise bad_request("message is too long")
        self._gate(chat)
        message = self._new_message(chat, p)
        message["text"] = text
        return self._remember("sendMessage", p, message)

    def _send_document(self, p: Json) -> Json:
        chat = self._chat(p)
        document = self._document(p)
        caption = _visible_text(str(p.get("caption") or ""), p.get("parse_mode"))
        if len(caption) > MAX_CAPTION:
            raise bad_request("message caption is too long")
        self._gate(chat)
        message = self._new_message(chat, p)
        message["document"] = document
        if caption:
            message["caption"] = caption
        return self._remember("sendDocument", p, message)

    def _document(self, p: Json) -> Json:
        """The Document for the `document` parameter: an upload, attach://name or a file_id."""
        value = p.get("document")
        if isinstance(value, str) and value.startswith("attach://"):
            value = p.get(value.removeprefix("attach://"))
        if isinstance(value, UploadedFile):
            return self._store_upload(value)
        if isinstance(value, str) and value in self.files:
            return self.files[value]
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            name = value.rstrip("/").rsplit("/", 1)[-1] or "file"
            return self._store_upload(UploadedFile(name, "application/octet-stream", b""))
        if not value:
            raise bad_request("there is no document in the request")
        raise bad_request("wrong file identifier/HTTP URL specified")

    def _store_upload(self, upload: UploadedFile) -> Json:
        n = next(self._file_ids)
        file_id = f"BQACAgIAAxkDAAI{n:06d}FakeDocument"
        guessed = mimetypes.guess_type(upload.filename)[0]
        document: Json = {
            "file_name": upload.filename,
            "mime_type": guessed or upload.content_type or "application/octet-stream",
            "file_id": file_id,
            "file_unique_id": f"AgAD{n:06d}",
            "file_size": len(upload.data),
        }
        self.files[file_id] = document
        self.uploads[file_id] = upload
        return document

    def _send_chat_action(self, p: Json) -> bool:
        self._gate(self._chat(p), message=False)
        return True

    # ---- webhook ------------------------------------------------------------------------------

    def _set_webhook(self, p: Json) -> bool:
        url = str(p.get("url") or "")
        if not url:
            return self._delete_webhook(p)
        if self.require_https and not url.startswith("https://"):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = p.get("secret_token")
        if secret is not None and not _SECRET_RE.fullmatch(str(secret)):
            raise bad_request("secret token contains unallowed characters")
        if p.get("drop_pending_updates"):
            self.updates.clear()
        self.webhook = {
            "url": url,
            "secret_token": secret,
            "allowed_updates": p.get("allowed_updates"),
            "max_connections": p.get("max_connections", 40),
            "drop_pending_updates": bool(p.get("drop_pending_updates")),
            "ip_address": p.get("ip_address"),
        }
        self._last_error = None
        self._notify()  # a long poll in progress ends
        if self.updates:
            self._start_delivery()
        return True

    def _delete_webhook(self, p: Json) -> bool:
        self.webhook = None
        if p.get("drop_pending_updates"):
            self.updates.clear()
        return True

    def _webhook_info(self) -> Json:
        info: Json = {
            "url": (self.webhook or {}).get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self.updates),
        }
        if self.webhook is not None:
            info["max_connections"] = self.webhook["max_connections"]
            if self.webhook["allowed_updates"] is not None:
                info["allowed_updates"] = self.webhook["allowed_updates"]
            if self.webhook["ip_address"]:
                info["ip_address"] = self.webhook["ip_address"]
        if self._last_error is not None:
            info["last_error_date"], info["last_error_message"] = self._last_error
        return info

    def _start_delivery(self) -> None:
        if self._delivery is None or self._delivery.done():
            self._delivery = asyncio.get_running_loop().create_task(self._deliver())

    async def _deliver(self) -> None:
        """POST queued updates to the webhook one by one; stop at the first failure."""
        while self.updates and self.webhook is not None and self._client is not None:
            update = self.updates[0]
            headers = {}
            if self.webhook["secret_token"]:
                headers["X-Telegram-Bot-Api-Secret-Token"] = str(self.webhook["secret_token"])
            try:
                async with self._client.post(self.webhook["url"], json=update,
                                             headers=headers) as resp:
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError) as error:
                self._last_error = (int(time.time()), f"Connection failed: {error}")
                return
            self.webhook_deliveries.append((int(update["update_id"]), status))
            if not 200 <= status < 300:
                self._last_error = (int(time.time()), f"Wrong response from the webhook: {status}")
                return
            if self.updates and self.updates[0] is update:
                self.updates.pop(0)

    # ---- others -----------------------------------------------------------------------------

    def _answer_callback(self, p: Json) -> bool:
        if not p.get("callback_query_id"):
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid")
        text = str(p.get("text") or "")
        if len(text) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        return True

    def _get_file(self, p: Json) -> Json:
        file_id = str(p.get("file_id") or "")
        if file_id not in self.files:
            raise bad_request("invalid file_id")
        path = self.file_paths.setdefault(file_id, f"documents/file_{len(self.file_paths)}.bin")
        meta = self.files[file_id]
        found: Json = {key: meta[key] for key in ("file_id", "file_unique_id", "file_size")
                       if key in meta}
        return {**found, "file_path": path}


# ---- update builders ------------------------------------------------------------------------


def user(user_id: int, first_name: str = "Иван", last_name: str | None = "Петров",
         username: str | None = "ivan_petrov", language_code: str = "ru") -> Json:
    """A Telegram User (a person)."""
    data: Json = {"id": user_id, "is_bot": False, "first_name": first_name}
    if last_name:
        data["last_name"] = last_name
    if username:
        data["username"] = username
    data["language_code"] = language_code
    return data


def private_chat(person: Json) -> Json:
    chat: Json = {"id": person["id"], "first_name": person["first_name"]}
    for key in ("last_name", "username"):
        if key in person:
            chat[key] = person[key]
    chat["type"] = "private"
    return chat


def message(chat_id: int, message_id: int, **fields: Any) -> Json:
    """A private Message from user `chat_id` (a `sender` keyword overrides the User)."""
    sender = fields.pop("sender", None) or user(chat_id)
    return {"message_id": message_id, "from": sender, "chat": private_chat(sender),
            "date": int(time.time()), **fields}


def text_update(chat_id: int, text: str, message_id: int = 1, **user_fields: Any) -> Json:
    """An Update with a private text message (`/command` texts get a bot_command entity)."""
    fields: Json = {"text": text}
    if text.startswith("/"):
        fields["entities"] = [{"offset": 0, "length": len(text.split()[0]), "type": "bot_command"}]
    sender = user(chat_id, **user_fields) if user_fields else None
    return {"message": message(chat_id, message_id, sender=sender, **fields)}


def contact_update(chat_id: int, phone: str, message_id: int = 1,
                   user_id: int | None = None) -> Json:
    """An Update with a shared contact; `user_id` defaults to the sender (their own number)."""
    contact: Json = {"phone_number": phone, "first_name": "Иван", "last_name": "Петров",
                     "user_id": chat_id if user_id is None else user_id}
    return {"message": message(chat_id, message_id, contact=contact)}


def callback_update(chat_id: int, data: str, bot_message: Json | None = None) -> Json:
    """An Update with a callback query (with the bot's message, or an inline one without)."""
    query: Json = {"id": f"{chat_id}{int(time.time() * 1000) % 10**7}", "from": user(chat_id),
                   "chat_instance": f"-{chat_id * 7919 % 10**19}", "data": data}
    if bot_message is not None:
        query["message"] = bot_message
    else:
        query["inline_message_id"] = f"AAAAA{chat_id}FakeInline"
    return {"callback_query": query}


def my_chat_member_update(chat_id: int, status: str, old_status: str = "member") -> Json:
    """An Update about the bot's own membership in a private chat ("kicked" = blocked)."""
    def member(state: str) -> Json:
        data: Json = {"user": bot_user(), "status": state}
        if state == "kicked":
            data["until_date"] = 0
        return data

    person = user(chat_id)
    return {"my_chat_member": {"chat": private_chat(person), "from": person,
                               "date": int(time.time()), "old_chat_member": member(old_status),
                               "new_chat_member": member(status)}}


def load_fixture(name: str, link_token: str | None = None) -> list[Json]:
    """Updates of `tests/fixtures/telegram/<name>.json` (LINK_TOKEN replaced if given)."""
    text = (FIXTURES / f"{name}.json").read_text(encoding="utf-8")
    if link_token is not None:
        text = text.replace(LINK_PLACEHOLDER, link_token)
    data = json.loads(text)
    assert isinstance(data, list)
    return data


def fixture_names() -> list[str]:
    return sorted(path.stem for path in FIXTURES.glob("*.json"))


@pytest_asyncio.fixture
async def telegram_api() -> AsyncIterator[FakeBotAPI]:
    """A running fake Bot API; give `telegram_api.url` to aiogram or `[telegram] api_base`."""
    fake = FakeBotAPI()
    await fake.start()
    yield fake
    await fake.stop()
