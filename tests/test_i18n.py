"""The web UI's languages: catalogs found from the package, Russian plural forms, the language a
request gets, one Jinja environment serving both languages at once, and the guard that fails
when a page's string has no Russian translation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import jinja2
import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

import hub
from hub import i18n

ROOT = Path(__file__).resolve().parent.parent
RU_PLURAL = (
    "nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && "
    "(n%100<10 || n%100>=20) ? 1 : 2);"
)


@pytest.fixture(autouse=True)
def _fresh_language() -> Iterator[None]:
    """Every test starts in the default language and leaves no language behind."""
    token = i18n.use(i18n.DEFAULT)
    yield
    i18n.reset(token)


def plain(text: str) -> str:
    """CLDR's no-break spaces (U+00A0, U+202F) as plain ones, to compare with what we type."""
    return text.replace("\xa0", " ").replace("\u202f", " ")


def ru_catalog() -> Catalog:
    with (i18n.catalogs_root() / "ru" / "LC_MESSAGES" / "messages.po").open("rb") as fp:
        return read_po(fp, locale="ru")


def extracted(root: Path) -> dict[tuple[str, str | None], tuple[str, int]]:
    """Every translatable string under `root`, found the way `pybabel extract -F babel.cfg` finds
    it: (msgid, context) → where it is used."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as fp:
        method_map, options_map = parse_mapping_cfg(fp, "babel.cfg")
    found: dict[tuple[str, str | None], tuple[str, int]] = {}
    for filename, lineno, message, _comments, context in extract_from_dir(
        str(root), method_map, options_map
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        found.setdefault((msgid, context), (filename, lineno))
    return found


def untranslated(root: Path, catalog: Catalog) -> list[str]:
    """The strings used under `root` that `catalog` does not translate (missing, empty, a plural
    lacking a form, or only Babel's fuzzy guess)."""
    missing = []
    for (msgid, context), (filename, lineno) in sorted(
        extracted(root).items(), key=lambda item: item[1]
    ):
        entry = catalog.get(msgid, context)
        strings = () if entry is None else entry.string
        if isinstance(strings, str):
            strings = (strings,)
        if entry is None or entry.fuzzy or not strings or not all(strings):
            missing.append(f"{filename}:{lineno}: {msgid!r}")
    return missing


# The catalogs


def test_catalogs_are_found_from_the_package_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = i18n.catalogs_root()
    assert root.parent == Path(hub.__file__).resolve().parent / "bundled"
    assert root.resolve() == (ROOT / "translations").resolve()
    for lang in i18n.LANGUAGES:
        assert (root / lang / "LC_MESSAGES" / "messages.po").is_file()
    monkeypatch.chdir(tmp_path)
    i18n._compiled.cache_clear()
    try:
        i18n.load()
        assert i18n.translations("ru").gettext("Clients") == "Клиенты"
        assert i18n.translations("en").gettext("Clients") == "Clients"
    finally:
        i18n._compiled.cache_clear()


def test_no_compiled_catalogs_are_kept() -> None:
    """The hub compiles the .po files in memory; a stale .mo file could only mislead."""
    assert not list((ROOT / "translations").rglob("*.mo"))


def test_translations_are_cached_and_unknown_languages_get_the_default() -> None:
    assert i18n.translations("ru") is i18n.translations("ru")
    assert i18n.translations("de") is i18n.translations(i18n.DEFAULT)
    assert i18n.translations("") is i18n.translations(i18n.DEFAULT)
    assert i18n.translations("en-GB") is i18n.translations("en")
    assert i18n.translations("RU_ru") is i18n.translations("ru")


def test_russian_catalog_declares_russian_plural_forms() -> None:
    catalog = ru_catalog()
    assert dict(catalog.mime_headers)["Plural-Forms"] == RU_PLURAL
    assert catalog.num_plurals == 3
    plurals = [m for m in catalog if m.id and m.pluralizable]
    assert plurals
    for message in plurals:
        assert len(message.string) == 3, message.id


def test_seed_vocabulary_is_translated() -> None:
    with i18n.using("ru"):
        assert i18n.gettext("Clients") == "Клиенты"
        assert i18n.gettext("Wrong e-mail or password") == "Неверная почта или пароль"
        assert i18n.gettext("Merge with…") == "Объединить с…"
        assert i18n.gettext("In 1 hour") == "Через час"
        assert i18n.gettext("Incoming call") == "Входящий звонок"
    with i18n.using("en"):
        assert i18n.gettext("Merge with…") == "Merge with…"


# Plural forms

RU_FORMS = {
    "call": ("звонок", "звонка", "звонков"),
    "client": ("клиент", "клиента", "клиентов"),
    "reminder": ("напоминание", "напоминания", "напоминаний"),
    "minute": ("минута", "минуты", "минут"),
}
# n → which Russian form: one, few, many
RU_CASES = {1: 0, 2: 1, 5: 2, 11: 2, 21: 0, 22: 1, 25: 2, 111: 2, 0: 2, 12: 2, 14: 2, 104: 1}


@pytest.mark.parametrize("word", sorted(RU_FORMS))
@pytest.mark.parametrize("num", sorted(RU_CASES))
def test_russian_plurals(word: str, num: int) -> None:
    with i18n.using("ru"):
        text = i18n.ngettext(f"%(num)d {word}", f"%(num)d {word}s", num)
    assert text == f"{num} {RU_FORMS[word][RU_CASES[num]]}"


def test_the_spoken_examples() -> None:
    with i18n.using("ru"):
        said = [i18n.ngettext("%(num)d call", "%(num)d calls", n) for n in (1, 2, 5)]
    assert said == ["1 звонок", "2 звонка", "5 звонков"]


@pytest.mark.parametrize(
    ("num", "expected"),
    [(0, "0 calls"), (1, "1 call"), (2, "2 calls"), (5, "5 calls"), (11, "11 calls"),
     (21, "21 calls"), (111, "111 calls")],
)
def test_english_plurals(num: int, expected: str) -> None:
    with i18n.using("en"):
        assert i18n.ngettext("%(num)d call", "%(num)d calls", num) == expected


def test_python_gettext_formats_and_falls_back_to_the_source() -> None:
    with i18n.using("ru"):
        assert i18n.gettext("Not in any catalog, %(name)s", name="Анна") == (
            "Not in any catalog, Анна"
        )
        assert i18n.ngettext("%(num)d client", "%(num)d clients", 3) == "3 клиента"
        assert i18n.ngettext("%(num)d client of %(who)s", "%(num)d clients of %(who)s", 1,
                             who="Анна") == "1 client of Анна"
        assert i18n.pgettext("nowhere", "Clients") == "Clients"  # a context is its own msgid
        assert i18n.npgettext("nowhere", "%(num)d call", "%(num)d calls", 2) == "2 calls"
        assert i18n.gettext("100%% sure") == "100% sure"


# Which language a request gets


@pytest.mark.parametrize(
    ("header", "chosen", "expected"),
    [
        # the manager's choice wins
        ("en-US,en;q=0.9", "ru", "ru"),
        ("ru-RU,ru;q=0.9,en;q=0.8", "en", "en"),
        (None, "en", "en"),
        ("ru", "en-GB", "en"),
        # an unsupported or empty choice falls back to the browser
        ("en-US,en;q=0.9", "de", "en"),
        ("en-US,en;q=0.9", "", "en"),
        ("en", None, "en"),
        # the browser's preference, q-values honoured
        ("ru-RU,ru;q=0.9,en;q=0.8", None, "ru"),
        ("en-US,en;q=0.9", None, "en"),
        ("en-GB", None, "en"),
        ("ru;q=0.5,en;q=0.9", None, "en"),
        ("ru;q=0.5, en", None, "en"),
        ("de-DE,de;q=0.9,en;q=0.3,ru;q=0.2", None, "en"),
        ("de,fr;q=0.9,ru;q=0.1", None, "ru"),
        ("en;q=0,ru;q=0.1", None, "ru"),  # q=0: not acceptable
        ("EN-us", None, "en"),
        ("en;q=0.8,ru;q=0.8", None, "en"),  # a tie: the header's order
        # nothing usable: the default
        ("de", None, i18n.DEFAULT),
        ("en;q=0", None, i18n.DEFAULT),
        ("*", None, i18n.DEFAULT),
        ("", None, i18n.DEFAULT),
        (None, None, i18n.DEFAULT),
        ("garbage!!! header ☃", None, i18n.DEFAULT),
        (";;;,,,", None, i18n.DEFAULT),
        ("en;q=abc", None, i18n.DEFAULT),
        ("en;q=5", None, i18n.DEFAULT),
        ("en;q=-1", None, i18n.DEFAULT),
        ("q=0.9", None, i18n.DEFAULT),
        ("e n", None, i18n.DEFAULT),
        ("en" + "-x" * 10_000, None, "en"),
        (",".join(["de"] * 100 + ["en"]), None, i18n.DEFAULT),  # only the first entries count
    ],
)
def test_negotiate(header: str | None, chosen: str | None, expected: str) -> None:
    assert i18n.negotiate(header, chosen) == expected


def test_use_and_reset() -> None:
    assert i18n.current() == i18n.DEFAULT
    token = i18n.use("en-US")
    assert i18n.current() == "en"
    inner = i18n.use("klingon")
    assert i18n.current() == i18n.DEFAULT
    i18n.reset(inner)
    assert i18n.current() == "en"
    i18n.reset(token)
    assert i18n.current() == i18n.DEFAULT
    with i18n.using("en") as lang:
        assert lang == "en" == i18n.current()
    assert i18n.current() == i18n.DEFAULT


# Templates

PAGE = (
    "{{ _('Clients') }} | {{ ngettext('%(num)d call', '%(num)d calls', n) }} | "
    "{{ day|format_date }} | {{ current_language() }}"
)


def environment(**options: Any) -> jinja2.Environment:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, **options)
    i18n.install(env)
    return env


