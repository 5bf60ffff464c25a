"""Offer templates: the bundled ones (`templates/offers/<name>/`) merged with the versions admins
write through the API, and their rendering in Jinja2's sandbox.

A template has a subject, a text body and an optional HTML body, and variants per language: the
files at the root of `<name>/` (or the rows with no language) are the default variant,
`<name>/<lang>/` (or rows with that language) the variant for clients who speak `<lang>`. The
newest stored version of a name and language overrides the bundled file of that name and
language. Templates are compiled from strings in an immutable sandbox with no loader: they see
`client`, `manager` and `company` and nothing else, reach no Python internals and no files.
The files in `<name>/attachments/` (or `<name>/<lang>/attachments/`), a price list say, go
with the offer as they are; the outbox reads them when it sends.
"""

from __future__ import annotations

import mimetypes
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

import hub
from hub.db import now
from hub.errors import ConflictError, DeliveryError, NotFoundError, ValidationError
from hub.models import Manager, OfferTemplate
from hub.settings import CompanySettings

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
LANGUAGE_RE = re.compile(r"^[a-z]{2,3}$")
FILES = {"subject": "subject.txt.j2", "text": "body.txt.j2", "html": "body.html.j2"}
MAX_SEQUENCE = 100_000  # longest string or list `*` may build, largest `**` result
ATTACHMENTS = "attachments"
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024


def templates_root() -> Path:
    """The bundled templates folder, found from the installed package: `hub/bundled/templates`
    (a link to the source tree's `templates/` that a wheel carries as files)."""
    return Path(hub.__file__).resolve().parent / "bundled" / "templates"


@dataclass(frozen=True, slots=True)
class Variant:
    """One language variant of a template; `language` None is the default variant."""

    name: str
    language: str | None
    subject: str
    text: str
    html: str | None
    source: str = "bundled"  # or "custom"
    version: int = 0  # bundled files are version 0; stored versions count from 1
    author: str | None = None
    created_at: datetime | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "language": self.language,
            "source": self.source,
            "version": self.version,
            "author": self.author,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }


@dataclass(slots=True)
class Template:
    """A template's variants by language (None: the default)."""

    name: str
    variants: dict[str | None, Variant] = field(default_factory=dict)

    def pick(self, language: str | None) -> Variant:
        """The variant for a language: that language's, else the default, else any."""
        wanted = normalize_language(language)
        if wanted in self.variants:
            return self.variants[wanted]
        if None in self.variants:
            return self.variants[None]
        return self.variants[min(k for k in self.variants if k is not None)]

    def describe(self) -> dict[str, Any]:
        custom = [v for v in self.variants.values() if v.source == "custom"]
        newest = max(custom, key=lambda v: (v.created_at or now(), v.version), default=None)
        return {
            "name": self.name,
            "languages": sorted(k for k in self.variants if k is not None),
            "default": None in self.variants,
            "source": "custom" if custom else "bundled",
            "version": max((v.version for v in self.variants.values()), default=0),
            "author": newest.author if newest else None,
            "updated_at": newest.created_at.isoformat() if newest and newest.created_at else None,
            "variants": [self.variants[k].describe() for k in _ordered(self.variants)],
        }


@dataclass(frozen=True, slots=True)
class AttachmentFile:
    """A file sent with an offer (a price list): `path` is relative to the templates root."""

    path: str
    name: str
    content_type: str
    size: int

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "content_type": self.content_type, "size": self.size}


@dataclass(frozen=True, slots=True)
class RenderedOffer:
    subject: str
    text: str
    html: str | None
    language: str | None
    attachments: tuple[AttachmentFile, ...] = ()


def normalize_language(raw: Any) -> str | None:
    """`ru`, `RU`, `ru-RU`, `en_US` → the primary subtag in lower case; anything else None."""
    if not isinstance(raw, str):
        return None
    primary = re.split(r"[-_]", raw.strip().lower(), maxsplit=1)[0]
    return primary if LANGUAGE_RE.match(primary) else None


