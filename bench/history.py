"""Bulk-load timelines for the prefilled cards: calls, e-mails, Telegram messages and notes.

Entries go straight into `interaction` (and `call` for the calls, a `telegram` identity for the
cards that write on Telegram), shaped as the hub stores them. Card `big` (index 0) gets
`big_entries` entries spread over two years; the other cards share the rest, skewed (most have a
few, some have a lot). Everything is a pure function of the sizes: two fills are identical.

SQLite: one transaction of executemany batches with the secondary indexes of `interaction` and
`call` dropped and recreated from the SQL the migration stored (as prefill.py does for cards).
PostgreSQL: COPY, with the two tables' foreign keys, unique constraints and secondary indexes
dropped for the load and recreated (two connections build them side by side).
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cards import MANAGERS, card, mix

BIG_INDEX = 0  # the card with the long history: client id 1
CHUNK_CLIENTS = 20_000
TELEGRAM_BASE = 5_000_000_000  # Telegram user ids of the cards: base + card index
LINE = "+74951234567"
PROVIDERS = ("generic", "zadarma", "mango", "generic")
INTERACTION_COLUMNS = (
    "id", "client_id", "kind", "direction", "channel", "occurred_at", "status", "text", "meta",
    "source", "external_id", "created_at", "updated_at", "author_id",
)  # fmt: skip
CALL_COLUMNS = (
    "id", "source", "call_id", "direction", "state", "outcome", "was_answered", "remote_phone",
    "line", "extension", "started_at", "answered_at", "ended_at", "duration_s", "recording_url",
    "events", "client_id", "interaction_id",
)  # fmt: skip
IDENTITY_COLUMNS = ("kind", "value", "rev", "created_at", "client_id")

SUBJECTS = (
    "Счёт на оплату", "Re: Коммерческое предложение", "Вопрос по доставке", "Договор поставки",
    "Re: Re: Сроки отгрузки", "Заявка с сайта", "Invoice 2024-117", "Акт сверки",
    "Re: Прайс-лист на следующий месяц", "Претензия по заказу", "Quote request", "Спасибо!",
)  # fmt: skip
BODIES = tuple(
    (
        f"Добрый день!\n\n{lead} Номер заказа {n}. Прошу подтвердить получение письма и сообщить "
        "сроки. Если нужны дополнительные документы — пришлю сегодня же.\n\n"
        "С уважением,\nотдел закупок\n" + "-- \nОтправлено с мобильного устройства\n" * (n % 2)
    )
    for n, lead in enumerate(
        (
            "Направляем вам счёт за поставку в приложении.",
            "Хотели бы уточнить условия оплаты по договору.",
            "Подскажите, пожалуйста, когда ожидать отгрузку?",
            "Прошу выставить счёт на оплату по прайсу.",
            "Получили товар, есть замечания по комплектации.",
            "Готовы обсудить продление договора на следующий год.",
            "Во вложении подписанный акт сверки за квартал.",
            "Нужна консультация по подключению услуги.",
        ),
        start=1000,
    )
)
CHATS = (
    "Здравствуйте! Подскажите цену?", "Спасибо, получил", "Когда будет доставка?", "👍",
    "Можно счёт на юрлицо?", "Перезвоните мне, пожалуйста", "Да, подходит", "Добрый вечер",
    "А есть в наличии?", "Оплатил, проверьте", "Hello, is it available?", "Ок",
)  # fmt: skip
NOTES = (
    "Перезвонить после обеда", "Клиент просит скидку 5 %", "Отправил КП, ждём ответ",
    "Важный клиент, работать аккуратно", "Договорились о встрече в четверг",
    "Не отвечает на звонки третий день", "Попросил прислать договор на почту",
)  # fmt: skip
SUBJECTS_JSON = tuple(json.dumps(s, ensure_ascii=False) for s in SUBJECTS)
EXTENSIONS = tuple(str(101 + i) for i in range(20))
AUTHORS = [""] + [f'{{"author": "Менеджер {i}"}}' for i in range(1, MANAGERS + 1)]


@dataclass(frozen=True, slots=True)
class Plan:
    """How many entries each card gets."""

    counts: list[int]
    big: int  # index of the card with the long history

    @property
    def total(self) -> int:
        return sum(self.counts)


def plan(clients: int, entries: int, big_entries: int) -> Plan:
    """`entries` in all; `big_entries` for card BIG_INDEX, the rest exponential around the mean."""
    big_entries = min(big_entries, entries)
    rest, others = entries - big_entries, clients - 1
    rng = random.Random(0xC0FFEE)
    mean = rest / max(others, 1)
    counts = [int(-mean * math.log(1.0 - rng.random())) for _ in range(clients)]
    counts[BIG_INDEX] = 0
    diff = rest - sum(counts)
    i = 1
    while diff and others:  # exact total: one more (or less) for cards in turn
        step = 1 if diff > 0 else -1
        if step > 0 or counts[i] > 0:
            counts[i] += step
            diff -= step
        i = i % others + 1
    counts[BIG_INDEX] = big_entries
    return Plan(counts, BIG_INDEX)


def has_telegram(index: int) -> bool:
    return (mix(index ^ 0x7E1E) >> 7) % 3 == 0


@dataclass(slots=True)
class Rows:
    """One chunk of rows for the three tables."""

    interactions: list[tuple[Any, ...]]
    calls: list[tuple[Any, ...]]
    identities: list[tuple[Any, ...]]


Stamp = Callable[[int], Any]  # epoch microseconds → what the driver stores
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY_US = 86_400_000_000


class Clock:
    """Epoch microseconds as ISO-8601 text, as `datetime.isoformat` writes a UTC-aware value,
    several times faster (days and seconds of the day are cached). Microseconds are never 0
    (isoformat would drop them), so every stored value has one shape."""

    def __init__(self) -> None:
        self.days: dict[int, str] = {}
        self.seconds = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86_400)]

    def text(self, u: int, sep: str) -> str:
        day, rest = divmod(u, DAY_US)
        prefix = self.days.get(day)
        if prefix is None:
            prefix = self.days[day] = (EPOCH + timedelta(days=day)).date().isoformat()
        sec, micro = divmod(rest, 1_000_000)
        return f"{prefix}{sep}{self.seconds[sec]}.{micro or 1:06d}+00:00"

    def sqlite(self, u: int) -> str:
        """The text Tortoise stores for a UTC-aware datetime on SQLite."""
        return self.text(u, " ")

    def iso(self, u: int) -> str:
        return self.text(u, "T")

    @staticmethod
    def pg(u: int) -> datetime:
        return EPOCH + timedelta(microseconds=u or 1)


def generate(p: Plan, now: datetime, postgres: bool) -> Iterator[Rows]:
    """The rows, CHUNK_CLIENTS cards at a time, ids assigned in order from 1."""
    clock = Clock()
    stamp: Stamp = clock.pg if postgres else clock.sqlite
    iso = clock.iso
    yes, no = (True, False) if postgres else (1, 0)
    clients = len(p.counts)
    now_us = int(now.timestamp() * 1_000_000)
    seq = 0  # the last interaction id
    call_seq = 0
    for start in range(0, clients, CHUNK_CLIENTS):
        out = Rows([], [], [])
        inter, calls = out.interactions, out.calls
        bits = random.Random(0x5EED ^ start).getrandbits
        for index in range(start, min(start + CHUNK_CLIENTS, clients)):
            count = p.counts[index]
            c = card(index, clients, now)
            created = int(c.created_at.timestamp() * 1_000_000)
            telegram = has_telegram(index)
            tg_id = TELEGRAM_BASE + index
            if telegram:
                out.identities.append(("telegram", str(tg_id), None, stamp(created), c.id))
            if not count:
                continue
            end = int(c.activity_at.timestamp() * 1_000_000)
            if index == p.big:
                created, end = now_us - 730 * DAY_US, now_us - 60_000_000
            elif end - created < 3_600_000_000:
                end = min(created + 30 * DAY_US, now_us - 60_000_000)
            span = (end - created) // count
            for j in range(count):
                seq += 1
                h = bits(64)
                t = created + span * j + (h & 0xFFFF) * span // 65_536
                at = stamp(t)
                roll = (h >> 16) % 100
                if 45 <= roll < 70 and not c.email:
                    roll = 10  # no address: a call instead
                if 70 <= roll < 88 and not telegram:
                    roll = 95  # not on Telegram: a note instead
                if roll < 45:
                    call_seq += 1
                    provider = PROVIDERS[(h >> 24) % 4]
                    call_id = f"h{call_seq:09d}"
                    direction = "inbound" if (h >> 26) % 4 else "outbound"
                    head = (
                        f'{{"call_id": "{call_id}", "provider": "{provider}", '
                        f'"phone": "{c.phone}", "line": "{LINE}", '
                    )
                    ringing = f'{{"call.ringing": {{"at": "{iso(t)}", "line": "{LINE}"}}, '
                    if (h >> 28) % 10 < 7:
                        ext = EXTENSIONS[(h >> 32) % len(EXTENSIONS)]
                        talk = 10 + (h >> 36) % 900
                        answered_t = t + (3 + (h >> 46) % 20) * 1_000_000
                        ended_t = answered_t + talk * 1_000_000
                        answered, ended = iso(answered_t), iso(ended_t)
                        rec = f"https://rec.pbx.example/{call_id}.mp3"
                        meta = (
                            f'{head}"extension": "{ext}", "duration": {talk}, '
                            f'"recording_url": "{rec}", "answered_at": "{answered}", '
                            f'"ended_at": "{ended}"}}'
                        )
                        events = (
                            f'{ringing}"call.answered": {{"at": "{answered}", '
                            f'"extension": "{ext}"}}, "call.ended": {{"at": "{ended}", '
                            f'"outcome": "answered", "duration": {talk}, "extension": "{ext}"}}}}'
                        )
                        calls.append((
                            call_seq, provider, call_id, direction, "ended", "answered", yes,
                            c.phone, LINE, ext, at, stamp(answered_t), stamp(ended_t), talk, rec,
                            events, c.id, seq,
                        ))  # fmt: skip
                        status = "completed"
                    else:
                        ended_t = t + (5 + (h >> 36) % 40) * 1_000_000
                        ended = iso(ended_t)
                        meta = (
                            f'{head}"extension": null, "duration": null, "recording_url": null, '
                            f'"answered_at": null, "ended_at": "{ended}"}}'
                        )
                        events = (
                            f'{ringing}"call.ended": {{"at": "{ended}", "outcome": "missed"}}}}'
                        )
                        calls.append((
                            call_seq, provider, call_id, direction, "ended", "missed", no, c.phone,
                            LINE, None, at, None, stamp(ended_t), None, None, events, c.id, seq,
                        ))  # fmt: skip
                        status = "missed"
                    inter.append((
                        seq, c.id, "call", direction[:-5] or "in", provider, at, status, "", meta,
                        provider, "call:" + call_id, at, at, None,
                    ))  # fmt: skip
                elif roll < 70:
                    subject = SUBJECTS_JSON[(h >> 24) % len(SUBJECTS)]
                    body = BODIES[(h >> 28) % len(BODIES)]
                    if (h >> 32) % 10 < 7:
                        mid = f"<{seq:010d}.{h & 0xFFFFFF:06x}@mail.example>"
                        inter.append((
                            seq, c.id, "email", "in", "email", at, "received", body,
                            f'{{"subject": {subject}, "from": "{c.email}"}}', "email", mid, at, at,
                            None,
                        ))  # fmt: skip
                    else:
                        inter.append((
                            seq, c.id, "email", "out", "email", at, "sent", body,
                            f'{{"subject": {subject}, "to": "{c.email}"}}', None, None, at, at,
                            1 + (h >> 40) % MANAGERS,
                        ))  # fmt: skip
                elif roll < 88:
                    text = CHATS[(h >> 24) % len(CHATS)]
                    if (h >> 32) % 10 < 7:
                        inter.append((
                            seq, c.id, "telegram", "in", "telegram", at, "received", text,
                            f'{{"chat_id": {tg_id}, "message_id": {seq}}}', "telegram",
                            f"{tg_id}:{seq}", at, at, None,
                        ))  # fmt: skip
                    else:
                        inter.append((
                            seq, c.id, "telegram", "out", "telegram", at, "sent", text,
                            f'{{"chat_id": {tg_id}}}', None, None, at, at,
                            1 + (h >> 40) % MANAGERS,
                        ))  # fmt: skip
                else:
                    author = 1 + (h >> 24) % MANAGERS
                    inter.append((
                        seq, c.id, "note", None, "hub", at, None, NOTES[(h >> 30) % len(NOTES)],
                        AUTHORS[author], None, None, at, at, author,
                    ))  # fmt: skip
        yield out


def _insert(table: str, columns: tuple[str, ...]) -> str:
    marks = ", ".join("?" * len(columns))
    return f'INSERT INTO "{table}" ({", ".join(columns)}) VALUES ({marks})'


def _sqlite_detach(con: sqlite3.Connection, tables: tuple[str, ...]) -> list[str]:
    """Drop the secondary indexes of `tables` (not the UNIQUE constraints); the SQL to recreate."""
    marks = ", ".join("?" * len(tables))
    rows = con.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
        f"AND tbl_name IN ({marks})",
        tables,
    ).fetchall()
    for name, _ in rows:
        con.execute(f'DROP INDEX "{name}"')
    return [sql for _, sql in rows]


def fill_sqlite(path: Path, clients: int, entries: int, big_entries: int) -> dict[str, float]:
    """Load the timelines into the SQLite file; seconds spent per phase."""
    times: dict[str, float] = {}
    start = time.perf_counter()
    p = plan(clients, entries, big_entries)
    now = datetime.now(UTC)
    con = sqlite3.connect(path, isolation_level=None)
    try:
        # a rollback journal for the load: WAL would write every new page twice
        pragmas = (
            "journal_mode=DELETE",
            "synchronous=OFF",
            "cache_size=-524288",
            "temp_store=MEMORY",
        )
        for pragma in pragmas:
            con.execute(f"PRAGMA {pragma}")
        restore = _sqlite_detach(con, ("interaction", "call"))
        con.execute("BEGIN")
        for rows in generate(p, now, postgres=False):
            con.executemany(_insert("interaction", INTERACTION_COLUMNS), rows.interactions)
            con.executemany(_insert("call", CALL_COLUMNS), rows.calls)
            con.executemany(_insert("identity", IDENTITY_COLUMNS), rows.identities)
        con.execute("COMMIT")
        times["rows"] = time.perf_counter() - start
        mark = time.perf_counter()
        for sql in restore:
            con.execute(sql)
        # no ANALYZE: the hub never runs it, so its planner works without statistics
        con.execute("PRAGMA journal_mode=WAL")
        times["indexes"] = time.perf_counter() - mark
    finally:
        con.close()
    return times


async def fill_postgres(dsn: str, clients: int, entries: int, big_entries: int) -> dict[str, float]:
    """Load the timelines into the PostgreSQL database with COPY; seconds spent per phase."""
    import asyncpg

    times: dict[str, float] = {}
    start = time.perf_counter()
    p = plan(clients, entries, big_entries)
    now = datetime.now(UTC)
    con = await asyncpg.connect(dsn)
    other = await asyncpg.connect(dsn)
    try:
        restore = await _pg_detach(con, ("interaction", "call"))
        async with con.transaction():
            for rows in generate(p, now, postgres=True):
                await con.copy_records_to_table(
                    "interaction", records=rows.interactions, columns=INTERACTION_COLUMNS
                )
                await con.copy_records_to_table("call", records=rows.calls, columns=CALL_COLUMNS)
                await con.copy_records_to_table(
                    "identity", records=rows.identities, columns=IDENTITY_COLUMNS
                )
        times["rows"] = time.perf_counter() - start
        mark = time.perf_counter()
        for c in (con, other):
            await c.execute("SET maintenance_work_mem = '512MB'")
        by_table: dict[str, list[str]] = {}
        for table, sql in restore:
            by_table.setdefault(table, []).append(sql)
        # the two tables' indexes are built side by side (the foreign key of call to interaction
        # needs interaction's primary key only, which stays)
        await asyncio.gather(
            _run_all(con, by_table.get("interaction", [])),
            _run_all(other, by_table.get("call", [])),
        )
        for table in ("interaction", "call", "identity"):
            await con.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        await asyncio.gather(con.execute("ANALYZE interaction"), other.execute("ANALYZE call"))
        await con.execute("ANALYZE identity")
        times["indexes"] = time.perf_counter() - mark
    finally:
        await con.close()
        await other.close()
    return times


async def _run_all(con: Any, statements: list[str]) -> None:
    for sql in statements:
        await con.execute(sql)


async def _pg_detach(con: Any, tables: tuple[str, ...]) -> list[tuple[str, str]]:
    """Drop the foreign keys, unique constraints and secondary indexes of `tables` (primary keys
    stay); (table, SQL) that recreates each, constraints before plain indexes."""
    constraints = await con.fetch(
        "SELECT c.conrelid::regclass::text AS tbl, c.conname, pg_get_constraintdef(c.oid) AS def "
        "FROM pg_constraint c WHERE c.conrelid::regclass::text = ANY($1::text[]) "
        "AND c.contype IN ('f', 'u')",
        list(tables),
    )
    indexes = await con.fetch(
        "SELECT i.tablename AS tbl, i.indexname, i.indexdef FROM pg_indexes i "
        "WHERE i.tablename = ANY($1::text[]) AND i.schemaname = current_schema() "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
        list(tables),
    )
    restore: list[tuple[str, str]] = []
    for row in constraints:
        tbl = row["tbl"].strip('"')
        await con.execute(f'ALTER TABLE "{tbl}" DROP CONSTRAINT "{row["conname"]}"')
        restore.append((tbl, f'ALTER TABLE "{tbl}" ADD CONSTRAINT "{row["conname"]}" {row["def"]}'))
    for row in indexes:
        await con.execute(f'DROP INDEX "{row["indexname"]}"')
        restore.append((row["tbl"], row["indexdef"]))
    return restore