def test_template_speaks_the_current_language() -> None:
    template = environment().from_string(PAGE)
    day = date(2026, 12, 1)
    with i18n.using("ru"):
        assert plain(template.render(n=2, day=day)) == "Клиенты | 2 звонка | 1 дек. 2026 г. | ru"
    with i18n.using("en"):
        assert plain(template.render(n=1, day=day)) == "Clients | 1 call | Dec 1, 2026 | en"


def test_template_trans_blocks_and_escaping() -> None:
    env = environment()
    template = env.from_string(
        "{% trans %}\n  Merge\n  with…\n{% endtrans %} / {{ _('Hello, %(name)s', name=who) }}"
    )
    with i18n.using("ru"):  # trimmed like babel.cfg extracts it; variables escaped
        assert template.render(who="<b>") == "Объединить с… / Hello, &lt;b&gt;"


def test_one_environment_serves_both_languages_concurrently() -> None:
    """Many requests in flight at once, each with its own language, interleaved at every await:
    each renders in its own language only."""
    env = environment(enable_async=True)

    async def pause() -> str:
        await asyncio.sleep(0)
        return ""

    env.globals["pause"] = pause
    template = env.from_string(
        "{{ _('Clients') }}{{ pause() }} {{ ngettext('%(num)d call', '%(num)d calls', n) }}"
        "{{ pause() }} {{ day|format_date('long') }}"
    )
    day = date(2026, 12, 1)
    expected = {
        "ru": "Клиенты 5 звонков 1 декабря 2026 г.",
        "en": "Clients 5 calls December 1, 2026",
    }

    async def request(lang: str) -> tuple[str, list[str]]:
        token = i18n.use(lang)
        try:
            pages = []
            for _ in range(3):
                await asyncio.sleep(0)
                pages.append(plain(await template.render_async(n=5, day=day)))
            return lang, pages
        finally:
            i18n.reset(token)

    async def main() -> list[tuple[str, list[str]]]:
        return await asyncio.gather(*(request(("ru", "en")[i % 2]) for i in range(40)))

    results = asyncio.run(main())
    assert len(results) == 40
    for lang, pages in results:
        assert pages == [expected[lang]] * 3
    assert i18n.current() == i18n.DEFAULT  # the test's own context is untouched


