"""POST /api/clients/{id}/merge and POST /api/merges/{id}/undo: what moves, what answers, undo."""

from __future__ import annotations

import asyncio
from typing import Any

from hub.models import Call, Merge, Reminder
from tests.helpers import call_body, post_call
from tests.web.test_api import create, expect_error, get_json, missed_call, post_json
from tests.web.test_api import make_manager as new_manager


async def snapshot(client: Any, who: dict[str, Any], card_id: int) -> dict[str, Any]:
    """A card with its whole timeline and its reminders, as the API shows them."""
    card = await get_json(client, who, f"/api/clients/{card_id}")
    page = await get_json(client, who, f"/api/clients/{card_id}/timeline?limit=200")
    reminders = await Reminder.filter(client_id=card_id).order_by("id").values_list("id", flat=True)
    calls = await Call.filter(client_id=card_id).order_by("id").values_list("id", flat=True)
    return {"card": card, "timeline": page["items"], "reminders": reminders, "calls": calls}


async def two_cards(client: Any, who: dict[str, Any], admin: dict[str, Any]) -> tuple[int, int]:
    """A survivor with a note; another card with a missed call, a reminder, a note, a manager."""
    survivor = await create(
        client,
        who,
        phones=["+79123456789"],
        emails=["keep@example.com"],
        fields={"shared": "survivor", "own": 1},
        status="hot",
    )
    await post_json(client, who, f"/api/clients/{survivor['id']}/notes", {"text": "s"}, 201)
    other_id = await missed_call(client, "call-o", "+79261112233")
    await post_json(client, who, f"/api/clients/{other_id}/notes", {"text": "o"}, 201)
    resp = await client.patch(
        f"/api/clients/{other_id}",
        headers=who["headers"],
        json={
            "name": "Борис",
            "emails": ["boris@example.com"],
            "telegram": ["@boris_b", 777],
            "fields": {"shared": "other", "extra": True},
            "manager_id": admin["manager"].id,
        },
    )
    assert resp.status == 200, await resp.text()
    return survivor["id"], other_id


async def merge(client: Any, who: dict[str, Any], survivor: int, other: int) -> dict[str, Any]:
    data: dict[str, Any] = await post_json(
        client, who, f"/api/clients/{survivor}/merge", {"other_id": other}
    )
    return data


async def test_merge_folds_identities_timeline_calls_and_reminders(
    app_client: Any, manager: dict[str, Any], admin: dict[str, Any]
) -> None:
    survivor, other = await two_cards(app_client, manager, admin)
    before_s = await snapshot(app_client, manager, survivor)
    before_o = await snapshot(app_client, manager, other)
    assert before_o["calls"] and before_o["reminders"]
    result = await merge(app_client, manager, survivor, other)
    card = result  # the surviving card, as GET shows it
    assert card["id"] == survivor
    assert card["phones"] == ["+79123456789", "+79261112233"]
    assert card["emails"] == ["keep@example.com", "boris@example.com"]
    assert sorted(map(str, card["telegram"])) == ["777", "@boris_b"]
    assert card["name"] == "Борис"  # the survivor had none
    assert card["status"] == "hot" and card["manager_id"] == admin["manager"].id
    assert card["fields"] == {"shared": "survivor", "own": 1, "extra": True}
    assert card["last_interaction_at"] == before_o["card"]["last_interaction_at"]
    assert result["merge"]["survivor_id"] == survivor and result["merge"]["merged_id"] == other
    assert (
        result["merge"]["by_id"] == manager["manager"].id and result["merge"]["undone_at"] is None
    )
    after = await snapshot(app_client, manager, survivor)
    ids = {i["id"] for i in after["timeline"]}
    assert ids == {i["id"] for i in before_s["timeline"] + before_o["timeline"]}
    assert after["calls"] == before_o["calls"]
    assert after["reminders"] == before_o["reminders"]
    assert await Reminder.filter(client_id=other).count() == 0