def client_language(client: Mapping[str, Any]) -> str | None:
    """The language a card asks for: its custom field `language`."""
    fields = client.get("fields") or {}
    return normalize_language(fields.get("language")) if isinstance(fields, Mapping) else None


def _ordered(variants: Mapping[str | None, Any]) -> list[str | None]:
    return sorted(variants, key=lambda k: (k is not None, k or ""))


# --- attachments ------------------------------------------------------------------------------


def attachments_for(
    name: str, language: str | None, root: Path | None = None
) -> tuple[AttachmentFile, ...]:
    """The files of `templates/offers/<name>/<language>/attachments/`, else of
    `<name>/attachments/`: the same for the bundled variant and the versions admins write (a
    new text keeps its price list). Hidden files and files over MAX_ATTACHMENT_BYTES are left
    out."""
    base = root or templates_root()
    folder = base / "offers" / name / ATTACHMENTS
    if language and (base / "offers" / name / language / ATTACHMENTS).is_dir():
        folder = base / "offers" / name / language / ATTACHMENTS
    if not folder.is_dir():
        return ()
    found = []
    for path in sorted(folder.iterdir()):
        size = path.stat().st_size if path.is_file() else -1
        if path.name.startswith(".") or not 0 <= size <= MAX_ATTACHMENT_BYTES:
            continue
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        found.append(AttachmentFile(path.relative_to(base).as_posix(), path.name, content_type,
                                    size))
    return tuple(found)


def read_attachment(path: str, root: Path | None = None) -> bytes:
    """An attachment's bytes at send time; DeliveryError (not retried) when it is gone or
    the path leads outside the templates folder."""
    base = (root or templates_root()).resolve()
    target = (base / path).resolve()
    if not target.is_relative_to(base) or not target.is_file():
        raise DeliveryError(f"the attachment {path!r} is no longer there", retryable=False)
    data = target.read_bytes()
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise DeliveryError(f"the attachment {path!r} is too large", retryable=False)
    return data


# --- loading ----------------------------------------------------------------------------------


def bundled_templates(root: Path | None = None) -> dict[str, Template]:
    """The templates shipped in `<root>/offers/`: one folder per name, the default variant at
    its root and one sub-folder per language."""
    base = (root or templates_root()) / "offers"
    found: dict[str, Template] = {}
    if not base.is_dir():
        return found
    for folder in sorted(base.iterdir()):
        if not (folder.is_dir() and NAME_RE.match(folder.name)):
            continue
        template = Template(folder.name)
        default = _read_variant(folder.name, None, folder)
        if default is not None:
            template.variants[None] = default
        for sub in sorted(folder.iterdir()):
            if sub.is_dir() and LANGUAGE_RE.match(sub.name):
                variant = _read_variant(folder.name, sub.name, sub)
                if variant is not None:
                    template.variants[sub.name] = variant
        if template.variants:
            found[folder.name] = template
    return found


def _read_variant(name: str, language: str | None, folder: Path) -> Variant | None:
    paths = {part: folder / filename for part, filename in FILES.items()}
    if not (paths["subject"].is_file() and paths["text"].is_file()):
        return None
    html = paths["html"].read_text(encoding="utf-8") if paths["html"].is_file() else None
    return Variant(
        name=name,
        language=language,
        subject=paths["subject"].read_text(encoding="utf-8"),
        text=paths["text"].read_text(encoding="utf-8"),
        html=html,
    )


def _custom(row: OfferTemplate, author: str | None) -> Variant:
    return Variant(
        name=row.name, language=row.language or None, subject=row.subject, text=row.text,
        html=row.html, source="custom", version=row.version, author=author,
        created_at=row.created_at,
    )


async def _newest_rows(name: str | None = None) -> list[OfferTemplate]:
    """The newest stored version of each (name, language)."""
    query = OfferTemplate.all() if name is None else OfferTemplate.filter(name=name)
    rows = await query.order_by("name", "language", "-version").prefetch_related("author")
    newest: dict[tuple[str, str], OfferTemplate] = {}
    for row in rows:
        newest.setdefault((row.name, row.language), row)
    return list(newest.values())


