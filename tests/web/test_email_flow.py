"""E-mail through the hub: who the client is (From, Reply-To, web forms), what never makes a card
(bounces, auto-replies, lists, robots), threads and replies to our own mail, and a manager's
answer going out through a real SMTP server (aiosmtpd) in the client's thread."""

from __future__ import annotations

from typing import Any

import pytest

from hub.models import Client, Identity, Interaction, Outbox
from hub.outbox import OUTBOX
from tests.channels.test_mime import ALL_FIXTURES, FORM_SENDERS, FORM_SUBJECTS
from tests.helpers import EMAIL_TOKEN
from tests.smtpserver import FROM, SmtpServer
from tests.web.test_templates_api import call, new_card

FORM_ROBOT = "noreply@shop.example"


@pytest.fixture
def mail_client(make_client: Any, smtp: SmtpServer) -> Any:
    async def make() -> Any:
        return await make_client(email={
            "inbound_token": EMAIL_TOKEN, "smtp_url": smtp.url, "from_address": FROM,
            "form_senders": [FORM_ROBOT], "form_subjects": ["заявка с сайта"],
        })
    return make


def mail(sender: str, subject: str, body: str = "Добрый день!", message_id: str | None = None,
         **headers: str) -> bytes:
    lines = [f"From: {sender}", "To: sales@example.test", f"Subject: {subject}",
             "Date: Mon, 30 Nov 2026 10:00:00 +0300", "MIME-Version: 1.0",
             "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"]
    if message_id:
        lines.append(f"Message-ID: {message_id}")
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode()


async def push(client: Any, raw: bytes, status: int = 200) -> dict[str, Any]:
    resp = await client.post("/webhooks/email", data=raw, headers={
        "Content-Type": "message/rfc822", "X-Hub-Token": EMAIL_TOKEN})
    data: dict[str, Any] = await resp.json()
    assert resp.status == status, data
    return data


async def entry_of(message_id: str) -> Interaction:
    return await Interaction.get(source="email", external_id=message_id)


async def emails_of(client_id: int) -> set[str]:
    return set(await Identity.filter(client_id=client_id, kind="email")
               .values_list("value", flat=True))


async def test_reply_to_is_a_second_address_of_the_same_person(mail_client: Any) -> None:
    client = await mail_client()
    first = await push(client, mail('"Пётр Иванов" <petr@work.example>', "Вопрос",
                                    message_id="<a1@w>", Reply_To="petr.home@mail.example"))
    assert first["created"] is True
    assert await emails_of(first["client_id"]) == {"petr@work.example", "petr.home@mail.example"}
    later = await push(client, mail("petr.home@mail.example", "Ещё вопрос", message_id="<a2@w>"))
    assert later["client_id"] == first["client_id"] and later["created"] is False
    assert await Client.all().count() == 1


async def test_a_reply_to_naming_someone_elses_address_never_moves_mail_onto_their_card(
    mail_client: Any,
) -> None:
    client = await mail_client()
    owner = await push(client, mail("anna@example.ru", "Привет", message_id="<b1@x>"))
    stranger = await push(client, mail("mallory@evil.example", "Счёт", message_id="<b2@x>",
                                       Reply_To="anna@example.ru"))
    assert stranger["client_id"] != owner["client_id"] and stranger["created"] is True
    assert await emails_of(stranger["client_id"]) == {"mallory@evil.example"}


async def test_a_web_form_makes_the_card_of_the_person_in_it(mail_client: Any) -> None:
    client = await mail_client()
    body = ("Имя: Мария Соколова\nТелефон: 8 (912) 345-67-89\nE-mail: maria@example.ru\n"
            "Адрес доставки: Москва, ул. Ленина, 1\nКомментарий: перезвоните после 18:00\n")
    data = await push(client, mail(f"Сайт <{FORM_ROBOT}>", "Новая заявка", body,
                                   message_id="<form-1@shop>"))
    card = await Client.get(id=data["client_id"])
    assert card.name == "Мария Соколова"
    assert card.custom_fields["Адрес доставки"] == "Москва, ул. Ленина, 1"
    assert set(await Identity.filter(client_id=card.id).values_list("kind", "value")) == {
        ("phone", "+79123456789"), ("email", "maria@example.ru")}
    assert not await Identity.filter(value=FORM_ROBOT).exists()  # never the robot's card
    entry = await entry_of("<form-1@shop>")
    assert entry.status == "received" and entry.meta["category"] == "form"

    # she calls later from the same number written another way: the same card
    again = await push(client, mail("robot@other.example", "Заявка с сайта: обратный звонок",
                                    "Name: Maria\nPhone: +7 912 345 67 89\n",
                                    message_id="<form-2@shop>"))
    assert again["client_id"] == card.id and again["created"] is False
    await card.refresh_from_db()
    assert card.name == "Мария Соколова"  # a later form never overwrites what is there


