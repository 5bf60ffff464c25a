"""The web UI's pages over HTTP (the browser tests are in tests/ui): the session cookie, the CSRF
token on every change, redirects that stay on this site, escaping, and the security headers."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import pytest_asyncio

from hub.managers import create_manager
from hub.models import WebSession

PASSWORD = "correct horse battery"


@pytest_asyncio.fixture
async def olga(orm: None) -> Any:
    manager, token = await create_manager("Ольга", email="olga.web@example.com", password=PASSWORD)
    return manager


async def log_in(client: Any, nxt: str = "/clients") -> str:
    """Log in through the form; the session's CSRF token (read from the page)."""
    form = await client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', await form.text())
    assert token is not None
    resp = await client.post("/login", data={
        "email": "OLGA.web@example.com", "password": PASSWORD, "csrf": token.group(1),
        "next": nxt}, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    assert resp.headers["Location"] == nxt
    page = await client.get("/clients")
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', await page.text())
    assert csrf is not None and csrf.group(1)
    return csrf.group(1)


async def test_pages_need_a_session_and_send_you_back_after_login(
    app_client: Any, olga: Any,
) -> None:
    resp = await app_client.get("/clients?q=anna", allow_redirects=False)
    assert resp.status == 303
    assert unquote(resp.headers["Location"]) == "/login?next=/clients?q=anna"
    await log_in(app_client, "/clients?q=anna")
    page = await app_client.get("/clients")
    assert page.status == 200
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "SAMEORIGIN"
    [session] = await WebSession.all()
    cookie = app_client.session.cookie_jar.filter_cookies(app_client.make_url("/"))
    assert session.token_hash != cookie["hub_session"].value  # only its hash is stored


async def test_a_login_form_without_its_token_or_with_a_foreign_next_goes_nowhere(
    app_client: Any, olga: Any,
) -> None:
    resp = await app_client.post("/login", data={"email": "olga.web@example.com",
                                                 "password": PASSWORD}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/login"
    assert await WebSession.all().count() == 0
    await log_in(app_client, "/clients")
    form = await app_client.get("/login?next=//evil.example/x")
    assert 'name="next" value="/clients"' in await form.text()


async def test_a_change_from_the_browser_needs_the_csrf_token(
    app_client: Any, olga: Any,
) -> None:
    csrf = await log_in(app_client)
    body = {"name": "Анна", "phones": ["+79031112233"]}
    refused = await app_client.post("/api/clients", json=body)
    assert refused.status == 403
    assert "CSRF" in (await refused.json())["error"]["message"]
    made = await app_client.post("/api/clients", json=body, headers={"X-CSRF-Token": csrf})
    assert made.status == 201
    assert (await app_client.get("/api/clients")).status == 200  # reading needs no token
    assert (await app_client.post("/logout", data={})).status == 403
    out = await app_client.post("/logout", data={"csrf": csrf}, allow_redirects=False)
    assert out.status == 303
    assert await WebSession.all().count() == 0
    assert (await app_client.get("/api/clients")).status == 401


async def test_client_text_is_escaped_and_an_emails_html_only_sandboxed(
    app_client: Any, olga: Any, manager: dict[str, Any],
) -> None:
    await log_in(app_client)
    made = await (await app_client.post("/api/clients", headers=manager["headers"], json={
        "name": "<script>alert(1)</script>", "phones": ["+79031112233"]})).json()
    page = await (await app_client.get(f"/clients/{made['id']}")).text()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


async def test_an_unknown_page_is_a_plain_404(app_client: Any, olga: Any) -> None:
    assert (await app_client.get("/no-such-page")).status == 404
    await log_in(app_client)
    assert (await app_client.get("/clients/999999")).status == 404


async def test_times_show_in_the_hubs_time_zone(
    make_client: Any, olga: Any, manager: dict[str, Any],
) -> None:
    client = await make_client(timezone="Europe/Moscow")
    await log_in(client)
    made = await (await client.post("/api/clients", headers=manager["headers"], json={
        "name": "Анна", "phones": ["+79031112233"]})).json()
    note = await (await client.post(f"/api/clients/{made['id']}/notes", headers=manager["headers"],
                                    json={"text": "позвонить"})).json()
    page = await (await client.get(f"/clients/{made['id']}")).text()
    from hub.db import as_datetime

    at = as_datetime(note["occurred_at"])
    assert at is not None
    moscow = (at.hour + 3) % 24
    assert f"{moscow:02d}:{at.minute:02d}" in page
