"""Reading client lists from spreadsheets (.xlsx, .csv, .txt) for `hub import clients`.

This module only turns a file into rows of raw text: it finds the header row, maps the
columns to client fields, splits multi-value cells (several phones in one cell) and reports
the row numbers a user sees in Excel. Normalizing and matching phones and e-mails is the
hub's job (see `hub.identity`), not this module's.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import re
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

FIELDS = ("name", "phone", "email", "telegram", "status", "manager", "address")
SKIP = "skip"
CUSTOM_PREFIX = "field:"
MAX_CELL = 2000
CSV_DELIMITERS = ",;\t|"
CSV_SUFFIXES = frozenset({".csv", ".txt"})
XLSX_SUFFIXES = frozenset({".xlsx", ".xlsm"})
SNIFF_BYTES = 16 * 1024
CHUNK_BYTES = 1 << 20

__all__ = ["FIELDS", "Sheet", "SheetReader", "SheetRow", "cell_text", "check_target", "clean_text",
           "detect_encoding", "header_key", "parse_map", "read_sheet", "sniff_delimiter",
           "split_values"]

_HEADERS: dict[str, tuple[str, ...]] = {
    "name": ("имя", "фио", "ф.и.о.", "клиент", "контакт", "контактное лицо", "наименование",
             "название", "фамилия", "отчество", "name", "full name", "client", "contact",
             "first name", "last name", "surname", "middle name"),
    "phone": ("телефон", "тел", "тел.", "телефоны", "моб.", "моб", "мобильный",
              "мобильный телефон", "сотовый", "phone", "phones", "tel", "tel.", "mobile",
              "cell"),
    "email": ("e-mail", "email", "эл. почта", "эл.почта", "электронная почта", "почта", "mail",
              "e-mails", "emails"),
    "telegram": ("telegram", "телеграм", "телеграмм", "tg", "username"),
    "status": ("статус", "status", "стадия"),
    "manager": ("ответственный", "менеджер", "manager", "owner", "responsible"),
    "address": ("адрес", "address", "адрес доставки"),
}
_SPACES = re.compile(r"[ \t\u00a0\u2007\u202f\u2009\u200a\u3000]+")
_INVISIBLE = re.compile(r"[\u200b\u200c\u200d\u2060\ufeff]")
_ANY_SPACE = re.compile(r"\s+")
_ODD = re.compile(r"[\t\n\r\u00a0\u2007\u202f\u2009\u200a\u3000\u200b\u200c\u200d\u2060\ufeff]|  ")
_SEPARATORS = re.compile(r"[;,/\n\r]+|\s+(?:или|or)\s+", re.IGNORECASE)


def header_key(text: str) -> str:
    """How a header is compared: trimmed, spaces collapsed, case and ё/е ignored."""
    return _SPACES.sub(" ", _INVISIBLE.sub("", text)).strip().casefold().replace("ё", "е")


_AUTO: dict[str, str] = {header_key(h): name for name, heads in _HEADERS.items() for h in heads}


@dataclass(frozen=True, slots=True)
class SheetRow:
    """One client line of a sheet, as raw text taken apart by field."""

    number: int
    name: str
    phones: tuple[str, ...]
    emails: tuple[str, ...]
    telegram: tuple[str, ...]
    status: str
    manager: str
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class Sheet:
    """A whole sheet read into memory, with how its columns were understood."""

    rows: list[SheetRow]
    columns: dict[str, str]
    encoding: str | None
    delimiter: str | None
    skipped: list[tuple[int, str]]


@dataclass(frozen=True, slots=True)
class _Column:
    index: int
    header: str
    target: str


# --- cells -------------------------------------------------------------------------------------

def cell_text(value: object) -> str:
    """The text a user sees in a cell: numbers without '.0' or exponents, dates as ISO."""
    if type(value) is str:  # by far the commonest cell
        return clean_text(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="minutes" if value.second == 0 else "seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat(timespec="minutes" if value.second == 0 else "seconds")
    return clean_text(str(value))


def _float_text(value: float) -> str:
    if value != value or value in (float("inf"), float("-inf")):
        return ""
    if value.is_integer():
        return str(int(value))
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def clean_text(text: str) -> str:
    """Trimmed text with odd spaces made plain and over-long cells cut."""
    if not _ODD.search(text):  # the usual cell: nothing to do but trim
        return text.strip()[:MAX_CELL]
    text = _INVISIBLE.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(_SPACES.sub(" ", line).strip() for line in text.split("\n")).strip()
    return text[:MAX_CELL]


def split_values(text: str) -> tuple[str, ...]:
    """Pieces of a multi-value cell, split on ; , / newlines and ' или ' / ' or '."""
    return tuple(piece.strip() for piece in _SEPARATORS.split(text) if piece and piece.strip())


def _one_line(text: str) -> str:
    return _ANY_SPACE.sub(" ", text).strip()


# --- mapping -----------------------------------------------------------------------------------

def check_target(target: str) -> str:
    """A mapping value as the reader understands it; ValueError for anything else."""
    value = target.strip()
    lowered = value.lower()
    if lowered in FIELDS or lowered == SKIP:
        return lowered
    if lowered.startswith(CUSTOM_PREFIX):
        return CUSTOM_PREFIX + value[len(CUSTOM_PREFIX):].strip()
    known = ", ".join((*FIELDS, SKIP, "field:<name>"))
    raise ValueError(f"unknown field {target!r} (expected one of: {known})")


def parse_map(option: str) -> dict[str, str]:
    """The --map option: 'Клиент=name,Моб.=phone' -> {'Клиент': 'name', 'Моб.': 'phone'}."""
    result: dict[str, str] = {}
    for part in option.split(","):
        if not part.strip():
            continue
        header, sep, target = part.partition("=")
        if not sep or not header.strip() or not target.strip():
            raise ValueError(f"bad --map part {part.strip()!r}: expected 'Column=field'")
        try:
            result[header.strip()] = check_target(target)
        except ValueError as exc:
            raise ValueError(f"bad --map part {part.strip()!r}: {exc}") from None
    if not result:
        raise ValueError("empty --map: expected 'Column=field,Column=field'")
    return result


def _columns(headers: list[str], mapping: Mapping[str, str] | None) -> list[_Column]:
    explicit = {header_key(k): check_target(v) for k, v in (mapping or {}).items()}
    present = {header_key(h) for h in headers}
    missing = [k for k in (mapping or {}) if header_key(k) not in present]
    if missing:
        found = ", ".join(repr(h) for h in headers if h)
        raise ValueError(f"no column {missing[0]!r} in the sheet (columns: {found})")
    while headers and not headers[-1]:
        headers = headers[:-1]
    return [_Column(index, header or f"#{index + 1}", _target(index, header, explicit))
            for index, header in enumerate(headers)]


def _target(index: int, header: str, explicit: Mapping[str, str]) -> str:
    key = header_key(header)
    if not key:  # a column with data but no header keeps its place number
        return f"{CUSTOM_PREFIX}#{index + 1}"
    if key in explicit:
        target = explicit[key]
        return target if target != CUSTOM_PREFIX else CUSTOM_PREFIX + header
    return _AUTO.get(key, CUSTOM_PREFIX + header)


# --- rows --------------------------------------------------------------------------------------

def _build_row(number: int, cells: list[str], plan: list[tuple[int, str]],
               header_width: int) -> SheetRow | None:
    found: dict[str, list[str]] = {}
    width = len(cells)
    for index, target in plan:
        value = cells[index] if index < width else ""
        if value:
            found.setdefault(target, []).append(value)
    for index in range(header_width, width):  # cells to the right of the last header
        if cells[index]:
            found.setdefault(f"{CUSTOM_PREFIX}#{index + 1}", []).append(cells[index])
    if not found:
        return None
    return SheetRow(
        number=number,
        name=" ".join(_one_line(v) for v in found.get("name", ())),
        phones=_split_all(found.get("phone", ())),
        emails=_split_all(found.get("email", ())),
        telegram=_split_all(found.get("telegram", ())),
        status=_first(found.get("status", ())),
        manager=_first(found.get("manager", ())),
        fields=_extra(found),
    )


def _extra(found: Mapping[str, list[str]]) -> dict[str, str]:
    extra: dict[str, str] = {}
    for target, values in found.items():
        if target == "address":
            extra["address"] = "; ".join(values)
        elif target.startswith(CUSTOM_PREFIX):
            key = target[len(CUSTOM_PREFIX):]
            extra[key] = "; ".join(filter(None, (extra.get(key, ""), *values)))
    return extra


def _split_all(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(piece for value in values for piece in split_values(value))


def _first(values: Iterable[str]) -> str:
    return next((_one_line(v) for v in values), "")


class SheetReader:
    """A sheet opened for reading row by row; use as a context manager, iterate for rows.

    The header is read on opening, so `columns`, `encoding` and `delimiter` are known at once;
    `skipped` fills up while the rows are iterated.
    """

    def __init__(self, path: Path, mapping: Mapping[str, str] | None = None) -> None:
        self.path = Path(path)
        self.encoding: str | None = None
        self.delimiter: str | None = None
        self.skipped: list[tuple[int, str]] = []
        self.total_lines: int | None = None  # about how many lines the sheet has, if known
        self._closers: list[Any] = []
        self._raw = self._open()
        try:
            header_number, headers = self._header()
            columns = _columns(headers, mapping)
        except BaseException:
            self.close()
            raise
        self.header_number = header_number
        # about how many data rows follow the header (None when the file does not say)
        self.expected = (max(self.total_lines - header_number, 0)
                         if self.total_lines is not None else None)
        self.columns = {c.header: c.target for c in columns}
        self._plan = [(c.index, c.target) for c in columns if c.target != SKIP]
        self._width = len(columns)

    def _open(self) -> Iterator[tuple[int, list[str]]]:
        suffix = self.path.suffix.lower()
        if suffix in XLSX_SUFFIXES:
            return self._xlsx_rows()
        if suffix in CSV_SUFFIXES:
            return self._csv_rows()
        raise ValueError(f"unsupported file type: {self.path.suffix or self.path.name}"
                         " (expected .xlsx, .csv or .txt)")

    def _header(self) -> tuple[int, list[str]]:
        for number, cells in self._raw:
            if any(cells):
                return number, cells
        raise ValueError(f"{self.path.name}: the sheet is empty")

    def _xlsx_rows(self) -> Iterator[tuple[int, list[str]]]:
        from openpyxl import load_workbook
        from openpyxl.utils.exceptions import InvalidFileException

        try:
            book = load_workbook(self.path, read_only=True, data_only=True)
        except (zipfile.BadZipFile, InvalidFileException, KeyError) as exc:
            raise ValueError(f"{self.path.name}: not a readable .xlsx file ({exc})") from exc
        self._closers.append(book)
        sheet = book.worksheets[0]
        rows = getattr(sheet, "max_row", None)  # from <dimension>: a progress estimate only
        self.total_lines = rows if isinstance(rows, int) and rows > 0 else None
        reset = getattr(sheet, "reset_dimensions", None)
        if reset is not None:
            reset()  # trust the cells, not a possibly stale <dimension> element
        return (
            (number, [cell_text(value) for value in values])
            for number, values in enumerate(sheet.iter_rows(values_only=True), start=1)
        )

    def _csv_rows(self) -> Iterator[tuple[int, list[str]]]:
        with self.path.open("rb") as raw:  # lines, for a progress estimate (quoted newlines
            self.total_lines = sum(chunk.count(b"\n") for chunk in iter(  # count extra)
                lambda: raw.read(1 << 20), b"")) or None
        self.encoding = detect_encoding(self.path)
        handle = open(self.path, encoding=self.encoding, errors="replace", newline="")  # noqa: SIM115
        self._closers.append(handle)
        sample = handle.read(SNIFF_BYTES)
        handle.seek(0)
        self.delimiter = sniff_delimiter(sample)
        reader = csv.reader(handle, delimiter=self.delimiter)
        return ((number, [clean_text(c) for c in cells])
                for number, cells in enumerate(reader, start=1))

    def __iter__(self) -> Iterator[SheetRow]:
        for number, cells in self._raw:
            if not any(cells):
                self.skipped.append((number, "empty row"))
                continue
            row = _build_row(number, cells, self._plan, self._width)
            if row is None:
                self.skipped.append((number, "nothing in the imported columns"))
            else:
                yield row

    def close(self) -> None:
        for closer in self._closers:
            closer.close()
        self._closers.clear()

    def __enter__(self) -> SheetReader:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


def read_sheet(path: Path, mapping: Mapping[str, str] | None = None) -> Sheet:
    """The whole sheet at once; for very large files iterate a `SheetReader` instead."""
    with SheetReader(path, mapping) as reader:
        rows = list(reader)
        return Sheet(rows=rows, columns=reader.columns, encoding=reader.encoding,
                     delimiter=reader.delimiter, skipped=reader.skipped)


# --- CSV details -------------------------------------------------------------------------------

def detect_encoding(path: Path) -> str:
    """utf-8-sig with a BOM, utf-8 when the whole file decodes as such, cp1251 otherwise."""
    with open(path, "rb") as handle:
        head = handle.read(len(codecs.BOM_UTF8))
        if head == codecs.BOM_UTF8:
            return "utf-8-sig"
        handle.seek(0)
        return "utf-8" if _is_utf8(handle) else "cp1251"


def _is_utf8(handle: BinaryIO) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        while chunk := handle.read(CHUNK_BYTES):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def sniff_delimiter(sample: str) -> str:
    """The delimiter among , ; tab | — csv.Sniffer first, else the commonest in the header."""
    cut = sample.rfind("\n")
    if cut > 0:
        sample = sample[:cut]
    header = next((line for line in sample.splitlines() if line.strip()), "")
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters=CSV_DELIMITERS).delimiter
    except csv.Error:
        sniffed = ""
    if sniffed and sniffed in header:
        return sniffed
    counts = {d: header.count(d) for d in CSV_DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","
