"""Schemathesis over the hub's own OpenAPI document: every operation of /api/openapi.json (every
provider and the Telegram webhook switched on), called with an admin's Bearer token, with data
that fits the schema and data that does not. No answer may be a server error, and an answer the
document describes must match its schema.

The app runs under pytest-aiohttp's test server on this test's database; Hypothesis and
schemathesis (synchronous, `requests`) run in a worker thread while the event loop serves the
calls. Each operation is fuzzed three ways: schema-valid data with random ids, schema-valid data
aimed at things that exist (a card, a template, a subscription...), and schema-breaking data.
Generation is derandomized, so a run is the same every time; the first failure of every
operation is collected (shrunk by Hypothesis) and all are reported together.

Findings are kept as plain regression tests at the bottom, each with its input written out."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.web.test_route_auth import full_settings

# E-mail push bodies are raw messages: sent as they are, like text
schemathesis.serializer.alias("message/rfc822", "text/plain")

EXAMPLES = 10  # per operation and way; the whole file stays within its time budget
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
# answers no operation documents one by one: aiohttp's own (a path id that fails the route's
# pattern is no route: 404; a method the route lacks: 405)
ANY_OPERATION = frozenset({404, 405})


@dataclass
class World:
    """Things that exist, so fuzzed requests reach past the 404 of an unknown id."""

    ids: dict[str, Any]


async def _world(client: Any, admin: dict[str, Any]) -> World:
    async def ok(method: str, path: str, **kwargs: Any) -> Any:
        resp = await client.request(method, path, headers=admin["headers"], **kwargs)
        data = await resp.json()
        assert resp.status < 300, (path, data)
        return data

    card = await ok("POST", "/api/clients", json={
        "name": "Анна", "phones": ["+79123456789"], "emails": ["anna@example.com"]})
    await ok("POST", f"/api/clients/{card['id']}/notes", json={"text": "первый звонок"})
    await ok("POST", "/api/templates", json={"name": "promo", "subject": "S", "text": "T"})
    hook = await ok("POST", "/api/webhooks",
                    json={"url": "https://receiver.example/hook", "events": ["*"]})
    sent = await ok("POST", f"/api/webhooks/{hook['id']}/ping")
    reminder = await ok("POST", f"/api/clients/{card['id']}/reminders",
                        json={"text": "перезвонить", "in_minutes": 30})
    return World(ids={"id": card["id"], "delivery_id": sent["id"], "name": "promo",
                      "provider": "zadarma", "ref": "rec-1", "_hook": hook["id"],
                      "_reminder": reminder["id"]})


def _known_ids(path: str, world: World) -> dict[str, Any]:
    """Path values naming things that exist, for an operation's path."""
    ids = dict(world.ids)
    if path.startswith("/api/webhooks/"):
        ids["id"] = ids["_hook"]
    elif path.startswith("/api/reminders/"):
        ids["id"] = ids["_reminder"]
    names = {part[1:-1] for part in path.split("/") if part.startswith("{")}
    return {k: v for k, v in ids.items() if k in names}


def _property(
    strategy: Any, checks: list[Any], base: str, headers: dict[str, str], counter: list[int],
) -> Callable[[], None]:
    """Hypothesis over one way of one operation: call, then check the answer."""
    session = requests.Session()

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate, Phase.shrink],
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case: Any) -> None:
        counter[0] += 1
        response = case.call(base_url=base, session=session, headers=headers, timeout=30)
        # aiohttp's own 404 (a path value the route's pattern refuses) and 405 carry the
        # contract's JSON error but are documented per operation only where they mean more
        plain = response.status_code in ANY_OPERATION
        case.validate_response(response, checks=[not_a_server_error] if plain else checks,
                               headers=headers)

    return run


def _fuzz(
    operation: Any, base: str, headers: dict[str, str], world: World, failures: dict[str, str],
) -> int:
    """Run one operation's three ways; record its first failure; the number of calls made."""
    counter = [0]
    ways: list[tuple[str, Any]] = [
        ("valid", operation.as_strategy(GenerationMode.POSITIVE)),
        ("invalid", operation.as_strategy(GenerationMode.NEGATIVE)),
    ]
    known = _known_ids(operation.path, world)
    if known:
        ways.insert(1, ("valid, known ids", operation.as_strategy(
            GenerationMode.POSITIVE, path_parameters=known)))
    for way, strategy in ways:
        # schema-breaking requests: only "no server error" (their 4xx need not be listed)
        checks = CHECKS if way != "invalid" else [not_a_server_error]
        try:
            _property(strategy, checks, base, headers, counter)()
        except Unsatisfiable as exc:
            if way == "invalid":
                continue  # nothing in the operation (no parameter, no body) can be invalid
            failures[f"{operation.label} ({way})"] = repr(exc)
            break
        except (Exception, FailureGroup) as exc:  # collected, reported below
            failures[f"{operation.label} ({way})"] = f"{type(exc).__name__}: {exc}"[:3000]
            break
    return counter[0]


