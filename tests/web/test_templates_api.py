"""GET/POST/PUT /api/templates, versions and preview: bundled and stored templates, admins only
for writes, every version kept, the client's language, errors with their reasons."""

from __future__ import annotations

from typing import Any

import pytest

PRICE = "/api/templates/price"


async def call(client: Any, who: dict[str, Any], method: str, path: str, body: Any = None,
               status: int = 200) -> Any:
    resp = await client.request(method, path, json=body, headers=who["headers"])
    data = await resp.json()
    assert resp.status == status, data
    return data


async def new_card(client: Any, who: dict[str, Any], **body: Any) -> dict[str, Any]:
    base = {"name": "Иван Петров", "phones": ["+79123456789"]}
    result: dict[str, Any] = await call(client, who, "POST", "/api/clients", {**base, **body},
                                        201)
    return result


@pytest.fixture
def company_client(make_client: Any) -> Any:
    async def make() -> Any:
        return await make_client(company={"name": "ООО «Ромашка»", "website": "https://r.ru"})
    return make


async def test_list_shows_the_bundled_templates(app_client: Any, manager: Any) -> None:
    data = await call(app_client, manager, "GET", "/api/templates")
    assert data["next_cursor"] is None
    by_name = {t["name"]: t for t in data["items"]}
    assert {"price", "welcome"} <= set(by_name)
    price = by_name["price"]
    assert price["source"] == "bundled" and price["version"] == 0 and price["author"] is None
    assert price["languages"] == ["en"] and price["default"] is True
    assert [v["language"] for v in price["variants"]] == [None, "en"]


async def test_preview_renders_for_the_card_and_the_calling_manager(
    company_client: Any, manager: Any
) -> None:
    client = await company_client()
    card = await new_card(client, manager, name="Анна <b>")
    data = await call(client, manager, "GET", f"{PRICE}/preview?client_id={card['id']}")
    assert data["template"] == "price" and data["version"] == 0 and data["language"] is None
    assert data["subject"] == "ООО «Ромашка»: прайс-лист для Анна <b>"
    assert "Здравствуйте, Анна <b>!" in data["text"]
    assert "Olga, olga@example.com" in data["text"] and "https://r.ru" in data["text"]
    assert "Анна &lt;b&gt;" in data["html"] and "<b>" not in data["html"]


async def test_preview_follows_the_card_language_and_the_query(
    app_client: Any, manager: Any
) -> None:
    english = await new_card(app_client, manager, name="John", fields={"language": "en-GB"},
                             phones=[])
    data = await call(app_client, manager, "GET", f"{PRICE}/preview?client_id={english['id']}")
    assert data["language"] == "en" and data["text"].startswith("Dear John,")
    data = await call(app_client, manager, "GET",
                      f"{PRICE}/preview?client_id={english['id']}&language=ru")
    assert data["language"] is None and data["text"].startswith("Здравствуйте, John!")
    german = await new_card(app_client, manager, name="Hans", fields={"language": "de"},
                            phones=[])
    data = await call(app_client, manager, "GET", f"{PRICE}/preview?client_id={german['id']}")
    assert data["language"] is None  # no German variant: the default


async def test_preview_errors(app_client: Any, manager: Any) -> None:
    keep, gone = await new_card(app_client, manager), await new_card(app_client, manager,
                                                                      phones=["+79990001122"])
    await call(app_client, manager, "POST", f"/api/clients/{keep['id']}/merge",
               {"other_id": gone["id"]})
    data = await call(app_client, manager, "GET", f"{PRICE}/preview?client_id={gone['id']}",
                      status=410)
    assert data["merged_into"] == keep["id"]
    await call(app_client, manager, "GET", f"{PRICE}/preview?client_id=999999", status=404)
    await call(app_client, manager, "GET", f"/api/templates/nope/preview?client_id={keep['id']}",
               status=404)
    for query in ("", "?client_id=abc", "?client_id=0"):
        data = await call(app_client, manager, "GET", f"{PRICE}/preview{query}", status=422)
        assert data["error"]["message"].startswith("client_id")
    resp = await app_client.get(f"{PRICE}/preview?client_id={keep['id']}")
    assert resp.status == 401


