"""Russian and English for the manager web UI: gettext catalogs, the language of each request, and
dates and numbers written the way that language writes them.

The catalogs are the `.po` files under `translations/` (found from the installed package through
`hub/bundled/translations`, never from the working directory). No compiled `.mo` file is kept
anywhere: each language's catalog is compiled in memory with Babel the first time it is needed
(`load()` does it for all of them at start-up, so a broken catalog stops the hub instead of a page)
and cached.

One `jinja2.Environment` serves every language. The templates' `_()`, `ngettext()` and the
`format_*` filters read the language from a context variable that the page handler sets with
`use(lang)`: every aiohttp request runs in a task of its own with its own copy of the context, so
two managers reading pages in different languages at the same moment never see each other's.

Source strings are English. The workflow that keeps the catalogs complete is `scripts/i18n.sh`.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import io
import re
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo

import jinja2
from babel import dates, numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LANGUAGES: tuple[str, ...] = ("ru", "en")
DEFAULT = "ru"
DOMAIN = "messages"

Granularity = Literal["year", "month", "week", "day", "hour", "minute", "second"]
Width = Literal["narrow", "short", "medium", "long"]

_current: contextvars.ContextVar[str] = contextvars.ContextVar("hub_language", default=DEFAULT)

# One entry of an Accept-Language header: a language range and an optional quality value.
_RANGE = re.compile(r"^(?:\*|[A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*)$")
_QUALITY = re.compile(r"^q=(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$", re.IGNORECASE)


def catalogs_root() -> Path:
    """`hub/bundled/translations`: a link to the source tree's `translations/` that a wheel
    carries as files, so the hub finds its catalogs wherever it is started from."""
    return Path(__file__).resolve().parent / "bundled" / "translations"


def supported(lang: str | None) -> str | None:
    """The language of `LANGUAGES` that a tag names (`en`, `en-GB`, `ru_RU`, `RU`), or None."""
    if not lang:
        return None
    tag = lang.strip().replace("_", "-").lower()
    if tag in LANGUAGES:
        return tag
    primary = tag.split("-", 1)[0]
    return primary if primary in LANGUAGES else None


def normalize(lang: str | None) -> str:
    """The supported language a tag names; DEFAULT for anything else."""
    return supported(lang) or DEFAULT


def translations(lang: str) -> Translations:
    """The compiled catalog of a language (unknown languages get DEFAULT's), cached."""
    return _compiled(normalize(lang))


@functools.cache
def _compiled(lang: str) -> Translations:
    path = catalogs_root() / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as fp:
        catalog = read_po(fp, locale=lang, domain=DOMAIN, abort_invalid=True)
    buffer = io.BytesIO()
    # Fuzzy entries (Babel's guesses after a msgid changed) stay out: a page shows the English
    # source rather than a wrong translation until someone checks it.
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(fp=buffer, domain=DOMAIN)


def load() -> None:
    """Compile every language's catalog now (at start-up): a missing or malformed `.po` file
    fails the start instead of the first page in that language."""
    for lang in LANGUAGES:
        translations(lang)


def negotiate(accept_language: str | None, chosen: str | None = None) -> str:
    """The language a page is shown in: the one the manager chose (`manager.language`) if it is
    supported, else the browser's most preferred supported language by the Accept-Language
    header's q-values (`ru-RU,ru;q=0.9,en;q=0.8` → ru), else DEFAULT. A malformed header, or a
    malformed entry in it, counts as no preference rather than an error."""
    picked = supported(chosen)
    if picked:
        return picked
    ranked: list[tuple[float, int, str]] = []
    for position, entry in enumerate((accept_language or "").split(",")[:32]):
        tag, *params = (part.strip() for part in entry.split(";"))
        if not _RANGE.match(tag):
            continue
        quality = 1.0
        for param in params:
            if param.lower().startswith("q="):
                if not _QUALITY.match(param):
                    break  # a malformed q-value: this entry says nothing
                quality = float(param[2:])
        else:
            if quality > 0:
                ranked.append((-quality, position, tag))
    for _, _, tag in sorted(ranked):
        if tag == "*":
            return DEFAULT
        picked = supported(tag)
        if picked:
            return picked
    return DEFAULT


def use(lang: str) -> contextvars.Token[str]:
    """Make `lang` (normalized) the language of the current request or task; the token undoes it
    through `reset(token)`. The page handler calls this before rendering."""
    return _current.set(normalize(lang))


def reset(token: contextvars.Token[str]) -> None:
    """Restore the language that was current before `use()` returned `token`."""
    _current.reset(token)


@contextlib.contextmanager
def using(lang: str) -> Iterator[str]:
    """`with using("en"):` — a language for a block of code (a notice written for one manager),
    restored afterwards."""
    token = use(lang)
    try:
        yield _current.get()
    finally:
        reset(token)


def current() -> str:
    """The language of the current request or task (DEFAULT when none was set)."""
    return _current.get()


# Python code. Like the templates' new-style gettext, a message is always a format string filled
# with the keyword arguments (`%(name)s`; `%%` for a literal percent), so one msgid means the same
# in a template and in Python.


def gettext(message: str, **variables: Any) -> str:
    """`message` in the current language, `%`-formatted with `variables`."""
    return translations(current()).gettext(message) % variables


def ngettext(singular: str, plural: str, num: int, **variables: Any) -> str:
    """The form of a counted message that `num` takes in the current language ("1 звонок,
    2 звонка, 5 звонков"); `%(num)d` is `num` unless `variables` say otherwise."""
    variables.setdefault("num", num)
    return translations(current()).ngettext(singular, plural, num) % variables


def pgettext(context: str, message: str, **variables: Any) -> str:
    """`gettext` for a word that translates differently by its role ("Call" the button vs
    "Call" the timeline entry): `context` tells the two msgids apart."""
    return _pgettext(context, message) % variables


def npgettext(context: str, singular: str, plural: str, num: int, **variables: Any) -> str:
    """`ngettext` with a context, as `pgettext`."""
    variables.setdefault("num", num)
    return translations(current()).npgettext(context, singular, plural, num) % variables


# What the templates call: unformatted, because Jinja's new-style gettext does the formatting
# itself (and escapes the variables when the template is autoescaped).


def _gettext(message: str) -> str:
    return translations(current()).gettext(message)


def _ngettext(singular: str, plural: str, num: int) -> str:
    return translations(current()).ngettext(singular, plural, num)


def _pgettext(context: str, message: str) -> str:
    # Babel types pgettext's result as `str | object`; a catalog's entries are str.
    return cast(str, translations(current()).pgettext(context, message))


def _npgettext(context: str, singular: str, plural: str, num: int) -> str:
    return translations(current()).npgettext(context, singular, plural, num)


# Dates and numbers in the current language. None gives "" (a reminder without a due date), not
# Babel's "now".


def _zone(zone: tzinfo | str | None) -> tzinfo | None:
    return ZoneInfo(zone) if isinstance(zone, str) else zone


def format_datetime(
    value: datetime | None,
    format: str = "medium",
    tzinfo: tzinfo | str | None = None,
) -> str:
    """A moment as the current language writes it ("1 дек. 2026 г., 14:30:00" / "Dec 1, 2026,
    2:30:00 PM"); `format` is short/medium/long/full or a CLDR pattern. Shown in `tzinfo`
    (a zone or its name) when given, else in the datetime's own zone (naive counts as UTC)."""
    if value is None:
        return ""
    return dates.format_datetime(value, format, tzinfo=_zone(tzinfo), locale=current())


def format_date(value: date | None, format: str = "medium") -> str:
    """A date as the current language writes it ("1 дек. 2026 г." / "Dec 1, 2026")."""
    if value is None:
        return ""
    return dates.format_date(value, format, locale=current())


def format_time(
    value: time | datetime | None,
    format: str = "short",
    tzinfo: tzinfo | str | None = None,
) -> str:
    """A time of day as the current language writes it ("14:30" / "2:30 PM")."""
    if value is None:
        return ""
    return dates.format_time(value, format, tzinfo=_zone(tzinfo), locale=current())


def format_number(value: int | float | Decimal | None) -> str:
    """A number with the current language's separators ("1 234,5" / "1,234.5")."""
    if value is None:
        return ""
    return numbers.format_decimal(value, locale=current())


def format_timedelta(
    value: timedelta | int | None,
    granularity: Granularity = "second",
    threshold: float = 0.85,
    add_direction: bool = False,
    format: Width = "long",
) -> str:
    """A duration in words of the current language ("5 минут" / "5 minutes"); `add_direction`
    makes it relative ("через 5 минут" / "in 5 minutes", negative: "5 минут назад")."""
    if value is None:
        return ""
    return dates.format_timedelta(
        value,
        granularity=granularity,
        threshold=threshold,
        add_direction=add_direction,
        format=format,
        locale=current(),
    )


FILTERS = {
    "format_datetime": format_datetime,
    "format_date": format_date,
    "format_time": format_time,
    "format_number": format_number,
    "format_timedelta": format_timedelta,
}


def install(env: jinja2.Environment) -> None:
    """Teach an environment the current request's language: `{{ _("Clients") }}`,
    `{{ ngettext("%(num)d call", "%(num)d calls", n) }}`, `{% trans %}` blocks (trimmed, as
    babel.cfg extracts them), `pgettext`/`npgettext`, the `format_*` filters and
    `current_language()` (for `<html lang=...>`)."""
    if "jinja2.ext.InternationalizationExtension" not in env.extensions:
        env.add_extension("jinja2.ext.i18n")
    env.policies["ext.i18n.trimmed"] = True
    # Added to the environment by the extension, unknown to its type.
    cast(Any, env).install_gettext_callables(
        gettext=_gettext,
        ngettext=_ngettext,
        newstyle=True,
        pgettext=_pgettext,
        npgettext=_npgettext,
    )
    env.filters.update(FILTERS)
    env.globals["current_language"] = current
