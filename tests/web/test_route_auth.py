"""Every route the hub registers is guarded, and a manager cannot do what only an admin may.

The test walks `app.router.routes()` of a hub with every optional channel configured (every
telephony provider, e-mail push, the Telegram webhook) and puts each route under exactly one rule:

- `/api/...` (the OpenAPI document excepted): 401 with the contract's JSON error without
  credentials, with a wrong Bearer token, with a wrong `?token=` or session cookie;
- `/webhooks/...`: a forged or unsigned request is refused (401, or 404 with the provider
  disabled) and changes nothing; the providers' own URL checks are listed apart;
- every other GET/HEAD route is a page: a 303 to /login without a live session; the few
  non-GET page routes are listed and do nothing without a session;
- a short, explicit list of routes is open on purpose (login, health, metrics, static files).

A route no rule covers fails `test_every_registered_route_falls_under_a_rule`, so nobody can add
an open route silently. The admin-only routes are listed explicitly and checked against the
handlers that actually call `require_admin` (see `_reaches_require_admin`)."""

from __future__ import annotations

import ast
import asyncio
import importlib
import inspect
import json
import os
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from tortoise.models import Model

import hub.models
from channels import ADAPTERS
from channels.base import InboundRequest
from hub import sessions
from hub.app import create_app
from hub.models import Manager
from hub.settings import Settings, load_settings
from hub.web import auth
from tests.helpers import EMAIL_TOKEN
from tests.providers import BASE_URL
from tests.telegram_fake import TOKEN, FakeBotAPI, load_fixture

TG_SECRET = "route-auth-telegram-secret"
PASSWORD = "a long enough pass phrase 4 tests"
Key = tuple[str, str]  # (method, canonical path) of a registered route

# Values for path parameters: plausible, so a handler that ran would find something to act on.
PATH_VALUES = {"id": "1", "delivery_id": "1", "name": "promo", "provider": "zadarma",
               "ref": "rec-1"}


def _support(name: str) -> Any:
    """tests/providers/<name>.py: genuine fixture requests and their forgeries."""
    return importlib.import_module(f"tests.providers.{name}")


def full_settings(telegram_api_base: str) -> dict[str, Any]:
    """Every optional inbound channel on: each telephony provider, e-mail push, Telegram
    webhook mode. Twilio signs the public URL, so the public base is the providers' one."""
    return {
        "public_base_url": BASE_URL,
        "telephony": {cls.name: dict(_support(cls.name).CONFIG) for cls in ADAPTERS
                      if cls.kind == "telephony"},
        "email": {"inbound_token": EMAIL_TOKEN},
        "telegram": {"bot_token": TOKEN, "webhook_secret": TG_SECRET,
                     "api_base": telegram_api_base},
    }


def registered(app: web.Application) -> set[Key]:
    return {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource}


def _collection_app(**overrides: Any) -> web.Application:
    """An app built only to read its route table (no database is opened, nothing runs)."""
    settings: Settings = load_settings(os.devnull, environ={}, database_url="sqlite://:memory:",
                                       phone_region="RU", **overrides)
    return create_app(settings, manage_db=False, background=False)


ROUTES: set[Key] = registered(_collection_app(**full_settings("http://127.0.0.1:9")))


# ---- the rules -----------------------------------------------------------------------------------

# open on purpose: logging in, health and metrics for probes and Prometheus, the OpenAPI
# document, static files (the canonical path of the static resource is its prefix)
OPEN: dict[Key, str] = {
    ("GET", "/login"): "the login form", ("HEAD", "/login"): "the login form",
    ("POST", "/login"): "logging in (checked by its own login CSRF cookie)",
    ("GET", "/healthz"): "health probe", ("HEAD", "/healthz"): "health probe",
    ("GET", "/metrics"): "Prometheus", ("HEAD", "/metrics"): "Prometheus",
    ("GET", "/api/openapi.json"): "the public API description",
    ("HEAD", "/api/openapi.json"): "the public API description",
    ("GET", "/static"): "CSS and JS", ("HEAD", "/static"): "CSS and JS",
}
# a provider's URL check: Zadarma GETs the webhook URL with ?zd_echo= before it sends events and
# signs nothing there (contract: "and the GET ?zd_echo= check"); it must only echo a plain token,
# change nothing and answer 404 while the provider is disabled
PROVIDER_CHECKS: dict[Key, str] = {
    ("GET", "/webhooks/telephony/zadarma"): "zadarma", ("HEAD", "/webhooks/telephony/zadarma"):
    "zadarma",
}
# page routes that change something: without a session they must change nothing
PAGE_ACTIONS: dict[Key, dict[str, str]] = {
    ("POST", "/logout"): {"csrf": "x"},
    ("POST", "/language"): {"csrf": "x", "lang": "en", "next": "/clients"},
}


