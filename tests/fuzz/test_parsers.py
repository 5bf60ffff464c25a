"""Hypothesis on every parser the hub has for what the outside world sends.

- phone normalization: any text gives an E.164 number or None (never an exception), the result
  normalizes to itself, and the ways people write one number all give the same key;
- e-mail: arbitrary and mutated raw messages are read without an unexpected exception (the only
  refusal is the documented ValidationError), into text a database can store; Cyrillic names
  and subjects in RFC 2047 encoded words come back as written;
- each provider's webhook, through HTTP: arbitrary and mutated payloads, signed the way the
  provider signs so that they reach the parser, are answered 2xx or a 4xx JSON error;
- the HTTP layer of every /webhooks route: random bodies, content types and signature headers,
  never a 5xx.

Every property is derandomized (the same examples every run) with a small example budget; what
the fuzzing found is kept at the bottom as plain regression tests with the input written out."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from email.header import Header
from email.utils import formataddr
from typing import Any
from urllib.parse import urlencode

import phonenumbers
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from yarl import URL

from channels import ADAPTERS
from channels.email import MailReader
from channels.mime import parse_mail
from hub.errors import ValidationError
from hub.events import MessageEvent
from hub.identity import (
    normalize_email,
    normalize_phone,
    normalize_telegram_id,
    normalize_username,
)
from tests.fuzz.conftest import Answer, Remote, in_thread
from tests.helpers import EMAIL_TOKEN, sign
from tests.providers import FIXTURES, fixture_items, kamailio, mango, twilio, zadarma
from tests.telegram_fake import fixture_names, load_fixture
from tests.web.test_route_auth import TG_SECRET

FAST = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
# through HTTP and the database: fewer examples, each one a full ingest
HTTP = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))

# ---- values that break parsers ---------------------------------------------------------------

EDGE_TEXT = ["", " ", "0", "-1", "00", "+", "anonymous", "null", "\x00", "a\x00b", "\ud800",
             "x" * 300, "9" * 40, "+79123456789", "8 (912) 345-67-89", "79123456789", "101",
             "9999-12-31T23:59:59-10:00", "0001-01-01T00:00:00+01:00", "2026-11-22T10:00:00",
             "1e400", "NaN", "Ω≈ç√", "Привет, мир", "=?utf-8?B?0J/RgNC40LLQtdGC?=", "\u202e",
             "<script>", "a@b.c", "@", "tel:+7-912-345-67-89", "99999999999.999999"]
EDGE_TEXT += ["9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00-00:01", "9999-12-31 23:59:59",
              "0001-01-01 00:00:00", "253402300799", "-62135596800", "1795338000.4711",
              "Fri, 31 Dec 9999 23:59:59 -1000", "Mon, 01 Jan 0001 00:00:00 +0100"]
EDGE_INT = [0, -1, 1, 2**31, 2**53, 2**63, -(2**63) - 1, 10**20, 10**11, 864000, 253402300800,
            -62135596801]
TEXT = st.one_of(st.sampled_from(EDGE_TEXT), st.text(max_size=40))
# what a form can carry: any text but lone surrogates (a form is UTF-8 bytes)
FORM_TEXT = st.one_of(st.sampled_from([t for t in EDGE_TEXT if t != "\ud800"]),
                      st.text(st.characters(exclude_categories=("Cs",)), max_size=40))
SCALARS = st.one_of(TEXT, st.sampled_from(EDGE_INT), st.integers(), st.booleans(), st.none(),
                    st.floats(allow_nan=False, allow_infinity=False))
JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8)


def mutated(value: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    """A value like `value` (a provider's real payload) with a few parts changed: up to two
    keys of each object replaced (by an edge value, another type, or a mutation of their own
    value), dropped, or new keys added; the rest kept, so the payload still gets deep into
    the parser. Shrinks towards `value` itself."""
    if isinstance(value, dict) and depth < 8:
        keys = sorted(value)
        if not keys:
            return st.one_of(st.just(value), st.dictionaries(st.text(max_size=8), SCALARS,
                                                             max_size=2))
        changes = st.dictionaries(st.sampled_from(keys), st.integers(0, 2), max_size=2)

        def apply(change: dict[str, int]) -> st.SearchStrategy[Any]:
            parts = {k: mutated(value[k], depth + 1) if how == 0 else
                     (SCALARS if how == 1 else st.just(DROP)) for k, how in change.items()}
            return st.tuples(st.fixed_dictionaries(parts), st.dictionaries(
                st.text(max_size=8), SCALARS, max_size=1)).map(lambda t: {
                    **{k: v for k, v in value.items() if k not in t[0]},
                    **{k: v for k, v in t[0].items() if v is not DROP}, **t[1]})

        return st.one_of(changes.flatmap(apply), changes.flatmap(apply), JSON)
    if isinstance(value, list) and depth < 8:
        if not value:
            return st.one_of(st.just(value), st.lists(JSON, max_size=2))
        return st.integers(0, len(value) - 1).flatmap(lambda at: mutated(
            value[at], depth + 1).map(lambda new: [*value[:at], new, *value[at + 1:]]))
    return st.one_of(_edge(value), _edge(value), SCALARS)


DATE_EDGE = ["9999-12-31T23:59:59-10:00", "0001-01-01T00:00:00+01:00", "9999-12-31 23:59:59",
             "0001-01-01 00:00:00", "9999-12-31T23:59:59Z", "2026-02-30 25:61:61", "2026-11-22",
             "Fri, 31 Dec 9999 23:59:59 -1000", "Mon, 01 Jan 0001 00:00:00 +0100", ""]
STAMP_EDGE = [0, -1, 253402300799, 253402300800, -62135596801, 10**11, 2**53, 2**63, 10**20]


def _edge(value: Any) -> st.SearchStrategy[Any]:
    """Edge values of the kind the original is: a time gets times at the calendar's ends."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 10**9:
        return st.sampled_from(STAMP_EDGE)  # a Unix time
    if isinstance(value, str) and re.search(r"\d{4}-\d\d|\d\d:\d\d", value):
        return st.sampled_from(DATE_EDGE)
    if isinstance(value, int):
        return st.sampled_from(EDGE_INT)
    return st.sampled_from(EDGE_TEXT)


DROP = object()


def text_form(value: Any) -> st.SearchStrategy[dict[str, str]]:
    """A form like `value` (name → text): values replaced by edge text, fields dropped/added."""
    return st.fixed_dictionaries({k: st.one_of(st.just(v), st.just(v), FORM_TEXT,
                                                _edge(v).filter(lambda e: isinstance(e, str)))
                                  for k, v in value.items()}).flatmap(
        lambda form: st.tuples(st.just(form), st.lists(st.sampled_from(sorted(form) or [""]),
                                                        max_size=2),
                               st.dictionaries(FORM_TEXT, FORM_TEXT, max_size=2))).map(
        lambda t: {**{k: v for k, v in t[0].items() if k not in t[1]}, **t[2]})


def no_surrogates(*values: Any) -> None:
    """Text a database can store: no lone surrogates (PostgreSQL's UTF-8 refuses them)."""
    for value in values:
        if isinstance(value, str):
            value.encode("utf-8")
        elif isinstance(value, dict):
            no_surrogates(*value.keys(), *value.values())
        elif isinstance(value, list | tuple):
            no_surrogates(*value)


# ---- phones and other identities -------------------------------------------------------------

REGIONS = ["RU", "KZ", "BY", "UA", "US", "GB", "DE", "FR", "TR", "IN", "CN", "BR"]


@FAST
@given(raw=st.one_of(TEXT, st.text(alphabet="0123456789+-() .#*x", max_size=30)),
       region=st.sampled_from([*REGIONS, "ZZ", ""]))
@example(raw="+7" + "9" * 62, region="RU")
def test_any_text_normalizes_to_e164_or_none(raw: str, region: str) -> None:
    """Never an exception; the result is E.164 and is its own normal form (idempotent)."""
    found = normalize_phone(raw, region)
    if found is not None:
        assert re.fullmatch(r"\+[1-9][0-9]{6,14}", found), found
        assert normalize_phone(found, region) == found
        assert normalize_phone(found, "US") == found  # E.164 does not depend on the region


@st.composite
def valid_numbers(draw: st.DrawFn) -> tuple[str, phonenumbers.PhoneNumber]:
    region = draw(st.sampled_from(REGIONS))
    kind = draw(st.sampled_from([phonenumbers.PhoneNumberType.MOBILE,
                                 phonenumbers.PhoneNumberType.FIXED_LINE]))
    base = phonenumbers.example_number_for_type(region, kind)
    assume(base is not None)
    national = str(base.national_number)
    tail = draw(st.text(alphabet="0123456789", min_size=0, max_size=4))
    digits = national[: len(national) - len(tail)] + tail
    number = phonenumbers.parse(f"+{base.country_code}{digits}", region)
    assume(phonenumbers.is_valid_number(number))
    return region, number


@FAST
@given(found=valid_numbers(), separators=st.lists(st.sampled_from(["", " ", "-", ".", " - "]),
                                                  min_size=20, max_size=20),
       hub_region=st.sampled_from(REGIONS))
def test_every_way_of_writing_a_number_gives_one_key(
    found: tuple[str, phonenumbers.PhoneNumber], separators: list[str], hub_region: str
) -> None:
    """E.164, international, RFC 3966, national (in the number's country), with any
    separators, and as dialled from the hub's country (its international prefix)."""
    region, number = found
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    spaced = "+" + "".join(d + s for d, s in zip(e164[1:], separators, strict=False))
    forms = [
        e164,
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.RFC3966),
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL),
        f"  {e164}\t",
        spaced,
    ]
    if number.country_code == 7:  # a Russian provider's digits: country code, no plus
        forms.append(e164[1:])
    for form in forms:
        assert normalize_phone(form, region) == e164, (form, region)
    dialled = phonenumbers.format_out_of_country_calling_number(number, hub_region)
    assert normalize_phone(dialled, hub_region) == e164, (dialled, hub_region)


