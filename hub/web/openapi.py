"""GET /api/openapi.json: the OpenAPI 3 description, built from the same pydantic models
that validate the requests, completed from the live router so no route goes undescribed."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic.json_schema import models_json_schema

import hub
from channels import ADAPTERS
from channels.generic import GenericCallBody
from hub import schemas as s
from hub.models import ClientStatus, ReminderStatus
from hub.web.privacy_api import EraseRequest

routes = web.RouteTableDef()
REF = "#/components/schemas/{model}"
MODELS = (s.ClientCreate, s.ClientPatch, s.MergeRequest, s.NoteCreate, s.CallRequest,
          s.ManagerCreate,
          s.ReminderCreate, s.ReminderSnooze, s.ClientOut, s.InteractionOut, s.ManagerOut,
          s.ManagerCreated, s.ReminderOut, s.MergeOut, s.MergeResult, s.WebhookAnswer, s.ErrorOut,
          s.TemplateCreate, s.TemplateUpdate, s.TemplateOut, s.TemplateVersionOut,
          s.TemplatePreview, s.OfferCreate, s.MessageCreate, s.WebhookCreate, s.WebhookPatch,
          s.WebhookReplay, s.WebhookOut, s.WebhookCreated, s.WebhookSecret, s.DeliveryOut,
          EraseRequest, GenericCallBody)
ERRORS = {"400": "malformed body, query or cursor", "401": "no or wrong credentials",
          "403": "the role may not do this", "404": "not found", "409": "conflict",
          "410": "the card was merged away; the body carries merged_into",
          "413": "body too large", "415": "wrong content type", "422": "invalid value",
          "502": "the provider refused or could not be reached"}
DOCUMENTED_SCOPES = ("/api", "/webhooks")
METHODS = ("get", "post", "put", "patch", "delete")


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


def _op(
    summary: str, ok: dict[str, Any] | None, *, body: str | None = None, status: str = "200",
    params: list[dict[str, Any]] | None = None, errors: tuple[str, ...] = ("401",),
) -> dict[str, Any]:
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
CARD = ("401", "404", "410")
PUBLIC: dict[str, Any] = {"security": []}


def build_spec(router: web.UrlDispatcher | None = None) -> dict[str, Any]:
    """The whole document; with a router, every route it holds under /api and /webhooks."""
    _, defs = models_json_schema([(m, "validation") for m in MODELS], ref_template=REF)
    paths = {**_client_paths(), **_other_paths(), **_template_paths(), **_webhook_paths(),
             **_subscription_paths(), **_privacy_paths()}
    if router is not None:
        _fill_from_router(paths, router)
    return {
        "openapi": "3.1.0",
        "info": {"title": "crm-hub", "version": hub.__version__},
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }


def _client_paths() -> dict[str, Any]:
    client_q = [_param("q"), _param("status", enum=[v.value for v in ClientStatus]),
                _param("manager_id", kind="integer"),
                _param("channel", enum=["phone", "email", "telegram"]),
                _param("idle_months", kind="integer", minimum=1, maximum=1200), *PAGING]
    return {
        "/api/clients": {
            "get": _op("Search and list cards, newest activity first; q matches a phone in any "
                       "form or its tail, a name, e-mail or Telegram username",
                       _page("ClientOut"), params=client_q, errors=("400", "401", "422")),
            "post": _op("Create a card", _ref("ClientOut"), body="ClientCreate", status="201",
                        errors=(*WRITE, "409")),
        },
        "/api/clients/{id}": {
            "get": _op("One card (410 with merged_into when merged away)", _ref("ClientOut"),
                       params=[ID], errors=CARD),
            "patch": _op("Change a card: lists replace, fields merge (null removes a key)",
                         _ref("ClientOut"), body="ClientPatch", params=[ID],
                         errors=(*WRITE, "409", "410")),
        },
        "/api/clients/{id}/merge": {"post": _op(
            "Fold another card into this one", _ref("MergeResult"), body="MergeRequest",
            params=[ID], errors=(*WRITE, "410"))},
        "/api/clients/{id}/merges": {"get": _op(
            "Merges into this card, newest first", _page("MergeOut"), params=[ID])},
        "/api/clients/{id}/timeline": {"get": _op(
            "The card's timeline, newest first", _page("InteractionOut"), params=[ID, *PAGING],
            errors=("400", *CARD, "422"))},
        "/api/clients/{id}/notes": {"post": _op(
            "Add a note", _ref("InteractionOut"), body="NoteCreate", status="201", params=[ID],
            errors=(*WRITE, "410"))},
        "/api/clients/{id}/call": {"post": _op(
            "Click-to-call: the provider rings the manager, then the client; the call's entry",
            _ref("InteractionOut"), body="CallRequest", status="202", params=[ID],
            errors=(*WRITE, "403", "409", "410", "502"))},
        "/api/clients/{id}/reminders": {"post": _op(
            "Set a reminder about the card (due_at or in_minutes; default: for the caller)",
            _ref("ReminderOut"), body="ReminderCreate", status="201", params=[ID],
            errors=(*WRITE, "410"))},
    }


def _other_paths() -> dict[str, Any]:
    reminder_q = [_param("status", enum=[v.value for v in ReminderStatus]),
                  _param("client_id", kind="integer"), *PAGING]
    lookup_q = [_param("phone"), _param("email"), _param("telegram")]
    return {
        "/api/merges/{id}/undo": {"post": _op(
            "Undo a merge (the merging manager or an admin)", _ref("MergeOut"), params=[ID],
            errors=("401", "403", "404", "409"))},
        "/api/recordings/{provider}/{ref}": {"get": {**_op(
            "A call recording the provider keeps: 302 to a fresh link", None, status="302",
            params=[_param("provider", "path"), _param("ref", "path")],
            errors=("401", "404", "502"))}},
        "/api/lookup": {"get": _op(
            "The card holding a phone (any form), e-mail or Telegram id/@username",
            _ref("ClientOut"), params=lookup_q, errors=("401", "404", "422"))},
        "/api/managers": {
            "get": _op("Active managers", _page("ManagerOut")),
            "post": _op("Add a manager (admin); the answer carries their token once",
                        _ref("ManagerCreated"), body="ManagerCreate", status="201",
                        errors=(*WRITE, "403", "409")),
        },
        "/api/reminders": {"get": _op(
            "Reminders, soonest first: a manager's own and unassigned ones; all for an admin",
            _page("ReminderOut"), params=reminder_q, errors=("400", "401", "422"))},
        "/api/reminders/{id}/done": {"post": _op(
            "Close a reminder", _ref("ReminderOut"), params=[ID], errors=("401", "403", "404"))},
        "/api/reminders/{id}/snooze": {"post": _op(
            "Remind again in `minutes` (status back to pending)", _ref("ReminderOut"),
            body="ReminderSnooze", params=[ID], errors=(*WRITE, "403", "409"))},
        "/api/stream": {"get": _op("WebSocket of live events (Bearer or ?token=); 400 for a "
                                   "request that is no WebSocket handshake", None,
                                   status="101", errors=("400", "401"))},
        "/api/openapi.json": {"get": {**_op("This document", {"type": "object"}, errors=()),
                                      **PUBLIC}},
        "/healthz": {"get": {**_op("200 when the database answers, 503 otherwise",
                                   {"type": "object"}, errors=()), **PUBLIC}},
        "/metrics": {"get": {
            "summary": "Prometheus metrics (text format)", **PUBLIC,
            "responses": {"200": {"description": "success",
                                  "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
    }


def _template_paths() -> dict[str, Any]:
    name = _param("name", "path", pattern=s.TEMPLATE_NAME)
    preview_q = [name, {**_param("client_id", kind="integer", minimum=1), "required": True},
                 _param("language", pattern=s.LANGUAGE)]
    return {
        "/api/templates": {
            "get": _op("Offer templates, bundled and written by admins", _page("TemplateOut")),
            "post": _op("A new template or language variant, version 1 (admin); bodies are "
                        "Jinja2, checked in the sandbox", _ref("TemplateVersionOut"),
                        body="TemplateCreate", status="201", errors=(*WRITE, "403", "409")),
        },
        "/api/templates/{name}": {"put": _op(
            "A new version of a template's language variant (admin); earlier ones are kept",
            _ref("TemplateVersionOut"), body="TemplateUpdate", params=[name],
            errors=(*WRITE, "403", "409"))},
        "/api/templates/{name}/versions": {"get": _op(
            "Every stored version of a template, newest first, then its bundled files",
            _page("TemplateVersionOut"), params=[name], errors=("401", "404"))},
        "/api/clients/{id}/offers": {"post": _op(
            "Render a template for the card and queue it in the durable outbox; 202 with the "
            "offer entry (status queued, then sent or failed); 422 when the card has no "
            "address on the channel or the template does not render",
            _ref("InteractionOut"), body="OfferCreate", status="202", params=[ID],
            errors=(*WRITE, "410"))},
        "/api/clients/{id}/messages": {"post": _op(
            "A manager's message to the client, queued in the durable outbox; 202 with the "
            "entry (status queued, then sent or failed). An e-mail answers the client's latest "
            "message: its thread, its subject unless one is given, the address it came from",
            _ref("InteractionOut"), body="MessageCreate", status="202", params=[ID],
            errors=(*WRITE, "410"))},
        "/api/interactions/{id}/retry": {"post": _op(
            "Send a failed offer, e-mail or reminder notice again: 202 with the entry, queued "
            "again with a fresh count of attempts; 409 unless it had failed",
            _ref("InteractionOut"), status="202", params=[ID], errors=("401", "404", "409"))},
        "/api/clients/{id}/telegram-link": {"post": _op(
            "A one-time Telegram deep link (t.me/<bot>?start=...) that binds the chat of whoever "
            "opens it to this card; 422 without a bot", {"type": "object"}, status="201",
            params=[ID], errors=("401", "404", "410", "422"))},
        "/api/managers/me/telegram-link": {"post": _op(
            "A one-time Telegram deep link that links the calling manager's own account",
            {"type": "object"}, status="201", errors=("401", "422"))},
        "/api/clients/export": {"get": {
            "summary": "Every card as a file: format=csv (UTF-8 with a BOM, ';') or xlsx",
            "parameters": [{"name": "format", "in": "query", "required": False,
                            "schema": {"type": "string", "enum": ["csv", "xlsx"]}}],
            "responses": {"200": {"description": "the file", "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                    "schema": {"type": "string", "format": "binary"}}}},
                "401": {"description": "no or wrong credentials"},
                "422": {"description": "invalid value"}}}},
        "/api/imports": {"post": {
            "summary": "(admin) Import a client list (multipart: file .xlsx/.csv, dry_run, map) "
                       "in the background; 202 with the job",
            "requestBody": {"content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["file"], "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "dry_run": {"type": "string"}, "map": {"type": "string"}}}}}},
            "responses": {"202": {"description": "the job", **_json({"type": "object"})},
                          **{c: {"description": ERRORS[c]} for c in ("400", "401", "403", "413",
                                                                      "415", "422")}}}},
        "/api/imports/{id}": {"get": _op(
            "(admin) An import job: status, rows done of about how many, its report",
            {"type": "object"}, params=[ID], errors=("401", "403", "404"))},
        "/api/templates/{name}/preview": {"get": _op(
            "Exactly what the template sends to the card: the client's language (or the given "
            "one), else the default; 422 with the reason when it does not render",
            _ref("TemplatePreview"), params=preview_q, errors=(*CARD, "422"))},
    }


def _subscription_paths() -> dict[str, Any]:
    admin = ("401", "403", "404")
    delivery_q = [_param("status", enum=["pending", "delivered", "failed"]), *PAGING]
    return {
        "/api/webhooks": {
            "get": _op("(admin) Outgoing webhook subscriptions, with how many deliveries wait",
                       _page("WebhookOut"), errors=("401", "403")),
            "post": _op("(admin) Subscribe a URL to event types (\"*\": all). The answer carries "
                        "the signing secret, shown this once. Each event is a POST of JSON "
                        "{id, type, occurred_at, timestamp, data} signed with X-Hub-Signature-256"
                        ": sha256=<hex HMAC-SHA256 of the body>; X-Hub-Timestamp repeats "
                        "`timestamp` for rejecting replays", _ref("WebhookCreated"),
                        body="WebhookCreate", status="201", errors=(*WRITE, "403")),
        },
        "/api/webhooks/events": {"get": _op(
            "(admin) The event types a subscription may ask for", {"type": "object"},
            errors=("401", "403"))},
        "/api/webhooks/{id}": {
            "get": _op("(admin) One subscription", _ref("WebhookOut"), params=[ID],
                       errors=admin),
            "patch": _op("(admin) Change the URL, types or description; status paused holds "
                         "deliveries (they are still recorded), active resumes where it stopped",
                         _ref("WebhookOut"), body="WebhookPatch", params=[ID],
                         errors=(*WRITE, "403")),
            "delete": _op("(admin) Remove the subscription and its delivery history", None,
                          status="204", params=[ID], errors=admin),
        },
        "/api/webhooks/{id}/secret": {"post": _op(
            "(admin) A new signing secret, used from the next request; shown this once",
            _ref("WebhookSecret"), params=[ID], errors=admin)},
        "/api/webhooks/{id}/ping": {"post": _op(
            "(admin) Queue a webhook.ping event for this subscription; 202 with the delivery",
            _ref("DeliveryOut"), status="202", params=[ID], errors=admin)},
        "/api/webhooks/{id}/deliveries": {"get": _op(
            "(admin) The subscription's deliveries, newest first: status, attempts, the "
            "receiver's last HTTP status and error", _page("DeliveryOut"),
            params=[ID, *delivery_q], errors=("400", *admin, "422"))},
        "/api/webhooks/{id}/deliveries/{delivery_id}/replay": {"post": _op(
            "(admin) Send one delivery again, in its event's place in the order",
            _ref("DeliveryOut"), status="202",
            params=[ID, _param("delivery_id", "path", "integer")], errors=admin)},
        "/api/webhooks/{id}/replay": {"post": _op(
            "(admin) Send again every delivery made at or after `since`", {"type": "object"},
            body="WebhookReplay", status="202", params=[ID], errors=(*WRITE, "403"))},
    }


def _privacy_paths() -> dict[str, Any]:
    admin = ("401", "403", "404")
    audit_q = [_param("target_type"), _param("target_id", kind="integer", minimum=1),
               _param("limit", kind="integer", minimum=1, maximum=200), _param("cursor")]
    return {
        "/api/clients/{id}/export": {"get": _op(
            "(admin) Everything the hub holds about one client, as a JSON file",
            {"type": "object"}, params=[ID], errors=admin)},
        "/api/clients/{id}/erase": {"post": _op(
            "(admin) Erase a client's personal data; `confirm` repeats the card's id",
            {"type": "object"}, body="EraseRequest", params=[ID], errors=(*WRITE, "403"))},
        "/api/audit": {"get": _op(
            "(admin) The audit log, newest first, optionally of one object",
            {"type": "object"}, params=audit_q, errors=("400", "401", "403", "422"))},
    }


# what a provider posts, by content type (the generic PBX's body is documented exactly)
_FORM = {"type": "object", "additionalProperties": {"type": "string"}}
WEBHOOK_BODIES: dict[str, dict[str, Any]] = {
    "application/json": {"type": "object"},
    "application/x-www-form-urlencoded": _FORM,
    "multipart/form-data": _FORM,
    "message/rfc822": {"type": "string"},
}


def _webhook_body(cls: type[Any]) -> dict[str, Any]:
    if cls.name == "generic":
        return {"required": True, **_json(_ref("GenericCallBody"))}
    types = cls.content_types or ("application/octet-stream",)
    return {"required": True, "content": {
        ctype: {"schema": WEBHOOK_BODIES.get(ctype, {"type": "string"})} for ctype in types}}


def _webhook_paths() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for cls in ADAPTERS:
        op = _op(f"{cls.title}: authenticated the way the provider signs", None,
                 errors=("400", "401", "404", "413", "415", "422"))
        op["requestBody"] = _webhook_body(cls)
        for path in cls.paths:
            paths.setdefault(path, {})["post"] = {**op, **PUBLIC}
        for path in cls.check_paths:
            paths.setdefault(path, {})["get"] = {**_op(
                f"{cls.title}: the provider's URL check", None, errors=("400", "404"),
                params=[_param("zd_echo")] if cls.name == "zadarma" else None), **PUBLIC}
    paths["/webhooks/telegram"] = {"post": {**_op(
        "Telegram Bot API updates (webhook mode), with the X-Telegram-Bot-Api-Secret-Token "
        "header; 404 unless the webhook is on", {"type": "object"},
        errors=("400", "401", "404", "413", "422")),
        "requestBody": {"required": True, **_json({"type": "object"})}, **PUBLIC}}
    if "/webhooks/telephony/generic" in paths:
        generic = paths["/webhooks/telephony/generic"]["post"]
        generic["responses"] = {**generic["responses"],
                                "200": {"description": "success", **_json(_ref("WebhookAnswer"))}}
    return paths


def _fill_from_router(paths: dict[str, Any], router: web.UrlDispatcher) -> None:
    """Routes added elsewhere (a provider's own handler) are listed with their docstring."""
    for route in router.routes():
        info, method = route.resource, route.method.lower()
        path = info.canonical if info is not None else ""
        if method not in METHODS or not path.startswith(DOCUMENTED_SCOPES):
            continue
        doc = (route.handler.__doc__ or path).strip().splitlines()[0]
        ops = paths.setdefault(path, {})
        if method not in ops:
            extra = PUBLIC if path.startswith("/webhooks") else {}
            params = [_param(p, "path") for p in _path_params(path)]
            ops[method] = {**_op(doc, None, params=params or None, errors=()), **extra}


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


@routes.get("/api/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3 document of this hub (public)."""
    return web.json_response(build_spec(request.app.router))