async def test_requests_under_the_running_loop_keep_their_language() -> None:
    """The same with the plain (sync) environment aiohttp-jinja2 uses, inside pytest's loop."""
    template = environment().from_string(PAGE)
    day = date(2026, 12, 1)

    async def request(lang: str, n: int) -> str:
        i18n.use(lang)  # a task's context is its own copy: nothing to undo for the others
        await asyncio.sleep(0)
        return template.render(n=n, day=day)

    pages = await asyncio.gather(*(request(("en", "ru")[i % 2], i) for i in range(1, 31)))
    for i, page in enumerate(pages, start=1):
        lang = ("en", "ru")[i % 2]
        assert page.endswith(f"| {lang}")
        assert page.startswith("Clients" if lang == "en" else "Клиенты")
    assert i18n.current() == i18n.DEFAULT


# Dates and numbers


def test_dates_and_numbers_follow_the_language() -> None:
    moment = datetime(2026, 12, 1, 14, 30, tzinfo=UTC)
    shown: dict[str, list[str]] = {}
    for lang in i18n.LANGUAGES:
        with i18n.using(lang):
            shown[lang] = [plain(text) for text in (
                i18n.format_date(moment.date()),
                i18n.format_datetime(moment, "short"),
                i18n.format_time(moment, tzinfo="Europe/Moscow"),
                i18n.format_number(Decimal("1234.5")),
                i18n.format_timedelta(timedelta(minutes=5)),
                i18n.format_timedelta(timedelta(hours=-2), add_direction=True),
            )]
    assert shown["ru"] != shown["en"]
    assert shown["ru"][0] == "1 дек. 2026 г."
    assert shown["en"][0] == "Dec 1, 2026"
    assert "14:30" in shown["ru"][1]
    assert "2:30" in shown["en"][1] and "PM" in shown["en"][1]
    assert shown["ru"][2] == "17:30"
    assert shown["ru"][3] == "1 234,5"
    assert shown["en"][3] == "1,234.5"
    assert shown["ru"][4] == "5 минут"
    assert shown["en"][4] == "5 minutes"
    assert shown["ru"][5] == "2 часа назад"
    assert shown["en"][5] == "2 hours ago"


