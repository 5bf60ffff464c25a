"""What a manager API request carries: the JSON body, query parameters, path ids, paging
cursors. Every mistake becomes a HubError (400, 415 or 422 naming the field); nothing here
touches the database."""

from __future__ import annotations

import json
import math
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

import pydantic
from aiohttp import web

from hub import timeline
from hub.errors import MediaTypeError, NotFoundError, PayloadError, ValidationError

B = TypeVar("B", bound=pydantic.BaseModel)
MAX_LIMIT = 200
MAX_QUERY = 300
MAX_ID = 2**31 - 1
MAX_BIG_ID = 2**63 - 1
MAX_DEPTH = 32


def _is_json(request: web.Request) -> bool:
    ctype = request.content_type
    return "Content-Type" not in request.headers or ctype == "application/json" or (
        ctype.startswith("application/") and ctype.endswith("+json")
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def _too_deep() -> ValidationError:
    return ValidationError(f"body: nested deeper than {MAX_DEPTH} levels", field="body")


def _check_values(data: Any) -> None:
    """No NUL characters (PostgreSQL text refuses them) and no absurd nesting, without recursion."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _too_deep()
        if isinstance(value, dict):
            stack.extend((k, depth) for k in value)
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
        elif isinstance(value, str) and "\x00" in value:
            raise ValidationError("body: text must not contain NUL characters", field="body")


async def read_body(request: web.Request, model: type[B]) -> B:
    """The JSON body validated against a model: 415 if not JSON, 400 if malformed, 422 naming
    the bad field."""
    if not _is_json(request):
        raise MediaTypeError("expected Content-Type application/json")
    raw = await request.read()
    try:
        data = json.loads(raw.decode("utf-8") or "null", parse_constant=_reject_constant,
                          parse_float=_finite)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise _too_deep() from None
    if not isinstance(data, dict):
        raise PayloadError("body must be a JSON object")
    _check_values(data)
    try:
        return model.model_validate_json(raw, strict=True)
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(map(str, err["loc"])) or "body"
        raise ValidationError(f"{where}: {err['msg']}", field=where) from None


def query_int(
    request: web.Request, name: str, default: int, low: int = 1, high: int = MAX_LIMIT
) -> int:
    """An integer query parameter within bounds (422 otherwise)."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(f"{name}: must be an integer", field=name) from None
    if not low <= value <= high:
        raise ValidationError(f"{name}: must be between {low} and {high}", field=name)
    return value


def query_text(request: web.Request, name: str) -> str | None:
    """A text query parameter; empty is absent, NUL or an over-long value is a 422."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if "\x00" in raw or len(raw) > MAX_QUERY:
        raise ValidationError(f"{name}: not an acceptable value", field=name)
    return raw


def query_choice(request: web.Request, name: str, allowed: type[StrEnum]) -> str | None:
    """A query parameter that must be one value of an enum (422 otherwise)."""
    raw = request.query.get(name) or None
    values = sorted(member.value for member in allowed)
    if raw is not None and raw not in values:
        raise ValidationError(f"{name}: {raw[:40]!r} is not one of {values}", field=name)
    return raw


def path_id(request: web.Request, name: str = "id") -> int:
    """The numeric id in the path; one past the database's range cannot exist (404)."""
    value = int(request.match_info[name])
    if value > MAX_ID:
        raise NotFoundError(f"{name} {value} does not exist")
    return value


def parse_cursor(cursor: str, max_id: int = MAX_ID) -> tuple[datetime, int]:
    """The (time, id) keyset position of a cursor made by timeline.encode_cursor; 400 if forged."""
    at_raw, id_raw = timeline.decode_cursor(cursor, 2)
    try:
        at, last_id = datetime.fromisoformat(at_raw), int(id_raw)
    except ValueError:
        raise PayloadError("cursor is not valid") from None
    if at.tzinfo is None or not 0 < last_id <= max_id:
        raise PayloadError("cursor is not valid")
    return at, last_id