def _webhook_owner(path: str) -> str | None:
    """The adapter (or "telegram") that takes POSTs on a /webhooks path."""
    if path == "/webhooks/telegram":
        return "telegram"
    return next((cls.name for cls in ADAPTERS if path in cls.paths), None)


def rule_of(key: Key) -> str | None:
    """Which rule covers a route; None for a route no rule knows (the test then fails)."""
    method, path = key
    if key in OPEN:
        return "open"
    if path == "/api" or path.startswith("/api/"):
        return "api"
    if key in PROVIDER_CHECKS:
        return "provider_check"
    if path.startswith("/webhooks/"):
        return "webhook" if method == "POST" and _webhook_owner(path) else None
    if key in PAGE_ACTIONS:
        return "page_action"
    if method in ("GET", "HEAD"):
        return "page"
    return None


def _of(rule: str) -> list[Key]:
    return sorted(k for k in ROUTES if rule_of(k) == rule)


API_ROUTES, WEBHOOK_ROUTES, PAGE_ROUTES = _of("api"), _of("webhook"), _of("page")


def _ids(key: Key) -> str:
    return f"{key[0]} {key[1]}"


def fill(path: str) -> str:
    return path.format_map(PATH_VALUES)


async def snapshot() -> dict[str, list[str]]:
    """Every row of every table: a refused request must leave all of it as it was (not only
    the counts of client, interaction and processed_event, but updates too)."""
    models = sorted({m for m in vars(hub.models).values() if isinstance(m, type)
                     and issubclass(m, Model) and m is not Model and not m._meta.abstract},
                    key=lambda m: m.__name__)
    return {m.__name__: sorted(repr(sorted(row.items())) for row in await m.all().values())
            for m in models}


def assert_json_error(data: Any, status: int, code: str | None = None) -> None:
    assert isinstance(data, dict) and set(data) >= {"error"}, data
    error = data["error"]
    assert isinstance(error.get("code"), str) and error["code"], data
    assert isinstance(error.get("message"), str) and error["message"], data
    if code is not None:
        assert error["code"] == code, (status, data)


@pytest.fixture
def full_client(make_client: Any, telegram_api: FakeBotAPI) -> Any:
    async def make() -> Any:
        return await make_client(**full_settings(telegram_api.url))
    return make


async def _session(manager: Manager) -> str:
    """A live web UI session cookie value for the manager."""
    await sessions.set_password(manager, PASSWORD)
    found = await sessions.login(str(manager.email), PASSWORD, "pytest")
    assert found is not None
    return found[1]


# ---- every route falls under a rule --------------------------------------------------------------


async def test_every_registered_route_falls_under_a_rule(
    full_client: Any, make_client: Any
) -> None:
    """The routes checked below are exactly the registered ones: a new route that no rule
    covers (say a POST page, a GET under /webhooks, a webhook of an unknown provider) fails
    here until it gets a rule, and a rule's list naming a route that is gone fails too."""
    full = registered((await full_client()).app)
    bare = registered((await make_client(telephony={}, email={}, telegram={})).app)
    assert full == ROUTES, "the route table depends on settings the test did not expect"
    assert bare == ROUTES, "a route appears or vanishes with the channels' settings"
    unknown = sorted(k for k in ROUTES if rule_of(k) is None)
    assert not unknown, f"routes no rule covers (add them to tests/web/test_route_auth.py): " \
                        f"{unknown}"
    listed = set(OPEN) | set(PROVIDER_CHECKS) | set(PAGE_ACTIONS)
    assert listed <= ROUTES, f"listed but not registered: {sorted(listed - ROUTES)}"
    checked = (set(API_ROUTES) | set(WEBHOOK_ROUTES) | set(PAGE_ROUTES) | set(OPEN)
               | set(PROVIDER_CHECKS) | set(PAGE_ACTIONS))
    assert checked == ROUTES
    assert len(API_ROUTES) > 40 and len(WEBHOOK_ROUTES) >= 10 and len(PAGE_ROUTES) >= 12


