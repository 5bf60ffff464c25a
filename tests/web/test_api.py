"""The manager API's cards, timeline, notes, lookup, managers, reminders, health and metrics."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub.models import Interaction, Manager, Reminder, ReminderStatus
from tests.helpers import call_body, post_call


async def expect_error(resp: Any, status: int) -> dict[str, Any]:
    """The contract's JSON error with the given status."""
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    body: dict[str, Any] = await resp.json()
    assert set(body["error"]) >= ERROR_KEYS, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body


ERROR_KEYS = {"code", "message"}


async def create(client: Any, who: dict[str, Any], **body: Any) -> dict[str, Any]:
    """POST /api/clients; the new card."""
    resp = await client.post("/api/clients", json=body, headers=who["headers"])
    assert resp.status == 201, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


async def get_json(client: Any, who: dict[str, Any], path: str, status: int = 200) -> Any:
    resp = await client.get(path, headers=who["headers"])
    assert resp.status == status, await resp.text()
    return await resp.json()


async def post_json(
    client: Any, who: dict[str, Any], path: str, body: Any = None, status: int = 200
) -> Any:
    resp = await client.post(path, json=body, headers=who["headers"])
    assert resp.status == status, await resp.text()
    return await resp.json()


async def missed_call(client: Any, call_id: str, phone: str) -> int:
    """A ringing then unanswered inbound call through the generic webhook; the card's id."""
    resp = await post_call(client, call_body("ringing", call_id, phone=phone))
    assert resp.status == 200, await resp.text()
    ended = call_body(
        "ended",
        call_id,
        phone=phone,
        status="missed",
        duration=0,
        timestamp="2026-11-22T10:00:30+00:00",
    )
    resp = await post_call(client, ended)
    assert resp.status == 200, await resp.text()
    client_id: int = (await resp.json())["client_id"]
    return client_id


# cards


async def test_create_stores_phones_as_e164(app_client: Any, manager: dict[str, Any]) -> None:
    card = await create(
        app_client,
        manager,
        name=" Анна Смирнова ",
        status="hot",
        phones=["8 (912) 345-67-89", "+7 912 345 67 80", "79123456781", "+7 912 345-67-89"],
        emails=["Anna.S@Example.COM"],
        telegram=[123456, "@Anna_S"],
        manager_id=manager["manager"].id,
        fields={"source": "site"},
    )
    assert card["phones"] == ["+79123456789", "+79123456780", "+79123456781"]
    assert card["emails"] == ["anna.s@example.com"]
    assert card["telegram"] == [123456, "@anna_s"]
    assert card["name"] == "Анна Смирнова"
    assert card["status"] == "hot" and card["manager_id"] == manager["manager"].id
    assert card["fields"] == {"source": "site"}
    assert card["last_interaction_at"] is None
    assert datetime.fromisoformat(card["created_at"]).tzinfo is not None
    assert await get_json(app_client, manager, f"/api/clients/{card['id']}") == card


async def test_create_defaults(app_client: Any, manager: dict[str, Any]) -> None:
    card = await create(app_client, manager)
    assert card["name"] == "" and card["status"] == "new" and card["manager_id"] is None
    assert card["phones"] == card["emails"] == card["telegram"] == []


async def test_concurrent_creates_of_one_identity(app_client: Any, manager: dict[str, Any]) -> None:
    answers = await asyncio.gather(
        *(
            app_client.post("/api/clients", json={"phones": [phone]}, headers=manager["headers"])
            for phone in ("+79123456789", "89123456789", "8 912 345-67-89", "79123456789")
        )
    )
    assert sorted(r.status for r in answers) == [201, 409, 409, 409]
    assert len((await get_json(app_client, manager, "/api/clients"))["items"]) == 1


