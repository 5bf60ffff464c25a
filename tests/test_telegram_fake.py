"""The fake Bot API is faithful enough: aiogram 3 polls it, sends through it and sees its errors
as the real ones; raw HTTP in every body shape works; the update fixtures are valid Updates."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
)
from aiogram.types import (
    BufferedInputFile,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyParameters,
    Update,
)
from aiohttp import web

from tests.helpers import free_port
from tests.telegram_fake import (
    BOT_ID,
    TOKEN,
    FakeBotAPI,
    fixture_names,
    load_fixture,
    text_update,
)

CHAT = 5123456789


@pytest_asyncio.fixture
async def bot(telegram_api: FakeBotAPI) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(telegram_api.url))
    async with Bot(TOKEN, session=session) as client:
        yield client


async def api(fake: FakeBotAPI, method: str, token: str = TOKEN, **kwargs: Any) -> tuple[int, Any]:
    """A raw request to the fake: (status, decoded body); `kwargs` go to aiohttp."""
    verb = "GET" if "params" in kwargs and "data" not in kwargs else "POST"
    async with aiohttp.ClientSession() as session, session.request(
        verb, f"{fake.url}/bot{token}/{method}", **kwargs
    ) as resp:
        return resp.status, await resp.json()


async def test_polling_bot_receives_and_answers(telegram_api: FakeBotAPI, bot: Bot) -> None:
    dp = Dispatcher()
    answered = asyncio.Event()

    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer(f"echo: {message.text}")
        answered.set()

    polling = asyncio.create_task(
        dp.start_polling(bot, polling_timeout=1, handle_signals=False, close_bot_session=False))
    telegram_api.push_text(CHAT, "привет")
    await asyncio.wait_for(answered.wait(), 5)
    await dp.stop_polling()
    await polling
    assert telegram_api.texts(CHAT) == ["echo: привет"]
    methods = [call.method for call in telegram_api.calls]
    assert methods[0] == "getMe" and "getUpdates" in methods and "sendMessage" in methods


async def test_offset_confirms_updates(telegram_api: FakeBotAPI, bot: Bot) -> None:
    first, second, third = (telegram_api.push(text_update(CHAT, t, i)) for i, t in
                            enumerate(["a", "b", "c"], 1))
    got = await bot.get_updates(limit=2)
    assert [u.update_id for u in got] == [first["update_id"], second["update_id"]]
    got = await bot.get_updates(offset=second["update_id"] + 1)
    assert [u.update_id for u in got] == [third["update_id"]]
    assert await bot.get_updates(offset=third["update_id"] + 1, timeout=0) == []
    assert [u.update_id for u in await bot.get_updates()] == []


async def test_long_poll_wakes_on_push(telegram_api: FakeBotAPI, bot: Bot) -> None:
    started = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.2)
    telegram_api.push_text(CHAT, "hello")
    got = await asyncio.wait_for(poll, 3)
    assert [u.message.text for u in got if u.message] == ["hello"]
    assert time.monotonic() - started < 2
    started = time.monotonic()
    assert await bot.get_updates(offset=got[0].update_id + 1, timeout=1) == []
    assert time.monotonic() - started >= 0.9


async def test_wrong_token_and_unknown_method(telegram_api: FakeBotAPI) -> None:
    status, body = await api(telegram_api, "getMe", token="123456:wrong")
    assert (status, body) == (401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
    status, body = await api(telegram_api, "sendPigeon")
    assert status == 404 and body["ok"] is False


async def test_body_shapes_and_case(telegram_api: FakeBotAPI) -> None:
    status, me = await api(telegram_api, "GETME", params={})
    assert status == 200 and me["result"]["id"] == BOT_ID and me["result"]["is_bot"] is True
    markup = {"keyboard": [[{"text": "Отправить номер", "request_contact": True}]],
              "resize_keyboard": True, "one_time_keyboard": True}
    status, sent = await api(telegram_api, "sendmessage",
                             json={"chat_id": CHAT, "text": "json", "reply_markup": markup})
    assert status == 200 and sent["result"]["text"] == "json"
    status, second = await api(telegram_api, "sendMessage", data={
        "chat_id": str(CHAT), "text": "<b>form</b> &amp; more", "parse_mode": "HTML",
        "reply_markup": json.dumps(markup)})
    assert second["result"]["text"] == "form & more"
    assert second["result"]["message_id"] == sent["result"]["message_id"] + 1
    status, third = await api(telegram_api, "sendMessage", params={"chat_id": CHAT, "text": "get"})
    assert status == 200
    assert [p["chat_id"] for p in telegram_api.sent()] == [CHAT, CHAT, CHAT]
    assert [p["reply_markup"] for p in telegram_api.sent()[:2]] == [markup, markup]


async def test_message_ids_per_chat_and_replies(telegram_api: FakeBotAPI, bot: Bot) -> None:
    telegram_api.push(text_update(CHAT, "первое", 40))
    keyboard = ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text="Отправить номер", request_contact=True)]],
        resize_keyboard=True)
    sent = await bot.send_message(CHAT, "Поделитесь номером", reply_markup=keyboard,
                                  reply_parameters=ReplyParameters(message_id=40))
    assert sent.message_id == 41
    assert sent.reply_to_message is not None and sent.reply_to_message.text == "первое"
    other = await bot.send_message(777, "другой чат")
    assert other.message_id == 1
    params = telegram_api.sent(CHAT)[0]
    assert params["reply_markup"]["keyboard"][0][0]["request_contact"] is True
    assert params["reply_parameters"] == {"message_id": 40}


async def test_too_long_message_is_refused(telegram_api: FakeBotAPI, bot: Bot) -> None:
    await bot.send_message(CHAT, "я" * 4096)
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(CHAT, "я" * 4097)
    assert len(telegram_api.sent()) == 1


async def test_blocked_chat_is_forbidden(telegram_api: FakeBotAPI, bot: Bot) -> None:
    telegram_api.block(CHAT)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(CHAT, "hi")
    await bot.send_message(CHAT + 1, "others still get messages")
    status, body = await api(telegram_api, "sendMessage", json={"chat_id": CHAT, "text": "x"})
    assert (status, body) == (403, {"ok": False, "error_code": 403,
                                    "description": "Forbidden: bot was blocked by the user"})
    telegram_api.unblock(CHAT)
    await bot.send_message(CHAT, "back")
    assert telegram_api.texts() == ["others still get messages", "back"]


async def test_flood_gives_retry_after(telegram_api: FakeBotAPI, bot: Bot) -> None:
    telegram_api.flood(2, retry_after=7)
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(CHAT, "one")
    assert caught.value.retry_after == 7
    status, body = await api(telegram_api, "sendMessage", json={"chat_id": CHAT, "text": "x"})
    assert (status, body) == (429, {"ok": False, "error_code": 429,
                                    "description": "Too Many Requests: retry after 7",
                                    "parameters": {"retry_after": 7}})
    await bot.send_message(CHAT, "three")
    assert telegram_api.texts() == ["three"]
    assert [code for _, _, code in telegram_api.errors] == [429, 429]


async def test_enforced_rate_limits(telegram_api: FakeBotAPI, bot: Bot) -> None:
    telegram_api.enforce_limits = True
    await bot.send_message(CHAT, "first")
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(CHAT, "too soon")
    for chat in range(1, 30):
        await bot.send_message(chat, "fan-out")
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(31, "31st in a second")


async def test_documents_upload_and_file_id(telegram_api: FakeBotAPI, bot: Bot) -> None:
    upload = BufferedInputFile(b"%PDF-1.4 test", filename="offer.pdf")
    first = await bot.send_document(CHAT, upload, caption="Коммерческое предложение")
    assert first.document is not None and first.document.file_name == "offer.pdf"
    assert first.document.mime_type == "application/pdf" and first.document.file_size == 13
    again = await bot.send_document(CHAT + 1, first.document.file_id)
    assert again.document is not None and again.document.file_id == first.document.file_id
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_document(CHAT, "no-such-file-id")
    sent = telegram_api.sent()
    assert [p["chat_id"] for p in sent] == [CHAT, CHAT + 1]
    assert sent[0]["caption"] == "Коммерческое предложение"
    file = await bot.get_file(first.document.file_id)
    assert file.file_path
    data = await bot.download_file(file.file_path)
    assert data is not None and data.read() == b"%PDF-1.4 test"


async def test_webhook_settings_and_delivery(telegram_api: FakeBotAPI, bot: Bot) -> None:
    received: list[tuple[str | None, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"),
                         await request.json()))
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/tg", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        telegram_api.push_text(CHAT, "stale")
        url = f"http://127.0.0.1:{port}/tg"
        assert await bot.set_webhook(url, secret_token="s3cr-et_1", drop_pending_updates=True,
                                     allowed_updates=["message", "callback_query"])
        assert telegram_api.webhook == {
            "url": url, "secret_token": "s3cr-et_1", "drop_pending_updates": True,
            "allowed_updates": ["message", "callback_query"], "max_connections": 40,
            "ip_address": None}
        info = await bot.get_webhook_info()
        assert info.url == url and info.pending_update_count == 0
        with pytest.raises(TelegramConflictError):
            await bot.get_updates()
        pushed = telegram_api.push_text(CHAT, "via webhook")
        await telegram_api.wait_delivered()
        assert received == [("s3cr-et_1", pushed)]
        assert await bot.delete_webhook()
        assert (await bot.get_webhook_info()).url == ""
    finally:
        await runner.cleanup()


async def test_answer_callback_query(telegram_api: FakeBotAPI, bot: Bot) -> None:
    assert await bot.answer_callback_query("4382917364528193745", text="Готово", show_alert=True)
    assert telegram_api.called("answerCallbackQuery") == [
        {"callback_query_id": "4382917364528193745", "text": "Готово", "show_alert": True}]


@pytest.mark.parametrize("name", fixture_names())
def test_fixture_is_a_valid_update(name: str) -> None:
    updates = load_fixture(name, link_token="lnk_abc123")
    assert updates
    for raw in updates:
        update = Update.model_validate(raw)
        assert update.event_type != "unknown"
    assert "LINK_TOKEN" not in json.dumps(updates)


def test_all_cases_present() -> None:
    expected = {
        "private_text", "private_text_no_username", "start_campaign", "start_link",
        "contact_own", "contact_other", "photo", "document", "voice", "forward", "reply",
        "edited", "group_message", "supergroup_message", "service_members",
        "my_chat_member_kicked", "my_chat_member_member", "callback_query",
        "callback_query_no_message", "digits_in_text",
    }
    assert expected <= set(fixture_names())


async def test_second_poller_terminates_the_first(telegram_api: FakeBotAPI) -> None:
    first = asyncio.create_task(api(telegram_api, "getUpdates", data={"timeout": "5"}))
    await asyncio.sleep(0.2)
    second = asyncio.create_task(api(telegram_api, "getUpdates", data={"timeout": "5"}))
    status, body = await asyncio.wait_for(first, 3)
    assert status == 409 and "terminated by other getUpdates request" in body["description"]
    telegram_api.push_text(CHAT, "to the survivor")
    status, body = await asyncio.wait_for(second, 3)
    assert status == 200 and body["result"][0]["message"]["text"] == "to the survivor"
