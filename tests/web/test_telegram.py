"""Telegram through the hub, against a local fake of the Bot API: every fixture update replayed
twice and out of order ends the same; people get cards, groups and service messages never;
the bot asks once for the phone; a shared own contact joins a caller's card (a recorded,
reversible merge); edits keep their history; blocked chats; buttons; deep links; webhook
security; polling mode."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import timedelta
from typing import Any

import pytest

from hub.app import create_app
from hub.db import now
from hub.models import Client, Identity, Interaction, LinkToken, Manager, Merge, TelegramChat
from hub.outbox import OUTBOX
from hub.scheduler import SCHEDULER
from tests.helpers import call_body, free_port, post_call
from tests.telegram_fake import TOKEN, FakeBotAPI, fixture_names, load_fixture
from tests.web.test_templates_api import call

SECRET = "tg-webhook-secret"
ANNA = 5123456789  # the user of most fixtures
PEOPLE = {"private_text", "private_text_no_username", "start_campaign", "contact_own",
          "contact_other", "photo", "document", "voice", "forward", "reply", "edited",
          "callback_query", "callback_query_no_message", "callback_query_inaccessible",
          "digits_in_text"}
NOBODY = {"group_message", "supergroup_message", "service_members", "my_chat_member_kicked",
          "my_chat_member_member"}


@pytest.fixture
def tg_client(make_client: Any, telegram_api: FakeBotAPI) -> Any:
    async def make(**telegram: Any) -> Any:
        settings = {"bot_token": TOKEN, "webhook_secret": SECRET, "api_base": telegram_api.url,
                    **telegram}
        return await make_client(telegram=settings, public_base_url="https://crm.example.test")
    return make


async def post(client: Any, update: dict[str, Any], secret: str | None = SECRET,
               status: int = 200) -> Any:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    resp = await client.post("/webhooks/telegram", data=json.dumps(update), headers=headers)
    data = await resp.json()
    assert resp.status == status, data
    return data


async def card_of(update: dict[str, Any]) -> int:
    """The card the update's sender is on."""
    body = update.get("message") or update.get("edited_message") or update["callback_query"]
    holder = await Identity.get(kind="telegram", value=str(body["from"]["id"]))
    return int(holder.client_id)  # type: ignore[attr-defined]


async def snapshot() -> dict[str, Any]:
    """What the database says, independent of ids and insertion order."""
    cards = {}
    for card in await Client.filter(merged_into=None):
        keys = sorted(await Identity.filter(client_id=card.id).values_list("kind", "value"))
        entries = sorted(
            (e.external_id or "", e.text, json.dumps(e.meta.get("history", []), sort_keys=True))
            for e in await Interaction.filter(client_id=card.id))
        cards[json.dumps(keys)] = (card.name, card.custom_fields, entries)
    chats = sorted(await TelegramChat.all().values_list("user_id", "status"))
    loose = await Interaction.filter(client_id=None).count()
    return {"cards": cards, "chats": chats, "loose": loose}


@pytest.mark.parametrize("case", fixture_names())
async def test_every_fixture_twice_and_shuffled_ends_as_in_order(
    tg_client: Any, case: str
) -> None:
    client = await tg_client(ask_phone=False)
    updates = load_fixture(case)
    for update in updates:
        await post(client, update)
    in_order = await snapshot()
    await Client.all().delete()
    await Interaction.all().delete()
    await TelegramChat.all().delete()
    from hub.models import ProcessedEvent

    await ProcessedEvent.all().delete()
    replayed = updates * 2
    random.Random(case).shuffle(replayed)
    for update in replayed:
        await post(client, update)
    assert await snapshot() == in_order
    cards = in_order["cards"]
    if case in PEOPLE:
        assert len(cards) == 1
    if case in NOBODY:
        assert cards == {}


async def test_a_private_message_makes_a_card_named_as_sent_and_the_bot_asks_once(
    tg_client: Any, telegram_api: FakeBotAPI
) -> None:
    client = await tg_client()
    [update] = load_fixture("private_text")
    sender = update["message"]["from"]
    await post(client, update)
    card = await Client.get(id=await card_of(update))
    assert card.name == f"{sender['first_name']} {sender['last_name']}"  # emoji and all
    keys = set(await Identity.filter(client_id=card.id).values_list("kind", "value"))
    assert ("telegram", str(sender["id"])) in keys
    assert ("telegram_username", sender["username"].lower()) in keys
    [asked] = telegram_api.sent(sender["id"])
    button = asked["reply_markup"]["keyboard"][0][0]
    assert button["request_contact"] is True
    # another message: the bot does not ask again
    again = dict(update, update_id=update["update_id"] + 100)
    again["message"] = dict(update["message"], message_id=update["message"]["message_id"] + 1,
                            text="ещё вопрос")
    await post(client, again)
    assert len(telegram_api.sent(sender["id"])) == 1
    assert await Interaction.filter(client_id=card.id).count() == 2