def _author_name(row: OfferTemplate) -> str | None:
    author = row.author
    return author.name if isinstance(author, Manager) else None


async def all_templates(root: Path | None = None) -> dict[str, Template]:
    """Bundled templates with the stored versions laid over them, by name."""
    merged = bundled_templates(root)
    for row in await _newest_rows():
        template = merged.setdefault(row.name, Template(row.name))
        variant = _custom(row, _author_name(row))
        template.variants[variant.language] = variant
    return dict(sorted(merged.items()))


async def get_template(name: str, root: Path | None = None) -> Template:
    """One template by name (bundled, stored or both); 404 when there is none."""
    template = bundled_templates(root).get(name) or Template(name)
    for row in await _newest_rows(name):
        variant = _custom(row, _author_name(row))
        template.variants[variant.language] = variant
    if not template.variants:
        raise NotFoundError(f"template {name!r} does not exist")
    return template


async def versions(name: str, root: Path | None = None) -> list[Variant]:
    """Every stored version of a template, newest first, then its bundled variants."""
    rows = await OfferTemplate.filter(name=name).order_by("-id").prefetch_related(
        "author"
    )
    found = [_custom(row, _author_name(row)) for row in rows]
    bundled = bundled_templates(root).get(name)
    if bundled is not None:
        found += [bundled.variants[k] for k in _ordered(bundled.variants)]
    if not found:
        raise NotFoundError(f"template {name!r} does not exist")
    return found


async def create_template(
    name: str, language: str | None, subject: str, text: str, html: str | None,
    author: Manager, company: CompanySettings, root: Path | None = None,
) -> Variant:
    """Version 1 of a new template or language variant; 409 when that name and language
    exist already (bundled or stored), 422 when it does not render."""
    check_name(name)
    language = check_language(language)
    bundled = bundled_templates(root).get(name)
    if (bundled and language in bundled.variants) or await OfferTemplate.exists(
        name=name, language=language or ""
    ):
        which = f"language {language}" if language else "default language"
        raise ConflictError(f"template {name!r} exists in the {which}; PUT a new version")
    variant = Variant(name, language, subject, text, html, "custom", 1, author.name)
    check_renders(variant, author, company)
    return await _store(variant, author)


async def update_template(
    name: str, language: str | None, subject: str, text: str, html: str | None,
    author: Manager, company: CompanySettings, root: Path | None = None,
) -> Variant:
    """A new version of an existing template's variant (a bundled one's first stored version
    overrides its file); the earlier versions are kept. 404 for an unknown name."""
    check_name(name)
    language = check_language(language)
    if name not in bundled_templates(root) and not await OfferTemplate.exists(name=name):
        raise NotFoundError(f"template {name!r} does not exist; POST it first")
    last = await OfferTemplate.filter(name=name, language=language or "").order_by(
        "-version").first()
    version = (last.version if last else 0) + 1
    variant = Variant(name, language, subject, text, html, "custom", version, author.name)
    check_renders(variant, author, company)
    return await _store(variant, author)


async def _store(variant: Variant, author: Manager) -> Variant:
    try:
        async with in_transaction():
            row = await OfferTemplate.create(
                name=variant.name, language=variant.language or "", version=variant.version,
                subject=variant.subject, text=variant.text, html=variant.html, author=author,
                created_at=now(),
            )
    except IntegrityError:
        raise ConflictError(
            f"template {variant.name!r} changed at the same time; try again"
        ) from None
    return _custom(row, author.name)


def check_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise ValidationError(
            "name: use 1-64 lower-case letters, digits, '_' or '-', starting with a letter or "
            "digit", field="name",
        )


def check_language(raw: str | None) -> str | None:
    if raw is None or raw == "":
        return None
    if not LANGUAGE_RE.match(raw):
        raise ValidationError(
            "language: a two- or three-letter lower-case code such as ru or en", field="language"
        )
    return raw


