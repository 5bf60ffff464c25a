from __future__ import annotations

import pytest

from hub.identity import (
    normalize_email,
    normalize_phone,
    normalize_telegram_id,
    normalize_username,
    reversed_digits,
)


@pytest.mark.parametrize(
    "raw",
    [
        "8 (912) 345-67-89",
        "89123456789",
        "+7 912 345-67-89",
        "+7(912)3456789",
        "79123456789",
        "9123456789",
        " +7 912 345 67 89 ",
        "8-912-345-67-89",
        "tel:+7-912-345-67-89",
    ],
)
def test_russian_numbers_in_any_written_form(raw: str) -> None:
    assert normalize_phone(raw, "RU") == "+79123456789"


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+44 20 7946 0958", "RU", "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("(201) 555-0123", "US", "+12015550123"),
        ("+1 201 555 0123", "RU", "+12015550123"),
        ("8 727 250 00 00", "KZ", "+77272500000"),
        ("+49 30 901820", "RU", "+4930901820"),
        ("0049 30 901820", "DE", "+4930901820"),
        ("+98 21 2222 2222", "RU", "+982122222222"),
    ],
)
def test_other_regions(raw: str, region: str, expected: str) -> None:
    assert normalize_phone(raw, region) == expected


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "0",
        "00000",
        "anonymous",
        "Anonymous",
        "unknown",
        "private",
        "hidden",
        "abc",
        "123",
        "+7 000",
        "+7 912 345",
        "7" * 40,
        "<script>",
        "1" * 100,
    ],
)
def test_garbage_and_anonymous_numbers_are_rejected(raw: str | None) -> None:
    assert normalize_phone(raw, "RU") is None


def test_reversed_digits_turn_a_tail_into_a_prefix() -> None:
    assert reversed_digits("+79123456789").startswith("9876")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Ivan@Example.COM", "ivan@example.com"),
        ("Иван Петров <ivan@example.com>", "ivan@example.com"),
        ('"Petrov, Ivan" <IVAN@example.com>', "ivan@example.com"),
        ("  ivan@example.com  ", "ivan@example.com"),
        ("not an address", None),
        ("ivan@", None),
        ("", None),
        (None, None),
        ("a@b", None),
    ],
)
def test_email_normalization(raw: str | None, expected: str | None) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (123456789, 123456789),
        ("123456789", 123456789),
        ("-100123", None),
        (0, None),
        ("abc", None),
        (True, None),
        (None, None),
    ],
)
def test_telegram_ids(raw: object, expected: int | None) -> None:
    assert normalize_telegram_id(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("@Ivan_Petrov", "ivan_petrov"),
        ("ivanpetrov", "ivanpetrov"),
        ("@ab", None),
        ("1abcde", None),
        ("", None),
        ("@иван", None),
    ],
)
def test_telegram_usernames(raw: str, expected: str | None) -> None:
    assert normalize_username(raw) == expected