async def test_a_callers_card_and_the_telegram_card_become_one_when_the_phone_is_shared(
    tg_client: Any, manager: dict[str, Any]
) -> None:
    client = await tg_client()
    call = await post_call(client, call_body("ringing", "c-1", "8 (912) 345-67-89"))
    caller = (await call.json())["client_id"]
    [text] = load_fixture("private_text_no_username")
    [contact] = load_fixture("contact_own")
    text["message"]["from"]["id"] = text["message"]["chat"]["id"] = ANNA
    await post(client, text)
    wrote = {"client_id": await card_of(text)}
    assert wrote["client_id"] != caller
    await post(client, contact)
    merge = await Merge.get()
    assert merge.survivor_id == caller and merge.merged_id == wrote["client_id"]  # type: ignore[attr-defined]
    kinds = set(await Identity.filter(client_id=caller).values_list("kind", flat=True))
    assert {"phone", "telegram"} <= kinds
    history = await Interaction.filter(client_id=caller).values_list("kind", flat=True)
    assert sorted(history) == ["call", "telegram", "telegram"]  # both histories, one card
    gone = await client.get(f"/api/clients/{wrote['client_id']}", headers=manager["headers"])
    assert gone.status in (404, 410)
    # reversible
    undone = await client.post(f"/api/merges/{merge.id}/undo", headers=manager["headers"])
    assert undone.status == 200, await undone.text()


async def test_somebody_elses_contact_never_lands_on_the_senders_card(tg_client: Any) -> None:
    client = await tg_client()
    [update] = load_fixture("contact_other")
    await post(client, update)
    card = await card_of(update)
    kinds = set(await Identity.filter(client_id=card).values_list("kind", flat=True))
    assert "phone" not in kinds
    entry = await Interaction.get(client_id=card)
    assert entry.meta["contact"]["own"] is False


async def test_digits_in_a_message_are_not_taken_as_a_phone(tg_client: Any) -> None:
    client = await tg_client()
    [update] = load_fixture("digits_in_text")
    await post(client, update)
    assert not await Identity.filter(client_id=await card_of(update), kind="phone").exists()


async def test_files_forwards_and_replies_keep_their_references(tg_client: Any) -> None:
    client = await tg_client(ask_phone=False)
    for case in ("photo", "document", "voice", "forward", "reply"):
        for update in load_fixture(case):
            await post(client, update)
    entries = {e.external_id: e for e in await Interaction.all()}
    photo = next(e for e in entries.values() if e.meta.get("attachments", [{}])[0]
                 .get("content_type") == "image/jpeg")
    [best] = photo.meta["attachments"]
    assert best["ref"] and best["size"] > 0 and photo.text  # the largest size, the caption
    doc = next(e for e in entries.values()
               if e.meta.get("attachments", [{}])[0].get("content_type") == "application/pdf")
    assert doc.meta["attachments"][0]["name"].endswith(".pdf")
    assert any("forwarded_from" in e.meta for e in entries.values())
    assert any("reply_to" in e.meta for e in entries.values())
    assert any("duration" in e.meta for e in entries.values())


async def test_an_edit_changes_the_entry_and_keeps_the_earlier_text(tg_client: Any) -> None:
    client = await tg_client(ask_phone=False)
    original, edit = load_fixture("edited")
    await post(client, original)
    await post(client, edit)
    await post(client, edit)  # Telegram delivers it again: nothing changes
    [entry] = await Interaction.all()
    assert entry.text == edit["edited_message"]["text"]
    assert [h["text"] for h in entry.meta["history"]] == [original["message"]["text"]]


async def test_groups_and_service_messages_make_no_card(tg_client: Any) -> None:
    client = await tg_client()
    for case in ("group_message", "supergroup_message", "service_members"):
        for update in load_fixture(case):
            await post(client, update)
    assert await Client.all().count() == 0 and await Interaction.all().count() == 0


