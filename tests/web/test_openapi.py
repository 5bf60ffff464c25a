"""GET /api/openapi.json: a well-formed OpenAPI 3 document covering every route, refs resolving."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hub.web.openapi import build_spec

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture
async def spec(app_client: Any) -> dict[str, Any]:
    resp = await app_client.get("/api/openapi.json")
    assert resp.status == 200 and resp.content_type == "application/json"
    data: dict[str, Any] = await resp.json()
    return data


def refs(node: Any) -> Iterator[str]:
    """Every $ref anywhere in a JSON tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_top_level_structure(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] and spec["info"]["version"]
    assert spec["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    assert spec["security"] == [{"bearer": []}]
    for path, item in spec["paths"].items():
        assert path.startswith("/"), path
        for method, op in item.items():
            assert method in HTTP_METHODS, (path, method)
            assert op["summary"] and op["responses"], (path, method)
            for code, response in op["responses"].items():
                assert code.isdigit() and response["description"], (path, method, code)


def test_every_route_is_described(app_client: Any, spec: dict[str, Any]) -> None:
    routes = 0
    for route in app_client.server.app.router.routes():
        info = route.resource
        if info is None or route.method in ("HEAD", "*"):
            continue
        path = info.canonical
        if not path.startswith(("/api/", "/webhooks/")) and path not in ("/healthz", "/metrics"):
            continue
        assert route.method.lower() in spec["paths"].get(path, {}), f"{route.method} {path}"
        routes += 1
    assert routes >= 18


def test_path_parameters_are_declared(spec: dict[str, Any]) -> None:
    for path, item in spec["paths"].items():
        names = {p[1:-1] for p in path.split("/") if p.startswith("{")}
        for method, op in item.items():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (path, method)
            assert all(p["required"] for p in op.get("parameters", []) if p["in"] == "path")


def test_every_ref_resolves(spec: dict[str, Any]) -> None:
    found = list(refs(spec))
    assert len(found) > 50
    for ref in found:
        target = resolve(spec, ref)
        assert isinstance(target, dict) and target, ref


def test_contract_shapes(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    client = set(schemas["ClientOut"]["properties"])
    assert client == {
        "id",
        "name",
        "status",
        "phones",
        "emails",
        "telegram",
        "manager_id",
        "fields",
        "created_at",
        "last_interaction_at",
    }
    assert {"id", "kind", "direction", "channel", "occurred_at", "status", "text", "meta"} <= set(
        schemas["InteractionOut"]["properties"]
    )
    assert {"id", "client_id", "manager_id", "due_at", "text", "status", "origin"} <= set(
        schemas["ReminderOut"]["properties"]
    )
    assert set(schemas["ManagerOut"]["properties"]) >= {"id", "name", "email", "extension", "role"}
    assert schemas["ErrorOut"]["required"] == ["error"]
    assert set(schemas["ErrorBody"]["required"]) == {"code", "message"}
    assert schemas["ClientCreate"]["additionalProperties"] is False
    assert set(schemas["ReminderSnooze"]["properties"]["minutes"]) >= {"minimum", "maximum"}


def test_public_routes_need_no_token(spec: dict[str, Any]) -> None:
    for path in ("/api/openapi.json", "/healthz", "/metrics"):
        assert spec["paths"][path]["get"]["security"] == []
    for path, item in spec["paths"].items():
        if path.startswith("/webhooks/"):
            assert all(op["security"] == [] for op in item.values()), path
    assert "security" not in spec["paths"]["/api/clients"]["get"]  # the document's bearer


def test_spec_without_a_router_matches_the_static_part(spec: dict[str, Any]) -> None:
    static = build_spec()
    for path, item in static["paths"].items():
        assert spec["paths"][path] == item, path
