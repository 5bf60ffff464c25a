"""Importing a client list: the same identity rules as live events (phones in any written form,
rows of one file that share a phone become one card, rows that match a card fill it and never
overwrite it), bad rows rejected with the reason, a dry run that changes nothing, the same file
twice changing nothing; exporting every card; and the `hub import`/`hub export` commands."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from openpyxl import Workbook, load_workbook

from hub.db import now
from hub.importing import export_file, import_rows
from hub.managers import create_manager
from hub.models import AuditLog, Client, Identity, Interaction
from hub.sheets import read_sheet
from tests.helpers import call_body, post_call
from tests.test_cli import run_hub

pytestmark = pytest.mark.usefixtures("orm")

HEADER = ["ФИО", "Телефон", "E-mail", "Статус", "Ответственный", "Адрес", "Источник"]
ROWS = [
    ["Иван Петров", "8 912 345-67-89; +7(912)3456780", "ivan@example.ru", "Горячий", "Ольга",
     "Москва, ул. Ленина, 1", "выставка"],
    ["Мария Соколова", "+7 916 000-11-22", "", "", "", "", ""],
    ["И. Петров", "+79123456789", "ivan.petrov@work.example", "", "", "", "сайт"],  # row 2's twin
    ["Без контактов", "", "", "", "", "", ""],
    ["Плохой номер", "12345", "not-an-email", "", "", "", ""],
]


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8-sig") -> Path:
    with path.open("w", encoding=encoding, newline="") as out:
        writer = csv.writer(out, delimiter=";")
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def write_xlsx(path: Path, rows: list[list[Any]]) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


async def run(path: Path, dry_run: bool = False) -> Any:
    return await import_rows(read_sheet(path).rows, "RU", dry_run=dry_run)


async def test_a_spreadsheet_becomes_cards_by_the_live_identity_rules(tmp_path: Path) -> None:
    olga, _ = await create_manager("Ольга")
    report = await run(write_xlsx(tmp_path / "clients.xlsx", ROWS))
    assert (report.new, report.merged, report.rejected) == (2, 1, 2)
    ivan = await Client.get(name="Иван Петров")
    keys = set(await Identity.filter(client_id=ivan.id).values_list("kind", "value"))
    assert keys == {("phone", "+79123456789"), ("phone", "+79123456780"),
                    ("email", "ivan@example.ru"), ("email", "ivan.petrov@work.example")}
    assert ivan.status == "hot" and ivan.manager_id == olga.id  # type: ignore[attr-defined]
    # the twin row filled what was missing, never overwrote what was there
    assert ivan.custom_fields == {"address": "Москва, ул. Ленина, 1", "Источник": "выставка"}
    twin = next(o for o in report.with_notes if o.number == 4)
    assert twin.client_id == ivan.id and any("differs" in n for n in twin.notes)
    rejected = {o.number: o.notes for o in report.with_notes if o.action == "rejected"}
    assert set(rejected) == {5, 6}
    assert "'12345' is not a valid phone number" in rejected[6]


async def test_the_same_file_twice_changes_nothing_and_a_dry_run_nothing_at_all(
    tmp_path: Path,
) -> None:
    path = write_csv(tmp_path / "clients.csv", ROWS)
    dry = await run(path, dry_run=True)
    assert (dry.new, dry.merged, dry.rejected) == (2, 1, 2)
    assert await Client.all().count() == 0 and await Identity.all().count() == 0
    await run(path)
    before = sorted(await Identity.all().values_list("client_id", "kind", "value"))
    again = await run(path)
    assert (again.new, again.merged, again.unchanged, again.rejected) == (0, 0, 3, 2)
    assert sorted(await Identity.all().values_list("client_id", "kind", "value")) == before
    assert await Client.all().count() == 2


async def test_a_row_matching_a_known_caller_joins_that_card(
    tmp_path: Path, make_client: Any
) -> None:
    client = await make_client()
    answer = await post_call(client, call_body("ringing", "c-1", "+7 916 000 11 22"))
    caller = (await answer.json())["client_id"]
    await run(write_csv(tmp_path / "clients.csv", ROWS[1:2]))
    card = await Client.get(id=caller)
    assert card.name == "Мария Соколова"  # the caller's card had no name: filled
    assert await Client.all().count() == 1
    assert await Interaction.filter(client_id=caller).count() == 1  # its call is still there


async def test_windows_1251_csv_as_russian_excel_saves_it(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "clients.csv", ROWS[:2], encoding="cp1251")
    report = await run(path)
    assert report.new == 2
    assert await Client.filter(name="Мария Соколова").exists()


async def test_export_writes_every_card_and_reads_back(tmp_path: Path) -> None:
    await run(write_xlsx(tmp_path / "in.xlsx", ROWS))
    assert await export_file(tmp_path / "out.csv") == 2
    with (tmp_path / "out.csv").open(encoding="utf-8-sig", newline="") as src:
        rows = list(csv.reader(src, delimiter=";"))
    assert rows[0][:3] == ["id", "name", "status"] and "address" in rows[0]
    ivan = next(r for r in rows if r[1] == "Иван Петров")
    assert "+79123456789" in ivan[4] and "ivan@example.ru" in ivan[5]
    assert await export_file(tmp_path / "out.xlsx") == 2
    sheet = load_workbook(tmp_path / "out.xlsx", read_only=True).active
    assert sheet is not None
    assert len(list(sheet.iter_rows())) == 3
    # what was exported imports back onto the same cards
    again = await import_rows(read_sheet(tmp_path / "out.csv").rows, "RU")
    assert again.new == 0 and await Client.all().count() == 2


def test_the_commands_import_and_export(tmp_path: Path, database_url: str) -> None:
    path = write_csv(tmp_path / "clients.csv", ROWS)
    env = {"HUB_DATABASE_URL": database_url}
    dry = run_hub(tmp_path, "import", "clients", str(path), "--dry-run", **env)
    assert dry.returncode == 0, dry.stderr
    assert "dry run, nothing changed: 5 rows: 2 new cards, 1 merged" in dry.stdout
    assert "row 6: rejected" in dry.stdout and "row 2: new" in dry.stdout  # every row
    done = run_hub(tmp_path, "import", "clients", str(path), **env)
    assert done.returncode == 0 and "2 new cards" in done.stdout
    out = run_hub(tmp_path, "export", "clients", str(tmp_path / "all.xlsx"), **env)
    assert out.returncode == 0 and "2 cards written" in out.stdout
    bad = run_hub(tmp_path, "import", "clients", str(tmp_path / "nope.pdf"), **env)
    assert bad.returncode == 1 and bad.stderr.startswith("hub: error:")


async def test_when_now_is_used_for_new_cards(tmp_path: Path) -> None:
    started = now()
    await run(write_csv(tmp_path / "c.csv", ROWS[1:2]))
    card = await Client.get()
    assert card.created_at >= started.replace(microsecond=0)


async def test_the_api_exports_csv_and_xlsx(
    tmp_path: Path, make_client: Any, manager: dict[str, Any]
) -> None:
    client = await make_client()
    await run(write_csv(tmp_path / "clients.csv", ROWS))
    resp = await client.get("/api/clients/export", headers=manager["headers"])
    assert resp.status == 200 and resp.content_type == "text/csv"
    text = (await resp.read()).decode("utf-8-sig")
    assert text.startswith("id;name;status") and "Мария Соколова" in text
    resp = await client.get("/api/clients/export?format=xlsx", headers=manager["headers"])
    assert resp.status == 200 and (await resp.read())[:2] == b"PK"
    assert (await client.get("/api/clients/export")).status == 401
    bad = await client.get("/api/clients/export?format=pdf", headers=manager["headers"])
    assert bad.status == 422
    # each export of the whole base is in the audit log, with who took it (never the data)
    logged = await AuditLog.filter(action="clients.exported").order_by("id").values(
        "manager_id", "target_type", "target_id", "detail")
    cards = await Client.all().count()
    assert logged == [
        {"manager_id": manager["manager"].id, "target_type": "client", "target_id": None,
         "detail": {"format": kind, "rows": cards}} for kind in ("csv", "xlsx")]


def test_the_progress_bar_knows_the_size_of_the_file(tmp_path: Path) -> None:
    from hub.cli import progress_bar
    from hub.sheets import SheetReader

    with SheetReader(write_csv(tmp_path / "c.csv", ROWS)) as sheet:
        assert sheet.expected == len(ROWS)
        assert progress_bar(2, sheet.expected).startswith("[############")
    assert progress_bar(7, None) == "7 rows"


async def test_an_admin_imports_through_the_api_and_follows_the_job(
    tmp_path: Path, make_client: Any, admin: dict[str, Any], manager: dict[str, Any]
) -> None:
    client = await make_client()
    path = write_xlsx(tmp_path / "clients.xlsx", ROWS)

    def form(**fields: str) -> aiohttp.FormData:
        data = aiohttp.FormData()
        data.add_field("file", path.read_bytes(), filename="clients.xlsx",
                       content_type="application/octet-stream")
        for name, value in fields.items():
            data.add_field(name, value)
        return data

    denied = await client.post("/api/imports", data=form(), headers=manager["headers"])
    assert denied.status == 403
    resp = await client.post("/api/imports", data=form(dry_run="true"), headers=admin["headers"])
    job = await resp.json()
    assert resp.status == 202 and job["status"] == "running" and job["expected"] == len(ROWS)
    job = await finished(client, admin, job["id"])
    assert job["status"] == "done" and job["report"]["new"] == 2
    assert any(line.startswith("row 2: new") for line in job["report"]["lines"])
    assert await Client.all().count() == 0  # a dry run
    resp = await client.post("/api/imports", data=form(), headers=admin["headers"])
    job = await finished(client, admin, (await resp.json())["id"])
    assert job["report"]["summary"].startswith("5 rows: 2 new cards, 1 merged")
    assert await Client.all().count() == 2
    bad = aiohttp.FormData()
    bad.add_field("file", b"%PDF-1.4", filename="price.pdf")
    resp = await client.post("/api/imports", data=bad, headers=admin["headers"])
    assert resp.status == 422 and "unsupported file type" in (await resp.json())["error"]["message"]
    assert (await client.get("/api/imports/999", headers=admin["headers"])).status == 404


async def finished(client: Any, who: dict[str, Any], job_id: int) -> dict[str, Any]:
    for _ in range(200):
        job: dict[str, Any] = await (await client.get(f"/api/imports/{job_id}",
                                                     headers=who["headers"])).json()
        if job["status"] != "running":
            return job
        await asyncio.sleep(0.05)
    raise AssertionError("the import did not finish")