@pytest.mark.parametrize("raw", [
    mail("Робот <mailer-daemon@mx.example>", "Недоставленное сообщение", "Адрес не найден"),
    mail("news@shop.example", "Скидки недели", List_Id="<news.shop.example>",
         List_Unsubscribe="<mailto:unsub@shop.example>", Precedence="bulk"),
    mail("ivan@example.ru", "Автоответ: Re: Прайс", Auto_Submitted="auto-replied"),
    mail("noreply@bank.example", "Выписка по счёту"),
], ids=["bounce", "list", "auto-reply", "robot"])
async def test_bounces_lists_auto_replies_and_robots_never_make_a_card(
    mail_client: Any, raw: bytes
) -> None:
    client = await mail_client()
    data = await push(client, raw)
    assert data["client_id"] is None and data["created"] is False
    assert await Client.all().count() == 0
    stored = await Interaction.get()
    assert stored.client_id is None and stored.status != "received"  # kept, on no card
    assert await Outbox.all().count() == 0  # and nothing of ours ever answers it


async def test_an_auto_reply_from_a_known_client_shows_on_their_card(mail_client: Any) -> None:
    client = await mail_client()
    known = await push(client, mail("ivan@example.ru", "Вопрос", message_id="<c1@x>"))
    data = await push(client, mail("ivan@example.ru", "Я в отпуске до 10 декабря",
                                   message_id="<c2@x>", Auto_Submitted="auto-replied"))
    assert data["client_id"] == known["client_id"] and data["created"] is False
    entry = await entry_of("<c2@x>")
    assert entry.client_id == known["client_id"] and entry.status == "auto_reply"


async def offered(
    mail_client: Any, manager: dict[str, Any], address: str
) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """A hub, a card with this address, and an offer sent to it: (client, card, offer entry)."""
    client = await mail_client()
    card = await new_card(client, manager, emails=[address])
    entry = await call(client, manager, "POST", f"/api/clients/{card['id']}/offers",
                       {"template": "price", "channel": "email"}, 202)
    assert await client.server.app[OUTBOX].run_pass() == 1
    return client, card, dict(entry)


def dsn(original_id: str, recipient: str, status: str = "5.1.1",
        action: str = "failed") -> bytes:
    text = f"""From: Mail Delivery System <MAILER-DAEMON@mx.example.test>
To: {FROM}
Subject: Undelivered Mail Returned to Sender
Date: Mon, 30 Nov 2026 11:00:00 +0000
Message-ID: <dsn-{status}-{original_id.strip('<>')}>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain; charset=us-ascii

The mail system could not deliver your message.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.test

Final-Recipient: rfc822; {recipient}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; 550 {status} <{recipient}>: Recipient address rejected: User unknown

--B
Content-Type: text/rfc822-headers

From: {FROM}
To: {recipient}
Subject: offer
Message-ID: {original_id}

--B--
"""
    return text.replace("\n", "\r\n").encode()


async def test_a_bounce_fails_the_offer_it_reports_and_makes_no_card(
    mail_client: Any, manager: dict[str, Any], smtp: SmtpServer
) -> None:
    client, card, offer = await offered(mail_client, manager, "gone@example.ru")
    message_id = offer["meta"]["message_id"]

    delayed = await push(client, dsn(message_id, "gone@example.ru", "4.4.1", "delayed"))
    assert delayed["client_id"] == card["id"]
    shown = await Interaction.get(id=offer["id"])
    assert shown.status == "sent" and shown.meta["delayed"]["status"] == "4.4.1"

    data = await push(client, dsn(message_id, "gone@example.ru"))
    assert data["client_id"] == card["id"] and data["created"] is False
    shown = await Interaction.get(id=offer["id"])
    assert shown.status == "failed" and shown.meta["error"].startswith("bounced: 5.1.1")
    assert shown.meta["bounce"]["recipient"] == "gone@example.ru"
    assert (await Outbox.get(interaction_id=offer["id"])).status == "failed"
    assert await Client.all().count() == 1  # no card for the mailer daemon
    assert not await Interaction.filter(client_id=card["id"], kind="email").exists()
    assert await client.server.app[OUTBOX].run_pass() == 0  # and it is never sent again
    assert len(smtp.sink.received) == 1


