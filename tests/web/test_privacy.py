"""Data protection through the API: an admin exports everything about one person (a card made by
real call and e-mail webhooks, with a card merged into it), erases it (nothing that names the
person is left in any table, the counts stay), and the audit log shows both; managers may not."""

from __future__ import annotations

import json
from typing import Any

import pytest_asyncio
from tortoise import connections

from hub import db
from hub.app import create_app
from hub.db import now
from hub.models import (
    AuditLog,
    Call,
    Client,
    Identity,
    Interaction,
    LinkToken,
    Outbox,
    Reminder,
    TelegramChat,
)
from hub.web import privacy_api
from tests.helpers import EMAIL_TOKEN, call_body, post_call

PHONE = "+79123456789"
EMAIL = "petr.ivanov@work.example"
TELEGRAM_ID = 555000111
RECORDING = "https://pbx.example/rec/petr-ivanov-call.mp3"
# what names the person: none of it may survive the erasure (compared lower-cased)
NEEDLES = ("Пётр", "Иванов", "9123456789", "912 345", EMAIL, "petr.ivanov", "кирпич",
           "Лесная", str(TELEGRAM_ID), "petr-ivanov-call")


@pytest_asyncio.fixture
async def hub(aiohttp_client: Any, make_settings: Any, orm: None) -> Any:
    """The hub with the data protection routes (added here until the app registers them)."""
    app = create_app(make_settings(), manage_db=False, background=False)
    paths = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    if "/api/audit" not in paths:
        app.add_routes(privacy_api.routes)
    return await aiohttp_client(app)


async def api(client: Any, who: dict[str, Any], method: str, path: str,
              body: Any = None, status: int = 200) -> Any:
    resp = await client.request(method, path, json=body, headers=who["headers"])
    assert resp.status == status, await resp.text()
    return await resp.json()


def mail(sender: str, subject: str, body: str, message_id: str) -> bytes:
    lines = [f"From: {sender}", "To: sales@example.test", f"Subject: {subject}",
             "Date: Mon, 30 Nov 2026 10:00:00 +0300", "MIME-Version: 1.0",
             "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit",
             f"Message-ID: {message_id}"]
    return ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode()


async def push_mail(client: Any, raw: bytes) -> dict[str, Any]:
    resp = await client.post("/webhooks/email", data=raw, headers={
        "Content-Type": "message/rfc822", "X-Hub-Token": EMAIL_TOKEN})
    data: dict[str, Any] = await resp.json()
    assert resp.status == 200, data
    return data


async def call(client: Any, call_id: str, *events: tuple[str, dict[str, Any]]) -> int:
    """One call through the generic webhook; the card's id."""
    client_id = 0
    for name, extra in events:
        resp = await post_call(client, call_body(name, call_id, phone=PHONE, **extra))
        assert resp.status == 200, await resp.text()
        client_id = (await resp.json())["client_id"]
    return client_id