async def test_identity_held_by_another_card_is_409(
    app_client: Any, manager: dict[str, Any]
) -> None:
    holder = await create(app_client, manager, emails=["a@example.com"], telegram=["@someone"])
    for body in ({"emails": ["A@EXAMPLE.com"]}, {"telegram": ["@SomeOne"]}):
        resp = await app_client.post("/api/clients", json=body, headers=manager["headers"])
        err = (await expect_error(resp, 409))["error"]
        assert err["code"] == "conflict" and err["client_id"] == holder["id"]
    listed = await get_json(app_client, manager, "/api/clients")
    assert [c["id"] for c in listed["items"]] == [holder["id"]]  # the failed create left nothing


async def test_create_with_unknown_manager_is_422(app_client: Any, manager: dict[str, Any]) -> None:
    resp = await app_client.post(
        "/api/clients", json={"manager_id": 999}, headers=manager["headers"]
    )
    assert (await expect_error(resp, 422))["error"]["field"] == "manager_id"


async def test_get_unknown_card_is_404(app_client: Any, manager: dict[str, Any]) -> None:
    resp = await app_client.get("/api/clients/424242", headers=manager["headers"])
    assert (await expect_error(resp, 404))["error"]["code"] == "not_found"


async def test_patch_replaces_lists_and_merges_fields(
    app_client: Any, manager: dict[str, Any]
) -> None:
    card = await create(
        app_client,
        manager,
        name="A",
        phones=["+79123456789", "+79123456780"],
        emails=["a@example.com"],
        fields={"keep": 1, "drop": 2, "change": 3},
    )
    resp = await app_client.patch(
        f"/api/clients/{card['id']}",
        headers=manager["headers"],
        json={
            "name": "B",
            "status": "vip",
            "phones": ["8 912 345 67 81"],
            "fields": {"drop": None, "change": "new", "add": [1]},
        },
    )
    assert resp.status == 200, await resp.text()
    got = await resp.json()
    assert got["name"] == "B" and got["status"] == "vip"
    assert got["phones"] == ["+79123456781"]
    assert got["emails"] == ["a@example.com"]  # not sent: unchanged
    assert got["fields"] == {"keep": 1, "change": "new", "add": [1]}
    assert await get_json(app_client, manager, f"/api/clients/{card['id']}") == got
    # the released number may now go to another card
    await create(app_client, manager, phones=["+79123456789"])


async def test_patch_clears_lists_and_manager(app_client: Any, manager: dict[str, Any]) -> None:
    card = await create(
        app_client,
        manager,
        emails=["a@example.com"],
        telegram=[77],
        manager_id=manager["manager"].id,
    )
    resp = await app_client.patch(
        f"/api/clients/{card['id']}",
        headers=manager["headers"],
        json={"emails": [], "telegram": [], "manager_id": None},
    )
    got = await resp.json()
    assert got["emails"] == [] and got["telegram"] == [] and got["manager_id"] is None


async def test_patch_manager_must_exist(app_client: Any, manager: dict[str, Any]) -> None:
    card = await create(app_client, manager)
    resp = await app_client.patch(
        f"/api/clients/{card['id']}", headers=manager["headers"], json={"manager_id": 31337}
    )
    assert (await expect_error(resp, 422))["error"]["field"] == "manager_id"
    resp = await app_client.patch(
        f"/api/clients/{card['id']}",
        headers=manager["headers"],
        json={"manager_id": manager["manager"].id},
    )
    assert (await resp.json())["manager_id"] == manager["manager"].id


async def test_patch_conflict_changes_nothing(app_client: Any, manager: dict[str, Any]) -> None:
    holder = await create(app_client, manager, phones=["+79123456789"])
    card = await create(app_client, manager, name="A", phones=["+79123456780"])
    resp = await app_client.patch(
        f"/api/clients/{card['id']}",
        headers=manager["headers"],
        json={"name": "Changed", "phones": ["89123456789"]},
    )
    assert (await expect_error(resp, 409))["error"]["client_id"] == holder["id"]
    assert await get_json(app_client, manager, f"/api/clients/{card['id']}") == card