@FAST
@given(raw=st.one_of(TEXT, st.emails(), st.integers(), st.floats()))
def test_other_identities_never_raise(raw: Any) -> None:
    text = str(raw)
    address = normalize_email(text)
    assert address is None or (address == address.lower() and normalize_email(address) ==
                               address)
    name = normalize_username(text)
    assert name is None or normalize_username(name) == name
    tg = normalize_telegram_id(raw)
    assert tg is None or 0 < tg < 2**53


# ---- e-mail ----------------------------------------------------------------------------------

MAIL_FILES = sorted((FIXTURES / "mail").rglob("*.eml")) + sorted(
    (FIXTURES / "email").glob("*.eml"))
MAILS = [path.read_bytes() for path in MAIL_FILES]
READER = MailReader(form_senders=("robot@site.example",), form_subjects=("заявка", "request"),
                    own_address="hub@company.example")


@st.composite
def mutated_mail(draw: st.DrawFn) -> bytes:
    """A real message with a few bytes flipped, inserted, deleted or the end cut off."""
    raw = bytearray(draw(st.sampled_from(MAILS)))
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, max(len(raw) - 1, 0)))
        op = draw(st.sampled_from(["flip", "insert", "delete", "cut"]))
        if op == "flip" and raw:
            raw[at] = draw(st.integers(0, 255))
        elif op == "insert":
            raw[at:at] = draw(st.sampled_from([b"\x00", b"\r\n", b"\r\n\r\n", b"=?", b"?=",
                                               b"\xff\xfe", b"--", b"boundary=", b"\\"]) |
                               st.binary(max_size=8))
        elif op == "delete":
            del raw[at:at + draw(st.integers(1, 64))]
        else:
            del raw[at:]
    return bytes(raw)