# ---- /api ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", API_ROUTES, ids=_ids)
async def test_api_route_refuses_a_caller_without_credentials(
    full_client: Any, manager: dict[str, Any], key: Key
) -> None:
    client = await full_client()
    method, path = key[0], fill(key[1])
    near_miss = manager["token"][:-4] + ("aaaa" if not manager["token"].endswith("aaaa")
                                         else "bbbb")
    attempts: list[tuple[str, dict[str, str], str]] = [
        ("no credentials", {}, path),
        ("a wrong Bearer token", {"Authorization": f"Bearer {near_miss}"}, path),
        ("an empty Bearer token", {"Authorization": "Bearer "}, path),
        ("another scheme", {"Authorization": f"Basic {manager['token']}"}, path),
        ("an unknown session cookie", {"Cookie": f"{sessions.SESSION_COOKIE}=forged"}, path),
        ("a wrong ?token=", {}, f"{path}?token={near_miss}"),
    ]
    before = await snapshot()
    for what, headers, target in attempts:
        kwargs: dict[str, Any] = {"headers": headers, "allow_redirects": False}
        if method not in ("GET", "HEAD", "DELETE"):
            kwargs["json"] = {"name": "x", "text": "x", "other_id": 2, "manager_id": 1}
        resp = await client.request(method, target, **kwargs)
        assert resp.status == 401, f"{method} {target} with {what}: {resp.status}"
        assert resp.headers.get("WWW-Authenticate") == "Bearer", what
        if method != "HEAD":
            assert resp.content_type == "application/json", what
            assert_json_error(await resp.json(), 401)
    assert await snapshot() == before


async def test_the_live_stream_refuses_a_websocket_without_a_token(
    full_client: Any, manager: dict[str, Any]
) -> None:
    """The WebSocket handshake itself is refused (401) without a token, with a wrong one in the
    header or in `?token=`; a right one opens it (so the refusals are about the token)."""
    client = await full_client()
    for headers, query in (({}, ""), ({"Authorization": "Bearer hub_wrong"}, ""),
                           ({}, "?token=hub_wrong"),
                           ({"Cookie": f"{sessions.SESSION_COOKIE}=forged"}, "")):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect("/api/stream" + query, headers=headers)
        assert refused.value.status == 401
    ws = await client.ws_connect("/api/stream", headers=manager["headers"])
    assert (await ws.receive_json())["type"] == "hello"
    await ws.close()


# ---- /webhooks -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One HTTP request to a webhook route."""

    target: str  # path and query
    headers: dict[str, str]
    body: bytes


def _delivery(request: InboundRequest, path: str) -> Delivery:
    """An adapter's request, sent to `path` (Mango signs no path: its fixtures fit every one
    of its routes), with the query the provider signed."""
    query = request.url.partition("?")[2]
    return Delivery(path + (f"?{query}" if query else ""), dict(request.headers), request.body)


def genuine_and_forged(path: str) -> tuple[Delivery, list[Delivery]]:
    """A genuine, signed delivery for a webhook route, and its unsigned and forged variants
    (tests/providers/<name>.py makes them the way the provider signs)."""
    owner = _webhook_owner(path)
    if owner == "telegram":
        update = json.dumps(load_fixture("private_text")[0]).encode()
        plain = {"Content-Type": "application/json"}
        secret = "X-Telegram-Bot-Api-Secret-Token"
        return (Delivery(path, {**plain, secret: TG_SECRET}, update),
                [Delivery(path, plain, update), Delivery(path, {**plain, secret: ""}, update),
                 Delivery(path, {**plain, secret: TG_SECRET + "x"}, update),
                 Delivery(path, {**plain, secret: TG_SECRET.upper()}, update)])
    assert owner is not None
    support = _support(owner)
    genuine = support.requests()
    mine = [g for g in genuine if g.path == path] or genuine
    first = mine[0]
    return _delivery(first, path), [_delivery(f, path) for f in support.forgeries(first)]