async def test_patch_bad_input(app_client: Any, manager: dict[str, Any]) -> None:
    card = await create(app_client, manager)
    for body, field in (
        ({"status": "gone"}, "status"),
        ({"emails": ["x"]}, "emails"),
        ({"phones": ["12"]}, "phones"),
        ({"id": 5}, "id"),
    ):
        resp = await app_client.patch(
            f"/api/clients/{card['id']}", json=body, headers=manager["headers"]
        )
        assert (await expect_error(resp, 422))["error"]["message"].startswith(field)
    resp = await app_client.patch("/api/clients/999", json={}, headers=manager["headers"])
    await expect_error(resp, 404)


# timeline and notes


async def test_notes_land_on_the_timeline_newest_first(
    app_client: Any, manager: dict[str, Any]
) -> None:
    card = await create(app_client, manager)
    first = await post_json(
        app_client, manager, f"/api/clients/{card['id']}/notes", {"text": "first"}, status=201
    )
    second = await post_json(
        app_client, manager, f"/api/clients/{card['id']}/notes", {"text": "second"}, status=201
    )
    assert first["kind"] == "note" and first["direction"] is None and first["text"] == "first"
    assert first["meta"]["author"] == "Olga"
    page = await get_json(app_client, manager, f"/api/clients/{card['id']}/timeline")
    assert [i["id"] for i in page["items"]] == [second["id"], first["id"]]
    assert page["next_cursor"] is None
    assert set(page["items"][0]) >= {
        "id",
        "kind",
        "direction",
        "channel",
        "occurred_at",
        "status",
        "text",
        "meta",
    }


async def test_note_bad_input(app_client: Any, manager: dict[str, Any]) -> None:
    card = await create(app_client, manager)
    for body in ({}, {"text": ""}, {"text": 5}, {"text": "x", "pinned": True}):
        resp = await app_client.post(
            f"/api/clients/{card['id']}/notes", json=body, headers=manager["headers"]
        )
        await expect_error(resp, 422)
    resp = await app_client.post(
        "/api/clients/999/notes", json={"text": "x"}, headers=manager["headers"]
    )
    await expect_error(resp, 404)


async def test_timeline_paging_is_stable_on_equal_times(
    app_client: Any, manager: dict[str, Any]
) -> None:
    card = await create(app_client, manager)
    same = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    times = [same - timedelta(minutes=5), same, same, same, same, same + timedelta(minutes=5), same]
    for n, at in enumerate(times):
        await Interaction.create(
            client_id=card["id"],
            kind="note",
            channel="hub",
            occurred_at=at,
            text=f"n{n}",
            created_at=at,
            updated_at=at,
        )
    seen: list[dict[str, Any]] = []
    cursor = ""
    for _ in range(10):
        page = await get_json(
            app_client, manager, f"/api/clients/{card['id']}/timeline?limit=2&cursor={cursor}"
        )
        assert len(page["items"]) <= 2
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(times)
    assert len({i["id"] for i in seen}) == len(times)
    keys = [(datetime.fromisoformat(i["occurred_at"]), i["id"]) for i in seen]
    assert keys == sorted(keys, reverse=True)


async def test_timeline_rejects_bad_cursor_and_limit(
    app_client: Any, manager: dict[str, Any]
) -> None:
    card = await create(app_client, manager)
    base = f"/api/clients/{card['id']}/timeline"
    forged = (
        "garbage!!",
        "Zm9v",
        "bm90LWEtZGF0ZXwx",  # "foo", "not-a-date|1"
        "MjAyNi0wMS0wMVQwMDowMDowMHwx",  # a naive time: "2026-01-01T00:00:00|1"
        "MjAyNi0wMS0wMVQwMDowMDowMCswMDowMHw5OTk5OTk5OTk5OTk5OTk5OTk5OTk5",
    )  # id past int64
    for cursor in forged:
        resp = await app_client.get(f"{base}?cursor={cursor}", headers=manager["headers"])
        assert (await expect_error(resp, 400))["error"]["code"] == "malformed"
    for limit in ("0", "-1", "1000", "x"):
        resp = await app_client.get(f"{base}?limit={limit}", headers=manager["headers"])
        await expect_error(resp, 422)
    await expect_error(
        await app_client.get("/api/clients/999/timeline", headers=manager["headers"]), 404
    )