def read_mail(raw: bytes) -> MessageEvent | None:
    """What the hub's mail reader makes of bytes: an event, or None for its documented
    refusal (ValidationError: empty, or no usable sender). Anything else propagates."""
    try:
        parse_mail(raw)
        event = READER.event(raw)
    except ValidationError:
        return None
    no_surrogates(event.text, event.subject, event.html, event.external_id, event.thread_ref,
                  list(event.references), event.fields, event.sender.email,
                  event.sender.display_name, event.sender.phone, list(event.sender.extra_emails),
                  event.bounce, event.reason, [a.name for a in event.attachments])
    assert event.occurred_at.tzinfo is not None
    assert len(event.external_id) <= 255
    return event


@FAST
@given(raw=st.one_of(mutated_mail(), st.binary(max_size=300)))
def test_any_bytes_are_read_as_mail_or_refused_as_documented(raw: bytes) -> None:
    read_mail(raw)


HEADERS = st.dictionaries(
    st.sampled_from(["From", "Reply-To", "Subject", "Date", "Message-ID", "In-Reply-To",
                     "References", "Content-Type", "Content-Transfer-Encoding", "Auto-Submitted",
                     "List-Id", "Precedence", "Return-Path", "MIME-Version",
                     "Content-Disposition"]),
    st.one_of(TEXT, st.sampled_from([
        "=?utf-8?B?0JjQstCw0L0g0J/QtdGC0YDQvtCy?= <ivan@example.ru>",
        "=?koi8-r?Q?=E9=D7=C1=CE?= <ivan@example.ru>", "=?x-unknown?B?AAAA?=",
        "=?utf-8?Q?broken", "multipart/mixed; boundary=", "multipart/alternative; boundary=\"b\"",
        "text/plain; charset=\"x-mac-cyrillic\"", "text/html; charset=utf-7", "base64",
        "quoted-printable", "Mon, 32 Foo 2026 25:61:61 +9999", "Fri, 31 Dec 9999 23:59:59 -1000",
        "<a@b>, <c@d> <e", "undisclosed-recipients:;", "\"Иван\" <>", "a@b.c (Пётр)",
    ])), max_size=8)


