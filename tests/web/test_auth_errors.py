"""Authentication of the manager API and the contract's JSON error for every kind of bad request."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from hub import search
from tests.web.test_api import create, expect_error

ERROR_KEYS = {"code", "message"}


async def test_every_api_route_but_openapi_needs_a_token(app_client: Any) -> None:
    checked = 0
    for route in app_client.server.app.router.routes():
        info = route.resource
        if info is None or not info.canonical.startswith("/api/"):
            continue
        if info.canonical == "/api/openapi.json" or route.method == "*":
            continue
        path = re.sub(r"\{[^}]+\}", "1", info.canonical)
        resp = await app_client.request(route.method, path)
        assert resp.status == 401, f"{route.method} {path} answered {resp.status}"
        assert resp.headers["WWW-Authenticate"] == "Bearer"
        if route.method != "HEAD":
            body = await resp.json()
            assert body["error"]["code"] == "unauthorized", path
        checked += 1
    assert checked >= 15  # the walk really saw the API


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "Bearer hub_wrong-token"],
)
async def test_missing_or_wrong_credentials_are_401(
    app_client: Any, manager: dict[str, Any], header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    resp = await app_client.get("/api/clients", headers=headers)
    body = await expect_error(resp, 401)
    assert body["error"]["code"] == "unauthorized"
    assert manager["token"] not in json.dumps(body)


async def test_token_scheme_is_case_insensitive(app_client: Any, manager: dict[str, Any]) -> None:
    resp = await app_client.get(
        "/api/clients", headers={"Authorization": f"bearer {manager['token']}"}
    )
    assert resp.status == 200


async def test_deactivated_manager_is_locked_out(app_client: Any, manager: dict[str, Any]) -> None:
    manager["manager"].is_active = False
    await manager["manager"].save()
    resp = await app_client.get("/api/clients", headers=manager["headers"])
    await expect_error(resp, 401)


async def test_openapi_is_public(app_client: Any) -> None:
    resp = await app_client.get("/api/openapi.json")
    assert resp.status == 200
    assert (await resp.json())["openapi"].startswith("3.")


async def test_creating_managers_is_for_admins(
    app_client: Any, manager: dict[str, Any], admin: dict[str, Any]
) -> None:
    body = {"name": "Ivan", "email": "ivan@example.com"}
    resp = await app_client.post("/api/managers", json=body, headers=manager["headers"])
    assert (await expect_error(resp, 403))["error"]["code"] == "forbidden"
    resp = await app_client.post("/api/managers", json=body, headers=admin["headers"])
    assert resp.status == 201


async def test_invalid_json_is_400(app_client: Any, manager: dict[str, Any]) -> None:
    headers = {**manager["headers"], "Content-Type": "application/json"}
    bad = (
        b"{",
        b"{'name': 1}",
        b"\xff\xfe",
        b'{"name": NaN}',
        b'{"fields": {"x": -Infinity}}',
        b'{"fields": {"x": 1e400}}',
        b"[1, 2]",
        b'"text"',
        b"",
    )
    for raw in bad:
        resp = await app_client.post("/api/clients", data=raw, headers=headers)
        body = await expect_error(resp, 400)
        assert body["error"]["code"] == "malformed", raw


async def test_non_json_content_type_is_415(app_client: Any, manager: dict[str, Any]) -> None:
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        headers = {**manager["headers"], "Content-Type": ctype}
        resp = await app_client.post("/api/clients", data=b'{"name": "A"}', headers=headers)
        body = await expect_error(resp, 415)
        assert body["error"]["code"] == "unsupported_media_type"


async def test_json_suffix_content_type_is_accepted(
    app_client: Any, manager: dict[str, Any]
) -> None:
    headers = {**manager["headers"], "Content-Type": "application/merge-patch+json"}
    resp = await app_client.post("/api/clients", data=b'{"name": "A"}', headers=headers)
    assert resp.status == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": 5}, "name"),
        ({"name": "A", "nickname": "x"}, "nickname"),
        ({"phones": "+79123456789"}, "phones"),
        ({"phones": ["hello"]}, "phones"),
        ({"phones": [79123456789]}, "phones.0"),
        ({"emails": ["not-an-address"]}, "emails"),
        ({"emails": ["a@b"]}, "emails"),
        ({"status": "sleeping"}, "status"),
        ({"manager_id": "7"}, "manager_id"),
        ({"manager_id": True}, "manager_id"),
        ({"manager_id": 10**12}, "manager_id"),
        ({"telegram": ["-5"]}, "telegram"),
        ({"fields": []}, "fields"),
        ({"name": "x" * 301}, "name"),
        ({"name": "nul\u0000byte"}, "body"),
    ],
)
async def test_invalid_fields_are_422_naming_the_field(
    app_client: Any, manager: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    resp = await app_client.post("/api/clients", json=body, headers=manager["headers"])
    err = (await expect_error(resp, 422))["error"]
    assert err["code"] == "invalid"
    assert err["message"].startswith(field), err


async def test_bad_query_parameters_are_422(app_client: Any, manager: dict[str, Any]) -> None:
    for query in (
        "limit=0",
        "limit=201",
        "limit=ten",
        "status=asleep",
        "manager_id=x",
        "q=" + "9" * 301,
        "q=%00",
    ):
        resp = await app_client.get(f"/api/clients?{query}", headers=manager["headers"])
        err = (await expect_error(resp, 422))["error"]
        assert err["field"] == query.split("=")[0], query


async def test_body_over_the_limit_is_413(make_client: Any, manager: dict[str, Any]) -> None:
    client = await make_client(max_body_bytes=2048)
    resp = await client.post(
        "/api/clients", json={"name": "A", "fields": {"x": "y" * 4000}}, headers=manager["headers"]
    )
    body = await expect_error(resp, 413)
    assert body["error"]["code"] == "too_large"
    small = await client.post("/api/clients", json={"name": "A"}, headers=manager["headers"])
    assert small.status == 201


async def test_unknown_route_is_404_json(app_client: Any, manager: dict[str, Any]) -> None:
    for path in ("/nowhere", "/api/nowhere", "/api/clients/abc"):
        resp = await app_client.get(path, headers=manager["headers"])
        assert (await expect_error(resp, 404))["error"]["code"] == "not_found"


async def test_unknown_api_route_without_token_is_401(app_client: Any) -> None:
    await expect_error(await app_client.get("/api/nowhere"), 401)


async def test_wrong_method_is_405_json(app_client: Any, manager: dict[str, Any]) -> None:
    resp = await app_client.delete("/api/clients", headers=manager["headers"])
    body = await expect_error(resp, 405)
    assert body["error"]["code"] == "method_not_allowed"
    assert "GET" in body["error"]["allowed"] and "POST" in body["error"]["allowed"]
    assert "POST" in resp.headers["Allow"]


async def test_ids_past_the_database_range_are_404(
    app_client: Any, manager: dict[str, Any]
) -> None:
    for path in ("/api/clients/99999999999999999999", "/api/clients/2147483648/timeline"):
        await expect_error(await app_client.get(path, headers=manager["headers"]), 404)
    resp = await app_client.post("/api/reminders/2147483648/done", headers=manager["headers"])
    await expect_error(resp, 404)


async def test_unexpected_exception_is_500_without_traceback(
    app_client: Any,
    manager: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def explode(**_: Any) -> Any:
        raise RuntimeError("secret internals: password=hunter2")

    monkeypatch.setattr(search, "list_clients", explode)
    resp = await app_client.get("/api/clients", headers=manager["headers"])
    body = await expect_error(resp, 500)
    text = json.dumps(body)
    assert body["error"]["code"] == "internal_error"
    assert "Traceback" not in text and "hunter2" not in text and "RuntimeError" not in text
    assert "hunter2" in caplog.text  # the operator still gets the details in the log


async def test_conflict_is_409_naming_the_holder(app_client: Any, manager: dict[str, Any]) -> None:
    first = await create(app_client, manager, name="A", phones=["+79123456789"])
    resp = await app_client.post(
        "/api/clients", json={"name": "B", "phones": ["89123456789"]}, headers=manager["headers"]
    )
    err = (await expect_error(resp, 409))["error"]
    assert err["client_id"] == first["id"]
    assert str(first["id"]) in err["message"]


async def test_absurd_nesting_is_refused(app_client: Any, manager: dict[str, Any]) -> None:
    headers = {**manager["headers"], "Content-Type": "application/json"}
    for depth in (40, 900, 100_000):
        raw = b'{"fields": {"x": ' + b"[" * depth + b"]" * depth + b"}}"
        resp = await app_client.post("/api/clients", data=raw, headers=headers)
        assert (await expect_error(resp, 422))["error"]["field"] == "body", depth
    fine = b'{"fields": {"x": ' + b"[" * 20 + b"]" * 20 + b"}}"
    assert (await app_client.post("/api/clients", data=fine, headers=headers)).status == 201
