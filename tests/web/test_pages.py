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


async def test_a_guesser_is_slowed_down_and_the_owner_gets_back_in_later(
    app_client: Any, olga: Any, monkeypatch: Any,
) -> None:
    from hub.web import throttle

    clock = [1000.0]
    monkeypatch.setattr(throttle.time, "monotonic", lambda: clock[0])

    async def attempt(password: str, email: str = "olga.web@example.com") -> Any:
        form = await app_client.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', await form.text())
        assert token is not None
        return await app_client.post("/login", data={
            "email": email, "password": password, "csrf": token.group(1), "next": "/clients"},
            allow_redirects=False)

    for _ in range(throttle.PER_EMAIL):
        assert (await attempt("wrong guess")).status == 401
    refused = await attempt(PASSWORD)  # even the right one waits now: no checking at all
    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) > 60
    assert "too-many" in await refused.text()
    assert await WebSession.all().count() == 0
    assert (await attempt("x", email="someone.else@example.com")).status == 401  # not them
    clock[0] += throttle.WINDOW_S + 1
    assert (await attempt(PASSWORD)).status == 303


def test_one_address_trying_many_e_mails_is_stopped_too() -> None:
    from hub.web.throttle import PER_ADDRESS, FailedLogins

    guard = FailedLogins()
    for i in range(PER_ADDRESS):
        assert guard.wait(f"user{i}@example.com", "10.0.0.9") == 0
        guard.failed(f"user{i}@example.com", "10.0.0.9")
    assert guard.wait("new@example.com", "10.0.0.9") > 0
    assert guard.wait("new@example.com", "10.0.0.10") == 0
    guard.succeeded("user0@example.com")
    assert guard.wait("user0@example.com", "10.0.0.10") == 0
