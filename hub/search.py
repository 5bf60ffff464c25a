"""The client list: filters, search (any phone form, a phone tail, name/e-mail/username
substring) and keyset paging on (activity_at, id), newest activity first. Indexed at 1M cards:
phones by exact value or by reversed digits, text by FTS5 trigram (SQLite) or pg_trgm."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise import BaseDBAsyncClient, connections

from hub import identity
from hub.db import is_postgres, pg_sql
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


@dataclass(frozen=True, slots=True)
class Match:
    """How `q` narrows the list: through an index, and (for text) as a plain scan."""

    indexed: str
    indexed_params: tuple[Any, ...]
    scan: str | None = None  # a LIKE over the `w` window of newest cards
    scan_params: tuple[Any, ...] = ()


def _match(q: str, region: str, conn: BaseDBAsyncClient) -> Match:
    text = q.strip()
    digits = identity.phone_digits(text)
    if _PHONE_LIKE.match(text) and len(digits) >= MIN_TAIL:
        return _phone_match(text, digits, region)
    needle = text.lower()
    email = identity.normalize_email(needle)
    username = identity.normalize_username(needle)
    exact = [(Kind.EMAIL, email), (Kind.TELEGRAM_USERNAME, username)]
    ors = [_HOLDS for _, v in exact if v]
    params: list[Any] = [p for k, v in exact if v for p in (k.value, v)]
    # usernames are stored without their @, so "@ann" looks for "ann"
    needle = needle[1:] if needle.startswith("@") and len(needle) > 1 else needle
    clause, pattern = _text_clause(needle, conn), _like(needle)
    ors.append(clause)
    params.append(pattern)
    # the search text holds the name, e-mails and usernames, so the scan needs only the LIKE
    scan = "w.search LIKE ? ESCAPE '\\'" if "ESCAPE" in clause else "w.search LIKE ?"
    return Match("(" + " OR ".join(ors) + ")", tuple(params), scan, (pattern,))


_HOLDS = "c.id IN (SELECT client_id FROM identity WHERE kind = ? AND value = ?)"


def _phone_match(text: str, digits: str, region: str) -> Match:
    """A whole number in any written form matches exactly; digits also match as a tail."""
    rev = digits[::-1][:15]
    # only phones have `rev`; testing kind here too would steer SQLite onto the (kind, value)
    # index and a scan of every phone. ':' follows '9': [rev, rev + ':') is a prefix range.
    tail = "c.id IN (SELECT client_id FROM identity WHERE rev >= ? AND rev < ?)"
    e164 = identity.normalize_phone(text, region) if len(digits) >= 7 else None
    if e164:
        return Match(f"({_HOLDS} OR {tail})", (Kind.PHONE.value, e164, rev, rev + ":"))
    return Match(tail, (rev, rev + ":"))


def _text_clause(needle: str, conn: BaseDBAsyncClient) -> str:
    plain = "%" not in needle and "_" not in needle and "\\" not in needle
    if not is_postgres(conn) and plain and len(needle) >= 3:
        return "c.id IN (SELECT rowid FROM client_fts WHERE search LIKE ?)"
    return "c.search LIKE ? ESCAPE '\\'" if not plain else "c.search LIKE ?"


def _like(needle: str) -> str:
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# A common fragment ("ова", "gmail") matches a large share of a million cards: collecting every
# match through the text index and sorting them costs up to a second. The newest cards are
# scanned first; when they hold a full page, it is exactly the first page of the whole list.
# (Asking the index first how many cards match does not help: FTS5 reads a trigram's whole
# posting list before the first row, ~130 ms for a common one at 1M.)
WINDOW = 20_000


# a card "on" a channel holds an identity of these kinds
CHANNELS: dict[str, tuple[str, ...]] = {
    "phone": ("phone",), "email": ("email",), "telegram": ("telegram", "telegram_username"),
}


async def list_clients(
    *,
    region: str,
    q: str | None = None,
    status: str | None = None,
    manager_id: int | None = None,
    channel: str | None = None,
    idle_since: datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Client], str | None]:
    """One page of live cards matching the filters: `channel` keeps the cards reachable on it,
    `idle_since` those with no activity since then."""
    conn = connections.get("default")
    base = Sql()
    base.add("c.merged_into_id IS NULL")
    if status:
        base.add("c.status = ?", status)
    if manager_id is not None:
        base.add("c.manager_id = ?", manager_id)
    if channel in CHANNELS:
        base.add(*await _on_channel(conn, CHANNELS[channel]))
    if idle_since is not None:
        base.add("c.activity_at < ?", idle_since)
    if cursor:
        at, last_id = decode_keyset(cursor, 2**31)
        # the `<=` bound lets the index start at the cursor (the OR alone walks it from the top)
        base.add("c.activity_at <= ? AND (c.activity_at < ? OR (c.activity_at = ? AND c.id < ?))",
                 at, at, at, last_id)
    match = _match(q, region, conn) if q and q.strip() else None
    ids = await _newest_window(conn, base, match, limit) if match and match.scan else None
    if ids is None:
        if match:
            base.add(match.indexed, *match.indexed_params)
        ids = await _select_ids(conn, base, limit)
    found = {c.id: c for c in await Client.filter(id__in=ids[:limit])}
    page = [found[i] for i in ids[:limit] if i in found]
    more = len(ids) > limit and page
    return page, encode_cursor(page[-1].activity_at, page[-1].id) if more else None


RARE = 20_000  # fewer cards than this on a channel: find them through the identities


async def _on_channel(conn: BaseDBAsyncClient, kinds: tuple[str, ...]) -> tuple[Any, ...]:
    """The clause (and its values) that keeps cards reachable on a channel. A common channel
    (phones: nearly every card) is checked card by card while the newest-first walk fills the
    page; a rare one (Telegram at a shop that has just started with it) would make that walk
    cross every card, so its few identities pick the cards instead."""
    markers = ", ".join("?" * len(kinds))  # only markers: the kinds travel as parameters
    query = (f"SELECT COUNT(*) AS n FROM (SELECT 1 FROM identity WHERE kind IN ({markers}) "  # noqa: S608
             f"LIMIT {RARE}) few")
    _, rows = await conn.execute_query(_sql(query, conn), list(kinds))
    if int(rows[0]["n"]) < RARE:
        return ("c.id IN (SELECT ci.client_id FROM identity ci "  # noqa: S608
                f"WHERE ci.kind IN ({markers}))", *kinds)
    return ("EXISTS (SELECT 1 FROM identity ci WHERE ci.client_id = c.id "  # noqa: S608
            f"AND ci.kind IN ({markers}))", *kinds)


def _sql(sql: str, conn: BaseDBAsyncClient) -> str:
    return pg_sql(sql) if is_postgres(conn) else sql


_ORDER = "ORDER BY {t}.activity_at DESC, {t}.id DESC"


async def _select_ids(conn: BaseDBAsyncClient, sql: Sql, limit: int) -> list[int]:
    # every fragment is a constant of this module; values travel as bound parameters
    query = (
        f"SELECT c.id FROM client c WHERE {' AND '.join(sql.where)} "  # noqa: S608
        f"{_ORDER.format(t='c')} LIMIT {int(limit) + 1}"
    )
    _, rows = await conn.execute_query(_sql(query, conn), sql.params)
    return [int(r["id"]) for r in rows]


async def _newest_window(
    conn: BaseDBAsyncClient, sql: Sql, match: Match, limit: int
) -> list[int] | None:
    """The page, if the newest WINDOW cards hold a full one; None to ask the text index."""
    query = (
        "SELECT w.id FROM (SELECT c.id, c.activity_at, c.search FROM client c "  # noqa: S608
        f"WHERE {' AND '.join(sql.where)} {_ORDER.format(t='c')} LIMIT {WINDOW}) w "
        f"WHERE {match.scan} {_ORDER.format(t='w')} LIMIT {int(limit) + 1}"
    )
    _, rows = await conn.execute_query(_sql(query, conn), [*sql.params, *match.scan_params])
    return [int(r["id"]) for r in rows] if len(rows) > limit else None
