"""Importing a client list (a spreadsheet read by hub.sheets) through the same identity rules
as live events, and exporting every card.

Each row's phones, e-mails and Telegram handles are normalized as a call or a message would be.
A row whose identities belong to a card fills that card: what it lacks is added (name, status,
manager, custom fields, new phones and addresses); what it has is never overwritten, and a
different value is listed as a conflict. A row that matches nothing makes a new card, so rows
of one file that share a phone or an address become one card. A row with no usable identity
is rejected with the reason: it could never be recognized again, and importing the file twice
would double it. Importing the same file twice therefore changes nothing.

The real run is one transaction per batch (a SQL program, see hub.db); a dry run does the same
work in one transaction that is rolled back, and reports what would have happened.
"""

from __future__ import annotations

import csv
import functools
import inspect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from hub import identity, outgoing
from hub.clients import card_object
from hub.db import Program, Row, Stmt, as_json, now, run_program, to_json
from hub.identity import Kind
from hub.matching import PRECEDENCE, identity_stmt, search_text
from hub.models import Client, ClientStatus, Identity, Manager

BATCH = 500
STATUS_WORDS = {
    "new": ClientStatus.NEW, "новый": ClientStatus.NEW, "новая": ClientStatus.NEW,
    "cold": ClientStatus.COLD, "холодный": ClientStatus.COLD,
    "hot": ClientStatus.HOT, "горячий": ClientStatus.HOT,
    "vip": ClientStatus.VIP, "вип": ClientStatus.VIP,
    "regular": ClientStatus.REGULAR, "постоянный": ClientStatus.REGULAR,
}