async def person(client: Any, admin: dict[str, Any]) -> tuple[int, int]:
    """A card of Пётр Иванов: a call (answered, recorded) makes it, an e-mail makes a second
    card that is merged into it; a name, address, Telegram id, note, reminder, mail waiting to
    go out and a Telegram chat; an outgoing webhook subscription records events about it all.
    (survivor id, merged-away id)"""
    await api(client, admin, "POST", "/api/webhooks",
              {"url": "https://erp.example/hook", "events": ["*"]}, 201)
    card_id = await call(client, "pbx-1", ("ringing", {}), (
        "answered", {"timestamp": "2026-11-22T10:00:05+00:00"}), (
        "ended", {"timestamp": "2026-11-22T10:01:05+00:00", "duration": 60}), (
        "recording", {"timestamp": "2026-11-22T10:01:10+00:00", "recording_url": RECORDING}))
    await call(client, "pbx-2", ("ringing", {"timestamp": "2026-11-23T09:00:00+00:00"}), (
        "ended", {"timestamp": "2026-11-23T09:00:20+00:00", "status": "missed",
                  "duration": 0}))
    got = await push_mail(client, mail(f'"Пётр Иванов" <{EMAIL}>', "Заказ кирпича",
                                       "Хочу заказать кирпичи на дачу, ул. Лесная 5.",
                                       "<m1@mx.example>"))
    other_id = got["client_id"]
    assert got["created"] is True and other_id != card_id
    await api(client, admin, "PATCH", f"/api/clients/{card_id}", {
        "name": "Пётр Иванов", "fields": {"Адрес": "ул. Лесная 5"}, "telegram": [TELEGRAM_ID]})
    # the merge record keeps the card's values from before it, for an undo
    await api(client, admin, "POST", f"/api/clients/{card_id}/merge", {"other_id": other_id})
    await api(client, admin, "POST", f"/api/clients/{card_id}/notes",
              {"text": "Пётр просил перезвонить про кирпич"}, 201)
    await api(client, admin, "POST", f"/api/clients/{card_id}/reminders",
              {"in_minutes": 60, "text": "Перезвонить Петру Иванову про кирпич"}, 201)
    entry = await Interaction.get(source="email", external_id="<m1@mx.example>")
    when = now()
    await Outbox.create(interaction=entry, channel="email", to_address=EMAIL,
                        subject="Re: Заказ кирпича", text="Пётр, цены на кирпич во вложении",
                        html="<p>Пётр Иванов</p>", message_id="<o1@hub.example>",
                        status="queued", next_attempt_at=when, created_at=when, updated_at=when)
    await TelegramChat.create(user_id=TELEGRAM_ID, updated_at=when)
    await LinkToken.create(token_hash="x" * 64, kind="client", target_id=card_id,
                           created_at=when, expires_at=when, used_by=TELEGRAM_ID)
    return card_id, other_id


