"""GET /api/clients: `q` in every form, the filters, keyset paging, merged cards left out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from hub.models import Client
from tests.helpers import EMAIL_TOKEN, call_body, post_call
from tests.web.test_api import create, expect_error, get_json


async def found(client: Any, who: dict[str, Any], query: str) -> list[int]:
    """The ids GET /api/clients answers for a raw query string (one page)."""
    page = await get_json(client, who, f"/api/clients?{query}&limit=200")
    return [c["id"] for c in page["items"]]


async def q(client: Any, who: dict[str, Any], text: str) -> list[int]:
    return await found(client, who, "q=" + quote(text))


@pytest.fixture
async def cards(app_client: Any, manager: dict[str, Any], admin: dict[str, Any]) -> dict[str, int]:
    anna = await create(
        app_client,
        manager,
        name="Анна Смирнова",
        phones=["+79123456789"],
        emails=["Anna.Smirnova@Example.com"],
        telegram=["@anna_smi", 5550001],
        status="hot",
        manager_id=manager["manager"].id,
    )
    boris = await create(
        app_client,
        manager,
        name="Boris Petrov",
        phones=["+79261112233"],
        emails=["boris@mail.test"],
        status="cold",
        manager_id=admin["manager"].id,
    )
    sale = await create(app_client, manager, name="50% off_shop", phones=["+74951234567"])
    ann = await create(app_client, manager, name="Ann Lee", emails=["lee@ann.test"])
    return {"anna": anna["id"], "boris": boris["id"], "sale": sale["id"], "ann": ann["id"]}


@pytest.mark.parametrize(
    "text",
    [
        "89123456789",
        "+7 912 345-67-89",
        "8 (912) 345 67 89",
        "+79123456789",
        "79123456789",
        "9123456789",
        "912-345-67-89",
        "456789",
        "56789",
        "6789",
        "789",
    ],
)
async def test_phone_in_any_form_or_a_tail(
    app_client: Any, manager: dict[str, Any], cards: dict[str, int], text: str
) -> None:
    assert await q(app_client, manager, text) == [cards["anna"]]


async def test_phone_tail_matches_only_endings(
    app_client: Any, manager: dict[str, Any], cards: dict[str, int]
) -> None:
    assert await q(app_client, manager, "1234") == []  # in the middle of +74951234567
    assert await q(app_client, manager, "567") == [cards["sale"]]
    assert await q(app_client, manager, "4567") == [cards["sale"]]
    assert await q(app_client, manager, "45-67") == [cards["sale"]]
    assert await q(app_client, manager, "89123456780") == []


@pytest.mark.parametrize(
    ("text", "who"),
    [
        ("смирн", "anna"),
        ("СМИРН", "anna"),
        ("Анна", "anna"),
        ("нна сми", "anna"),
        ("petrov", "boris"),
        ("BORIS P", "boris"),
        ("anna.smirnova@example.com", "anna"),
        ("ANNA.SMIRNOVA@EXAMPLE.COM", "anna"),
        ("smirnova@exa", "anna"),
        ("mail.test", "boris"),
        ("@anna_smi", "anna"),
        ("anna_smi", "anna"),
        ("@ANNA_SMI", "anna"),
        ("@anna_s", "anna"),
        ("50%", "sale"),
        ("% off", "sale"),
        ("off_sh", "sale"),
    ],
)
async def test_text_finds_name_email_and_username(
    app_client: Any, manager: dict[str, Any], cards: dict[str, int], text: str, who: str
) -> None:
    assert await q(app_client, manager, text) == [cards[who]]


async def test_short_and_shared_substrings(
    app_client: Any, manager: dict[str, Any], cards: dict[str, int]
) -> None:
    assert sorted(await q(app_client, manager, "ann")) == sorted([cards["anna"], cards["ann"]])
    assert await q(app_client, manager, "Lee") == [cards["ann"]]
    assert sorted(await q(app_client, manager, "  ")) == sorted(cards.values())


@pytest.mark.parametrize("text", ["%", "_", "%%", "a%a", "an_a", "a_n", "\\", "50\\%", "o%f"])
async def test_wildcards_are_literal(
    app_client: Any, manager: dict[str, Any], cards: dict[str, int], text: str
) -> None:
    literal = {"%": {cards["sale"]}, "_": {cards["sale"], cards["anna"]}}  # off_shop, anna_smi
    assert set(await q(app_client, manager, text)) == literal.get(text, set())


async def test_status_and_manager_filters(
    app_client: Any, manager: dict[str, Any], admin: dict[str, Any], cards: dict[str, int]
) -> None:
    assert await found(app_client, manager, "status=hot") == [cards["anna"]]
    assert await found(app_client, manager, "status=vip") == []
    assert await found(app_client, manager, f"manager_id={admin['manager'].id}") == [cards["boris"]]
    mine = f"manager_id={manager['manager'].id}"
    assert await found(app_client, manager, f"{mine}&status=hot&q=6789") == [cards["anna"]]
    assert await found(app_client, manager, f"{mine}&status=cold") == []
    assert await found(app_client, manager, "manager_id=4242") == []


async def test_list_is_newest_activity_first(
    app_client: Any, manager: dict[str, Any], cards: dict[str, int]
) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    order = ["boris", "ann", "anna", "sale"]
    for n, name in enumerate(order):
        await Client.filter(id=cards[name]).update(activity_at=base + timedelta(hours=n))
    assert await found(app_client, manager, "") == [cards[n] for n in reversed(order)]


async def test_cursor_pages_without_gaps_or_duplicates(
    app_client: Any, manager: dict[str, Any]
) -> None:
    ids = [(await create(app_client, manager, name=f"Smith {n}"))["id"] for n in range(23)]
    await create(app_client, manager, name="Jones")
    same = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    for n, client_id in enumerate(ids):
        # bunches of equal activity times: the id must break ties
        at = same + timedelta(seconds=n // 5) if n % 3 else same
        await Client.filter(id=client_id).update(activity_at=at)
    seen: list[dict[str, Any]] = []
    cursor = ""
    for _ in range(30):
        page = await get_json(app_client, manager, f"/api/clients?q=smith&limit=4&cursor={cursor}")
        assert len(page["items"]) <= 4
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(c["id"] for c in seen) == sorted(ids)
    assert len({c["id"] for c in seen}) == len(ids)
    stored = {c.id: c.activity_at for c in await Client.filter(id__in=ids)}
    keys = [(stored[c["id"]], c["id"]) for c in seen]
    assert keys == sorted(keys, reverse=True)


async def test_exact_page_size_has_no_next_cursor(app_client: Any, manager: dict[str, Any]) -> None:
    for n in range(3):
        await create(app_client, manager, name=f"Card {n}")
    page = await get_json(app_client, manager, "/api/clients?limit=3")
    assert len(page["items"]) == 3 and page["next_cursor"] is None
    page = await get_json(app_client, manager, "/api/clients?limit=2")
    assert page["next_cursor"] is not None
    rest = await get_json(app_client, manager, f"/api/clients?limit=2&cursor={page['next_cursor']}")
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None


async def test_bad_cursor_is_400(app_client: Any, manager: dict[str, Any]) -> None:
    for cursor in ("!!", "Zm9v", "bm90LWEtZGF0ZXwx", "MjAyNi0wMS0wMVQwMDowMDowMHwx"):
        resp = await app_client.get(f"/api/clients?cursor={cursor}", headers=manager["headers"])
        assert (await expect_error(resp, 400))["error"]["code"] == "malformed", cursor


async def test_merged_cards_are_never_listed(
    app_client: Any, manager: dict[str, Any], cards: dict[str, int]
) -> None:
    resp = await app_client.post(
        f"/api/clients/{cards['ann']}/merge",
        json={"other_id": cards["boris"]},
        headers=manager["headers"],
    )
    assert resp.status == 200, await resp.text()
    assert cards["boris"] not in await found(app_client, manager, "")
    assert await q(app_client, manager, "petrov") == []  # the name stayed on the merged card
    assert await q(app_client, manager, "boris@mail.test") == [cards["ann"]]
    assert await q(app_client, manager, "2233") == [cards["ann"]]
    assert await found(app_client, manager, "status=cold") == []


async def test_cards_made_by_ingest_are_searchable(
    app_client: Any, manager: dict[str, Any]
) -> None:
    raw = (
        b"From: =?utf-8?b?0JXQu9C10L3QsCDQmtGD0LfQvdC10YbQvtCy0LA=?= <Elena.K@Mail.Example>\r\n"
        b"To: sales@hub.example\r\nSubject: hello\r\nMessage-ID: <m1@mail.example>\r\n"
        b"Date: Sun, 22 Nov 2026 10:00:00 +0300\r\n\r\nHi\r\n"
    )
    resp = await app_client.post(
        "/webhooks/email",
        data=raw,
        headers={"Content-Type": "message/rfc822", "X-Hub-Token": EMAIL_TOKEN},
    )
    assert resp.status == 200, await resp.text()
    card_id = (await resp.json())["client_id"]
    for text in ("кузнец", "Елена", "elena.k@mail.example", "k@mail.ex"):  # "Елена Кузнецова"
        assert await q(app_client, manager, text) == [card_id], text
    ringing = call_body("ringing", "c-s", phone="+79031234567")
    call_card = (await (await post_call(app_client, ringing)).json())["client_id"]
    assert await q(app_client, manager, "1234567") == [call_card]
    assert await found(app_client, manager, "") == [call_card, card_id]  # the newer activity first


async def test_channel_and_no_contact_filters(
    app_client: Any, manager: dict[str, Any], cards: dict[str, int],
) -> None:
    assert sorted(await found(app_client, manager, "channel=telegram")) == [cards["anna"]]
    assert sorted(await found(app_client, manager, "channel=email")) == sorted(
        [cards["anna"], cards["boris"], cards["ann"]])
    assert cards["ann"] not in await found(app_client, manager, "channel=phone")
    # Boris has not been in touch for half a year; the others were just made
    old = datetime.now(UTC) - timedelta(days=200)
    await Client.filter(id=cards["boris"]).update(activity_at=old)
    assert await found(app_client, manager, "idle_months=3") == [cards["boris"]]
    assert await found(app_client, manager, "idle_months=3&channel=telegram") == []
    await expect_error(await app_client.get("/api/clients?channel=fax",
                                            headers=manager["headers"]), 422)
    await expect_error(await app_client.get("/api/clients?idle_months=0",
                                            headers=manager["headers"]), 422)


async def test_a_common_channel_is_checked_card_by_card_with_the_same_answer(
    app_client: Any, manager: dict[str, Any], cards: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hub import search

    through_identities = sorted(await found(app_client, manager, "channel=email"))
    monkeypatch.setattr(search, "RARE", 0)  # every channel counts as common now
    assert sorted(await found(app_client, manager, "channel=email")) == through_identities
    assert await found(app_client, manager, "channel=telegram") == [cards["anna"]]
