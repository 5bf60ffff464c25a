"""POST /api/clients/{id}/offers: 202 with the queued offer entry, the outbox worker sends it to a
real SMTP server (aiosmtpd), errors are refused before anything is queued."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from hub import offers
from hub.app import create_app
from hub.keys import BUS
from hub.models import Interaction, Outbox
from hub.outbox import OUTBOX
from tests.helpers import EMAIL_TOKEN
from tests.smtpserver import FROM, SmtpServer
from tests.web.test_templates_api import call, new_card


def email_settings(server: SmtpServer) -> dict[str, Any]:
    return {"email": {"inbound_token": EMAIL_TOKEN, "smtp_url": server.url,
                      "from_address": FROM}}


@pytest.fixture
def mail_client(make_client: Any, smtp: SmtpServer) -> Any:
    async def make() -> Any:
        return await make_client(**email_settings(smtp), company={"name": "ООО «Ромашка»"})
    return make


async def offer(client: Any, who: dict[str, Any], card_id: int, body: Any,
                status: int = 202) -> Any:
    return await call(client, who, "POST", f"/api/clients/{card_id}/offers", body, status)


async def timeline(client: Any, who: dict[str, Any], card_id: int) -> list[dict[str, Any]]:
    data = await call(client, who, "GET", f"/api/clients/{card_id}/timeline")
    items: list[dict[str, Any]] = data["items"]
    return items


async def test_an_offer_is_queued_then_sent_by_email_with_personal_content(
    mail_client: Any, manager: Any, smtp: SmtpServer
) -> None:
    client = await mail_client()
    bus = client.server.app[BUS]
    mine, other = bus.subscribe(manager["manager"].id), bus.subscribe(manager["manager"].id + 99)
    card = await new_card(client, manager, emails=["ivan@example.com"])
    entry = await offer(client, manager, card["id"], {"template": "price", "channel": "email"})
    assert entry["kind"] == "offer" and entry["direction"] == "out"
    assert entry["channel"] == "email" and entry["status"] == "queued"
    assert entry["client_id"] == card["id"]
    assert entry["text"] == "ООО «Ромашка»: прайс-лист для Иван Петров"
    meta = dict(entry["meta"])
    message_id = meta.pop("message_id")
    assert message_id.startswith("<") and message_id.endswith("@example.test>")
    price_list = {"name": "прайс-лист.csv", "content_type": "text/csv", "size": 191}
    assert meta == {"template": "price", "version": 0, "language": None,
                    "to": "ivan@example.com", "attachments": [price_list]}
    assert [i["id"] for i in await timeline(client, manager, card["id"])] == [entry["id"]]

    assert await client.server.app[OUTBOX].run_pass() == 1
    assert len(smtp.sink.received) == 1
    message = smtp.sink.received[0]
    assert message["To"] == "ivan@example.com" and message["Subject"] == entry["text"]
    plain = message.get_body(("plain",))
    assert plain is not None and "Здравствуйте, Иван Петров!" in plain.get_content()
    assert message.get_body(("html",)) is not None
    [attached] = message.iter_attachments()  # the price list, from templates/offers/price/
    assert attached.get_filename() == "прайс-лист.csv"
    assert attached.get_content().startswith("\ufeffТовар;Цена")
    row = await Outbox.get(interaction_id=entry["id"])
    assert row.message_id == message["Message-ID"] and row.status == "sent"
    [shown] = await timeline(client, manager, card["id"])
    assert shown["status"] == "sent" and shown["meta"]["message_id"] == row.message_id
    events = [json.loads(mine.queue.get_nowait() or "") for _ in range(mine.queue.qsize())]
    assert [e["type"] for e in events] == ["timeline.added", "offer.updated"]
    assert events[0]["interaction"] == entry
    assert events[1]["interaction"] == shown  # to the sending manager only
    assert other.queue.qsize() == 1


async def test_the_card_language_picks_the_variant(
    mail_client: Any, manager: Any, smtp: SmtpServer
) -> None:
    client = await mail_client()
    card = await new_card(client, manager, name="John", emails=["john@example.com"],
                          fields={"language": "en"}, phones=[])
    entry = await offer(client, manager, card["id"], {"template": "price", "channel": "email"})
    assert entry["meta"]["language"] == "en"
    await client.server.app[OUTBOX].run_pass()
    plain = smtp.sink.received[0].get_body(("plain",))
    assert plain is not None and plain.get_content().startswith("Dear John,")
    [attached] = smtp.sink.received[0].iter_attachments()  # the English price list
    assert attached.get_filename() == "price-list.csv"


async def test_an_attachment_gone_before_the_send_fails_the_offer_with_the_reason(
    mail_client: Any, manager: Any, smtp: SmtpServer, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = await mail_client()
    card = await new_card(client, manager, emails=["ivan@example.com"])
    entry = await offer(client, manager, card["id"], {"template": "price", "channel": "email"})
    monkeypatch.setattr(offers, "templates_root", lambda: tmp_path)  # the file was removed
    await client.server.app[OUTBOX].run_pass()
    failed = await Interaction.get(id=entry["id"])
    assert failed.status == "failed" and "is no longer there" in failed.meta["error"]
    assert smtp.sink.received == []
    assert (await Outbox.get(interaction_id=entry["id"])).attempts == 1  # not retried


async def test_refusals_queue_nothing(
    mail_client: Any, manager: Any, admin: Any
) -> None:
    client = await mail_client()
    no_mail = await new_card(client, manager)
    data = await offer(client, manager, no_mail["id"], {"template": "price", "channel": "email"},
                       422)
    assert "no e-mail address" in data["error"]["message"]
    card = await new_card(client, manager, emails=["ivan@example.com"], phones=["+79990001122"],
                          fields={"code": "abc"})
    await offer(client, manager, card["id"], {"template": "nope", "channel": "email"}, 404)
    data = await offer(client, manager, card["id"], {"template": "price", "channel": "telegram"},
                       422)
    assert "no Telegram chat" in data["error"]["message"]
    data = await offer(client, manager, card["id"], {"template": "price", "channel": "fax"}, 422)
    assert data["error"]["message"].startswith("channel")
    await offer(client, manager, card["id"], {"template": "price"}, 422)
    await offer(client, manager, 999999, {"template": "price", "channel": "email"}, 404)
    # renders for the sample card, not for this one: 422 with the reason
    await call(client, admin, "POST", "/api/templates", {
        "name": "coded", "subject": "s",
        "text": "{% if client.fields %}{{ client.fields.code.x }}{% endif %}"}, 201)
    data = await offer(client, manager, card["id"], {"template": "coded", "channel": "email"},
                       422)
    assert "the template does not render" in data["error"]["message"]
    assert await Outbox.all().count() == 0
    assert await Interaction.filter(kind="offer").count() == 0
    resp = await client.post(f"/api/clients/{card['id']}/offers",
                             json={"template": "price", "channel": "email"})
    assert resp.status == 401


async def test_without_smtp_settings_offers_are_refused(app_client: Any, manager: Any) -> None:
    card = await new_card(app_client, manager, emails=["ivan@example.com"])
    data = await offer(app_client, manager, card["id"], {"template": "price", "channel": "email"},
                       422)
    assert "not configured" in data["error"]["message"]
    assert await Outbox.all().count() == 0


async def test_the_background_worker_sends_through_the_running_app(
    aiohttp_client: Any, make_settings: Any, orm: None, manager: Any, smtp: SmtpServer
) -> None:
    client = await aiohttp_client(create_app(make_settings(**email_settings(smtp)),
                                             manage_db=False, background=True))
    card = await new_card(client, manager, emails=["ivan@example.com"])
    entry = await offer(client, manager, card["id"], {"template": "welcome", "channel": "email"})
    for _ in range(100):
        [shown] = await timeline(client, manager, card["id"])
        if shown["status"] != "queued":
            break
        await asyncio.sleep(0.05)
    assert shown["id"] == entry["id"] and shown["status"] == "sent"
    assert len(smtp.sink.received) == 1
    metrics = await (await client.get("/metrics")).text()
    assert 'hub_outbox_sends_total{kind="offer",outcome="sent"} 1.0' in metrics