async def test_admin_creates_updates_and_lists_versions(
    app_client: Any, admin: Any, manager: Any
) -> None:
    body = {"name": "promo", "subject": "Скидка для {{ client.name }}",
            "text": "{{ client.name }}, скидка 10%.\n{{ manager.signature }}",
            "html": "<p>{{ client.name }}</p>"}
    created = await call(app_client, admin, "POST", "/api/templates", body, 201)
    assert created["name"] == "promo" and created["version"] == 1
    assert created["source"] == "custom" and created["author"] == "Admin"
    assert created["language"] is None and created["text"] == body["text"]
    await call(app_client, admin, "POST", "/api/templates", body, 409)

    en = await call(app_client, admin, "POST", "/api/templates",
                    {**body, "language": "en", "subject": "A discount for {{ client.name }}"},
                    201)
    assert en["version"] == 1 and en["language"] == "en"

    second = await call(app_client, admin, "PUT", "/api/templates/promo",
                        {"subject": "Скидка 15% для {{ client.name }}", "text": "v2"})
    assert second["version"] == 2 and second["html"] is None
    third = await call(app_client, admin, "PUT", "/api/templates/promo",
                       {"subject": "S3", "text": "v3 {{ client.phone }}"})
    assert third["version"] == 3

    versions = await call(app_client, manager, "GET", "/api/templates/promo/versions")
    assert [(v["language"], v["version"]) for v in versions["items"]] == [
        (None, 3), (None, 2), ("en", 1), (None, 1)]
    assert versions["items"][-1]["text"] == body["text"]  # earlier versions are kept

    listed = {t["name"]: t for t in (await call(app_client, manager, "GET",
                                                "/api/templates"))["items"]}
    assert listed["promo"]["source"] == "custom" and listed["promo"]["version"] == 3
    assert listed["promo"]["languages"] == ["en"] and listed["promo"]["author"] == "Admin"

    card = await new_card(app_client, manager)
    data = await call(app_client, manager, "GET",
                      f"/api/templates/promo/preview?client_id={card['id']}")
    assert data == {"template": "promo", "version": 3, "language": None, "subject": "S3",
                    "text": "v3 +79123456789", "html": None, "attachments": []}


async def test_a_stored_version_overrides_the_bundled_variant(
    app_client: Any, admin: Any, manager: Any
) -> None:
    await call(app_client, admin, "POST", "/api/templates",
               {"name": "price", "subject": "x", "text": "y"}, 409)  # the bundled one exists
    updated = await call(app_client, admin, "PUT", PRICE,
                         {"language": "en", "subject": "Prices", "text": "New prices"})
    assert updated["version"] == 1
    card = await new_card(app_client, manager, fields={"language": "en"})
    data = await call(app_client, manager, "GET", f"{PRICE}/preview?client_id={card['id']}")
    assert (data["version"], data["text"]) == (1, "New prices")
    ru = await new_card(app_client, manager, phones=["+79990001133"])
    data = await call(app_client, manager, "GET", f"{PRICE}/preview?client_id={ru['id']}")
    assert data["version"] == 0 and "прайс-лист" in data["subject"]  # default still bundled
    versions = await call(app_client, manager, "GET", f"{PRICE}/versions")
    assert [(v["source"], v["language"]) for v in versions["items"]] == [
        ("custom", "en"), ("bundled", None), ("bundled", "en")]


async def test_managers_may_not_write_templates(app_client: Any, manager: Any) -> None:
    body = {"name": "promo", "subject": "s", "text": "t"}
    data = await call(app_client, manager, "POST", "/api/templates", body, 403)
    assert data["error"]["code"] == "forbidden"
    await call(app_client, manager, "PUT", PRICE, {"subject": "s", "text": "t"}, 403)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"name": "Promo", "subject": "s", "text": "t"}, "name"),
        ({"name": "-promo", "subject": "s", "text": "t"}, "name"),
        ({"name": "promo", "subject": "s", "text": "t", "language": "eng-US"}, "language"),
        ({"name": "promo", "subject": "", "text": "t"}, "subject"),
        ({"name": "promo", "subject": "s"}, "text"),
        ({"name": "promo", "subject": "s", "text": "t", "extra": 1}, "extra"),
        ({"name": "promo", "subject": "s", "text": "{{ ''.__class__ }}"},
         "text: the template does not render: access to attribute '__class__'"),
        ({"name": "promo", "subject": "{% if %}", "text": "t"}, "subject: the template does"),
        ({"name": "promo", "subject": "s", "text": "{{ clent.name }}"}, "'clent' is undefined"),
        ({"name": "promo", "subject": "s", "text": "t", "html": "{% include 'a' %}"},
         "html: the template does not render: no loader"),
    ],
)
async def test_invalid_templates_are_refused_with_the_reason(
    app_client: Any, admin: Any, body: dict[str, Any], reason: str
) -> None:
    data = await call(app_client, admin, "POST", "/api/templates", body, 422)
    assert reason in data["error"]["message"]
    listed = await call(app_client, admin, "GET", "/api/templates")
    assert "promo" not in {t["name"] for t in listed["items"]}


async def test_update_errors(app_client: Any, admin: Any) -> None:
    await call(app_client, admin, "PUT", "/api/templates/nope", {"subject": "s", "text": "t"},
               404)
    data = await call(app_client, admin, "PUT", PRICE, {"subject": "s", "text": "{{ x }}"}, 422)
    assert "'x' is undefined" in data["error"]["message"]
    await call(app_client, admin, "GET", "/api/templates/nope/versions", status=404)
    versions = await call(app_client, admin, "GET", f"{PRICE}/versions")
    assert all(v["source"] == "bundled" for v in versions["items"])  # nothing was stored


async def test_the_openapi_document_describes_the_template_routes(
    app_client: Any, manager: Any
) -> None:
    spec = await call(app_client, manager, "GET", "/api/openapi.json")
    paths = spec["paths"]
    assert set(paths["/api/templates"]) == {"get", "post"}
    assert "put" in paths["/api/templates/{name}"]
    assert paths["/api/templates/{name}/preview"]["get"]["summary"].startswith("Exactly")
    assert {"TemplateCreate", "TemplatePreview", "TemplateOut"} <= set(
        spec["components"]["schemas"])