@pytest.mark.parametrize("key", WEBHOOK_ROUTES, ids=_ids)
async def test_webhook_refuses_an_unsigned_or_forged_delivery(
    full_client: Any, key: Key
) -> None:
    """401 with a JSON error and nothing stored; the genuine delivery is then accepted, so
    the refusals were about the signature and not about the test's request."""
    client = await full_client()
    path = key[1]
    genuine, forged = genuine_and_forged(path)
    assert forged
    before = await snapshot()
    for n, bad in enumerate(forged):
        resp = await client.post(bad.target, data=bad.body, headers=bad.headers)
        data = await resp.json()
        assert resp.status == 401, f"forgery {n} to {path}: {resp.status} {data}"
        assert_json_error(data, 401)
    assert await snapshot() == before
    resp = await client.post(genuine.target, data=genuine.body, headers=genuine.headers)
    assert resp.status < 300, f"the genuine delivery to {path}: {resp.status}"


async def test_webhooks_of_disabled_providers_answer_404_and_change_nothing(
    make_client: Any, telegram_api: FakeBotAPI
) -> None:
    """With no secret set a provider is off: even a correctly signed delivery is a 404 (and so
    are forged ones); Telegram with a bot token but no webhook secret is off too."""
    for telegram in ({}, {"bot_token": TOKEN, "api_base": telegram_api.url}):
        client = await make_client(telephony={}, email={}, telegram=telegram,
                                   public_base_url=BASE_URL)
        before = await snapshot()
        for _, path in WEBHOOK_ROUTES:
            genuine, forged = genuine_and_forged(path)
            for one in (genuine, *forged):
                resp = await client.post(one.target, data=one.body, headers=one.headers)
                assert resp.status == 404, f"{path} disabled: {resp.status}"
                assert_json_error(await resp.json(), 404, "not_found")
        for method, path in PROVIDER_CHECKS:
            resp = await client.request(method, path + "?zd_echo=abc")
            assert resp.status == 404, f"{method} {path} disabled: {resp.status}"
        assert await snapshot() == before


@pytest.mark.parametrize("key", sorted(PROVIDER_CHECKS), ids=_ids)
async def test_a_provider_url_check_only_echoes_and_changes_nothing(
    full_client: Any, key: Key
) -> None:
    client = await full_client()
    method, path = key
    before = await snapshot()
    resp = await client.request(method, path + "?zd_echo=Ab_9-x")
    assert resp.status == 200
    if method == "GET":
        assert await resp.text() == "Ab_9-x"
    for bad in ("", "?zd_echo=%3Cscript%3E", "?zd_echo=" + "a" * 200):
        resp = await client.request(method, path + bad)
        assert 400 <= resp.status < 500, f"{method} {path}{bad}: {resp.status}"
    assert await snapshot() == before


# ---- pages ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", PAGE_ROUTES, ids=_ids)
async def test_page_redirects_to_login_without_a_session(
    full_client: Any, admin: dict[str, Any], key: Key
) -> None:
    """No session, an unknown cookie, or an API token (pages take sessions only): a 303 to
    the login page."""
    client = await full_client()
    method, path = key[0], fill(key[1])
    before = await snapshot()
    for headers in ({}, {"Cookie": f"{sessions.SESSION_COOKIE}=forged"}, admin["headers"]):
        resp = await client.request(method, path, headers=headers, allow_redirects=False)
        assert resp.status == 303, f"{method} {path} with {list(headers)}: {resp.status}"
        assert resp.headers["Location"].startswith("/login?next="), resp.headers["Location"]
    assert await snapshot() == before


@pytest.mark.parametrize("key", sorted(PAGE_ACTIONS), ids=_ids)
async def test_page_action_does_nothing_without_a_session(
    full_client: Any, admin: dict[str, Any], key: Key
) -> None:
    """A live session exists (the admin's): the action without its cookie, or with a forged
    one, is sent to the login page, and the session and the admin's language stay."""
    client = await full_client()
    await _session(admin["manager"])
    method, path = key
    before = await snapshot()
    for headers in ({}, {"Cookie": f"{sessions.SESSION_COOKIE}=forged"}, admin["headers"]):
        resp = await client.request(method, path, data=PAGE_ACTIONS[key], headers=headers,
                                    allow_redirects=False)
        assert resp.status == 303, f"{method} {path}: {resp.status}"
        assert resp.headers["Location"].startswith("/login"), resp.headers["Location"]
        assert sessions.SESSION_COOKIE not in resp.cookies or not \
            resp.cookies[sessions.SESSION_COOKIE].value
    assert await snapshot() == before