async def everything_in_the_database() -> list[tuple[str, str, str]]:
    """(table, column, value as text) of every non-empty value of every table."""
    conn = connections.get("default")
    if db.is_postgres(conn):
        rows = await conn.execute_query_dict(
            "SELECT table_name AS name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'")
    else:
        rows = await conn.execute_query_dict(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    tables = sorted(str(r["name"]) for r in rows)
    assert {"client", "identity", "interaction", "call", "outbox", "audit_log"} <= set(tables)
    found = []
    for table in tables:
        for row in await conn.execute_query_dict(f'SELECT * FROM "{table}"'):  # noqa: S608
            found += [(table, col, str(v)) for col, v in row.items() if v not in (None, "")]
    return found


def leaks(values: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """The values naming the person, written plainly or JSON-escaped."""
    forms = [n.lower() for n in NEEDLES] + [json.dumps(n)[1:-1].lower() for n in NEEDLES]
    return [v for v in values if any(f in v[2].lower() for f in forms)]


async def kinds_of(ids: list[int]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for kind in await Interaction.filter(client_id__in=ids).values_list("kind", flat=True):
        counts[str(kind)] = counts.get(str(kind), 0) + 1
    return counts


async def test_export_holds_the_whole_story_of_the_person(
    hub: Any, admin: dict[str, Any]
) -> None:
    card_id, other_id = await person(hub, admin)
    resp = await hub.get(f"/api/clients/{card_id}/export", headers=admin["headers"])
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Disposition"] == f'attachment; filename="client-{card_id}.json"'
    data = await resp.json()
    assert data["client"]["id"] == card_id and data["client"]["name"] == "Пётр Иванов"
    assert data["client"]["phones"] == [PHONE] and data["client"]["emails"] == [EMAIL]
    assert [c["id"] for c in data["merged_cards"]] == [other_id]
    assert {(i["kind"], i["value"]) for i in data["identities"]} == {
        ("phone", PHONE), ("email", EMAIL), ("telegram", str(TELEGRAM_ID))}
    kinds = [e["kind"] for e in data["timeline"]]
    assert sorted(kinds) == ["call", "call", "email", "note"]
    times = [e["occurred_at"] for e in data["timeline"]]
    assert times == sorted(times)  # oldest first
    assert any("кирпичи" in e["text"] for e in data["timeline"])
    assert sorted(c["call_id"] for c in data["calls"]) == ["pbx-1", "pbx-2"]
    assert {c["remote_phone"] for c in data["calls"]} == {PHONE}
    assert RECORDING in {c["recording_url"] for c in data["calls"]}
    texts = {r["text"] for r in data["reminders"]}  # the missed call left one too
    assert "Перезвонить Петру Иванову про кирпич" in texts and len(texts) == 2
    assert [(m["survivor_id"], m["merged_id"]) for m in data["merges"]] == [(card_id, other_id)]
    assert [o["to_address"] for o in data["outbox"]] == [EMAIL]
    assert [t["user_id"] for t in data["telegram_chats"]] == [TELEGRAM_ID]
    logged = await AuditLog.filter(action="client.exported").values()
    assert len(logged) == 1 and logged[0]["target_id"] == card_id
    assert logged[0]["manager_id"] == admin["manager"].id
    # a merged-away card answers as it does elsewhere
    gone = await hub.get(f"/api/clients/{other_id}/export", headers=admin["headers"])
    assert gone.status == 410 and (await gone.json())["merged_into"] == card_id
    missing = await hub.get("/api/clients/999999/export", headers=admin["headers"])
    assert missing.status == 404 and (await missing.json())["error"]["code"] == "not_found"


async def test_erase_leaves_nothing_that_names_the_person(
    hub: Any, admin: dict[str, Any]
) -> None:
    card_id, other_id = await person(hub, admin)
    found = {(table, column) for table, column, _ in leaks(await everything_in_the_database())}
    assert {("client", "name"), ("client", "search"), ("client", "custom_fields"),
            ("identity", "value"), ("interaction", "text"), ("interaction", "meta"),
            ("call", "remote_phone"), ("call", "recording_url"), ("call", "events"),
            ("outbox", "to_address"), ("reminder", "text"), ("merge", "moved"),
            ("telegram_chat", "user_id"), ("link_token", "used_by"),
            ("webhook_event", "payload")} <= found  # the scan works
    before = await kinds_of([card_id, other_id])
    cards_before = await Client.all().count()
    body = {"reason": "request of 2026-12-01 by e-mail", "confirm": card_id}
    data = await api(hub, admin, "POST", f"/api/clients/{card_id}/erase", body)
    assert data["client_id"] == card_id
    assert data["erased"] == {"cards": 2, "identities": 3, "interactions": 4, "calls": 2,
                              "outbox": 1, "reminders": 2, "telegram_chats": 1, "merges": 1,
                              "webhook_events": 6}

    assert leaks(await everything_in_the_database()) == []
    assert await kinds_of([card_id, other_id]) == before  # aggregate counts hold
    assert await Client.all().count() == cards_before
    card = await Client.get(id=card_id)
    assert card.name == "" and card.search == "" and list(card.custom_fields) == ["erased_at"]
    assert not await Identity.filter(client_id__in=[card_id, other_id]).exists()
    first = await Call.get(call_id="pbx-1")
    assert first.duration_s == 60 and first.remote_phone is None and first.recording_url is None
    entry = await Interaction.get(id=first.interaction_id)  # type: ignore[attr-defined]
    assert entry.meta == {"duration": 60, "erased": True} and entry.kind == "call"
    assert entry.status is not None and entry.channel == "generic"
    assert not await LinkToken.exists() and not await TelegramChat.exists()
    assert [r.text for r in await Reminder.all()] == ["", ""]
    # the card reads as an erased one, and the API still answers for it
    shown = await api(hub, admin, "GET", f"/api/clients/{card_id}")
    assert shown["name"] == "" and shown["phones"] == [] and shown["emails"] == []

    # the same number calling again is a stranger: a new card
    again = await call(hub, "pbx-3", ("ringing", {"timestamp": "2026-12-02T09:00:00+00:00"}))
    assert again not in (card_id, other_id)
    assert await Client.all().count() == cards_before + 1

    logged = await api(hub, admin, "GET", f"/api/audit?target_type=client&target_id={card_id}")
    assert [i["action"] for i in logged["items"]] == ["client.erased"]
    item = logged["items"][0]
    assert item["manager_id"] == admin["manager"].id and item["target_id"] == card_id
    assert item["detail"] == {**data["erased"], "reason": "request of 2026-12-01 by e-mail"}


async def test_erase_wants_the_id_confirmed_and_a_reason(hub: Any, admin: dict[str, Any]) -> None:
    card_id = await call(hub, "pbx-9", ("ringing", {}))
    wrong = await api(hub, admin, "POST", f"/api/clients/{card_id}/erase",
                      {"reason": "asked", "confirm": card_id + 1}, 422)
    assert wrong["error"]["code"] == "invalid" and wrong["error"]["field"] == "confirm"
    for body in ({"reason": " ", "confirm": card_id}, {"reason": "x" * 501, "confirm": card_id},
                 {"confirm": card_id}, {"reason": "asked", "confirm": str(card_id)}):
        await api(hub, admin, "POST", f"/api/clients/{card_id}/erase", body, 422)
    assert await Identity.filter(client_id=card_id).exists()  # nothing happened
    assert not await AuditLog.exists()
    await api(hub, admin, "POST", "/api/clients/999999/erase",
              {"reason": "asked", "confirm": 999999}, 404)


async def test_a_merged_away_card_is_erased_through_its_survivor(
    hub: Any, admin: dict[str, Any]
) -> None:
    card_id, other_id = await person(hub, admin)
    gone = await api(hub, admin, "POST", f"/api/clients/{other_id}/erase",
                     {"reason": "asked", "confirm": other_id}, 410)
    assert gone["merged_into"] == card_id and gone["error"]["code"] == "merged"
    assert await Identity.filter(client_id=card_id).count() == 3


async def test_only_admins_export_erase_and_read_the_audit_log(
    hub: Any, admin: dict[str, Any], manager: dict[str, Any]
) -> None:
    card_id = await call(hub, "pbx-5", ("ringing", {}))
    await api(hub, manager, "GET", f"/api/clients/{card_id}/export", status=403)
    await api(hub, manager, "POST", f"/api/clients/{card_id}/erase",
              {"reason": "asked", "confirm": card_id}, 403)
    await api(hub, manager, "GET", "/api/audit", status=403)
    resp = await hub.get("/api/audit")
    assert resp.status == 401
    assert await Identity.filter(client_id=card_id).exists()
    assert not await AuditLog.exists()


async def test_the_audit_log_pages_newest_first(hub: Any, admin: dict[str, Any]) -> None:
    first = await call(hub, "pbx-6", ("ringing", {}))
    for _ in range(3):
        await api(hub, admin, "GET", f"/api/clients/{first}/export")
    await api(hub, admin, "POST", f"/api/clients/{first}/erase",
              {"reason": "asked", "confirm": first})
    page = await api(hub, admin, "GET", "/api/audit?limit=2")
    assert [i["action"] for i in page["items"]] == ["client.erased", "client.exported"]
    assert page["next_cursor"]
    rest = await api(hub, admin, "GET", f"/api/audit?limit=2&cursor={page['next_cursor']}")
    assert [i["action"] for i in rest["items"]] == ["client.exported", "client.exported"]
    assert rest["next_cursor"] is None
    ids = [i["id"] for i in page["items"] + rest["items"]]
    assert ids == sorted(ids, reverse=True)
    none = await api(hub, admin, "GET", f"/api/audit?target_type=client&target_id={first + 1}")
    assert none == {"items": [], "next_cursor": None}
    await api(hub, admin, "GET", "/api/audit?cursor=bogus", status=400)
    await api(hub, admin, "GET", "/api/audit?limit=0", status=422)