SENDERS = st.sampled_from(["ivan@example.ru", "Иван <ivan@example.ru>", "robot@site.example",
                           "MAILER-DAEMON@mx.example", "hub@company.example",
                           "=?utf-8?B?0JjQstCw0L0=?= <ivan@example.ru>"])


@FAST
@given(sender=SENDERS, headers=HEADERS, body=st.one_of(st.text(max_size=200), st.sampled_from([
    "--b\r\nContent-Type: text/plain\r\n\r\nпривет\r\n--b--", "PGI+aGk8L2I+", "=D0=9F=0",
    "<html><body><p>Hi<script>x</script></body></html>"])))
def test_any_headers_are_read(sender: str, headers: dict[str, str], body: str) -> None:
    head = "".join(f"{name}: {value}\r\n" for name, value in {"From": sender, **headers}.items())
    raw = (head + "\r\n" + body).encode("utf-8", "surrogatepass")
    read_mail(raw)


CYRILLIC = st.text(alphabet="абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ"
                            "abcXYZ0123456789 ,.!?-«»—№", min_size=1, max_size=60)


@FAST
@given(subject=CYRILLIC, name=CYRILLIC, charset=st.sampled_from(["utf-8", "koi8-r",
                                                                   "windows-1251"]),
       fold=st.booleans())
def test_encoded_words_in_any_cyrillic_charset_come_back_as_written(
    subject: str, name: str, charset: str, fold: bool
) -> None:
    try:
        subject.encode(charset), name.encode(charset)
    except UnicodeEncodeError:
        assume(False)
    encoded_subject = Header(subject, charset).encode(maxlinelen=40 if fold else 998)
    sender = formataddr((name, "ivan.petrov@example.ru"), charset=charset)
    raw = (f"From: {sender}\r\nSubject: {encoded_subject}\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=utf-8\r\n\r\n").encode("ascii") + \
        "текст\r\n".encode()
    event = read_mail(raw)
    assert event is not None
    assert event.subject == (" ".join(subject.split()) or None)
    assert event.sender.email == "ivan.petrov@example.ru"
    assert (event.sender.display_name or "").strip() == name.strip()


# ---- each provider's webhook, signed, through HTTP -------------------------------------------

Signed = tuple[str, bytes, dict[str, str]]  # path (with query), body, headers


def check_answer(answer: Answer, what: Any) -> None:
    """2xx, or a 4xx with the contract's JSON error; never a 5xx."""
    assert answer.status < 500, (answer.status, answer.body[:300], what)
    if answer.status >= 400:
        assert answer.content_type == "application/json", (answer, what)
        error = json.loads(answer.body)["error"]
        assert error["code"] and error["message"], (answer, what)


def generic_requests() -> st.SearchStrategy[Signed]:
    def signed(payload: Any) -> Signed:
        body = json.dumps(payload).encode()
        return ("/webhooks/telephony/generic", body,
                {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body)})

    return st.sampled_from(fixture_items("generic")).flatmap(mutated).map(signed)


def kamailio_requests() -> st.SearchStrategy[Signed]:
    def signed(payload: Any) -> Signed:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8", "surrogatepass")
        return kamailio.PATH, body, kamailio.headers(body)

    return st.sampled_from(fixture_items("kamailio")).flatmap(mutated).map(signed)