# --- rendering --------------------------------------------------------------------------------


class _Sandbox(ImmutableSandboxedEnvironment):
    """No attribute starting with `_`, no mutation, no loader, and no huge `*` or `**`."""

    intercepted_binops = frozenset(["*", "**"])

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "**":
            if isinstance(right, int | float) and abs(right) > 64:
                raise SecurityError("exponent too large")
            return operator.pow(left, right)
        if isinstance(left, str | list | tuple) or isinstance(right, str | list | tuple):
            count = right if isinstance(left, str | list | tuple) else left
            seq = left if isinstance(left, str | list | tuple) else right
            if isinstance(count, int) and len(seq) * count > MAX_SEQUENCE:
                raise SecurityError("the result of * would be too long")
        return operator.mul(left, right)


def _environment(autoescape: bool) -> _Sandbox:
    return _Sandbox(
        autoescape=autoescape, undefined=jinja2.StrictUndefined, loader=None,
        keep_trailing_newline=True,
    )


_TEXT = _environment(False)
_HTML = _environment(True)


def manager_context(manager: Manager) -> dict[str, Any]:
    """What a template knows of the manager: name, e-mail, phone and a signature line."""
    parts = [manager.name, manager.phone, manager.email]
    return {
        "name": manager.name,
        "email": manager.email,
        "phone": manager.phone,
        "signature": ", ".join(p for p in parts if p),
    }


def company_context(company: CompanySettings) -> dict[str, Any]:
    return {"name": company.name, "phone": company.phone, "email": company.email,
            "website": company.website}


def client_context(client: Mapping[str, Any]) -> dict[str, Any]:
    """The card as the API shows it, plus its first phone and e-mail and its language."""
    phones, emails = client.get("phones") or [], client.get("emails") or []
    return {
        **client,
        "phone": phones[0] if phones else None,
        "email": emails[0] if emails else None,
        "language": client_language(client),
    }


SAMPLE_CLIENT: dict[str, Any] = {
    "id": 1, "name": "Иван Петров", "status": "new", "phones": ["+79123456789"],
    "emails": ["ivan@example.com"], "telegram": [], "manager_id": None, "fields": {},
    "created_at": "2026-01-01T00:00:00+00:00", "last_interaction_at": None,
}


def check_renders(variant: Variant, manager: Manager, company: CompanySettings) -> None:
    """422 with the reason when a template does not compile or render for a sample card."""
    render_offer(variant, SAMPLE_CLIENT, manager, company)


def render_offer(
    template: Variant, client: Mapping[str, Any], manager: Manager, company: CompanySettings
) -> RenderedOffer:
    """The subject (one line), text and HTML of one variant for one card; 422 naming the part
    and the reason when it cannot be rendered."""
    context = {
        "client": client_context(client),
        "manager": manager_context(manager),
        "company": company_context(company),
    }
    subject = _render(_TEXT, "subject", template.subject, context)
    text = _render(_TEXT, "text", template.text, context)
    html = _render(_HTML, "html", template.html, context) if template.html else None
    return RenderedOffer(" ".join(subject.split()), text, html, template.language,
                         attachments_for(template.name, template.language))


def _render(env: _Sandbox, part: str, source: str, context: dict[str, Any]) -> str:
    try:
        return env.from_string(source).render(context)
    except jinja2.TemplateSyntaxError as exc:
        raise _refused(part, f"line {exc.lineno}: {exc.message}") from None
    except jinja2.TemplateError as exc:  # UndefinedError, SecurityError, ...
        raise _refused(part, exc.message or type(exc).__name__) from None
    except (TypeError, ValueError, ArithmeticError, LookupError, RecursionError) as exc:
        raise _refused(part, str(exc) or type(exc).__name__) from None


def _refused(part: str, reason: str) -> ValidationError:
    return ValidationError(f"{part}: the template does not render: {reason}", field=part)