class SheetRowLike(Protocol):
    """A row as hub.sheets reads it (read-only)."""

    @property
    def number(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def phones(self) -> tuple[str, ...]: ...
    @property
    def emails(self) -> tuple[str, ...]: ...
    @property
    def telegram(self) -> tuple[str, ...]: ...
    @property
    def status(self) -> str: ...
    @property
    def manager(self) -> str: ...
    @property
    def fields(self) -> dict[str, str]: ...


@dataclass(slots=True)
class Outcome:
    """What became of one row."""

    number: int
    action: str  # new | merged | unchanged | rejected
    client_id: int | None = None
    notes: list[str] = field(default_factory=list)  # conflicts and values left out

    def describe(self) -> str:
        card = f" (card {self.client_id})" if self.client_id else ""
        notes = f": {'; '.join(self.notes)}" if self.notes else ""
        return f"row {self.number}: {self.action}{card}{notes}"


@dataclass(slots=True)
class Report:
    rows: int = 0
    new: int = 0
    merged: int = 0
    unchanged: int = 0
    rejected: int = 0
    with_notes: list[Outcome] = field(default_factory=list)  # rejected or conflicting rows
    every: list[Outcome] = field(default_factory=list)  # a dry run lists every row

    def add(self, outcome: Outcome, keep: bool = False) -> None:
        self.rows += 1
        setattr(self, outcome.action, getattr(self, outcome.action) + 1)
        if outcome.notes or outcome.action == "rejected":
            self.with_notes.append(outcome)
        if keep:
            self.every.append(outcome)

    def summary(self) -> str:
        return (f"{self.rows} rows: {self.new} new cards, {self.merged} merged into cards, "
                f"{self.unchanged} unchanged, {self.rejected} rejected, "
                f"{sum(1 for o in self.with_notes if o.action != 'rejected')} with conflicts")


@dataclass(slots=True)
class Prepared:
    """A row with its identities normalized and its values resolved."""

    number: int
    name: str
    keys: list[tuple[Kind, str]]
    status: ClientStatus | None
    manager_id: int | None
    fields: dict[str, str]
    notes: list[str]


class _DryRun(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised at the end of a dry run's program: the transaction is rolled back."""

    def __init__(self, outcomes: list[Outcome]) -> None:
        super().__init__("dry run")
        self.outcomes = outcomes


async def import_rows(
    rows: Iterable[SheetRowLike], region: str, *, dry_run: bool = False, batch: int = BATCH,
    progress: Callable[[int], object] | None = None,
) -> Report:
    """Import the rows; the report of what happened (or, dry, of what would)."""
    managers = await _managers()
    report = Report()
    prepared = (prepare(row, region, managers) for row in rows)
    if dry_run:
        everything = list(prepared)
        try:
            await run_program(lambda: _dry(everything))
        except _DryRun as done:
            for outcome in done.outcomes:
                report.add(outcome, keep=True)
        await _tell(progress, report.rows)
        return report
    for chunk in _chunks(prepared, batch):
        when = now()
        for outcome in await run_program(functools.partial(_batch, chunk, when)):
            report.add(outcome)
        await _tell(progress, report.rows)
    return report


async def _tell(progress: Callable[[int], object] | None, done: int) -> None:
    """Report progress to a plain or an async callback."""
    result = progress(done) if progress else None
    if inspect.isawaitable(result):
        await result


def prepare(row: SheetRowLike, region: str, managers: dict[str, int]) -> Prepared:
    """Normalize a row's identities and resolve its status and manager; what cannot be used
    is noted, never guessed."""
    notes: list[str] = []
    keys: dict[tuple[Kind, str], None] = {}
    for raw in row.phones:
        phone = identity.normalize_phone(raw, region)
        if phone:
            keys[(Kind.PHONE, phone)] = None
        else:
            notes.append(f"{raw!r} is not a valid phone number")
    for raw in row.emails:
        email = identity.normalize_email(raw)
        if email:
            keys[(Kind.EMAIL, email)] = None
        else:
            notes.append(f"{raw!r} is not a valid e-mail address")
    for raw in row.telegram:
        key = _telegram(raw)
        if key:
            keys[key] = None
        else:
            notes.append(f"{raw!r} is not a Telegram id or @username")
    status = STATUS_WORDS.get(row.status.strip().lower()) if row.status else None
    if row.status and status is None:
        notes.append(f"status {row.status!r} is not one of new, cold, hot, vip, regular")
    manager_id = managers.get(row.manager.strip().lower()) if row.manager else None
    if row.manager and manager_id is None:
        notes.append(f"manager {row.manager!r} is not a manager of this hub")
    ordered = sorted(keys, key=lambda k: PRECEDENCE.index(k[0]))
    return Prepared(row.number, " ".join(row.name.split())[:300], ordered, status, manager_id,
                    {k[:100]: v for k, v in row.fields.items() if v}, notes)


def _telegram(raw: str) -> tuple[Kind, str] | None:
    text = raw.strip()
    if not text.startswith("@"):
        tg = identity.normalize_telegram_id(text)
        if tg is not None:
            return (Kind.TELEGRAM, str(tg))
    text = text.removeprefix("https://t.me/").removeprefix("t.me/")
    username = identity.normalize_username(text)
    return (Kind.TELEGRAM_USERNAME, username) if username else None


async def _managers() -> dict[str, int]:
    """Managers by lower-cased name and e-mail."""
    found: dict[str, int] = {}
    for manager in await Manager.filter(is_active=True):
        found[manager.name.strip().lower()] = manager.id
        if manager.email:
            found[manager.email.lower()] = manager.id
    return found


def _chunks(items: Iterable[Prepared], size: int) -> Iterator[list[Prepared]]:
    chunk: list[Prepared] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _dry(rows: list[Prepared]) -> Program[None]:
    outcomes = yield from _batch(rows, now())
    raise _DryRun(outcomes)


def _batch(rows: list[Prepared], when: datetime) -> Program[list[Outcome]]:
    outcomes = []
    for row in rows:
        outcomes.append((yield from _one(row, when)))
    # the new cards, reported to outgoing webhooks with the batch that made them
    made = [outgoing.Outgoing("client.created", {"client": card_object(
        o.client_id, row.name, (row.status or ClientStatus.NEW).value, row.manager_id,
        row.fields, when, None, [(k.value, v) for k, v in row.keys])}, when)
        for row, o in zip(rows, outcomes, strict=True) if o.action == "new" and o.client_id]
    yield from outgoing.emit(made, when)
    return outcomes


def _one(row: Prepared, when: datetime) -> Program[Outcome]:
    if not row.keys:
        reason = "no valid phone, e-mail or Telegram to recognize the client by"
        return Outcome(row.number, "rejected", notes=[reason, *row.notes])
    where = " OR ".join(["(i.kind = ? AND i.value = ?)"] * len(row.keys))
    owners = yield Stmt(
        "SELECT i.kind, i.value, c.id, c.name, c.status, c.manager_id, c.custom_fields "  # noqa: S608
        f"FROM identity i JOIN client c ON c.id = i.client_id WHERE {where}",
        tuple(p for kind, value in row.keys for p in (kind.value, value)),
    )
    by_key = {(Kind(o["kind"]), o["value"]): o for o in owners}
    cards: dict[int, Row] = {}
    for key in row.keys:  # strongest identity first: it decides the card
        if key in by_key:
            cards.setdefault(int(by_key[key]["id"]), by_key[key])
    if not cards:
        return (yield from _create(row, when))
    target = next(iter(cards.values()))
    return (yield from _fill(row, target, by_key, when))


def _create(row: Prepared, when: datetime) -> Program[Outcome]:
    rows = yield Stmt(
        "INSERT INTO client (name, status, manager_id, custom_fields, created_at, updated_at, "
        "activity_at, search) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (row.name, (row.status or ClientStatus.NEW).value, row.manager_id, to_json(row.fields),
         when, when, when, search_text(row.name, list(row.keys))),
    )
    client_id = int(rows[0]["id"])
    for kind, value in row.keys:
        yield identity_stmt(client_id, kind, value, when)
    return Outcome(row.number, "new", client_id, list(row.notes))


def _fill(
    row: Prepared, card: Row, owners: dict[tuple[Kind, str], Row], when: datetime
) -> Program[Outcome]:
    """Add what the card lacks; list what differs."""
    client_id = int(card["id"])
    notes = list(row.notes)
    changes: dict[str, Any] = {}
    if row.name and not card["name"]:
        changes["name"] = row.name
    elif row.name and row.name != card["name"]:
        notes.append(f"name {row.name!r} differs from the card's {card['name']!r}")
    if row.status and card["status"] == ClientStatus.NEW.value and row.status != ClientStatus.NEW:
        changes["status"] = row.status.value
    elif row.status and row.status.value != card["status"]:
        notes.append(f"status {row.status.value!r} differs from the card's {card['status']!r}")
    if row.manager_id is not None and card["manager_id"] is None:
        changes["manager_id"] = row.manager_id
    elif row.manager_id is not None and row.manager_id != card["manager_id"]:
        notes.append("the manager differs from the card's")
    current = as_json(card["custom_fields"]) or {}
    added = {k: v for k, v in row.fields.items() if k not in current}
    notes += [f"{k!r} {v!r} differs from the card's {current[k]!r}"
              for k, v in row.fields.items() if k in current and current[k] != v]
    if added:
        changes["custom_fields"] = to_json({**current, **added})
    new_keys = [k for k in row.keys if k not in owners]
    for kind, value in new_keys:
        yield identity_stmt(client_id, kind, value, when)
    for key, owner in owners.items():
        if int(owner["id"]) != client_id:
            notes.append(f"{key[0]} {key[1]} belongs to card {owner['id']}")
    if changes:
        sets = ", ".join(f"{column} = ?" for column in changes)
        yield Stmt(f"UPDATE client SET {sets}, updated_at = ? WHERE id = ?",  # noqa: S608
                   (*changes.values(), when, client_id))
    if "name" in changes or any(k[0] in (Kind.EMAIL, Kind.TELEGRAM_USERNAME) for k in new_keys):
        ids = yield Stmt("SELECT kind, value FROM identity WHERE client_id = ?", (client_id,))
        text = search_text(str(changes.get("name", card["name"]) or ""),
                           [(r["kind"], r["value"]) for r in ids])
        yield Stmt("UPDATE client SET search = ? WHERE id = ?", (text, client_id))
    action = "merged" if changes or new_keys else "unchanged"
    return Outcome(row.number, action, client_id, notes)


# ---- export ----------------------------------------------------------------------------------

EXPORT_COLUMNS = ("id", "name", "status", "manager", "phones", "emails", "telegram",
                  "created_at", "last_interaction_at")


async def export_rows() -> tuple[list[str], list[list[str]]]:
    """Every live card as a row: its identities joined with "; ", then its custom fields,
    one column each (the union of all cards' keys)."""
    managers = {m.id: m.name for m in await Manager.all()}
    cards = await Client.filter(merged_into=None).order_by("id")
    keys: dict[int, dict[str, list[str]]] = {}
    for client_id, kind, value in await Identity.all().order_by("id").values_list(
            "client_id", "kind", "value"):
        keys.setdefault(client_id, {}).setdefault(kind, []).append(value)
    extra = sorted({k for card in cards for k in card.custom_fields})
    rows = []
    for card in cards:
        own = keys.get(card.id, {})
        telegram = own.get(Kind.TELEGRAM, []) + [
            "@" + u for u in own.get(Kind.TELEGRAM_USERNAME, [])]
        rows.append([
            str(card.id), card.name, str(card.status),
            managers.get(card.manager_id, "") if card.manager_id else "",  # type: ignore[attr-defined]
            "; ".join(own.get(Kind.PHONE, [])), "; ".join(own.get(Kind.EMAIL, [])),
            "; ".join(telegram), card.created_at.isoformat(),
            card.last_interaction_at.isoformat() if card.last_interaction_at else "",
            *(_cell(card.custom_fields.get(k)) for k in extra),
        ])
    return [*EXPORT_COLUMNS, *extra], rows


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


async def export_file(path: Path) -> int:
    """Write every card to `path` (.csv: UTF-8 with a BOM and `;`, as Excel opens it; .xlsx);
    how many cards."""
    header, rows = await export_rows()
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open("w", encoding="utf-8-sig", newline="") as out:
            writer = csv.writer(out, delimiter=";")
            writer.writerow(header)
            writer.writerows(rows)
    elif suffix == ".xlsx":
        write_xlsx(path, header, rows)
    else:
        raise ValueError(f"unsupported file type {suffix or '(none)'}: use .csv or .xlsx")
    return len(rows)


def write_xlsx(target: Any, header: list[str], rows: list[list[str]]) -> None:
    """An .xlsx with one sheet (openpyxl, write-only: rows streamed, memory flat). Control
    characters a worksheet cannot hold (a name typed with an escape in it) are left out."""
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    def clean(values: list[str]) -> list[str]:
        return [ILLEGAL_CHARACTERS_RE.sub("", v) if isinstance(v, str) else v for v in values]

    book = Workbook(write_only=True)
    sheet = book.create_sheet("clients")
    sheet.append(clean(header))
    for row in rows:
        sheet.append(clean(row))
    book.save(target)