async def test_a_reply_to_our_offer_is_linked_to_it_on_the_same_card(
    mail_client: Any, manager: dict[str, Any], smtp: SmtpServer
) -> None:
    client, card, offer = await offered(mail_client, manager, "ivan@example.ru")
    offer_id = offer["meta"]["message_id"]
    reply = await push(client, mail("Иван <ivan@example.ru>", "Re: прайс", "Беру!",
                                    message_id="<r1@ivan>", In_Reply_To=offer_id,
                                    References=offer_id))
    assert reply["client_id"] == card["id"]
    entry = await entry_of("<r1@ivan>")
    assert entry.meta["in_reply_to"] == offer["id"] and entry.meta["thread_id"] == offer["id"]
    assert entry.meta["reply_to_kind"] == "offer"
    shown = await Interaction.get(id=offer["id"])
    assert shown.meta["reply_id"] == entry.id and "replied_at" in shown.meta

    # the next message in the thread names the reply; the thread is still the offer's
    more = await push(client, mail("ivan@example.ru", "Re: прайс", "И ещё", message_id="<r2@ivan>",
                                   In_Reply_To="<r1@ivan>", References=f"{offer_id} <r1@ivan>"))
    assert more["client_id"] == card["id"]
    second = await entry_of("<r2@ivan>")
    assert second.meta["in_reply_to"] == entry.id and second.meta["thread_id"] == offer["id"]


async def test_a_reference_never_folds_another_sender_into_the_card(
    mail_client: Any, manager: dict[str, Any], smtp: SmtpServer
) -> None:
    client, card, offer = await offered(mail_client, manager, "ivan@example.ru")
    offer_id = offer["meta"]["message_id"]
    other = await push(client, mail("boss@other.example", "Re: прайс", message_id="<o1@x>",
                                    In_Reply_To=offer_id, References=offer_id))
    assert other["client_id"] != card["id"] and other["created"] is True
    entry = await entry_of("<o1@x>")
    assert "in_reply_to" not in entry.meta
    assert "reply_id" not in (await Interaction.get(id=offer["id"])).meta


async def test_a_managers_answer_goes_out_in_the_clients_thread(
    mail_client: Any, manager: dict[str, Any], smtp: SmtpServer
) -> None:
    client = await mail_client()
    first = await push(client, mail("Иван <Ivan@Example.ru>", "Доставка в Казань",
                                    message_id="<q1@ivan>", References="<q0@ivan>"))
    # an auto-reply that came later is never what we answer
    await push(client, mail("ivan@example.ru", "Auto: out of office", message_id="<q2@ivan>",
                            Auto_Submitted="auto-replied"))
    card_id = first["client_id"]
    entry = await call(client, manager, "POST", f"/api/clients/{card_id}/messages",
                       {"channel": "email", "text": "Да, доставим за 3 дня."}, 202)
    assert entry["kind"] == "email" and entry["direction"] == "out"
    assert entry["status"] == "queued" and entry["text"] == "Да, доставим за 3 дня."
    message_id = entry["meta"]["message_id"]
    assert entry["meta"]["subject"] == "Re: Доставка в Казань"

    assert await client.server.app[OUTBOX].run_pass() == 1
    [sent] = smtp.sink.received
    assert sent["To"] == "ivan@example.ru" and sent["Subject"] == "Re: Доставка в Казань"
    assert sent["In-Reply-To"] == "<q1@ivan>" and sent["References"] == "<q0@ivan> <q1@ivan>"
    assert sent["Message-ID"] == message_id
    shown = await Interaction.get(id=entry["id"])
    assert shown.status == "sent" and shown.meta["message_id"] == message_id

    # the client's answer to it threads under it
    back = await push(client, mail("ivan@example.ru", "Re: Доставка в Казань", "Спасибо",
                                   message_id="<q3@ivan>", In_Reply_To=message_id))
    assert back["client_id"] == card_id
    assert (await entry_of("<q3@ivan>")).meta["in_reply_to"] == entry["id"]


