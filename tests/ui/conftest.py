"""The web UI in a real browser: the hub served on a loopback port with every background loop
(the outbox sends offers, the scheduler fires reminders), Debian's Chromium driven by Playwright,
a logged-in page per test. Screenshots of the main pages go to artifacts/screenshots/ (the
README shows copies of them from docs/screenshots/)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from hub.app import create_app
from hub.managers import create_manager
from hub.models import Role
from tests.helpers import EMAIL_TOKEN, GENERIC_SECRET
from tests.smtpserver import FROM, SmtpServer

CHROMIUM = os.environ.get("HUB_TEST_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
PASSWORD = "correct horse battery"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--disable-quic", "--disable-default-apps", "--disable-extensions",
        "--metrics-recording-only", "--mute-audio"]

if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


@pytest_asyncio.fixture
async def hub_url(orm: None, aiohttp_server: Any, make_settings: Any,
                  smtp: SmtpServer) -> str:
    """(The database comes first, so it closes after the server and its loops stop.)"""
    settings = make_settings(
        telephony={"generic": {"secret": GENERIC_SECRET}},
        email={"inbound_token": EMAIL_TOKEN, "smtp_url": smtp.url, "from_address": FROM},
        company={"name": "ООО «Ромашка»"},
    )
    server = await aiohttp_server(create_app(settings, manage_db=False, background=True))
    return f"http://127.0.0.1:{server.port}"


@pytest_asyncio.fixture
async def people(orm: None) -> dict[str, Any]:
    """An admin and a manager who can log in (and their API tokens, for setting the scene)."""
    admin, admin_token = await create_manager("Анна Админ", email="admin@example.com",
                                              role=Role.ADMIN, password=PASSWORD)
    olga, olga_token = await create_manager("Ольга", email="olga@example.com",
                                            extension="101", password=PASSWORD)
    return {"admin": admin, "admin_token": admin_token, "olga": olga, "olga_token": olga_token}


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        found = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                 args=ARGS)
        yield found
        await found.close()


async def new_page(browser: Any, hub_url: str, lang: str = "ru-RU") -> Any:
    # bypass_csp: Playwright's own waits evaluate code; the pages' escaping is what is tested
    context = await browser.new_context(base_url=hub_url, locale=lang, bypass_csp=True,
                                        viewport={"width": 1280, "height": 860},
                                        extra_http_headers={"Accept-Language": lang})
    page = await context.new_page()
    page.set_default_timeout(10_000)
    return page


async def log_in(page: Any, email: str, password: str = PASSWORD) -> None:
    await page.goto("/login")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", password)
    await page.click("#login button[type=submit]")
    await page.wait_for_url("**/clients**")


@pytest_asyncio.fixture
async def page(hub_url: str, people: dict[str, Any], browser: Any) -> Any:
    """Olga, logged in, on the client list. (The browser closes before the hub stops.)"""
    found = await new_page(browser, hub_url)
    await log_in(found, "olga@example.com")
    return found


async def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)