async def test_call_is_one_entry_that_moves_to_missed(
    app_client: Any, manager: dict[str, Any]
) -> None:
    client_id = await missed_call(app_client, "call-1", "8 912 345 67 89")
    page = await get_json(app_client, manager, f"/api/clients/{client_id}/timeline")
    calls = [i for i in page["items"] if i["kind"] == "call"]
    assert len(calls) == 1 and calls[0]["status"] == "missed" and calls[0]["direction"] == "in"
    card = await get_json(app_client, manager, f"/api/clients/{client_id}")
    assert card["phones"] == ["+79123456789"] and card["last_interaction_at"] is not None


# lookup


async def test_lookup_by_any_contact_form(app_client: Any, manager: dict[str, Any]) -> None:
    card = await create(
        app_client,
        manager,
        phones=["+79123456789"],
        emails=["Anna@Example.com"],
        telegram=[5550001, "@anna_s"],
    )
    queries = [
        "phone=89123456789",
        "phone=%2B7%20912%20345-67-89",
        "phone=8(912)3456789",
        "phone=79123456789",
        "email=ANNA@example.COM",
        "email=%20anna@example.com%20",
        "telegram=5550001",
        "telegram=%40anna_s",
        "telegram=%40ANNA_S",
        "telegram=anna_s",
    ]
    for query in queries:
        got = await get_json(app_client, manager, f"/api/lookup?{query}")
        assert got["id"] == card["id"], query


async def test_lookup_failures(app_client: Any, manager: dict[str, Any]) -> None:
    await create(app_client, manager, phones=["+79123456789"])
    for query, status in (
        ("", 422),
        ("phone=", 422),
        ("phone=not-a-phone", 422),
        ("email=nobody", 422),
        ("telegram=@x", 422),
        ("phone=89123456780", 404),
        ("email=else@example.com", 404),
        ("telegram=42", 404),
        ("telegram=%40nobody_here", 404),
    ):
        resp = await app_client.get(f"/api/lookup?{query}", headers=manager["headers"])
        await expect_error(resp, status)


# managers


async def test_managers_list_and_admin_create(
    app_client: Any, manager: dict[str, Any], admin: dict[str, Any]
) -> None:
    listed = await get_json(app_client, manager, "/api/managers")
    assert [m["name"] for m in listed["items"]] == ["Olga", "Admin"]
    olga = listed["items"][0]
    assert olga == {
        "id": manager["manager"].id,
        "name": "Olga",
        "email": "olga@example.com",
        "extension": "101",
        "phone": None,
        "role": "manager",
    }
    made = await post_json(
        app_client,
        admin,
        "/api/managers",
        {
            "name": "Ivan",
            "email": "Ivan@Example.com",
            "extension": "102",
            "phone": "8 912 000 00 01",
            "role": "admin",
        },
        status=201,
    )
    assert made["email"] == "ivan@example.com" and made["phone"] == "+79120000001"
    assert made["role"] == "admin" and made["token"].startswith("hub_")
    ivan = {"headers": {"Authorization": f"Bearer {made['token']}"}}
    assert len((await get_json(app_client, ivan, "/api/managers"))["items"]) == 3


async def test_manager_create_bad_input(app_client: Any, admin: dict[str, Any]) -> None:
    for body, status in (
        ({"name": "X", "email": "nope"}, 422),
        ({"name": ""}, 422),
        ({"name": "X", "role": "owner"}, 422),
        ({"name": "X", "phone": "1"}, 422),
        ({"name": "X", "email": "ADMIN@example.com"}, 409),
    ):
        resp = await app_client.post("/api/managers", json=body, headers=admin["headers"])
        await expect_error(resp, status)
    assert await Manager.all().count() == 1


# reminders