def zadarma_requests() -> st.SearchStrategy[Signed]:
    def signed(fields: dict[str, str]) -> Signed:
        if fields.get("event") in zadarma.SIGNED:  # fill the signed fields a mutation dropped
            fields = {**{k: "" for k in zadarma.SIGNED[fields["event"]]}, **fields}
            headers = zadarma.headers(fields)
        else:
            headers = {"Content-Type": zadarma.FORM, "Signature": "c2lnbmF0dXJl"}
        return zadarma.PATH, zadarma.encode(fields), headers

    return st.sampled_from(fixture_items("zadarma")).flatmap(text_form).map(signed)


def mango_requests() -> st.SearchStrategy[Signed]:
    paths = st.sampled_from([p.removeprefix(mango.BASE + "/") for p in
                             next(c for c in ADAPTERS if c.name == "mango").paths])

    def signed(item: tuple[dict[str, Any], Any, str]) -> Signed:
        fixture, payload, path = item
        # JSON text as Mango writes it (a lone surrogate escaped, so the form stays UTF-8)
        return f"{mango.BASE}/{path}", mango.body(json.dumps(payload)), dict(mango.FORM)

    return st.sampled_from(fixture_items("mango")).flatmap(lambda item: st.tuples(
        st.just(item), mutated(item["json"]),
        st.one_of(st.just(item["path"]), st.just(item["path"]), paths))).map(signed)


def twilio_requests() -> st.SearchStrategy[Signed]:
    def signed(item: tuple[dict[str, str], dict[str, str]]) -> Signed:
        form, query = item
        form = {**form, "AccountSid": twilio.ACCOUNT_SID}  # ours: past the account check
        pairs = list(form.items())
        path = twilio.PATH + (f"?{urlencode(query)}" if query else "")
        # the URL as the test client sends it (yarl writes `%3A` as `:`): what Twilio signs
        sent = twilio.BASE_URL + str(URL(path))
        return path, urlencode(pairs).encode(), twilio.signed_headers(sent, pairs)

    return st.sampled_from(twilio.items()).flatmap(lambda item: st.tuples(
        text_form(item["form"]), text_form(item.get("query") or {}))).map(signed)


def email_requests() -> st.SearchStrategy[Signed]:
    def signed(raw: bytes) -> Signed:
        return "/webhooks/email", raw, {"Content-Type": "message/rfc822",
                                        "X-Hub-Token": EMAIL_TOKEN}

    return st.one_of(mutated_mail(), st.binary(max_size=200)).map(signed)


TELEGRAM_UPDATES = [update for name in fixture_names() for update in load_fixture(name)]


def telegram_requests() -> st.SearchStrategy[Signed]:
    def signed(update: Any) -> Signed:
        body = json.dumps(update).encode()
        return "/webhooks/telegram", body, {"Content-Type": "application/json",
                                            "X-Telegram-Bot-Api-Secret-Token": TG_SECRET}

    return st.sampled_from(TELEGRAM_UPDATES).flatmap(mutated).map(signed)


PROVIDERS: dict[str, Callable[[], st.SearchStrategy[Signed]]] = {
    "generic": generic_requests, "kamailio": kamailio_requests, "zadarma": zadarma_requests,
    "mango": mango_requests, "twilio": twilio_requests, "email": email_requests,
    "telegram": telegram_requests,
}


def test_every_adapter_is_fuzzed() -> None:
    assert {cls.name for cls in ADAPTERS} | {"telegram"} == set(PROVIDERS)


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
async def test_signed_payloads_are_answered_without_a_server_error(
    full_hub: Any, provider: str
) -> None:
    remote = Remote(await full_hub(), asyncio.get_running_loop())
    accepted = 0

    @HTTP
    @given(request=PROVIDERS[provider]())
    def run(request: Signed) -> None:
        nonlocal accepted
        path, body, headers = request
        answer = remote.post(path, body, headers)
        check_answer(answer, request)
        assert answer.status != 401, ("a correctly signed request was refused", request)
        accepted += answer.status < 300

    await in_thread(run)
    assert remote.calls >= 100
    assert accepted > 0  # the unmutated payloads (the shrink target) do get through


# ---- the HTTP layer of every /webhooks route -------------------------------------------------