async def test_every_operation_survives_fuzzing(full_hub: Any, admin: dict[str, Any]) -> None:
    client = await full_hub()
    world = await _world(client, admin)
    spec = await (await client.get("/api/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(spec)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 60
    base = str(client.make_url("")).rstrip("/")
    failures: dict[str, str] = {}

    def run_all() -> int:
        return sum(_fuzz(op, base, admin["headers"], world, failures) for op in operations)

    calls = await asyncio.get_running_loop().run_in_executor(None, run_all)
    assert calls >= len(operations) * EXAMPLES
    assert not failures, "\n\n".join(f"== {k}\n{v}" for k, v in failures.items())


# ---- regression tests: what the fuzzing found, written out ----------------------------------


# a path id past every integer column (route patterns take any run of digits)
HUGE_ID = "216466693859751821312"


@pytest.mark.parametrize("method,path", [
    ("POST", f"/api/interactions/{HUGE_ID}/retry"),
    ("POST", f"/api/clients/{HUGE_ID}/telegram-link"),
    ("GET", f"/api/imports/{HUGE_ID}"),
    ("POST", f"/api/clients/{HUGE_ID}/offers"),
    ("POST", f"/api/clients/{HUGE_ID}/messages"),
])
async def test_a_path_id_past_the_integer_range_is_not_found(
    make_client: Any, telegram_api: Any, admin: dict[str, Any], method: str, path: str
) -> None:
    """Found: OverflowError (Python int too large to convert to SQLite INTEGER) → 500. The
    handlers read the id with int() instead of inputs.path_id."""
    client = await make_client(**full_settings(telegram_api.url))
    body = {"template": "promo", "channel": "email"} if path.endswith("offers") else (
        {"text": "hi", "channel": "email"} if path.endswith("messages") else None)
    resp = await client.request(method, path, headers=admin["headers"], json=body)
    data = await resp.json()
    assert resp.status == 404, data
    assert data["error"]["code"] == "not_found"


async def test_a_multipart_part_with_a_control_character_in_its_header_is_a_400(
    app_client: Any, admin: dict[str, Any]
) -> None:
    """Found: aiohttp raises InvalidHeader (an HttpProcessingError, not an HTTPException)
    while the import handler walks the parts → 500."""
    boundary = "8ba5f4dce1f8b177019c1fca6dc1100b"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"a\x10b\"\r\n\r\nx\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"base.csv\"\r\n\r\nname;phone\r\n--{boundary}--\r\n").encode()
    resp = await app_client.post("/api/imports", data=body, headers={
        **admin["headers"], "Content-Type": f"multipart/form-data; boundary={boundary}"})
    data = await resp.json()
    assert resp.status == 400, data
    assert data["error"]["code"] == "malformed"


async def test_an_xlsx_export_leaves_out_what_a_worksheet_cannot_hold(
    app_client: Any, admin: dict[str, Any]
) -> None:
    """Found: a card named with a control character (any JSON string is a valid name) made
    GET /api/clients/export?format=xlsx fail: openpyxl's IllegalCharacterError → 500."""
    card = {"name": "Ann\x1b[31m\x01x", "fields": {"note\x07": "a\x0bb"}}
    resp = await app_client.post("/api/clients", headers=admin["headers"], json=card)
    assert resp.status == 201, await resp.text()
    resp = await app_client.get("/api/clients/export?format=xlsx", headers=admin["headers"])
    assert resp.status == 200, await resp.text()
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(await resp.read())).active
    assert sheet is not None
    values = [cell.value for row in sheet.iter_rows() for cell in row]
    assert "Ann[31mx" in values


async def test_an_audit_filter_longer_than_its_column_is_a_422(
    app_client: Any, admin: dict[str, Any]
) -> None:
    """Found: GET /api/audit?target_type=<92 characters> → 500 (the ORM validated the filter
    value against the column's max_length 32 and raised)."""
    resp = await app_client.get("/api/audit", params={"target_type": "Ω≈ç√∫" * 20},
                                headers=admin["headers"])
    data = await resp.json()
    assert resp.status == 422, data
    assert data["error"]["code"] == "invalid"


@pytest.mark.parametrize("path", [
    f"/clients/{HUGE_ID}", f"/clients/{HUGE_ID}/entries", f"/clients/1/entries?ids={HUGE_ID}",
    "/clients/1/entries?ids=%C2%B2", "/clients?manager_id=%C2%B2&idle_months=%C2%B2",
])
async def test_pages_take_any_digits_in_ids(
    app_client: Any, admin: dict[str, Any], path: str
) -> None:
    """Found while fixing the API's ids: the web UI's card page and its entries fragment took
    a path id or `ids` past the integer range (OverflowError), and "²", a digit to isdigit()
    but not to int() (ValueError): 500."""
    from hub import sessions

    password = "a long enough pass phrase 4 tests"
    await sessions.set_password(admin["manager"], password)
    found = await sessions.login("admin@example.com", password, "pytest")
    assert found is not None
    await app_client.post("/api/clients", headers=admin["headers"], json={"name": "Анна"})
    resp = await app_client.get(path, cookies={sessions.SESSION_COOKIE: found[1]},
                                allow_redirects=False)
    assert resp.status in (200, 404), (path, resp.status)
