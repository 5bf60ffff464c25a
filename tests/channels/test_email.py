from __future__ import annotations

from pathlib import Path

import pytest

from channels.email import parse_message
from hub.errors import ValidationError

FIXTURES = Path(__file__).parent.parent / "fixtures" / "email"


def test_cyrillic_headers_charsets_and_attachments() -> None:
    event = parse_message((FIXTURES / "cyrillic_with_attachment.eml").read_bytes())
    assert event.sender.email == "Anna.Smirnova@Example.ru"
    assert event.sender.display_name == "Анна Смирнова"
    assert event.subject == "Фактура price list"
    assert event.text == "Добрый день! Пришлите прайс."
    assert event.external_id == "<abc-123@example.ru>"
    assert [(a.name, a.content_type) for a in event.attachments] == [("req.pdf", "application/pdf")]
    assert event.occurred_at.utcoffset() is not None and event.occurred_at.hour == 10


def test_html_only_mail_is_reduced_to_text_without_scripts() -> None:
    raw = (
        b"From: a@example.com\r\nSubject: x\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b"<p>Hello <b>there</b></p><script>alert(1)</script><p>Bye</p>"
    )
    event = parse_message(raw)
    assert event.text == "Hello there\nBye"


def test_without_message_id_the_content_hash_is_the_key() -> None:
    raw = b"From: a@example.com\r\nSubject: x\r\n\r\nbody"
    assert parse_message(raw).external_id == parse_message(raw).external_id
    assert parse_message(raw).external_id.startswith("sha256:")


@pytest.mark.parametrize(
    "raw", [b"", b"   ", b"Subject: no sender\r\n\r\nbody", b"From: not an address\r\n\r\nx"]
)
def test_messages_without_a_sender_are_refused(raw: bytes) -> None:
    with pytest.raises(ValidationError):
        parse_message(raw)