async def test_open_routes_answer_without_credentials(full_client: Any) -> None:
    """What is open on purpose, and only that: it answers without credentials, and POST /login
    without its form's CSRF cookie opens no session."""
    client = await full_client()
    for method, path in sorted(OPEN):
        target = {"/static": "/static/hub.js"}.get(path, path)
        if method == "POST":
            continue
        resp = await client.request(method, target, allow_redirects=False)
        assert resp.status == 200, f"{method} {target}: {resp.status}"
    before = await snapshot()
    resp = await client.post("/login", data={"email": "admin@example.com", "password": "x",
                                             "csrf": "x"}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/login"
    assert await snapshot() == before


# ---- admin-only routes ---------------------------------------------------------------------------


@dataclass
class World:
    """Things an admin made, so a manager's refused request has something real to act on."""

    client_id: int
    webhook_id: int
    delivery_id: int
    import_id: int
    template: str
    admin_id: int


def _csv() -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", "name;phone\nИван;+79123456700\n".encode(), filename="base.csv",
                   content_type="text/csv")
    return form


@dataclass(frozen=True)
class AdminCall:
    """A manager's attempt at an admin action: the request (its body made from the world)."""

    path: str
    body: Callable[[World], Any] | None = None
    form: bool = False
    control: bool = True  # the admin's same request must then succeed


SINCE = (datetime.now(UTC) - timedelta(days=1)).isoformat()

# Every admin-only route, listed by hand (reviewed when it changes); the test below checks this
# list against the handlers that call require_admin, so neither can drift from the other.
ADMIN_ROUTES: dict[Key, AdminCall] = {
    ("POST", "/api/managers"): AdminCall(
        "/api/managers", lambda w: {"name": "Mallory", "email": "m@example.com", "role": "admin"}),
    ("POST", "/api/templates"): AdminCall(
        "/api/templates", lambda w: {"name": "promo2", "subject": "S", "text": "T"}),
    ("PUT", "/api/templates/{name}"): AdminCall(
        "/api/templates/{template}", lambda w: {"subject": "Hijacked", "text": "T"}),
    ("POST", "/api/imports"): AdminCall("/api/imports", form=True),
    ("GET", "/api/imports/{id}"): AdminCall("/api/imports/{import_id}"),
    ("POST", "/api/webhooks"): AdminCall(
        "/api/webhooks", lambda w: {"url": "https://evil.example/hook", "events": ["*"]}),
    ("GET", "/api/webhooks"): AdminCall("/api/webhooks"),
    ("GET", "/api/webhooks/events"): AdminCall("/api/webhooks/events"),
    ("GET", "/api/webhooks/{id}"): AdminCall("/api/webhooks/{webhook_id}"),
    ("PATCH", "/api/webhooks/{id}"): AdminCall(
        "/api/webhooks/{webhook_id}", lambda w: {"url": "https://evil.example/hook"}),
    ("DELETE", "/api/webhooks/{id}"): AdminCall("/api/webhooks/{webhook_id}"),
    ("POST", "/api/webhooks/{id}/secret"): AdminCall("/api/webhooks/{webhook_id}/secret"),
    ("POST", "/api/webhooks/{id}/ping"): AdminCall("/api/webhooks/{webhook_id}/ping"),
    ("GET", "/api/webhooks/{id}/deliveries"): AdminCall("/api/webhooks/{webhook_id}/deliveries"),
    ("POST", "/api/webhooks/{id}/deliveries/{delivery_id}/replay"): AdminCall(
        "/api/webhooks/{webhook_id}/deliveries/{delivery_id}/replay"),
    ("POST", "/api/webhooks/{id}/replay"): AdminCall(
        "/api/webhooks/{webhook_id}/replay", lambda w: {"since": SINCE}),
    ("GET", "/api/clients/{id}/export"): AdminCall("/api/clients/{client_id}/export"),
    ("POST", "/api/clients/{id}/erase"): AdminCall(
        "/api/clients/{client_id}/erase", lambda w: {"reason": "asked", "confirm": w.client_id}),
    ("GET", "/api/audit"): AdminCall("/api/audit"),
    # admin-only only in part: placing a call on *another* manager's phone (manager_id)
    ("POST", "/api/clients/{id}/call"): AdminCall(
        "/api/clients/{client_id}/call", lambda w: {"manager_id": w.admin_id}, control=False),
}


