"""Raw e-mail reading: decoding, structure, attachments, classification, bounces and forms."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.mime import MailKind, ParsedMail, _html_to_text, _parse_form, parse_mail
from hub.errors import ValidationError

FIXTURES = Path(__file__).parent.parent / "fixtures" / "mail"
FORM_SENDERS = frozenset({"noreply@site.example"})
FORM_SUBJECTS = frozenset({"new submission", "новая заявка"})
KIND_OF_FOLDER = {
    "message": MailKind.MESSAGE,
    "broken": MailKind.MESSAGE,
    "bounce": MailKind.BOUNCE,
    "auto_reply": MailKind.AUTO_REPLY,
    "list": MailKind.LIST,
    "system": MailKind.SYSTEM,
    "form": MailKind.FORM,
}
ALL_FIXTURES = sorted(FIXTURES.glob("*/*.eml"))


def mail(name: str) -> ParsedMail:
    raw = (FIXTURES / f"{name}.eml").read_bytes()
    return parse_mail(raw, form_senders=FORM_SENDERS, form_subjects=FORM_SUBJECTS)


def test_every_category_has_fixtures() -> None:
    assert {p.parent.name for p in ALL_FIXTURES} == set(KIND_OF_FOLDER)
    assert len(ALL_FIXTURES) >= 40


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_fixture_kind_follows_its_folder(path: Path) -> None:
    parsed = parse_mail(path.read_bytes(), FORM_SENDERS, FORM_SUBJECTS)
    assert parsed.kind is KIND_OF_FOLDER[path.parent.name]
    assert isinstance(parsed.text, str)
    assert (parsed.reason is None) == (parsed.kind is MailKind.MESSAGE)
    assert (parsed.bounce is not None) == (parsed.kind is MailKind.BOUNCE)
    assert bool(parsed.form) == (parsed.kind is MailKind.FORM)
    assert "\ufffd" not in (parsed.subject or "")


# --- headers and bodies ---------------------------------------------------------------------


def test_koi8r_subject_name_and_body() -> None:
    parsed = mail("message/koi8r_subject_body")
    assert parsed.subject == "Запрос цены на трубы"
    assert parsed.sender is not None and parsed.sender.name == "Сергей Кузнецов"
    assert parsed.text.startswith("Добрый день!\nПрошу выслать цену на трубы")


def test_windows_1251_base64_body() -> None:
    parsed = mail("message/cp1251_base64")
    assert parsed.subject == "Счёт на оплату №145"
    assert parsed.text == "Здравствуйте! Пришлите, пожалуйста, счёт на оплату. Ёлка в подарок."


def test_utf8_quoted_printable_keeps_case_of_address() -> None:
    parsed = mail("message/utf8_qp")
    assert parsed.sender is not None
    assert parsed.sender.addr == "Anna.Smirnova@Example.ru"
    assert parsed.sender.name == "Анна Смирнова"
    assert "мягким переносом." in parsed.text and "=\n" not in parsed.text


def test_plain_alternative_wins_and_html_is_sanitized() -> None:
    parsed = mail("message/alternative_script_pixel")
    assert parsed.text == "Hi, here is the follow-up on our proposal."
    assert parsed.html is not None
    html = parsed.html.lower()
    for bad in ("<script", "onerror", "onclick", "javascript:", "track.example.net", "<style"):
        assert bad not in html
    assert 'href="https://partner.example.com/p"' in html
    assert parsed.attachments == ()


def test_html_only_becomes_text_lines() -> None:
    parsed = mail("message/html_only")
    assert parsed.text == (
        "Hello team\nCould you send the price list?\nPipes\nFittings & valves\nQty\t100\n"
        "Thanks,\nKate"
    )
    assert "Ignore me" not in parsed.text


def test_attachment_names_rfc2231_rfc2047_and_nameless() -> None:
    parsed = mail("message/attachment_rfc2231")
    assert [(a.name, a.content_type) for a in parsed.attachments] == [
        ("Договор №12.pdf", "application/pdf"),
        ("Реквизиты.txt", "text/plain"),
        ("Прайс 2026.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        ("attachment-4.bin", "application/octet-stream"),
    ]
    assert [a.size for a in parsed.attachments] == [9 + 1024 + 7, 15, 100, 10]
    assert parsed.text == "Договор и реквизиты во вложении."


def test_inline_image_by_content_id_is_not_an_attachment() -> None:
    parsed = mail("message/inline_cid_image")
    assert parsed.attachments == ()
    assert parsed.html is not None and 'src="cid:logo.123@logist"' in parsed.html
    assert parsed.text == "Schedule attached below."


def test_nested_mixed_alternative_related() -> None:
    parsed = mail("message/nested_mixed_alternative_related")
    assert parsed.text == "Order 7781: see the photo and the spec."
    assert [(a.name, a.size) for a in parsed.attachments] == [("photo.jpg", 304), ("spec.csv", 17)]
    assert parsed.html is not None and "Order 7781" in parsed.html


def test_forwarded_message_is_an_attachment_named_by_subject() -> None:
    parsed = mail("message/forwarded_rfc822")
    assert len(parsed.attachments) == 1
    attachment = parsed.attachments[0]
    assert attachment.name == "Претензия по доставке.eml"
    assert attachment.content_type == "message/rfc822"
    assert attachment.size > 100
    assert parsed.text == "See the forwarded claim below."


def test_quoted_name_with_comma_and_colon() -> None:
    parsed = mail("message/quoted_name_comma_colon")
    assert parsed.sender is not None
    assert parsed.sender.addr == "p.ivanov@x.example.ru"
    assert parsed.sender.name == "Иванов, Пётр: отдел продаж"


def test_comment_form_from() -> None:
    parsed = mail("message/comment_form_from")
    assert parsed.sender is not None
    assert (parsed.sender.addr, parsed.sender.name) == ("p.ivanov@x.example.ru", "Пётр Иванов")


def test_first_from_address_and_all_reply_to() -> None:
    parsed = mail("message/reply_to_differs")
    assert parsed.sender is not None and parsed.sender.addr == "robot@shop.example.com"
    assert [(a.addr, a.name) for a in parsed.reply_to] == [
        ("maria.ivanova@shop.example.com", "Maria Ivanova"),
        ("orders@shop.example.com", None),
    ]


def test_thread_headers() -> None:
    parsed = mail("message/reply_in_reply_to")
    assert parsed.message_id == "<reply-3@example.ru>"
    assert parsed.in_reply_to == "<offer-1@crm.example.test>"
    assert parsed.references == (
        "<first-0@example.ru>",
        "<offer-1@crm.example.test>",
        "<reply-2@example.ru>",
    )
    assert parsed.date == datetime(2026, 11, 24, 6, 0, tzinfo=UTC)


def test_missing_message_id_and_date() -> None:
    assert mail("message/no_message_id").message_id is None
    undated = mail("message/no_date")
    assert undated.date is None and undated.message_id == "<nodate-1@old.example.org>"


def test_date_is_aware() -> None:
    parsed = mail("message/koi8r_subject_body")
    assert parsed.date is not None and parsed.date.utcoffset() is not None


def test_outlook_suppress_header_alone_is_an_ordinary_message() -> None:
    parsed = mail("message/outlook_suppress_all")
    assert parsed.kind is MailKind.MESSAGE and parsed.reason is None


# --- broken input -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["missing_end_boundary", "bad_base64", "truncated"])
def test_broken_structure_is_counted_as_defects(name: str) -> None:
    assert mail(f"broken/{name}").defects > 0


def test_missing_end_boundary_keeps_body_and_attachment() -> None:
    parsed = mail("broken/missing_end_boundary")
    assert parsed.text == "Body before the missing boundary."
    assert [(a.name, a.size) for a in parsed.attachments] == [("a.pdf", 12)]


def test_unknown_charsets_fall_back() -> None:
    parsed = mail("broken/unknown_charset")
    assert parsed.sender is not None and parsed.sender.name == "Иван"
    assert parsed.subject == "Привет мир"
    assert parsed.text == "Привет из неизвестной кодировки"
    assert parsed.html is not None and "Привет" in parsed.html


def test_bad_base64_is_best_effort() -> None:
    parsed = mail("broken/bad_base64")
    assert parsed.text.startswith("Привет")
    assert [a.name for a in parsed.attachments] == ["x.zip"]


def test_parts_without_content_type() -> None:
    parsed = mail("broken/no_content_type_parts")
    assert parsed.text == "First part has no headers at all."
    assert [(a.name, a.content_type) for a in parsed.attachments] == [("notes.txt", "text/plain")]


def test_raw_8bit_headers_are_decoded() -> None:
    parsed = mail("broken/raw_8bit_headers")
    assert parsed.sender is not None and parsed.sender.name == "Григорий Пахомов"
    assert parsed.subject == "Заказ кабеля"  # windows-1251 bytes
    assert parsed.text == "Тело без указания кодировки."


def test_truncated_attachment_still_listed() -> None:
    parsed = mail("broken/truncated")
    assert parsed.text == "The attachment is cut."
    assert [a.name for a in parsed.attachments] == ["big.jpg"]


@pytest.mark.parametrize("raw", [b"", b"  \r\n\t ", b"\n\n\n"])
def test_empty_message_is_refused(raw: bytes) -> None:
    with pytest.raises(ValidationError):
        parse_mail(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"just some text without headers",
        b"From: \r\nSubject: =?utf-8?B?!!!?=\r\n\r\nx",
        b"From: not an address\r\n\r\nx",
        b"Content-Type: multipart/mixed\r\n\r\nno boundary",
        b"Content-Type: text/plain; charset=base64\r\n\r\nhello",
        b"Content-Type: message/rfc822\r\n\r\n",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\n",
        b"From: <@>\r\nReply-To: ,,,\r\nDate: 99 Foo 99999 99:99\r\nReferences: <<>>\r\n\r\nx",
    ],
)
def test_odd_inputs_do_not_raise(raw: bytes) -> None:
    parsed = parse_mail(raw)
    assert isinstance(parsed.text, str)


def test_multipart_without_boundary_is_read_as_text() -> None:
    parsed = parse_mail(b"From: a@example.com\r\nContent-Type: multipart/mixed\r\n\r\nplain words")
    assert (parsed.text, parsed.attachments) == ("plain words", ())
    assert parsed.defects > 0


def test_from_without_usable_address_gives_no_sender() -> None:
    assert parse_mail(b"From: Undisclosed recipients:;\r\n\r\nx").sender is None


# --- bounces --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "recipient", "status", "permanent"),
    [
        ("postfix_dsn", "nobody@client.example.org", "5.1.1", True),
        ("dsn_headers_only", "ghost@far.example.com", "5.1.1", True),
        ("delayed_dsn", "slow@busy.example.org", "4.4.1", False),
        ("sendmail_returned_mail", "lost@oldhost.example.com", "5.1.1", True),
        ("qmail_failure_notice", "missing@qmail.example.org", "5.1.1", True),
        ("mailru_style", "client.box@inbox.example.ru", "5.2.1", True),
        ("yandex_style", "full.box@client.example.com", "5.2.2", True),
        ("gmail_dsn_failure", "no.such.user@gmail.example.com", "5.1.1", True),
        ("exchange_ndr", "old.manager@corp.example.com", "5.1.10", True),
    ],
)
def test_bounce_details(name: str, recipient: str, status: str, permanent: bool) -> None:
    bounce = mail(f"bounce/{name}").bounce
    assert bounce is not None
    assert bounce.original_message_id == "<offer-1@crm.example.test>"
    assert bounce.recipient == recipient
    assert bounce.status == status
    assert bounce.permanent is permanent
    assert bounce.diagnostic and "\n" not in bounce.diagnostic
    assert len(bounce.diagnostic) <= 500


def test_dsn_diagnostic_drops_the_type_prefix() -> None:
    bounce = mail("bounce/postfix_dsn").bounce
    assert bounce is not None
    assert bounce.diagnostic == (
        "550 5.1.1 <nobody@client.example.org>: Recipient address rejected: "
        "User unknown in virtual mailbox table"
    )


def test_bounce_reasons() -> None:
    assert mail("bounce/postfix_dsn").reason == "dsn"
    assert mail("bounce/qmail_failure_notice").reason == "bounce subject"
    assert mail("bounce/mailru_style").reason == "x-failed-recipients"


def test_bounce_wins_over_auto_submitted_header() -> None:
    parsed = mail("bounce/mailru_style")  # carries Auto-Submitted: auto-replied
    assert parsed.kind is MailKind.BOUNCE
    assert parsed.subject == "Ваше сообщение не доставлено. Mail failure."


def test_plain_bounce_text_without_bounce_subject() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.example.org\r\nSubject: Notice\r\n\r\n"
        b"Your message could not be delivered.\r\n\r\n<who@example.net>:\r\n"
        b"550 5.1.1 no such user\r\n"
    )
    parsed = parse_mail(raw)
    assert parsed.kind is MailKind.BOUNCE and parsed.reason == "bounce text"
    assert parsed.bounce is not None and parsed.bounce.recipient == "who@example.net"


def test_daemon_without_bounce_signs_is_system() -> None:
    raw = b"From: postmaster@example.org\r\nSubject: Mailbox quota report\r\n\r\nYou use 40%.\r\n"
    parsed = parse_mail(raw)
    assert (parsed.kind, parsed.reason) == (MailKind.SYSTEM, "mailer-daemon sender")


# --- auto replies, lists, robots ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("auto_submitted", "auto-submitted: auto-replied"),
        ("x_autoreply", "x-autoreply"),
        ("precedence_auto_reply", "precedence: auto_reply"),
        ("russian_subject", "vacation subject"),
        ("outlook_automatic_reply", "vacation subject"),
    ],
)
def test_auto_reply_reasons(name: str, reason: str) -> None:
    assert mail(f"auto_reply/{name}").reason == reason


def test_auto_reply_keeps_thread_and_text() -> None:
    parsed = mail("auto_reply/auto_submitted")
    assert parsed.in_reply_to == "<offer-1@crm.example.test>"
    assert parsed.text == "Я в отпуске до 1 декабря."


def test_auto_submitted_no_is_not_an_auto_reply() -> None:
    raw = b"From: a@example.com\r\nAuto-Submitted: no\r\nSubject: hi\r\n\r\nx"
    assert parse_mail(raw).kind is MailKind.MESSAGE


def test_suppress_header_with_vacation_words_inside_subject() -> None:
    raw = (
        b"From: a@example.com\r\nX-Auto-Response-Suppress: OOF\r\n"
        b"Subject: [EXT] Out of office until Monday\r\n\r\nx"
    )
    parsed = parse_mail(raw)
    assert parsed.kind is MailKind.AUTO_REPLY


def test_reply_to_an_out_of_office_is_a_message() -> None:
    raw = b"From: a@example.com\r\nSubject: RE: Out of office\r\n\r\nwelcome back"
    assert parse_mail(raw).kind is MailKind.MESSAGE


def test_list_reasons() -> None:
    assert mail("list/newsletter_list_id").reason == "list-id"
    assert mail("list/bulk_unsubscribe").reason == "list-unsubscribe + precedence: bulk"
    assert mail("list/newsletter_list_id").text == "This week in industry news."


def test_list_unsubscribe_alone_is_not_a_list() -> None:
    raw = b"From: a@example.com\r\nList-Unsubscribe: <mailto:u@example.com>\r\n\r\nx"
    assert parse_mail(raw).kind is MailKind.MESSAGE


def test_noreply_sender_is_system() -> None:
    parsed = mail("system/noreply_notification")
    assert parsed.reason == "no-reply sender"


# --- forms ----------------------------------------------------------------------------------------


def test_russian_form_from_configured_robot() -> None:
    parsed = mail("form/russian_robot")
    assert parsed.reason == "form sender"
    assert parsed.form == {
        "name": "Мария Кузнецова",
        "phone": "+7 (912) 345-67-89",
        "email": "maria.k@mail.example.ru",
        "Адрес доставки": "г. Казань, ул. Баумана, д. 1",
        "Комментарий": "Позвоните после 18:00",
    }


def test_robot_sender_without_configuration_is_system() -> None:
    raw = (FIXTURES / "form" / "russian_robot.eml").read_bytes()
    parsed = parse_mail(raw)
    assert parsed.kind is MailKind.SYSTEM and parsed.form == {}


def test_form_sender_never_beats_auto_reply() -> None:
    raw = b"From: noreply@site.example\r\nAuto-Submitted: auto-generated\r\n\r\nName: x"
    assert parse_mail(raw, form_senders=FORM_SENDERS).kind is MailKind.AUTO_REPLY


def test_english_form_by_subject() -> None:
    parsed = mail("form/english_by_subject")
    assert parsed.reason == "form subject"
    assert parsed.form == {
        "name": "John Smith",
        "phone": "+1 555 0100",
        "email": "john.smith@example.org",
        "Message": "Do you ship to Canada?",
    }


def test_html_table_form() -> None:
    parsed = mail("form/html_table")
    assert parsed.form == {
        "name": "Алексей",
        "phone": "8 900 111-22-33",
        "email": "alex@example.ru",
        "Город": "Пермь",
    }
    assert parsed.html is not None and "<script" not in parsed.html


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ФИО: Пётр Петров", {"name": "Пётр Петров"}),
        ("Моб. телефон: 8 912 000", {"phone": "8 912 000"}),
        ("ЭЛЕКТРОННАЯ ПОЧТА : a@b.ru", {"email": "a@b.ru"}),
        ("Your name*: Jo", {"name": "Jo"}),
        ("Контактное лицо\tОльга", {"name": "Ольга"}),
        ("Телефон - 123", {"phone": "123"}),
        ("Итого - 5 шт", {}),
        ("https://site.example/page", {}),
        ("Имя:   ", {}),
        ("Time: 12:30", {"Time": "12:30"}),
    ],
)
def test_form_lines(text: str, expected: dict[str, str]) -> None:
    assert _parse_form(text) == expected


# --- HTML to text ---------------------------------------------------------------------------------


def test_html_to_text_blocks_entities_and_cells() -> None:
    html = (
        "<head><style>x{}</style></head><script>bad()</script><h2>Title</h2>"
        "<p>a&amp;b&nbsp;c</p><p></p><p>\n\n</p><table><tr><td>L:</td><th>V</th></tr></table>"
    )
    assert _html_to_text(html) == "Title\na&b c\nL:\tV"


def test_html_to_text_survives_garbage() -> None:
    assert isinstance(_html_to_text("<![if !x]><a <<<>>> </p></div><!-- "), str)


# --- robustness and speed -------------------------------------------------------------------------

HEADER_NAMES = st.sampled_from(
    [
        "From", "To", "Reply-To", "Subject", "Date", "Message-ID", "In-Reply-To", "References",
        "Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "Auto-Submitted",
        "Precedence", "List-Id", "X-Failed-Recipients", "MIME-Version", "Content-ID",
    ]
)  # fmt: skip
HEADER_VALUES = st.one_of(
    st.binary(max_size=60),
    st.sampled_from(
        [
            b"multipart/mixed; boundary=b", b"multipart/report; report-type=delivery-status",
            b"text/html; charset=x-unknown", b"base64", b"quoted-printable",
            b"=?utf-8?B?0JjQstCw0L0=?= <a@b.c>", b"=?koi8-r?Q?=F0=C5=D4=D2?=", b"attachment;"
            b" filename*0*=utf-8''%D0%90; filename*1=b", b"<x@y>", b"auto-replied", b"bulk",
        ]
    ),
)  # fmt: skip
BODY_LINES = st.lists(
    st.one_of(st.binary(max_size=40), st.sampled_from([b"--b", b"--b--", b"", b"\xff\xfe"])),
    max_size=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_random_bytes_never_raise(raw: bytes) -> None:
    try:
        parsed = parse_mail(raw)
    except ValidationError:
        assert not raw.strip()
        return
    assert isinstance(parsed.text, str)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), min_size=1, max_size=10), BODY_LINES)
def test_header_soup_never_raises(headers: list[tuple[str, bytes]], body: list[bytes]) -> None:
    raw = b"".join(n.encode() + b": " + v + b"\r\n" for n, v in headers) + b"\r\n"
    raw += b"\r\n".join(body) + b"x"
    parsed = parse_mail(raw, form_senders={"a@b.c"}, form_subjects={"new"})
    assert isinstance(parsed.text, str)
    assert parsed.kind in set(MailKind)
    for attachment in parsed.attachments:
        assert attachment.size >= 0 and attachment.name


def test_raw_8bit_filename_is_decoded() -> None:
    raw = (
        b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n"
        b"--z\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
        b'--z\r\nContent-Type: application/zip\r\nContent-Disposition: attachment; filename="'
        + "Отчёт.zip".encode()
        + b'"\r\nContent-Transfer-Encoding: base64\r\n\r\nUEsDBA==\r\n--z--\r\n'
    )
    assert [(a.name, a.size) for a in parse_mail(raw).attachments] == [("Отчёт.zip", 4)]


def test_named_inline_image_in_mixed_is_a_sent_photo() -> None:
    raw = (
        b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n"
        b"--z\r\nContent-Type: text/plain\r\n\r\nphoto\r\n"
        b"--z\r\nContent-Type: image/jpeg\r\nContent-Disposition: inline; filename=IMG_1.jpg\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n/9j/4A==\r\n"
        b"--z\r\nContent-Type: image/png\r\nContent-Disposition: inline\r\n\r\nxx\r\n--z--\r\n"
    )
    assert [a.name for a in parse_mail(raw).attachments] == ["IMG_1.jpg"]


def test_nonstandard_rfc822_headers_part_gives_the_original_id() -> None:
    raw = (
        b"From: postmaster@example.org\r\nSubject: Delivery failure\r\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=z\r\n\r\n"
        b"--z\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
        b"--z\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n\r\n"
        b"Final-Recipient: rfc822; who@example.net\r\nAction: failed\r\nStatus: 5.0.0\r\n\r\n"
        b"--z\r\nContent-Type: message/rfc822-headers\r\n\r\n"
        b"From: s@crm.example.test\r\nMessage-ID: <offer-2@crm.example.test>\r\n\r\n--z--\r\n"
    )
    bounce = parse_mail(raw).bounce
    assert bounce is not None
    assert bounce.original_message_id == "<offer-2@crm.example.test>"
    assert bounce.recipient == "who@example.net"


def test_configured_form_sender_beats_bulk_precedence() -> None:
    raw = "From: noreply@site.example\r\nPrecedence: bulk\r\n\r\nИмя: Олег\r\n".encode()
    parsed = parse_mail(raw, form_senders=FORM_SENDERS)
    assert (parsed.kind, parsed.form) == (MailKind.FORM, {"name": "Олег"})


def test_deep_nesting_and_sizes_are_bounded() -> None:
    depth = 60
    head = b"".join(
        b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i, i + 1)
        for i in range(depth)
    )
    raw = b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n" + head
    assert isinstance(parse_mail(raw).text, str)
    big = (
        b"From: a@example.com\r\nContent-Type: text/html\r\n\r\n"
        + b"<p>word <b>bold</b></p>" * 10_000
    )
    parsed = parse_mail(big)
    assert parsed.html is not None and len(parsed.html) <= 200_000
    assert len(parsed.text) <= 100_000


def test_adjacent_encoded_words_split_inside_a_character() -> None:
    word = "Привет".encode()
    first, second = base64.b64encode(word[:3]).decode(), base64.b64encode(word[3:]).decode()
    raw = f"From: a@example.com\r\nSubject: =?utf-8?B?{first}?=\r\n =?utf-8?B?{second}?=\r\n\r\nx"
    assert parse_mail(raw.encode()).subject == "Привет"


def test_lone_surrogates_do_not_break_decoding() -> None:
    from channels.mime import _fix_surrogates

    assert _fix_surrogates("a\ud800b") == "a\ufffdb"
