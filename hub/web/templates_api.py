"""Offer templates in the manager API: list, preview for a card, and (admins) create and edit,
every version kept. hub.offers decides; handlers validate and delegate."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hub import clients, offers
from hub.errors import ValidationError
from hub.keys import SETTINGS
from hub.schemas import TemplateCreate, TemplateUpdate
from hub.web.auth import current_manager, require_admin
from hub.web.inputs import MAX_ID, query_int, query_text, read_body

routes = web.RouteTableDef()
NAME = r"{name:[a-z0-9][a-z0-9_-]{0,63}}"


def ok(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def _version(variant: offers.Variant) -> dict[str, Any]:
    return {"name": variant.name, **variant.describe(), "subject": variant.subject,
            "text": variant.text, "html": variant.html}


@routes.get("/api/templates")
async def list_templates(request: web.Request) -> web.Response:
    """Offer templates, bundled and written by admins, by name."""
    found = await offers.all_templates()
    return ok({"items": [t.describe() for t in found.values()], "next_cursor": None})


@routes.post("/api/templates")
async def create_template(request: web.Request) -> web.Response:
    """A new template or language variant, version 1 (admin); 409 when it exists."""
    require_admin(request)
    data = await read_body(request, TemplateCreate)
    variant = await offers.create_template(
        data.name, data.language, data.subject, data.text, data.html,
        current_manager(request), request.app[SETTINGS].company,
    )
    return ok(_version(variant), 201)


@routes.put(f"/api/templates/{NAME}")
async def update_template(request: web.Request) -> web.Response:
    """A new version of a template's language variant (admin); earlier versions are kept."""
    require_admin(request)
    data = await read_body(request, TemplateUpdate)
    variant = await offers.update_template(
        request.match_info["name"], data.language, data.subject, data.text, data.html,
        current_manager(request), request.app[SETTINGS].company,
    )
    return ok(_version(variant))


@routes.get(f"/api/templates/{NAME}/versions")
async def template_versions(request: web.Request) -> web.Response:
    """Every stored version of a template, newest first, then its bundled files."""
    found = await offers.versions(request.match_info["name"])
    return ok({"items": [_version(v) for v in found], "next_cursor": None})


@routes.get(f"/api/templates/{NAME}/preview")
async def preview(request: web.Request) -> web.Response:
    """Exactly what the template sends to a card, rendered for the calling manager."""
    if not request.query.get("client_id"):
        raise ValidationError("client_id: required", field="client_id")
    client_id = query_int(request, "client_id", 0, 1, MAX_ID)
    language = query_text(request, "language")
    template = await offers.get_template(request.match_info["name"])
    card = await clients.serialize(await clients.get_client(client_id))
    variant = template.pick(language or offers.client_language(card))
    rendered = offers.render_offer(
        variant, card, current_manager(request), request.app[SETTINGS].company
    )
    return ok({"template": template.name, "version": variant.version,
               "language": rendered.language, "subject": rendered.subject,
               "text": rendered.text, "html": rendered.html,
               "attachments": [a.describe() for a in rendered.attachments]})