async def make_manager(name: str, email: str) -> dict[str, Any]:
    from hub.managers import create_manager

    other, token = await create_manager(name, email=email)
    return {"manager": other, "token": token, "headers": {"Authorization": f"Bearer {token}"}}


async def test_reminder_create_forms(app_client: Any, manager: dict[str, Any]) -> None:
    card = await create(app_client, manager)
    path = f"/api/clients/{card['id']}/reminders"
    before = datetime.now(UTC)
    soon = await post_json(app_client, manager, path, {"in_minutes": 30, "text": "call"}, 201)
    assert set(soon) == {
        "id",
        "client_id",
        "manager_id",
        "due_at",
        "text",
        "status",
        "origin",
        "count",
        "fired_at",
        "late",
    }
    assert soon["fired_at"] is None and soon["late"] is False
    assert soon["client_id"] == card["id"] and soon["manager_id"] == manager["manager"].id
    assert soon["status"] == "pending" and soon["origin"] == "manual" and soon["count"] == 1
    due = datetime.fromisoformat(soon["due_at"])
    assert before + timedelta(minutes=30) <= due <= datetime.now(UTC) + timedelta(minutes=30)
    aware = await post_json(
        app_client, manager, path, {"due_at": "2027-01-02T12:00:00+03:00", "text": "x"}, 201
    )
    assert datetime.fromisoformat(aware["due_at"]) == datetime(2027, 1, 2, 9, 0, tzinfo=UTC)
    naive = await post_json(
        app_client, manager, path, {"due_at": "2027-01-02T12:00:00", "text": "x"}, 201
    )
    assert datetime.fromisoformat(naive["due_at"]) == datetime(2027, 1, 2, 12, 0, tzinfo=UTC)