WEBHOOK_PATHS = sorted({p for cls in ADAPTERS for p in cls.paths} | {"/webhooks/telegram"})
CONTENT_TYPES = ["application/json", "application/x-www-form-urlencoded", "message/rfc822",
                 "multipart/form-data", "multipart/form-data; boundary=b", "text/plain",
                 "application/json; charset=koi8-r", "", "x/y; a=\"", "*/*"]
SIGNATURE_HEADERS = ["X-Hub-Signature-256", "Signature", "X-Twilio-Signature", "X-Hub-Token",
                     "X-Telegram-Bot-Api-Secret-Token"]
# what an HTTP client lets through in a header value (no control characters)
HEADER_TEXT = st.one_of(
    st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=40),
    st.sampled_from(["é", "sha256=é", "Привет", "\u202e", "sha256=" + "я" * 43]))


@st.composite
def raw_requests(draw: st.DrawFn) -> tuple[str, bytes, dict[str, str]]:
    path = draw(st.sampled_from(WEBHOOK_PATHS))
    body = draw(st.one_of(
        st.binary(max_size=200),
        JSON.map(lambda v: json.dumps(v).encode()),
        st.dictionaries(FORM_TEXT, FORM_TEXT, max_size=4).map(lambda d: urlencode(d).encode()),
        st.sampled_from([b"--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n--b--",
                         b"--b\r\n\r\n--b--", b"json=%7B&sign=&vpbx_api_key="]),
    ))
    headers = {"Content-Type": draw(st.sampled_from(CONTENT_TYPES) | HEADER_TEXT)}
    for name in draw(st.lists(st.sampled_from(SIGNATURE_HEADERS), max_size=2)):
        headers[name] = draw(HEADER_TEXT | st.sampled_from(["sha256=", "sha256=" + "0" * 64,
                                                             EMAIL_TOKEN, TG_SECRET]))
    query = draw(st.dictionaries(st.sampled_from(["bodySHA256", "hub_dial", "zd_echo", "x"]),
                                 FORM_TEXT, max_size=2))
    return path + (f"?{urlencode(query)}" if query else ""), body, headers


async def test_random_requests_to_every_webhook_route(full_hub: Any) -> None:
    remote = Remote(await full_hub(), asyncio.get_running_loop())

    @settings(HTTP, max_examples=250)
    @given(request=raw_requests())
    def run(request: tuple[str, bytes, dict[str, str]]) -> None:
        check_answer(remote.post(*request), request)

    await in_thread(run)
    assert remote.calls >= 250


# ---- regression tests: what the fuzzing found, written out ----------------------------------


async def _raw_post(client: Any, target: str, headers: bytes, body: bytes) -> tuple[int, bytes]:
    """A request written byte by byte (an HTTP client would refuse the header bytes these
    tests need); its status and body."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(b"POST " + target.encode() + b" HTTP/1.1\r\nHost: hub.example\r\n"
                 b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n" +
                 headers + b"\r\n" + body)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, rest = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), rest


@pytest.mark.parametrize("path,header,content_type", [
    ("/webhooks/telephony/generic", "X-Hub-Signature-256", "application/json"),
    ("/webhooks/telephony/kamailio", "X-Hub-Signature-256", "application/json"),
    ("/webhooks/email", "X-Hub-Token", "message/rfc822"),
    ("/webhooks/telephony/zadarma", "Signature", "application/x-www-form-urlencoded"),
    ("/webhooks/telephony/twilio", "X-Twilio-Signature", "application/x-www-form-urlencoded"),
    ("/webhooks/telegram", "X-Telegram-Bot-Api-Secret-Token", "application/json"),
    ("/api/clients", "Authorization", "application/json"),
    ("/api/clients", "Cookie", "application/json"),
])
async def test_credential_header_bytes_that_are_not_utf8_are_a_401(
    full_hub: Any, path: str, header: str, content_type: str
) -> None:
    """Found: `X-Hub-Signature-256: ab\\xff\\xfe` → 500 (UnicodeEncodeError). aiohttp hands
    such bytes over as surrogate escapes and the comparison's encode() refused them; likewise
    the API's Bearer token and session cookie (hash_token)."""
    client = await full_hub()
    value = {"Authorization": b"Bearer ab\xff\xfe", "Cookie": b"hub_session=ab\xff\xfe"}.get(
        header, b"ab\xff\xfe")
    body = (b"event=NOTIFY_START&caller_id=1&called_did=2&call_start=3&pbx_call_id=x&"
            b"AccountSid=AC0123456789abcdef0123456789abcdef&CallSid=CA1&CallStatus=ringing"
            if "form" in content_type else b'{"event": "call.ringing"}')
    status, answer = await _raw_post(client, path, b"Content-Type: " + content_type.encode() +
                                     b"\r\n" + header.encode() + b": " + value + b"\r\n", body)
    assert status == 401, answer
    assert json.loads(answer)["error"]["code"] in ("bad_signature", "unauthorized")


