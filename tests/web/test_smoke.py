from __future__ import annotations

from typing import Any

from tests.helpers import call_body, post_call


async def test_ringing_creates_card_and_answers_manager(
    app_client: Any, manager: dict[str, Any]
) -> None:
    resp = await post_call(app_client, call_body("ringing", "c1", phone="8 (912) 345-67-89"))
    assert resp.status == 200
    data = await resp.json()
    assert data["created"] is True and data["duplicate"] is False
    again = await post_call(app_client, call_body("ringing", "c1", phone="8 (912) 345-67-89"))
    assert (await again.json())["duplicate"] is True
    got = await app_client.get("/api/lookup?phone=%2B79123456789", headers=manager["headers"])
    assert got.status == 200
    assert (await got.json())["id"] == data["client_id"]
