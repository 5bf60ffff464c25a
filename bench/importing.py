"""Import benchmark: a generated client list of N rows (default 100,000) imported into a fresh
database, as `hub import clients` does it, next to a floor measured in the same run.

The list is what a team brings: Russian names, phones written every way (some cells with two),
e-mails for half the rows, a status and an address, and 10 % of the rows repeating an earlier
client by phone (they must merge, not make cards). Stages:

1. read: the .xlsx (openpyxl, read-only) and the .csv (UTF-8 with a BOM, `;`) through hub.sheets;
2. import: hub.importing.import_rows from the csv's rows (one transaction per 500 rows);
3. again: the same rows a second time, which must change nothing;
4. floor: the same rows' raw values into one plain SQLite table, 500 per transaction.

    python bench/importing.py                       # 100k rows, SQLite
    python bench/importing.py --rows 20000 --database-url postgres://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import platform
import random
import sqlite3
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from databases import database  # noqa: E402
from hub import db  # noqa: E402
from hub.importing import import_rows, write_xlsx  # noqa: E402
from hub.models import Client  # noqa: E402
from hub.sheets import read_sheet  # noqa: E402

HEADER = ["ФИО", "Телефон", "E-mail", "Статус", "Адрес"]
FIRST = ("Анна", "Мария", "Елена", "Ольга", "Иван", "Пётр", "Сергей", "Андрей", "Юлия", "Павел")
LAST = ("Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Новиков")
STATUS = ("Новый", "Горячий", "Холодный", "VIP", "Постоянный", "")
REPEAT = 0.10


def phone(i: int, rng: random.Random) -> str:
    digits = f"9{(i * 7919) % 10**9:09d}"
    forms = (f"8 {digits[:3]} {digits[3:6]}-{digits[6:8]}-{digits[8:]}", f"+7{digits}",
             f"+7 ({digits[:3]}) {digits[3:6]} {digits[6:8]} {digits[8:]}", f"7{digits}")
    return rng.choice(forms)


def rows_of(n: int, seed: int = 1) -> list[list[str]]:
    rng = random.Random(seed)
    rows: list[list[str]] = []
    for i in range(n):
        who = rng.randrange(i) if i > 10 and rng.random() < REPEAT else i
        name = f"{rng.choice(LAST)} {rng.choice(FIRST)}"
        phones = phone(who, rng) + (f"; {phone(who + 10**6, rng)}" if who % 5 == 0 else "")
        email = f"client{who}@example.ru" if who % 2 == 0 else ""
        rows.append([name, phones, email, rng.choice(STATUS), f"г. Москва, д. {who % 300}"])
    return rows


def write_files(work: Path, rows: list[list[str]]) -> tuple[Path, Path]:
    csv_path, xlsx_path = work / "clients.csv", work / "clients.xlsx"
    with csv_path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out, delimiter=";")
        writer.writerow(HEADER)
        writer.writerows(rows)
    write_xlsx(xlsx_path, HEADER, rows)
    return csv_path, xlsx_path


def floor(path: Path, rows: list[list[str]]) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE row (id INTEGER PRIMARY KEY, name TEXT, phones TEXT, email TEXT, "
                 "status TEXT, address TEXT)")
    start = time.perf_counter()
    for i in range(0, len(rows), 500):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO row (name, phones, email, status, address) "
                         "VALUES (?, ?, ?, ?, ?)", rows[i:i + 500])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return len(rows) / elapsed


async def hub_import(url: str, csv_path: Path) -> tuple[float, float, object, object, int]:
    await db.init_db(url)
    try:
        sheet = read_sheet(csv_path)
        start = time.perf_counter()
        first = await import_rows(sheet.rows, "RU")
        first_rate = len(sheet.rows) / (time.perf_counter() - start)
        start = time.perf_counter()
        again = await import_rows(sheet.rows, "RU")
        again_rate = len(sheet.rows) / (time.perf_counter() - start)
        cards = await Client.all().count()
        return first_rate, again_rate, first, again, cards
    finally:
        await db.close_db()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url", help="PostgreSQL admin URL (a throwaway database)")
    args = parser.parse_args(argv)
    rows = rows_of(args.rows)
    with TemporaryDirectory(prefix="crm-hub-bench-import-") as tmp:
        work = Path(tmp)
        csv_path, xlsx_path = write_files(work, rows)
        timings = {}
        for label, path in (("xlsx", xlsx_path), ("csv", csv_path)):
            start = time.perf_counter()
            count = len(read_sheet(path).rows)
            timings[label] = (count, time.perf_counter() - start)
        with database(args.database_url, work) as target:
            first_rate, again_rate, first, again, cards = asyncio.run(
                hub_import(target.url, csv_path))
            label = target.label
        floor_rate = floor(work / "floor.db", rows)
    print(f"machine: {platform.machine()}, Python {platform.python_version()}, {label}")
    for kind, (count, seconds) in timings.items():
        print(f"read {kind}: {count:,} rows in {seconds:.1f} s ({count / seconds:,.0f} rows/s)")
    print(f"import: {first_rate:,.0f} rows/s — {first.summary()}")  # type: ignore[attr-defined]
    print(f"again:  {again_rate:,.0f} rows/s — {again.summary()}")  # type: ignore[attr-defined]
    print(f"cards: {cards:,}")
    print(f"floor (raw rows into one SQLite table, 500 per transaction): {floor_rate:,.0f} rows/s;"
          f" import/floor {first_rate / floor_rate:.3f}")
    changed = again.new + again.merged  # type: ignore[attr-defined]
    if changed:
        print(f"FAIL: the second import changed {changed} rows")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
