"""hub.offers: the sandbox refuses escapes, undefined names are named, HTML is escaped, the
client's language picks the variant, and the bundled templates render."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hub import offers
from hub.errors import ValidationError
from hub.models import Manager
from hub.offers import Template, Variant, render_offer
from hub.settings import CompanySettings

COMPANY = CompanySettings(name="ООО «Ромашка»", phone="+7 495 123-45-67",
                          email="info@romashka.ru", website="https://romashka.ru")
MANAGER = Manager(name="Ольга Смирнова", email="olga@romashka.ru", phone="+79161234567")


def card(name: str = "Иван Петров", **fields: Any) -> dict[str, Any]:
    return {"id": 7, "name": name, "status": "new", "phones": ["+79123456789", "+79990000000"],
            "emails": ["ivan@example.com"], "telegram": [], "manager_id": None, "fields": fields,
            "created_at": "2026-11-30T10:00:00+00:00", "last_interaction_at": None}


def variant(text: str, html: str | None = None, subject: str = "Hi") -> Variant:
    return Variant("t", None, subject, text, html)


def refused(text: str, html: str | None = None) -> str:
    with pytest.raises(ValidationError) as info:
        render_offer(variant(text, html), card(), MANAGER, COMPANY)
    assert info.value.status == 422
    return info.value.message


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{{ ''.__class__.__mro__ }}", "'__class__' of 'str' object is unsafe"),
        ("{{ ''.__class__ }}", "'__class__' of 'str' object is unsafe"),
        ("{{ cycler.__init__.__globals__ }}", "'__init__' of 'type' object is unsafe"),
        ("{{ client.__class__.__init__.__globals__ }}", "is unsafe"),
        ("{{ (client|attr('__class__')) }}", "'__class__' of 'dict' object is unsafe"),
        ("{{ client['__class__'] }}", "'__class__' of 'dict' object is unsafe"),
        ("{{ lipsum.__globals__['os'] }}", "'__globals__' of 'function' object is unsafe"),
        ("{{ manager.name.__class__.__base__.__subclasses__() }}", "unsafe"),
        ("{{ client.fields.update({'x': 1}) }}", "'update' of 'dict' object is unsafe"),
        ("{{ 'a' * 1000000000 }}", "too long"),
        ("{{ 9 ** 99999999 }}", "too large"),
        ("{{ range(10**9)|list }}", "Range too big"),
    ],
)
def test_sandbox_escapes_are_refused(source: str, reason: str) -> None:
    message = refused(source)
    assert message.startswith("text: the template does not render: ") and reason in message


@pytest.mark.parametrize(
    "source",
    ["{% include 'x' %}", "{% import '/etc/passwd' as p %}", "{% extends '/etc/passwd' %}",
     "{% from 'hub.toml' import x %}"],
)
def test_templates_cannot_read_files(source: str) -> None:
    assert "no loader for this environment" in refused(source)


def test_undefined_names_the_variable() -> None:
    assert "'clent' is undefined" in refused("Hello {{ clent.name }}")
    assert "middle_name" in refused("Hello {{ client.middle_name }}")
    assert "contract" in refused("{{ client.fields.contract }}")


def test_syntax_error_names_the_part_and_line() -> None:
    message = refused("ok", html="<p>\n{% if client.name %}unclosed</p>")
    assert message.startswith("html:") and "line" in message


def test_html_is_autoescaped_and_text_is_not() -> None:
    evil = card(name='<script>alert("x")</script>')
    out = render_offer(variant("{{ client.name }}", "<b>{{ client.name }}</b>",
                               subject="{{ client.name }}"), evil, MANAGER, COMPANY)
    assert out.html == "<b>&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;</b>"
    assert out.text == '<script>alert("x")</script>'
    assert out.subject == '<script>alert("x")</script>'


def test_context_holds_client_manager_and_company() -> None:
    source = ("{{ client.phone }}|{{ client.email }}|{{ client.id }}|{{ manager.signature }}|"
              "{{ company.name }}|{{ company.website }}|{{ client.fields.get('vip', 'no') }}")
    out = render_offer(variant(source), card(), MANAGER, COMPANY)
    assert out.text == ("+79123456789|ivan@example.com|7|"
                        "Ольга Смирнова, +79161234567, olga@romashka.ru|ООО «Ромашка»|"
                        "https://romashka.ru|no")
    assert out.html is None


def test_subject_is_one_line() -> None:
    out = render_offer(variant("x", subject="  Offer\n for {{ client.name }}\n"), card(),
                       MANAGER, COMPANY)
    assert out.subject == "Offer for Иван Петров"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("ru", "ru"), ("EN", "en"), ("en-US", "en"), ("en_GB", "en"), ("", None), ("x", None),
     (5, None), (None, None), ("русский", None)],
)
def test_language_is_normalized(raw: Any, expected: str | None) -> None:
    assert offers.client_language(card(language=raw)) == expected


def test_language_picks_the_variant_and_falls_back_to_the_default() -> None:
    template = Template("t", {None: variant("default"), "en": Variant("t", "en", "s", "en", None)})
    assert template.pick("en").text == "en"
    assert template.pick("EN-us").text == "en"
    assert template.pick("de").text == "default"
    assert template.pick(None).text == "default"
    no_default = Template("t", {"en": Variant("t", "en", "s", "en", None)})
    assert no_default.pick("ru").text == "en"


def test_bundled_templates_are_found_from_the_package() -> None:
    root = offers.templates_root()
    assert root.is_dir() and (root / "offers").is_dir()
    found = offers.bundled_templates()
    assert {"price", "welcome"} <= set(found)
    for template in found.values():
        assert None in template.variants and "en" in template.variants
        assert all(v.source == "bundled" and v.version == 0 for v in template.variants.values())


@pytest.mark.parametrize("name", ["price", "welcome"])
@pytest.mark.parametrize("language", [None, "ru", "en"])
def test_bundled_templates_render_for_a_cyrillic_client(name: str, language: str | None) -> None:
    template = offers.bundled_templates()[name]
    client = card(name="Анна <Сергеевна>", language=language) if language else card("Анна")
    out = render_offer(template.pick(offers.client_language(client)), client, MANAGER, COMPANY)
    assert "Анна" in out.subject and "\n" not in out.subject
    assert "Ольга Смирнова, +79161234567" in out.text and "ООО «Ромашка»" in out.text
    assert out.html is not None and "Ольга Смирнова" in out.html
    if language:
        assert "Анна &lt;Сергеевна&gt;" in out.html and "Анна <Сергеевна>" in out.text
    english = language == "en"
    assert out.language == ("en" if english else None)
    assert ("Dear" in out.text) == english and ("Здравствуйте" in out.text) != english


def test_bundled_templates_render_without_company_settings_or_client_name() -> None:
    bare = Manager(name="Olga")
    for template in offers.bundled_templates().values():
        for v in template.variants.values():
            out = render_offer(v, card(name=""), bare, CompanySettings())
            assert out.subject and "Olga" in out.text


def test_a_folder_layout_is_read(tmp_path: Path) -> None:
    folder = tmp_path / "offers" / "promo"
    (folder / "de").mkdir(parents=True)
    (folder / "subject.txt.j2").write_text("S", encoding="utf-8")
    (folder / "body.txt.j2").write_text("T", encoding="utf-8")
    (folder / "de" / "subject.txt.j2").write_text("S-de", encoding="utf-8")
    (folder / "de" / "body.txt.j2").write_text("T-de", encoding="utf-8")
    (folder / "de" / "body.html.j2").write_text("<p>H</p>", encoding="utf-8")
    (tmp_path / "offers" / "Bad Name").mkdir()
    (tmp_path / "offers" / "empty").mkdir()
    found = offers.bundled_templates(tmp_path)
    assert list(found) == ["promo"]
    assert found["promo"].variants[None].html is None
    assert found["promo"].variants["de"].html == "<p>H</p>"
    assert offers.bundled_templates(tmp_path / "missing") == {}


async def test_two_writers_of_the_same_version_do_not_both_win(orm: None) -> None:
    from hub.errors import ConflictError
    from hub.managers import create_manager
    from hub.models import OfferTemplate

    author, _ = await create_manager("Admin")
    first = Variant("promo", "en", "s", "t", None, "custom", 1, author.name)
    stored = await offers._store(first, author)
    assert stored.version == 1 and stored.language == "en" and stored.created_at is not None
    with pytest.raises(ConflictError):
        await offers._store(first, author)  # a concurrent PUT computed the same version
    assert await OfferTemplate.filter(name="promo").count() == 1
    default = await offers._store(Variant("promo", None, "s", "t", None, "custom", 1), author)
    assert default.language is None  # the default variant has versions of its own
    template = await offers.get_template("promo")
    assert set(template.variants) == {None, "en"}