def _reaches_require_admin(func: Callable[..., Any], seen: set[Any] | None = None) -> bool:
    """Whether a handler calls `require_admin`, directly or through the hub's own helpers
    (subscriptions_api's handlers call `_get(request)`, which calls it). Read from the parsed
    source (calls, not text: a comment or docstring naming it does not count), resolving each
    called name (`f(...)` or `module.f(...)`) in the handler's module and following every
    function of the hub's packages it reaches, so a new helper does not hide an admin check."""
    seen = seen if seen is not None else set()
    func = inspect.unwrap(func)
    module = sys.modules[func.__module__]
    tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        target: Any = None
        if isinstance(node.func, ast.Name):
            target = getattr(module, node.func.id, None)
        elif isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
            target = getattr(getattr(module, node.func.value.id, None), node.func.attr, None)
        if target is auth.require_admin:
            return True
        if (inspect.isfunction(target) and target.__module__.startswith(("hub.", "channels."))
                and target not in seen):
            seen.add(target)
            if _reaches_require_admin(target, seen):
                return True
    return False


async def test_the_admin_list_matches_the_handlers_that_require_an_admin(
    full_client: Any,
) -> None:
    """HEAD shares its GET's handler, so HEAD routes are left out of both sides."""
    app = (await full_client()).app
    found = {(r.method, r.resource.canonical) for r in app.router.routes()
             if r.resource and r.method != "HEAD"
             # the static files' handler is aiohttp's own
             and not getattr(inspect.unwrap(r.handler), "__module__", "").startswith("aiohttp.")
             and _reaches_require_admin(r.handler)}
    assert found == set(ADMIN_ROUTES), (
        f"require_admin but not listed: {sorted(found - set(ADMIN_ROUTES))}; "
        f"listed but no require_admin: {sorted(set(ADMIN_ROUTES) - found)}")
    assert all(rule_of(k) == "api" for k in ADMIN_ROUTES)


async def _world(client: Any, admin: dict[str, Any]) -> World:
    """A card, a template, a subscription with one delivery, a finished import: all the
    admin's."""
    async def ok(method: str, path: str, **kwargs: Any) -> Any:
        resp = await client.request(method, path, headers=admin["headers"], **kwargs)
        data = await resp.json()
        assert resp.status < 300, (path, data)
        return data

    card = await ok("POST", "/api/clients", json={"name": "Анна", "phones": ["+79123456789"]})
    await ok("POST", "/api/templates", json={"name": "promo", "subject": "S", "text": "T"})
    hook = await ok("POST", "/api/webhooks",
                    json={"url": "https://receiver.example/hook", "events": ["*"]})
    sent = await ok("POST", f"/api/webhooks/{hook['id']}/ping")
    job = await ok("POST", "/api/imports", data=_csv())
    for _ in range(200):
        if (await ok("GET", f"/api/imports/{job['id']}"))["status"] != "running":
            break
        await asyncio.sleep(0.02)
    return World(client_id=card["id"], webhook_id=hook["id"], delivery_id=sent["id"],
                 import_id=job["id"], template="promo", admin_id=admin["manager"].id)


@pytest.mark.parametrize("key", sorted(ADMIN_ROUTES), ids=_ids)
async def test_a_manager_cannot_do_an_admin_action(
    full_client: Any, admin: dict[str, Any], manager: dict[str, Any], key: Key
) -> None:
    """403 with the JSON error, nothing changed; the admin's same request then succeeds, so
    the refusal was about the role and not about the request."""
    client = await full_client()
    world = await _world(client, admin)
    call = ADMIN_ROUTES[key]
    method, path = key[0], call.path.format(**vars(world))

    def request_kwargs() -> dict[str, Any]:
        if call.form:
            return {"data": _csv()}
        return {"json": call.body(world)} if call.body is not None else {}

    before = await snapshot()
    resp = await client.request(method, path, headers=manager["headers"], **request_kwargs())
    data = await resp.json()
    assert resp.status == 403, f"a manager's {method} {path}: {resp.status} {data}"
    assert_json_error(data, 403, "forbidden")
    assert await snapshot() == before
    if call.control:
        resp = await client.request(method, path, headers=admin["headers"], **request_kwargs())
        assert resp.status < 300, f"the admin's {method} {path}: {resp.status}"
