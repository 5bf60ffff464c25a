"""A manager's day in a real browser (Debian Chromium through Playwright): log in, find a client
by a phone written another way, open the card, send an offer and watch it turn "sent", set a
reminder and see it fire, get a screen pop when the client calls, switch the language, and a
client named like a script stays text."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import aiohttp

from hub.db import now
from hub.models import Reminder
from tests.helpers import call_body, sign
from tests.ui.conftest import log_in, new_page, shot


async def api(hub_url: str, token: str, method: str, path: str, body: Any = None) -> Any:
    async with aiohttp.ClientSession() as session, session.request(
            method, hub_url + path, json=body,
            headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status < 300, await resp.text()
        return await resp.json()


async def ring(hub_url: str, body: bytes) -> None:
    """A signed generic-PBX webhook, as a PBX sends it."""
    async with aiohttp.ClientSession() as session, session.post(
            hub_url + "/webhooks/telephony/generic", data=body,
            headers={"Content-Type": "application/json",
                     "X-Hub-Signature-256": sign(body)}) as resp:
        assert resp.status == 200, await resp.text()


async def card(hub_url: str, people: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body = {"name": "Иван Петров", "phones": ["+79031234567"], "emails": ["ivan@example.com"],
            "manager_id": people["olga"].id, **fields}
    made: dict[str, Any] = await api(hub_url, people["olga_token"], "POST", "/api/clients", body)
    return made


async def test_a_wrong_password_is_refused_and_the_right_one_opens_the_list(
    hub_url: str, people: dict[str, Any], browser: Any,
) -> None:
    page = await new_page(browser, hub_url)
    await page.goto("/clients/1")
    assert "/login" in page.url  # no session: to the login page first
    await page.fill("input[name=email]", "olga@example.com")
    await page.fill("input[name=password]", "not her password")
    await page.click("#login button[type=submit]")
    await page.wait_for_selector(".error")
    assert "Неверная почта или пароль" in await page.inner_text(".error")
    await shot(page, "login")
    await log_in(page, "olga@example.com")
    assert await page.inner_text("h1") == "Клиенты"
    await page.click("#logout")
    await page.wait_for_url("**/login**")


async def test_a_client_is_found_by_a_phone_written_another_way_and_the_card_opens(
    page: Any, hub_url: str, people: dict[str, Any],
) -> None:
    made = await card(hub_url, people)
    await card(hub_url, people, name="Мария", phones=["+79161112233"], emails=[])
    await page.fill("#search", "8 (903) 123-45-67")
    await page.press("#search", "Enter")
    await page.wait_for_selector("tr.client-row")
    rows = await page.query_selector_all("tr.client-row")
    assert len(rows) == 1
    await shot(page, "clients")
    await page.click("a.client-link")
    await page.wait_for_url(f"**/clients/{made['id']}")
    assert await page.inner_text("#client-name") == "Иван Петров"
    assert await page.input_value("#card-fields textarea[name=phones]") == "+79031234567"


async def test_an_offer_is_previewed_sent_and_turns_sent_on_the_timeline(
    page: Any, hub_url: str, people: dict[str, Any],
) -> None:
    made = await card(hub_url, people)
    await page.goto(f"/clients/{made['id']}")
    await page.click("#btn-offer")
    await page.wait_for_function(
        "document.querySelector('#offer-preview .subject').textContent.length > 0")
    assert "Иван Петров" in await page.inner_text("#offer-preview")
    await shot(page, "offer")
    await page.click("#offer-send")
    entry = page.locator("li.entry.kind-offer").first
    await entry.wait_for()
    # queued at first, then the outbox sends it and the live stream turns it "sent"
    await page.wait_for_selector("li.entry.kind-offer[data-status=sent]", timeout=15_000)
    assert "отправлено" in (await entry.inner_text()).lower()
    await shot(page, "card")


async def test_a_reminder_set_on_the_card_fires_and_shows_in_my_reminders(
    page: Any, hub_url: str, people: dict[str, Any],
) -> None:
    made = await card(hub_url, people)
    await page.goto(f"/clients/{made['id']}")
    await page.click("#btn-remind")
    await page.fill("#remind-text", "Перезвонить про доставку")
    await page.click(".remind-in")
    await page.wait_for_selector("#remind-dialog", state="hidden")
    [reminder] = await Reminder.filter(client_id=made["id"])
    assert reminder.text == "Перезвонить про доставку"
    assert reminder.due_at - now() > timedelta(minutes=55)
    # an hour passes: the scheduler fires it and the header's badge counts it
    await Reminder.filter(id=reminder.id).update(due_at=now() - timedelta(seconds=1))
    await page.wait_for_selector("#reminder-badge[data-count='1']", timeout=15_000)
    await page.click("#nav-reminders")
    await page.wait_for_selector("#due-reminders li.reminder")
    assert "Перезвонить про доставку" in await page.inner_text("#due-reminders")
    await shot(page, "reminders")
    await page.click("#due-reminders button.done")
    await page.wait_for_selector("#due-reminders li.reminder", state="detached")
    assert await page.get_attribute("#reminder-badge", "data-count") == "0"


async def test_a_ringing_call_pops_the_callers_card(
    page: Any, hub_url: str, people: dict[str, Any],
) -> None:
    made = await card(hub_url, people)
    await page.wait_for_function("document.body.dataset.live === 'on'")
    await ring(hub_url, call_body("ringing", "ui-1", "8 903 123 45 67", extension="101"))
    await page.wait_for_selector("#screen-pop:not([hidden])", timeout=5_000)
    assert "Иван Петров" in await page.inner_text("#screen-pop")
    await shot(page, "screen-pop")
    await page.click("#screen-pop .pop-link")
    await page.wait_for_url(f"**/clients/{made['id']}")


async def test_the_language_switches_to_english_and_stays(
    page: Any, hub_url: str, people: dict[str, Any],
) -> None:
    assert await page.inner_text("h1") == "Клиенты"
    await page.click("#lang button[data-lang=en]")
    await page.wait_for_function("document.documentElement.lang === 'en'")
    assert await page.inner_text("h1") == "Clients"
    await page.goto("/reminders")
    assert await page.inner_text("h1") == "My reminders"


async def test_a_client_named_like_a_script_is_shown_as_text(
    page: Any, hub_url: str, people: dict[str, Any],
) -> None:
    alerts: list[str] = []
    page.on("dialog", lambda dialog: alerts.append(dialog.message))
    evil = "<script>alert(1)</script>"
    made = await card(hub_url, people, name=evil, phones=["+79035550000"], emails=[])
    await api(hub_url, people["olga_token"], "POST", f"/api/clients/{made['id']}/notes",
              {"text": '<img src=x onerror="alert(2)">'})
    await page.goto("/clients")
    assert evil in await page.inner_text("#clients")
    await page.goto(f"/clients/{made['id']}")
    assert await page.inner_text("#client-name") == evil
    assert '<img src=x onerror="alert(2)">' in await page.inner_text("#timeline")
    await asyncio.sleep(0.3)
    assert alerts == []
    assert await page.locator("#timeline img").count() == 0


async def test_reports_show_the_days_requests_and_calls(
    page: Any, hub_url: str, people: dict[str, Any],
) -> None:
    await card(hub_url, people)
    for i, status in enumerate(("missed", "answered")):
        for event in ("ringing", "ended"):
            extra = {"status": status, "duration": 30} if event == "ended" else {}
            await ring(hub_url, call_body(event, f"r-{i}", "+79031234567", **extra))
    await page.goto("/reports?from=2026-11-01&to=2026-11-30")
    await page.wait_for_selector("#calls svg")
    assert "Пропущенные" in await page.inner_text("#calls")
    await shot(page, "reports")


async def test_a_note_appears_at_once_and_a_merge_can_be_undone(
    page: Any, hub_url: str, people: dict[str, Any],
) -> None:
    made = await card(hub_url, people)
    other = await card(hub_url, people, name="Иван (дубль)", phones=["+79035550011"], emails=[])
    await page.goto(f"/clients/{made['id']}")
    await page.click("#btn-note")
    await page.fill("#note-text", "Просил позвонить после обеда")
    await page.click("#note-save")
    await page.wait_for_selector("li.entry.kind-note >> text=Просил позвонить после обеда")
    await page.click("#btn-merge")
    await page.fill("#merge-search", "5550011")
    await page.click(f".merge-pick[data-id='{other['id']}']")
    undo = page.locator(".undo-merge")
    await undo.wait_for()
    assert "+79035550011" in await page.input_value("#card-fields textarea[name=phones]")
    await undo.click()
    await page.wait_for_selector(".undo-merge", state="detached")
    restored = await api(hub_url, people["olga_token"], "GET", f"/api/clients/{other['id']}")
    assert restored["phones"] == ["+79035550011"]
    mine = await api(hub_url, people["olga_token"], "GET", f"/api/clients/{made['id']}")
    assert mine["phones"] == ["+79031234567"]