async def test_a_blocked_chat_is_marked_and_the_latest_change_wins(tg_client: Any) -> None:
    client = await tg_client()
    [kicked] = load_fixture("my_chat_member_kicked")
    [back] = load_fixture("my_chat_member_member")
    user = kicked["my_chat_member"]["chat"]["id"]
    await post(client, back)
    await post(client, kicked)  # older, arriving late: still reachable
    chat = await TelegramChat.get(user_id=user)
    latest = max((kicked, back), key=lambda u: u["my_chat_member"]["date"])
    assert chat.status == latest["my_chat_member"]["new_chat_member"]["status"]


async def test_buttons_are_answered_and_attributed(
    tg_client: Any, telegram_api: FakeBotAPI
) -> None:
    client = await tg_client(ask_phone=False)
    for case in ("callback_query", "callback_query_no_message", "callback_query_inaccessible"):
        [update] = load_fixture(case)
        assert await post(client, update) == {}
    answered = telegram_api.called("answerCallbackQuery")
    assert len(answered) == 3
    entries = await Interaction.all()
    assert len(entries) == 3 and all(e.client_id is not None for e in entries)  # type: ignore[attr-defined]


async def test_a_campaign_link_is_kept_as_the_lead_source(tg_client: Any) -> None:
    client = await tg_client(ask_phone=False)
    [update] = load_fixture("start_campaign")
    await post(client, update)
    card = await Client.get(id=await card_of(update))
    assert card.custom_fields["lead_source"] == "promo_autumn"


async def test_a_hub_link_binds_the_chat_to_the_card_it_was_made_for(
    tg_client: Any, manager: dict[str, Any]
) -> None:
    client = await tg_client(ask_phone=False)
    made = await call(client, manager, "POST", "/api/clients",
                      {"name": "Анна Смирнова", "emails": ["anna@example.ru"]}, 201)
    link = await call(client, manager, "POST", f"/api/clients/{made['id']}/telegram-link",
                      None, 201)
    assert link["url"].startswith("https://t.me/hub_test_bot?start=c-")
    token = link["url"].split("start=")[1]
    updates = load_fixture("start_link", link_token=token)
    for update in updates:
        await post(client, update)
    user = updates[0]["message"]["from"]["id"]
    holder = await Identity.get(kind="telegram", value=str(user))
    assert holder.client_id == made["id"]  # type: ignore[attr-defined]
    assert await Client.filter(merged_into=None).count() == 1
    assert (await LinkToken.get()).used_at is not None
    # used once: a second chat with the same link is told it is spent
    stranger = json.loads(json.dumps(updates[0]).replace(str(user), "777000111"))
    stranger["update_id"] += 1000
    await post(client, stranger)
    assert not await Identity.filter(value="777000111", client_id=made["id"]).exists()


async def test_a_manager_links_their_own_account(
    tg_client: Any, manager: dict[str, Any], telegram_api: FakeBotAPI
) -> None:
    client = await tg_client()
    link = await call(client, manager, "POST", "/api/managers/me/telegram-link", None, 201)
    token = link["url"].split("start=")[1]
    assert token.startswith("m-")
    [update] = load_fixture("start_link", link_token=token)
    await post(client, update)
    user = update["message"]["from"]["id"]
    assert (await Manager.get(id=manager["manager"].id)).telegram_user_id == user
    assert await Client.all().count() == 0  # a manager is not a client
    assert "Готово" in telegram_api.texts(user)[-1]
    await post(client, update)  # delivered again: nothing more happens, nothing more is said
    assert len(telegram_api.texts(user)) == 1


