"""Reading client lists from .xlsx and .csv files for the import."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from openpyxl import Workbook

from hub.sheets import (
    FIELDS,
    SheetReader,
    cell_text,
    parse_map,
    read_sheet,
    sniff_delimiter,
    split_values,
)

MESSY = "8 912 345-67-89; +7(912)3456789"


def write_xlsx(path: Path, rows: list[list[object]]) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def write_text(path: Path, text: str, encoding: str) -> Path:
    path.write_bytes(text.encode(encoding))
    return path


@pytest.fixture
def russian_xlsx(tmp_path: Path) -> Path:
    return write_xlsx(tmp_path / "clients.xlsx", [
        ["ФИО", "Телефон", "Мобильный", "E-mail", "Дата рождения", "Статус", "Источник"],
        ["Иванов Иван", 79123456789, 89123456789.0, "ivan@example.ru",
         dt.datetime(1985, 3, 14), "Новый", "Сайт"],
        [None, None, None, None, None, None, None],
        ["Петрова  Анна", MESSY, None, "a@example.ru, anna@example.com", None, " VIP ", None],
    ])


def test_xlsx_numbers_become_phone_text(russian_xlsx: Path) -> None:
    first = read_sheet(russian_xlsx).rows[0]
    assert first.phones == ("79123456789", "89123456789")


def test_xlsx_two_phone_columns_add_up(russian_xlsx: Path) -> None:
    sheet = read_sheet(russian_xlsx)
    assert sheet.columns["Телефон"] == "phone"
    assert sheet.columns["Мобильный"] == "phone"
    assert len(sheet.rows[0].phones) == 2


def test_xlsx_date_column_is_iso_custom_field(russian_xlsx: Path) -> None:
    sheet = read_sheet(russian_xlsx)
    assert sheet.columns["Дата рождения"] == "field:Дата рождения"
    assert sheet.rows[0].fields == {"Дата рождения": "1985-03-14", "Источник": "Сайт"}


def test_xlsx_row_numbers_and_empty_row(russian_xlsx: Path) -> None:
    sheet = read_sheet(russian_xlsx)
    assert [row.number for row in sheet.rows] == [2, 4]
    assert sheet.skipped == [(3, "empty row")]
    assert sheet.encoding is None and sheet.delimiter is None


def test_xlsx_several_phones_and_emails_in_one_cell(russian_xlsx: Path) -> None:
    row = read_sheet(russian_xlsx).rows[1]
    assert row.phones == ("8 912 345-67-89", "+7(912)3456789")
    assert row.emails == ("a@example.ru", "anna@example.com")
    assert row.status == "VIP"
    assert row.name == "Петрова Анна"


def test_xlsx_header_is_first_non_empty_row(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "late.xlsx", [
        [None, None],
        ["Клиент", "Тел."],
        ["ООО Ромашка", "+7 495 123-45-67"],
    ])
    sheet = read_sheet(path)
    assert sheet.rows[0].number == 3
    assert sheet.rows[0].name == "ООО Ромашка"


def test_csv_utf8_bom_semicolon(tmp_path: Path) -> None:
    text = "Имя;Телефон;Почта;Ответственный\nИван;8 912 345-67-89;i@x.ru;Ольга\n"
    sheet = read_sheet(write_text(tmp_path / "c.csv", text, "utf-8-sig"))
    assert (sheet.encoding, sheet.delimiter) == ("utf-8-sig", ";")
    row = sheet.rows[0]
    assert (row.number, row.name, row.phones, row.emails, row.manager) == (
        2, "Иван", ("8 912 345-67-89",), ("i@x.ru",), "Ольга")


def test_csv_cp1251_comma_russian_headers(tmp_path: Path) -> None:
    text = 'Наименование,Сотовый,Адрес\r\n"Рога, копыта",89123456789,"Москва, Тверская 1"\r\n'
    sheet = read_sheet(write_text(tmp_path / "excel.csv", text, "cp1251"))
    assert (sheet.encoding, sheet.delimiter) == ("cp1251", ",")
    row = sheet.rows[0]
    assert row.name == "Рога, копыта"
    assert row.phones == ("89123456789",)
    assert row.fields == {"address": "Москва, Тверская 1"}


def test_csv_plain_utf8(tmp_path: Path) -> None:
    sheet = read_sheet(write_text(tmp_path / "u.csv", "Name,Phone\nЁж,1\n", "utf-8"))
    assert sheet.encoding == "utf-8"
    assert sheet.rows[0].name == "Ёж"


def test_tab_separated_txt(tmp_path: Path) -> None:
    text = "Контакт\tTelegram\tСтадия\nМария\t@maria_k / 123456789\tЛид\n"
    sheet = read_sheet(write_text(tmp_path / "export.txt", text, "utf-8"))
    assert sheet.delimiter == "\t"
    row = sheet.rows[0]
    assert row.telegram == ("@maria_k", "123456789")
    assert row.status == "Лид"


def test_pipe_delimiter_and_empty_csv_lines(tmp_path: Path) -> None:
    text = "Name|Email\n\nBob|bob@example.com\n||\nEve|eve@example.com\n"
    sheet = read_sheet(write_text(tmp_path / "p.csv", text, "utf-8"))
    assert sheet.delimiter == "|"
    assert [r.number for r in sheet.rows] == [3, 5]
    assert sheet.skipped == [(2, "empty row"), (4, "empty row")]


def test_english_headers(tmp_path: Path) -> None:
    text = ("Full Name,Mobile,E-mail,Username,Status,Owner,Address,Notes\n"
            "John Smith,+1 202 555 0100 or +1 202 555 0101,j@x.com,jsmith,Lead,"
            "anna@corp.com,1 Main St,VIP\n")
    sheet = read_sheet(write_text(tmp_path / "en.csv", text, "utf-8"))
    assert sheet.columns == {
        "Full Name": "name", "Mobile": "phone", "E-mail": "email", "Username": "telegram",
        "Status": "status", "Owner": "manager", "Address": "address", "Notes": "field:Notes"}
    row = sheet.rows[0]
    assert row.phones == ("+1 202 555 0100", "+1 202 555 0101")
    assert row.manager == "anna@corp.com"
    assert row.fields == {"address": "1 Main St", "Notes": "VIP"}


def test_headers_match_case_and_spaces(tmp_path: Path) -> None:
    text = "  контактное   лицо ;ЭЛ. ПОЧТА\nИра;ira@x.ru\n"
    sheet = read_sheet(write_text(tmp_path / "h.csv", text, "utf-8"))
    assert list(sheet.columns.values()) == ["name", "email"]


def test_name_columns_joined_in_order(tmp_path: Path) -> None:
    text = "Фамилия;Имя;Отчество;Телефон\nИванов;Иван;Иванович;1\n"
    sheet = read_sheet(write_text(tmp_path / "fio.csv", text, "utf-8"))
    assert sheet.rows[0].name == "Иванов Иван Иванович"


def test_explicit_map_wins(tmp_path: Path) -> None:
    text = "Клиент;Моб.;Почта;Комментарий;Мусор\nАня;1;a@x.ru;звонить вечером;x\n"
    path = write_text(tmp_path / "m.csv", text, "utf-8")
    sheet = read_sheet(path, parse_map("Клиент=field:Компания,Почта=phone,мусор=skip,"
                                       "Комментарий=status"))
    assert sheet.columns["Мусор"] == "skip"
    row = sheet.rows[0]
    assert row.name == ""
    assert row.phones == ("1", "a@x.ru")
    assert row.status == "звонить вечером"
    assert row.fields == {"Компания": "Аня"}


def test_map_naming_a_missing_column_fails(tmp_path: Path) -> None:
    path = write_text(tmp_path / "m.csv", "Имя;Телефон\nА;1\n", "utf-8")
    with pytest.raises(ValueError, match="Телефоны"):
        read_sheet(path, {"Телефоны": "phone"})


def test_row_with_only_skipped_columns(tmp_path: Path) -> None:
    path = write_text(tmp_path / "s.csv", "Имя;Служебное\n;x\nБоб;\n", "utf-8")
    sheet = read_sheet(path, {"Служебное": "skip"})
    assert [r.number for r in sheet.rows] == [3]
    assert sheet.skipped == [(2, "nothing in the imported columns")]


def test_parse_map() -> None:
    assert parse_map("Клиент=name, Моб.=phone,Почта=Email,Доп=field:Extra") == {
        "Клиент": "name", "Моб.": "phone", "Почта": "email", "Доп": "field:Extra"}


@pytest.mark.parametrize(("option", "bad"), [
    ("Клиент=name,Моб.", "Моб."),
    ("Клиент=nmae", "Клиент=nmae"),
    ("=phone", "=phone"),
    ("Почта=", "Почта="),
])
def test_parse_map_errors_name_the_bad_part(option: str, bad: str) -> None:
    with pytest.raises(ValueError, match=bad.replace(".", r"\.")):
        parse_map(option)


def test_parse_map_empty() -> None:
    with pytest.raises(ValueError):
        parse_map(" , ")


def test_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "clients.ods"
    path.write_bytes(b"x")
    with pytest.raises(ValueError, match="unsupported file type"):
        read_sheet(path)


def test_broken_xlsx_is_a_value_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match="not a readable"):
        read_sheet(path)


def test_messy_phone_cell_gives_two_pieces() -> None:
    assert split_values(MESSY) == ("8 912 345-67-89", "+7(912)3456789")
    assert split_values("a@x.ru\nb@x.ru или c@x.ru") == ("a@x.ru", "b@x.ru", "c@x.ru")
    assert split_values("Корнилов") == ("Корнилов",)


@pytest.mark.parametrize(("value", "text"), [
    (79123456789, "79123456789"),
    (89123456789.0, "89123456789"),
    (1.5e20, "150000000000000000000"),
    (0.1, "0.1"),
    (dt.datetime(2024, 5, 1), "2024-05-01"),
    (dt.datetime(2024, 5, 1, 9, 30), "2024-05-01 09:30"),
    (dt.date(2024, 5, 1), "2024-05-01"),
    (None, ""),
    ("\u00a0Анна\u00a0 Ли ", "Анна Ли"),
])
def test_cell_text(value: object, text: str) -> None:
    assert cell_text(value) == text


def test_long_cells_truncated(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "long.xlsx", [["Имя", "Заметка"], ["Я", "ж" * 5000]])
    assert len(read_sheet(path).rows[0].fields["Заметка"]) == 2000


def test_sniff_falls_back_to_header_counts() -> None:
    assert sniff_delimiter("Имя;Телефон;Почта\n") == ";"
    assert sniff_delimiter("Имя\nАня\n") == ","


def test_reader_streams_rows(tmp_path: Path) -> None:
    data: list[list[object]] = [["Имя", "Телефон"]]
    data += [[f"Клиент {i}", 79000000000 + i] for i in range(500)]
    path = write_xlsx(tmp_path / "big.xlsx", data)
    with SheetReader(path) as reader:
        assert reader.columns == {"Имя": "name", "Телефон": "phone"}
        rows = iter(reader)
        first = next(rows)
        assert (first.number, first.phones) == (2, ("79000000000",))
        assert sum(1 for _ in rows) == 499


def test_fields_constant() -> None:
    assert FIELDS == ("name", "phone", "email", "telegram", "status", "manager", "address")