def test_formatting_filters_in_templates() -> None:
    env = environment()
    for name in ("format_datetime", "format_date", "format_time", "format_number",
                 "format_timedelta"):
        assert name in env.filters
    template = env.from_string(
        "{{ when|format_datetime('long', tzinfo='UTC') }}|{{ count|format_number }}|"
        "{{ left|format_timedelta(granularity='minute') }}|{{ missing|format_date }}"
    )
    values = {"when": datetime(2026, 12, 1, 9, 5, tzinfo=UTC), "count": 10_000,
              "left": timedelta(minutes=3), "missing": None}
    with i18n.using("ru"):
        ru = template.render(**values)
    with i18n.using("en"):
        en = template.render(**values)
    assert ru != en
    assert "декабря 2026" in ru and "3 минуты" in ru and ru.endswith("|")
    assert "December 1, 2026" in en and "10,000" in en and "3 minutes" in en


# Every string a page uses is translated


def test_every_string_of_the_pages_and_the_hub_has_a_russian_translation() -> None:
    """Extracts like `scripts/i18n.sh` (babel.cfg: hub/**.py, templates/pages/**.html and
    translations/vocabulary.html) and fails on any string the Russian catalog lacks: run
    scripts/i18n.sh and translate what it lists."""
    found = extracted(ROOT)
    assert ("Clients", None) in found  # the vocabulary is extracted: the mapping works
    missing = untranslated(ROOT, ru_catalog())
    assert not missing, (
        "run scripts/i18n.sh, then translate in translations/ru/LC_MESSAGES/messages.po:\n"
        + "\n".join(missing)
    )


def test_the_guard_catches_an_untranslated_page_and_python_string(tmp_path: Path) -> None:
    pages = tmp_path / "templates" / "pages"
    pages.mkdir(parents=True)
    (pages / "card.html").write_text(
        "{% extends 'base.html' %}{% block body %}{{ _('Clients') }} {{ _('Frobnicate') }}"
        "{{ ngettext('%(num)d call', '%(num)d calls', n) }}"
        "{{ ngettext('%(num)d widget', '%(num)d widgets', n) }}"
        "{% trans %}Merge with…{% endtrans %}{% endblock %}",
        encoding="utf-8",
    )
    (tmp_path / "hub" / "web").mkdir(parents=True)
    (tmp_path / "hub" / "web" / "pages.py").write_text(
        "from hub.i18n import gettext as _\n\nTITLE = _('Reports')\nOTHER = _('Unheard of')\n",
        encoding="utf-8",
    )
    (tmp_path / "elsewhere.py").write_text("_('Not a page')\n", encoding="utf-8")
    missing = untranslated(tmp_path, ru_catalog())
    assert sorted(m.split(": ", 1)[1] for m in missing) == [
        "'%(num)d widget'", "'Frobnicate'", "'Unheard of'"
    ]


def test_the_guard_does_not_trust_fuzzy_or_partial_translations(tmp_path: Path) -> None:
    pages = tmp_path / "templates" / "pages"
    pages.mkdir(parents=True)
    (pages / "list.html").write_text(
        "{{ _('Clients') }} {{ ngettext('%(num)d call', '%(num)d calls', n) }}", encoding="utf-8"
    )
    catalog = Catalog(locale="ru")
    catalog.add("Clients", "Клиенты", flags=["fuzzy"])
    catalog.add(("%(num)d call", "%(num)d calls"), ("%(num)d звонок", "", "%(num)d звонков"))
    assert len(untranslated(tmp_path, catalog)) == 2
    catalog = Catalog(locale="ru")
    catalog.add("Clients", "Клиенты")
    catalog.add(
        ("%(num)d call", "%(num)d calls"), ("%(num)d звонок", "%(num)d звонка", "%(num)d звонков")
    )
    assert untranslated(tmp_path, catalog) == []