async def test_webhook_security_and_bad_input(
    tg_client: Any, make_client: Any, telegram_api: FakeBotAPI
) -> None:
    client = await tg_client()
    [update] = load_fixture("private_text")
    for secret in (None, "wrong"):
        err = await post(client, update, secret=secret, status=401)
        assert err["error"]["code"] == "bad_signature"
    assert await Interaction.all().count() == 0
    resp = await client.post("/webhooks/telegram", data=b"{not json",
                             headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
    assert resp.status == 400
    await post(client, {"update_id": "x"}, status=422)
    off = await make_client(telegram={"bot_token": TOKEN, "api_base": telegram_api.url})
    await post(off, update, status=404)  # no webhook secret: never open


async def test_polling_mode_reads_updates_without_a_public_address(
    aiohttp_client: Any, make_settings: Any, orm: None, telegram_api: FakeBotAPI
) -> None:
    settings = make_settings(telegram={"bot_token": TOKEN, "api_base": telegram_api.url,
                                       "mode": "polling", "ask_phone": False})
    app = create_app(settings, manage_db=False, background=True)
    await aiohttp_client(app)
    for update in load_fixture("private_text") + load_fixture("private_text"):  # twice
        telegram_api.push(json.loads(json.dumps(update)))
    for _ in range(200):
        if await Interaction.all().count():
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    assert await Interaction.all().count() == 1
    assert telegram_api.called("getUpdates")


# ---- outbound: managers' replies, offers, reminders and notices through the bot ----------------


async def telegram_card(client: Any) -> tuple[int, int]:
    """A client who wrote to the bot: (card id, chat id)."""
    [update] = load_fixture("private_text_no_username")
    await post(client, update)
    return await card_of(update), int(update["message"]["chat"]["id"])


async def reply(client: Any, manager: dict[str, Any], card: int, text: str,
                status: int = 202) -> Any:
    return await call(client, manager, "POST", f"/api/clients/{card}/messages",
                      {"channel": "telegram", "text": text}, status)


async def test_a_managers_reply_goes_out_through_the_bot_in_parts_within_limits(
    tg_client: Any, manager: dict[str, Any], telegram_api: FakeBotAPI
) -> None:
    client = await tg_client(ask_phone=False)
    card, chat = await telegram_card(client)
    telegram_api.enforce_limits = True  # the fake refuses >1 message a second per chat
    long_text = "\n\n".join(f"Абзац {i}. " + "слово " * 150 for i in range(9))  # ~8,000
    first = await reply(client, manager, card, "Здравствуйте! Да, есть в наличии.")
    second = await reply(client, manager, card, long_text)
    assert first["status"] == "queued" and first["kind"] == "telegram"
    assert await client.server.app[OUTBOX].run_pass() == 2
    texts = telegram_api.texts(chat)
    assert texts[0] == "Здравствуйте! Да, есть в наличии."
    assert len(texts) >= 3 and all(len(t) <= 4096 for t in texts)
    assert " ".join(" ".join(texts[1:]).split()) == " ".join(long_text.split())
    assert telegram_api.errors == []  # paced: Telegram never had to say "too many"
    for entry in (first, second):
        shown = await Interaction.get(id=entry["id"])
        assert shown.status == "sent" and shown.meta["telegram_response"].startswith("telegram")
    assert await Interaction.filter(client_id=card, direction="out").count() == 2  # no echo


async def test_too_many_requests_is_waited_out_and_the_message_sent_once(
    tg_client: Any, manager: dict[str, Any], telegram_api: FakeBotAPI
) -> None:
    client = await tg_client(ask_phone=False)
    card, chat = await telegram_card(client)
    entry = await reply(client, manager, card, "Счёт отправлен.")
    telegram_api.flood(1, retry_after=1)
    assert await client.server.app[OUTBOX].run_pass() == 1
    assert telegram_api.texts(chat) == ["Счёт отправлен."]
    assert [e[2] for e in telegram_api.errors] == [429]
    assert (await Interaction.get(id=entry["id"])).status == "sent"


async def test_a_client_who_blocked_the_bot_is_not_written_to_and_the_reason_is_shown(
    tg_client: Any, manager: dict[str, Any], telegram_api: FakeBotAPI
) -> None:
    client = await tg_client(ask_phone=False)
    card, chat = await telegram_card(client)
    entry = await reply(client, manager, card, "Добрый день!")
    telegram_api.block(chat)
    await client.server.app[OUTBOX].run_pass()
    failed = await Interaction.get(id=entry["id"])
    assert failed.status == "failed" and "blocked the bot" in failed.meta["error"]
    assert (await TelegramChat.get(user_id=chat)).status == "kicked"
    err = await reply(client, manager, card, "Ещё раз", status=422)
    assert "blocked the bot" in err["error"]["message"]


async def test_an_offer_goes_by_telegram_with_its_price_list(
    tg_client: Any, manager: dict[str, Any], telegram_api: FakeBotAPI
) -> None:
    client = await tg_client(ask_phone=False)
    card, chat = await telegram_card(client)
    entry = await call(client, manager, "POST", f"/api/clients/{card}/offers",
                       {"template": "price", "channel": "telegram"}, 202)
    assert entry["channel"] == "telegram" and entry["kind"] == "offer"
    assert await client.server.app[OUTBOX].run_pass() == 1
    sent = telegram_api.sent(chat)
    assert "прайс" in sent[0]["text"].lower()
    assert "document" in sent[-1] or len(telegram_api.called("sendDocument")) == 1
    assert (await Interaction.get(id=entry["id"])).status == "sent"


async def test_a_linked_manager_gets_reminders_and_new_messages_by_telegram(
    tg_client: Any, manager: dict[str, Any], telegram_api: FakeBotAPI
) -> None:
    client = await tg_client(ask_phone=False)
    link = await call(client, manager, "POST", "/api/managers/me/telegram-link", None, 201)
    [linking] = load_fixture("start_link", link_token=link["url"].split("start=")[1])
    await post(client, linking)
    mine = int(linking["message"]["from"]["id"])
    card, _ = await telegram_card(client)
    await call(client, manager, "PATCH", f"/api/clients/{card}",
               {"manager_id": manager["manager"].id})
    # a new message from the client: a notice to the manager's own chat
    [update] = load_fixture("digits_in_text")
    update["message"]["from"] = dict(update["message"]["from"], id=telegram_card_user())
    update["message"]["chat"] = dict(update["message"]["chat"], id=telegram_card_user())
    await post(client, update)
    for _ in range(100):
        if any("Новое сообщение" in t for t in telegram_api.texts(mine)):
            break
        await asyncio.sleep(0.05)
    assert any("Новое сообщение" in t for t in telegram_api.texts(mine))
    # a reminder: by Telegram, not by e-mail
    await call(client, manager, "POST", f"/api/clients/{card}/reminders",
               {"in_minutes": 1, "text": "перезвонить"}, 201)
    app = client.server.app
    later = now() + timedelta(minutes=2)
    await app[SCHEDULER].fire_due(later)
    assert await app[OUTBOX].run_pass(later) == 1
    assert any(t.startswith("Reminder:") for t in telegram_api.texts(mine))
    entry = await Interaction.get(kind="reminder")
    assert entry.channel == "telegram" and entry.status == "sent"


def telegram_card_user() -> int:
    [update] = load_fixture("private_text_no_username")
    return int(update["message"]["from"]["id"])


async def test_webhook_mode_registers_itself_and_telegram_delivers_to_it(
    aiohttp_server: Any, aiohttp_client: Any, make_settings: Any, orm: None,
    telegram_api: FakeBotAPI,
) -> None:
    port = free_port()
    settings = make_settings(
        public_base_url=f"http://127.0.0.1:{port}",
        telegram={"bot_token": TOKEN, "api_base": telegram_api.url, "webhook_secret": SECRET,
                  "ask_phone": False})
    app = create_app(settings, manage_db=False, background=True)
    await aiohttp_client(await aiohttp_server(app, port=port))
    for _ in range(100):
        if telegram_api.webhook:
            break
        await asyncio.sleep(0.05)
    assert telegram_api.webhook is not None
    assert telegram_api.webhook["url"] == f"http://127.0.0.1:{port}/webhooks/telegram"
    assert telegram_api.webhook["secret_token"] == SECRET
    [update] = load_fixture("private_text")
    telegram_api.push(update)  # Telegram posts it to the registered webhook, with the secret
    await telegram_api.wait_delivered()
    card = await Client.get(id=await card_of(update))
    assert card.custom_fields["language"] == update["message"]["from"]["language_code"]


async def test_a_telegram_reply_to_our_offer_is_linked_to_it(
    tg_client: Any, manager: dict[str, Any], telegram_api: FakeBotAPI
) -> None:
    client = await tg_client(ask_phone=False)
    card, chat = await telegram_card(client)
    offer = await call(client, manager, "POST", f"/api/clients/{card}/offers",
                       {"template": "welcome", "channel": "telegram"}, 202)
    assert await client.server.app[OUTBOX].run_pass() == 1
    sent = await Interaction.get(id=offer["id"])
    [first_part, *_] = sent.meta["telegram_message_ids"]
    [update] = load_fixture("private_text_no_username")
    answer = update["message"]
    answer.update(message_id=answer["message_id"] + 50, text="Беру, выставьте счёт",
                  reply_to_message={"message_id": first_part, "date": answer["date"],
                                    "chat": answer["chat"], "text": "…",
                                    "from": {"id": 123456, "is_bot": True,
                                             "first_name": "Hub"}})
    update["update_id"] += 50
    await post(client, update)
    reply = await Interaction.get(external_id=f"{chat}:{answer['message_id']}")
    assert reply.meta["in_reply_to"] == offer["id"] and reply.meta["reply_to_kind"] == "offer"
    await sent.refresh_from_db()
    assert sent.meta["reply_id"] == reply.id and "replied_at" in sent.meta