async def test_a_message_needs_an_address_and_a_known_channel(
    mail_client: Any, manager: dict[str, Any]
) -> None:
    client = await mail_client()
    card = await new_card(client, manager)  # a phone only
    path = f"/api/clients/{card['id']}/messages"
    err = await call(client, manager, "POST", path, {"channel": "email", "text": "hi"}, 422)
    assert "no e-mail address" in err["error"]["message"]
    await call(client, manager, "POST", path, {"channel": "fax", "text": "hi"}, 422)
    await call(client, manager, "POST", path, {"channel": "email", "text": "   "}, 422)
    await call(client, manager, "POST", path,
               {"channel": "email", "text": "x", "subject": "a\r\nBcc: x@y"}, 422)
    await call(client, manager, "POST", "/api/clients/999999/messages",
               {"channel": "email", "text": "hi"}, 404)
    assert await Outbox.all().count() == 0


async def test_the_same_message_twice_changes_nothing(mail_client: Any) -> None:
    client = await mail_client()
    raw = mail("ivan@example.ru", "Вопрос", message_id="<d1@x>")
    first = await push(client, raw)
    again = await push(client, raw)
    assert again["duplicate"] is True and again["client_id"] == first["client_id"]
    assert await Interaction.all().count() == 1


@pytest.mark.parametrize(("folder", "raw"), [(p.parent.name, p.read_bytes()) for p in ALL_FIXTURES],
                         ids=[f"{p.parent.name}/{p.stem}" for p in ALL_FIXTURES])
async def test_every_fixture_lands_once_and_only_people_get_cards(
    make_client: Any, folder: str, raw: bytes
) -> None:
    client = await make_client(email={"inbound_token": EMAIL_TOKEN,
                                      "form_senders": sorted(FORM_SENDERS),
                                      "form_subjects": sorted(FORM_SUBJECTS)})
    data = await push(client, raw)
    again = await push(client, raw)
    assert again["duplicate"] is True and again["client_id"] == data["client_id"]
    assert await Interaction.all().count() == 1
    person = folder in ("message", "broken", "form")
    assert data["created"] is person
    assert (await Client.all().count() == 1) is person


async def test_a_reply_fetched_before_the_message_it_answers_is_linked_all_the_same(
    mail_client: Any,
) -> None:
    client = await mail_client()
    await push(client, mail("ivan@example.ru", "Re: Вопрос", "И ещё", message_id="<e2@x>",
                            In_Reply_To="<e1@x>", References="<e1@x>"))
    await push(client, mail("ivan@example.ru", "Вопрос", message_id="<e1@x>"))
    first, reply = await entry_of("<e1@x>"), await entry_of("<e2@x>")
    assert reply.meta["in_reply_to"] == first.id and reply.meta["thread_id"] == first.id
    assert "in_reply_to" not in first.meta


async def test_a_bounced_offer_can_be_sent_again_once_the_mailbox_is_back(
    mail_client: Any, manager: dict[str, Any], smtp: SmtpServer
) -> None:
    client, card, offer = await offered(mail_client, manager, "back@example.ru")
    await push(client, dsn(offer["meta"]["message_id"], "back@example.ru"))
    path = f"/api/interactions/{offer['id']}/retry"
    again = await call(client, manager, "POST", path, None, 202)
    assert again["status"] == "queued" and "error" not in again["meta"]
    assert again["meta"]["message_id"] == offer["meta"]["message_id"]  # the same mail
    await call(client, manager, "POST", path, None, 409)  # queued: nothing to retry
    assert await client.server.app[OUTBOX].run_pass() == 1
    assert len(smtp.sink.received) == 2
    assert (await Interaction.get(id=offer["id"])).status == "sent"
    await call(client, manager, "POST", path, None, 409)
    await call(client, manager, "POST", "/api/interactions/999999/retry", None, 404)
