"""The client list: filters, search (any phone form, a phone tail, name/e-mail/username
substring) and keyset paging on (activity_at, id), newest activity first. Indexed at 1M cards:
phones by exact value or by reversed digits, text by FTS5 trigram (SQLite) or pg_trgm."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tortoise import BaseDBAsyncClient, connections

from hub import identity
from hub.db import is_postgres
from hub.identity import Kind
from hub.models import Client
from hub.timeline import decode_keyset, encode_cursor

_PHONE_LIKE = re.compile(r"^[\d\s()+\-.]+$")
MIN_TAIL = 3


@dataclass(slots=True)
class Sql:
    """A WHERE clause under construction, with `?` markers (rewritten for PostgreSQL)."""

    where: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, clause: str, *params: Any) -> None:
        self.where.append(clause)
        self.params.extend(params)


def _dialect(sql: str, conn: BaseDBAsyncClient) -> str:
    if not is_postgres(conn):
        return sql
    parts = sql.split("?")
    return "".join(p + (f"${i}" if i < len(parts) else "") for i, p in enumerate(parts, 1))


def _match_clause(q: str, region: str, sql: Sql, conn: BaseDBAsyncClient) -> None:
    text = q.strip()
    digits = identity.phone_digits(text)
    if _PHONE_LIKE.match(text) and len(digits) >= MIN_TAIL:
        _phone_clause(text, digits, region, sql)
        return
    needle = text.lower()
    email = identity.normalize_email(needle)
    username = identity.normalize_username(needle)
    exact = [(Kind.EMAIL, email), (Kind.TELEGRAM_USERNAME, username)]
    ors = [_HOLDS for _, v in exact if v]
    params: list[Any] = [p for k, v in exact if v for p in (k.value, v)]
    # usernames are stored without their @, so "@ann" looks for "ann"
    needle = needle[1:] if needle.startswith("@") and len(needle) > 1 else needle
    ors.append(_text_clause(needle, conn))
    params.append(_like(needle))
    sql.add("(" + " OR ".join(ors) + ")", *params)


_HOLDS = "c.id IN (SELECT client_id FROM identity WHERE kind = ? AND value = ?)"


def _phone_clause(text: str, digits: str, region: str, sql: Sql) -> None:
    """A whole number in any written form matches exactly; digits also match as a tail."""
    rev = digits[::-1][:15]
    tail = "c.id IN (SELECT client_id FROM identity WHERE kind = ? AND rev >= ? AND rev < ?)"
    # ':' follows '9', so [rev, rev + ':') is every value starting with rev: a prefix range
    params: list[Any] = [Kind.PHONE.value, rev, rev + ":"]
    e164 = identity.normalize_phone(text, region) if len(digits) >= 7 else None
    if e164:
        sql.add(f"({_HOLDS} OR {tail})", Kind.PHONE.value, e164, *params)
    else:
        sql.add(tail, *params)


def _text_clause(needle: str, conn: BaseDBAsyncClient) -> str:
    plain = "%" not in needle and "_" not in needle and "\\" not in needle
    if not is_postgres(conn) and plain and len(needle) >= 3:
        return "c.id IN (SELECT rowid FROM client_fts WHERE search LIKE ?)"
    return "c.search LIKE ? ESCAPE '\\'" if not plain else "c.search LIKE ?"


def _like(needle: str) -> str:
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def list_clients(
    *,
    region: str,
    q: str | None = None,
    status: str | None = None,
    manager_id: int | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Client], str | None]:
    """One page of live cards matching the filters."""
    conn = connections.get("default")
    sql = Sql()
    sql.add("c.merged_into_id IS NULL")
    if q and q.strip():
        _match_clause(q, region, sql, conn)
    if status:
        sql.add("c.status = ?", status)
    if manager_id is not None:
        sql.add("c.manager_id = ?", manager_id)
    if cursor:
        at, last_id = decode_keyset(cursor, 2**31)
        sql.add("(c.activity_at < ? OR (c.activity_at = ? AND c.id < ?))", at, at, last_id)
    # every fragment is a constant of this module; values travel as bound parameters
    query = (
        f"SELECT c.id FROM client c WHERE {' AND '.join(sql.where)} "  # noqa: S608
        f"ORDER BY c.activity_at DESC, c.id DESC LIMIT {int(limit) + 1}"
    )
    _, rows = await conn.execute_query(_dialect(query, conn), sql.params)
    ids = [int(r["id"]) for r in rows]
    found = {c.id: c for c in await Client.filter(id__in=ids[:limit])}
    page = [found[i] for i in ids[:limit] if i in found]
    more = len(ids) > limit and page
    return page, encode_cursor(page[-1].activity_at, page[-1].id) if more else None