async def test_merged_card_answers_410_with_merged_into(
    app_client: Any, manager: dict[str, Any]
) -> None:
    keep = await create(app_client, manager)
    gone = await create(app_client, manager, phones=["+79123456789"])
    await merge(app_client, manager, keep["id"], gone["id"])
    requests = [
        ("GET", f"/api/clients/{gone['id']}", None),
        ("GET", f"/api/clients/{gone['id']}/timeline", None),
        ("PATCH", f"/api/clients/{gone['id']}", {"name": "x"}),
        ("POST", f"/api/clients/{gone['id']}/notes", {"text": "x"}),
        ("POST", f"/api/clients/{gone['id']}/reminders", {"in_minutes": 5, "text": "x"}),
    ]
    for method, path, body in requests:
        resp = await app_client.request(method, path, json=body, headers=manager["headers"])
        data = await expect_error(resp, 410)
        assert data["merged_into"] == keep["id"], path
        assert data["error"]["merged_into"] == keep["id"] and data["error"]["code"] == "merged"
    got = await get_json(app_client, manager, "/api/lookup?phone=89123456789")
    assert got["id"] == keep["id"]


async def test_merge_refusals(app_client: Any, manager: dict[str, Any]) -> None:
    a = (await create(app_client, manager))["id"]
    b = (await create(app_client, manager))["id"]
    c = (await create(app_client, manager))["id"]
    resp = await app_client.post(
        f"/api/clients/{a}/merge", json={"other_id": a}, headers=manager["headers"]
    )
    assert (await expect_error(resp, 422))["error"]["field"] == "other_id"
    for body in ({}, {"other_id": "2"}, {"other_id": 0}, {"other_id": b, "why": "dup"}):
        resp = await app_client.post(
            f"/api/clients/{a}/merge", json=body, headers=manager["headers"]
        )
        await expect_error(resp, 422)
    for path, other in ((f"/api/clients/{a}/merge", 999), ("/api/clients/999/merge", b)):
        resp = await app_client.post(path, json={"other_id": other}, headers=manager["headers"])
        await expect_error(resp, 404)
    await merge(app_client, manager, a, b)
    resp = await app_client.post(
        f"/api/clients/{a}/merge", json={"other_id": b}, headers=manager["headers"]
    )
    assert (await expect_error(resp, 410))["merged_into"] == a  # already merged
    resp = await app_client.post(
        f"/api/clients/{b}/merge", json={"other_id": c}, headers=manager["headers"]
    )
    assert (await expect_error(resp, 410))["merged_into"] == a  # into a merged card
    assert await Merge.all().count() == 1


async def test_undo_restores_both_cards_exactly(
    app_client: Any, manager: dict[str, Any], admin: dict[str, Any]
) -> None:
    survivor, other = await two_cards(app_client, manager, admin)
    before_s = await snapshot(app_client, manager, survivor)
    before_o = await snapshot(app_client, manager, other)
    result = await merge(app_client, manager, survivor, other)
    listed = await get_json(app_client, manager, f"/api/clients/{survivor}/merges")
    assert [m["id"] for m in listed["items"]] == [result["merge"]["id"]]
    undone = await post_json(app_client, manager, f"/api/merges/{result['merge']['id']}/undo")
    assert undone["undone_at"] is not None
    assert await snapshot(app_client, manager, survivor) == before_s
    assert await snapshot(app_client, manager, other) == before_o
    found = await get_json(app_client, manager, "/api/clients?q=%D0%B1%D0%BE%D1%80%D0%B8%D1%81")
    assert [c["id"] for c in found["items"]] == [other]  # "борис" is searchable on its card again
    assert (await get_json(app_client, manager, "/api/lookup?telegram=777"))["id"] == other
    resp = await app_client.post(
        f"/api/merges/{result['merge']['id']}/undo", headers=manager["headers"]
    )
    assert (await expect_error(resp, 409))["error"]["code"] == "conflict"