async def test_reminder_create_for_unassigned_or_other(
    app_client: Any, manager: dict[str, Any], admin: dict[str, Any]
) -> None:
    card = await create(app_client, manager)
    path = f"/api/clients/{card['id']}/reminders"
    got = await post_json(
        app_client,
        manager,
        path,
        {"in_minutes": 5, "text": "x", "manager_id": admin["manager"].id},
        201,
    )
    assert got["manager_id"] == admin["manager"].id


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "x"}, "body"),
        ({"due_at": "2027-01-01T00:00:00Z", "in_minutes": 5, "text": "x"}, "body"),
        ({"in_minutes": 0, "text": "x"}, "in_minutes"),
        ({"in_minutes": 525_601, "text": "x"}, "in_minutes"),
        ({"in_minutes": "5", "text": "x"}, "in_minutes"),
        ({"due_at": "tomorrow", "text": "x"}, "due_at"),
        ({"due_at": "0001-01-01T00:00:00+05:00", "text": "x"}, "due_at"),
        ({"due_at": "9999-12-31T23:59:59-05:00", "text": "x"}, "due_at"),
        ({"due_at": 1767225600, "text": "x"}, "due_at"),
        ({"in_minutes": 5, "text": ""}, "text"),
        ({"in_minutes": 5}, "text"),
        ({"in_minutes": 5, "text": "x", "manager_id": 999}, "manager_id"),
        ({"in_minutes": 5, "text": "x", "repeat": True}, "repeat"),
    ],
)
async def test_reminder_create_bad_input(
    app_client: Any, manager: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    card = await create(app_client, manager)
    resp = await app_client.post(
        f"/api/clients/{card['id']}/reminders", json=body, headers=manager["headers"]
    )
    assert (await expect_error(resp, 422))["error"]["message"].startswith(field)


async def test_reminder_on_unknown_card_is_404(app_client: Any, manager: dict[str, Any]) -> None:
    resp = await app_client.post(
        "/api/clients/999/reminders",
        json={"in_minutes": 5, "text": "x"},
        headers=manager["headers"],
    )
    await expect_error(resp, 404)


async def test_reminder_visibility(
    app_client: Any, manager: dict[str, Any], admin: dict[str, Any]
) -> None:
    other = await make_manager("Petr", "petr@example.com")
    card = await create(app_client, manager)
    path = f"/api/clients/{card['id']}/reminders"
    mine = await post_json(app_client, manager, path, {"in_minutes": 1, "text": "mine"}, 201)
    theirs = await post_json(app_client, other, path, {"in_minutes": 2, "text": "theirs"}, 201)
    nobody = await Reminder.create(
        client_id=card["id"], due_at=datetime.now(UTC), text="open", created_at=datetime.now(UTC)
    )
    ids = [r["id"] for r in (await get_json(app_client, manager, "/api/reminders"))["items"]]
    assert sorted(ids) == sorted([mine["id"], nobody.id])
    ids = [r["id"] for r in (await get_json(app_client, admin, "/api/reminders"))["items"]]
    assert sorted(ids) == sorted([mine["id"], theirs["id"], nobody.id])
    for action, body in (("done", None), ("snooze", {"minutes": 5})):
        resp = await app_client.post(
            f"/api/reminders/{theirs['id']}/{action}", json=body, headers=manager["headers"]
        )
        assert (await expect_error(resp, 403))["error"]["code"] == "forbidden"
    done = await post_json(app_client, manager, f"/api/reminders/{nobody.id}/done")
    assert done["status"] == "done"
    done = await post_json(app_client, admin, f"/api/reminders/{theirs['id']}/done")
    assert done["status"] == "done"


async def test_reminder_done_and_snooze(app_client: Any, manager: dict[str, Any]) -> None:
    card = await create(app_client, manager)
    made = await post_json(
        app_client,
        manager,
        f"/api/clients/{card['id']}/reminders",
        {"due_at": "2026-01-01T00:00:00Z", "text": "x"},
        201,
    )
    await Reminder.filter(id=made["id"]).update(
        status=ReminderStatus.FIRED, fired_at=datetime.now(UTC)
    )
    before = datetime.now(UTC)
    snoozed = await post_json(
        app_client, manager, f"/api/reminders/{made['id']}/snooze", {"minutes": 15}
    )
    assert snoozed["status"] == "pending"
    assert datetime.fromisoformat(snoozed["due_at"]) >= before + timedelta(minutes=15)
    assert (await Reminder.get(id=made["id"])).fired_at is None
    done = await post_json(app_client, manager, f"/api/reminders/{made['id']}/done")
    assert done["status"] == "done"
    assert (await post_json(app_client, manager, f"/api/reminders/{made['id']}/done")) == done
    resp = await app_client.post(
        f"/api/reminders/{made['id']}/snooze", json={"minutes": 5}, headers=manager["headers"]
    )
    await expect_error(resp, 409)


async def test_reminder_action_bad_input(app_client: Any, manager: dict[str, Any]) -> None:
    card = await create(app_client, manager)
    made = await post_json(
        app_client,
        manager,
        f"/api/clients/{card['id']}/reminders",
        {"in_minutes": 5, "text": "x"},
        201,
    )
    for body in ({}, {"minutes": 0}, {"minutes": 525_601}, {"minutes": 1.5}, {"minutes": "5"}):
        resp = await app_client.post(
            f"/api/reminders/{made['id']}/snooze", json=body, headers=manager["headers"]
        )
        assert (await expect_error(resp, 422))["error"]["message"].startswith("minutes")
    for action in ("done", "snooze"):
        resp = await app_client.post(
            f"/api/reminders/999/{action}", json={"minutes": 5}, headers=manager["headers"]
        )
        await expect_error(resp, 404)


async def test_reminder_list_filters_and_pages(app_client: Any, manager: dict[str, Any]) -> None:
    card = await create(app_client, manager)
    other = await create(app_client, manager)
    due = "2027-03-01T09:00:00Z"
    made = [
        await post_json(
            app_client,
            manager,
            f"/api/clients/{card['id']}/reminders",
            {"due_at": due, "text": str(n)},
            201,
        )
        for n in range(5)
    ]
    await post_json(
        app_client,
        manager,
        f"/api/clients/{other['id']}/reminders",
        {"due_at": "2027-02-01T09:00:00Z", "text": "earlier"},
        201,
    )
    await post_json(app_client, manager, f"/api/reminders/{made[0]['id']}/done")
    seen: list[int] = []
    cursor = ""
    while True:
        page = await get_json(
            app_client,
            manager,
            f"/api/reminders?status=pending&client_id={card['id']}&limit=2&cursor={cursor}",
        )
        seen += [r["id"] for r in page["items"]]
        assert all(r["status"] == "pending" for r in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [r["id"] for r in made[1:]]
    everything = await get_json(app_client, manager, "/api/reminders")
    assert everything["items"][0]["text"] == "earlier"  # soonest first
    done = await get_json(app_client, manager, "/api/reminders?status=done")
    assert [r["id"] for r in done["items"]] == [made[0]["id"]]
    for query, status in (
        ("status=later", 422),
        ("limit=0", 422),
        ("cursor=%%%", 400),
        ("cursor=Zm9vfDE", 400),
        ("client_id=x", 422),
    ):
        resp = await app_client.get(f"/api/reminders?{query}", headers=manager["headers"])
        await expect_error(resp, status)


async def test_missed_call_reminder_is_listed(app_client: Any, manager: dict[str, Any]) -> None:
    client_id = await missed_call(app_client, "call-m", "+79123456789")
    page = await get_json(app_client, manager, "/api/reminders?status=pending")
    assert [(r["client_id"], r["origin"]) for r in page["items"]] == [(client_id, "missed_call")]


# operations


async def test_healthz(app_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    resp = await app_client.get("/healthz")
    assert resp.status == 200 and (await resp.json())["database"] == "up"

    class Down:
        def get(self, name: str) -> Any:
            raise ConnectionError("database is gone")

    monkeypatch.setattr("hub.web.ops.connections", Down())
    resp = await app_client.get("/healthz")
    assert resp.status == 503 and (await resp.json())["database"] == "down"


async def test_metrics_count_requests_by_route(app_client: Any, manager: dict[str, Any]) -> None:
    await app_client.get("/api/clients", headers=manager["headers"])
    await app_client.get("/api/clients")
    await app_client.get("/api/clients/12345", headers=manager["headers"])
    await app_client.get("/no/such/path/42")
    resp = await app_client.get("/metrics")
    assert resp.status == 200
    assert resp.content_type == "text/plain"
    text = await resp.text()
    assert "# TYPE hub_http_requests_total counter" in text
    assert 'hub_http_requests_total{method="GET",route="/api/clients",status="200"} 1.0' in text
    assert 'hub_http_requests_total{method="GET",route="/api/clients",status="401"} 1.0' in text
    assert (
        'hub_http_requests_total{method="GET",route="/api/clients/{id}",status="404"} 1.0' in text
    )
    assert "12345" not in text and "/no/such/path" not in text
    assert "hub_http_request_seconds_bucket" in text


async def test_merges_of_an_unknown_card_is_404(app_client: Any, manager: dict[str, Any]) -> None:
    await expect_error(
        await app_client.get("/api/clients/999/merges", headers=manager["headers"]), 404
    )


# the live stream


async def test_stream_greets_and_pushes_new_notes(app_client: Any, manager: dict[str, Any]) -> None:
    card = await create(app_client, manager)
    async with app_client.ws_connect("/api/stream", headers=manager["headers"]) as ws:
        assert await ws.receive_json(timeout=5) == {
            "type": "hello",
            "manager_id": manager["manager"].id,
        }
        note = await post_json(
            app_client, manager, f"/api/clients/{card['id']}/notes", {"text": "hi"}, 201
        )
        event = await ws.receive_json(timeout=5)
        assert event["type"] == "timeline.added" and event["interaction"] == note
    async with app_client.ws_connect(f"/api/stream?token={manager['token']}") as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "hello"


async def test_stream_refuses_a_wrong_token(app_client: Any) -> None:
    resp = await app_client.get("/api/stream?token=hub_nope")
    await expect_error(resp, 401)
