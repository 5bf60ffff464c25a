"""GET /api/openapi.json: the OpenAPI 3 description, built from the same pydantic models
that validate the requests."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic.json_schema import models_json_schema

import hub
from hub import schemas as s

routes = web.RouteTableDef()
REF = "#/components/schemas/{model}"
MODELS = (s.ClientCreate, s.ClientPatch, s.MergeRequest, s.NoteCreate, s.ManagerCreate, s.ClientOut,
          s.InteractionOut, s.ManagerOut, s.ReminderOut, s.MergeOut, s.WebhookAnswer, s.ErrorOut)
ERRORS = {"400": "malformed", "401": "no or wrong token", "404": "not found",
          "409": "conflict", "413": "body too large", "415": "wrong content type",
          "422": "invalid value"}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": REF.format(model=name)}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _page(item: str) -> dict[str, Any]:
    return {"type": "object", "required": ["items", "next_cursor"], "properties": {
        "items": {"type": "array", "items": _ref(item)},
        "next_cursor": {"type": ["string", "null"]}}}


def _param(name: str, where: str = "query", kind: str = "string", **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": where, "required": where == "path",
            "schema": {"type": kind, **extra}}


def _op(summary: str, ok: dict[str, Any] | None, *, body: str | None = None, status: str = "200",
        params: list[dict[str, Any]] | None = None, errors: tuple[str, ...] = ("401",)) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {
        status: {"description": "success", **(_json(ok) if ok else {})}}}
    for code in errors:
        op["responses"][code] = {"description": ERRORS[code], **_json(_ref("ErrorOut"))}
    if body:
        op["requestBody"] = {"required": True, **_json(_ref(body))}
    if params:
        op["parameters"] = params
    return op


ID = _param("id", "path", "integer")
PAGING = [_param("limit", kind="integer", minimum=1, maximum=200), _param("cursor")]
WRITE = ("400", "401", "404", "413", "415", "422")


def build_spec() -> dict[str, Any]:
    """The whole document."""
    _, defs = models_json_schema([(m, "validation") for m in MODELS], ref_template=REF)
    return {
        "openapi": "3.1.0",
        "info": {"title": "crm-hub", "version": hub.__version__},
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "hubSignature": {"type": "apiKey", "in": "header",
                                                 "name": "X-Hub-Signature-256"}},
        },
        "security": [{"bearer": []}],
        "paths": _paths(),
    }


def _paths() -> dict[str, Any]:
    client_q = [_param("q"), _param("status", enum=["new", "cold", "hot", "vip", "regular"]),
                _param("manager_id", kind="integer"), *PAGING]
    return {
        "/api/clients": {
            "get": _op("Search and list cards", _page("ClientOut"), params=client_q,
                       errors=("400", "401", "422")),
            "post": _op("Create a card", _ref("ClientOut"), body="ClientCreate", status="201",
                        errors=(*WRITE, "409")),
        },
        "/api/clients/{id}": {
            "get": _op("One card (410 with merged_into when merged away)", _ref("ClientOut"),
                       params=[ID], errors=("401", "404")),
            "patch": _op("Change a card", _ref("ClientOut"), body="ClientPatch", params=[ID],
                         errors=(*WRITE, "409")),
        },
        "/api/clients/{id}/merge": {"post": _op(
            "Fold another card into this one", {"type": "object"}, body="MergeRequest",
            params=[ID], errors=WRITE)},
        "/api/clients/{id}/merges": {"get": _op(
            "Merges into this card", _page("MergeOut"), params=[ID])},
        "/api/merges/{id}/undo": {"post": _op(
            "Undo a merge", _ref("MergeOut"), params=[ID], errors=("401", "404", "409"))},
        "/api/clients/{id}/timeline": {"get": _op(
            "The card's timeline, newest first", _page("InteractionOut"), params=[ID, *PAGING],
            errors=("400", "401", "404", "422"))},
        "/api/clients/{id}/notes": {"post": _op(
            "Add a note", _ref("InteractionOut"), body="NoteCreate", status="201", params=[ID],
            errors=WRITE)},
        "/api/lookup": {"get": _op(
            "The card holding a phone (any form), e-mail or Telegram id/@username",
            _ref("ClientOut"), params=[_param("phone"), _param("email"), _param("telegram")],
            errors=("401", "404", "422"))},
        "/api/managers": {
            "get": _op("Managers", _page("ManagerOut")),
            "post": _op("Add a manager (admin); the answer carries their token once",
                        _ref("ManagerOut"), body="ManagerCreate", status="201",
                        errors=(*WRITE, "409")),
        },
        "/api/stream": {"get": _op("WebSocket of live events (Bearer or ?token=)", None,
                                   status="101")},
        "/webhooks/telephony/generic": {"post": {
            **_op("Provider-neutral call event (HMAC-SHA256 signed)", _ref("WebhookAnswer"),
                  errors=("400", "401", "404", "413", "415", "422")),
            "security": [{"hubSignature": []}],
        }},
        "/webhooks/email": {"post": {
            **_op("One raw RFC 822 message (X-Hub-Token)", _ref("WebhookAnswer"),
                  errors=("400", "401", "404", "413", "415", "422")),
            "security": [],
        }},
    }


@routes.get("/api/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(build_spec())