async def test_cards_can_be_merged_again_after_undo(
    app_client: Any, manager: dict[str, Any]
) -> None:
    a = (await create(app_client, manager, phones=["+79123456789"]))["id"]
    b = (await create(app_client, manager, phones=["+79123456780"]))["id"]
    first = await merge(app_client, manager, a, b)
    await post_json(app_client, manager, f"/api/merges/{first['merge']['id']}/undo")
    second = await merge(app_client, manager, b, a)
    assert sorted(second["phones"]) == ["+79123456780", "+79123456789"]
    await expect_error(await app_client.get(f"/api/clients/{a}", headers=manager["headers"]), 410)


async def test_only_the_merging_manager_or_an_admin_may_undo(
    app_client: Any, manager: dict[str, Any], admin: dict[str, Any]
) -> None:
    petr = await new_manager("Petr", "petr@example.com")
    a = (await create(app_client, manager))["id"]
    b = (await create(app_client, manager))["id"]
    merge_id = (await merge(app_client, manager, a, b))["merge"]["id"]
    resp = await app_client.post(f"/api/merges/{merge_id}/undo", headers=petr["headers"])
    assert (await expect_error(resp, 403))["error"]["code"] == "forbidden"
    await post_json(app_client, admin, f"/api/merges/{merge_id}/undo")
    resp = await app_client.post("/api/merges/999/undo", headers=admin["headers"])
    await expect_error(resp, 404)


async def test_undo_waits_for_a_later_merge_of_the_survivor(
    app_client: Any, manager: dict[str, Any]
) -> None:
    a = (await create(app_client, manager))["id"]
    b = (await create(app_client, manager))["id"]
    c = (await create(app_client, manager))["id"]
    first = (await merge(app_client, manager, a, b))["merge"]["id"]
    second = (await merge(app_client, manager, c, a))["merge"]["id"]
    resp = await app_client.post(f"/api/merges/{first}/undo", headers=manager["headers"])
    await expect_error(resp, 409)
    await post_json(app_client, manager, f"/api/merges/{second}/undo")
    await post_json(app_client, manager, f"/api/merges/{first}/undo")
    for card in (a, b, c):
        await get_json(app_client, manager, f"/api/clients/{card}")


async def test_a_call_after_the_merge_lands_on_the_survivor(
    app_client: Any, manager: dict[str, Any], admin: dict[str, Any]
) -> None:
    survivor, other = await two_cards(app_client, manager, admin)
    await merge(app_client, manager, survivor, other)
    resp = await post_call(app_client, call_body("ringing", "call-after", phone="8 926 111 22 33"))
    answer = await resp.json()
    assert answer["client_id"] == survivor and answer["created"] is False
    assert answer["manager"]["id"] == admin["manager"].id  # the card's responsible manager
    page = await get_json(app_client, manager, f"/api/clients/{survivor}/timeline")
    # the call is dated by its event, the merge's note by the wall clock: find it by id
    calls = [i for i in page["items"] if i["meta"].get("call_id") == "call-after"]
    assert [i["status"] for i in calls] == ["ringing"]
    # the other card's call still in progress reports onto the survivor too
    ended = call_body(
        "answered", "call-o", phone="+79261112233", timestamp="2026-11-22T10:05:00+00:00"
    )
    resp = await post_call(app_client, ended)
    assert (await resp.json())["client_id"] == survivor


async def test_crossing_merges_cannot_both_win(app_client: Any, manager: dict[str, Any]) -> None:
    a = (await create(app_client, manager, phones=["+79123456789"]))["id"]
    b = (await create(app_client, manager, phones=["+79123456780"]))["id"]
    answers = await asyncio.gather(
        *(
            app_client.post(
                f"/api/clients/{x}/merge", json={"other_id": y}, headers=manager["headers"]
            )
            for x, y in ((a, b), (b, a))
        )
    )
    assert sorted(r.status for r in answers) == [200, 410]
    listed = await get_json(app_client, manager, "/api/clients")
    assert len(listed["items"]) == 1
    assert sorted(listed["items"][0]["phones"]) == ["+79123456780", "+79123456789"]