@pytest.mark.parametrize("secret", ["é", "sha256=é", "секрет"])
async def test_a_non_ascii_telegram_secret_is_a_401(full_hub: Any, secret: str) -> None:
    """Found: aiogram compares the secret with secrets.compare_digest, which raises TypeError
    for non-ASCII text → 500."""
    client = await full_hub()
    resp = await client.post("/webhooks/telegram", json=load_fixture("private_text")[0],
                             headers={"X-Telegram-Bot-Api-Secret-Token": secret})
    assert resp.status == 401, await resp.text()


@pytest.mark.parametrize("timestamp", ["9999-12-31T23:59:59-10:00", "0001-01-01T00:00:00+01:00"])
async def test_a_time_with_no_utc_equivalent_is_a_422(full_hub: Any, timestamp: str) -> None:
    """Found: a valid ISO time at the calendar's edge in another zone has no UTC time:
    OverflowError in hub.events.utc → 500 (generic; Twilio's Timestamp the same)."""
    client = await full_hub()
    body = json.dumps({"event": "call.ringing", "call_id": "edge-1", "direction": "inbound",
                       "from": "+79123456789", "to": "+74950000000",
                       "timestamp": timestamp}).encode()
    resp = await client.post("/webhooks/telephony/generic", data=body, headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": sign(body)})
    data = await resp.json()
    assert resp.status == 422, data
    assert data["error"]["message"] == "occurred_at: the time is out of range"
    form = {**twilio.items()[0]["form"], "Timestamp": "Fri, 31 Dec 9999 23:59:59 -1000"}
    pairs = list(form.items())
    resp = await client.post(twilio.PATH, data=urlencode(pairs).encode(),
                             headers=twilio.signed_headers(twilio.public_url(), pairs))
    assert resp.status == 422, await resp.text()


async def test_an_email_dated_past_the_calendar_is_taken_with_the_time_it_came(
    full_hub: Any,
) -> None:
    """Found: `Date: Fri, 31 Dec 9999 23:59:59 -1000` → 500 (OverflowError). A mail is read
    best-effort: such a date is ignored like any unreadable one."""
    client = await full_hub()
    raw = (b"From: Ivan <ivan@example.ru>\r\nDate: Fri, 31 Dec 9999 23:59:59 -1000\r\n"
           b"Subject: test\r\n\r\nhello\r\n")
    assert parse_mail(raw).date is None
    resp = await client.post("/webhooks/email", data=raw, headers={
        "Content-Type": "message/rfc822", "X-Hub-Token": EMAIL_TOKEN})
    assert resp.status == 200, await resp.text()


async def test_telegram_updates_that_broke_the_webhook(full_hub: Any) -> None:
    """Found, each a 500: an edit dated past year 9999 (OverflowError in fromtimestamp); an
    update of no type aiogram knows (UpdateTypeLookupError: Telegram would retry it forever);
    a lone surrogate escape in a callback query id (the answer to Telegram could not be
    encoded; on PostgreSQL the text could not be stored either)."""
    client = await full_hub()
    headers = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
    edited = load_fixture("edited")[1]
    edited["edited_message"]["edit_date"] = 253402300800
    resp = await client.post("/webhooks/telegram", json=edited, headers=headers)
    assert resp.status == 422, await resp.text()
    resp = await client.post("/webhooks/telegram", json={"update_id": 803214581},
                             headers=headers)
    assert resp.status == 200 and await resp.json() == {}
    query = load_fixture("callback_query")[0]
    query["callback_query"]["id"] = "\ud800"
    resp = await client.post("/webhooks/telegram", data=json.dumps(query).encode(),
                             headers={**headers, "Content-Type": "application/json"})
    assert resp.status == 400, await resp.text()
