"""E-mail benchmark: parsing, the push webhook and the IMAP listener, each next to its floor.

1. Parse: a generated corpus of eight shapes of real-world mail (utf-8, koi8-r QP,
   windows-1251 base64, text + HTML, a PDF attachment, a web form, a bounce, an auto-reply),
   read in-process by the hub's MailReader and by the bare stdlib (BytesParser + get_body).
   Then raw-message ingest: the same kind of bytes through MailReader and the hub's Pipeline
   in this process (card matched or made, entry stored), next to the stdlib parse plus one
   SQLite insert per message.
2. Webhook ingest: `hub serve` and the baseline app (bench/baseline_app.py) get the same
   raw messages on POST /webhooks/email, C in flight, 10 % exact re-deliveries; afterwards the
   e-mail timeline entries must number the distinct messages.
3. IMAP ingest: M messages delivered over LMTP into a private Dovecot, then `hub serve` with
   HUB_EMAIL_IMAP_URL on a fresh database, timed until it has stored all of them, next to a
   bare aioimaplib client fetching the same mailbox.
4. The figures, then a Markdown table for the README.

    python bench/mail.py                      # SQLite, about 75 s
    python bench/mail.py --database-url postgres://postgres@127.0.0.1:5432/postgres
    python bench/mail.py --quick              # smoke run, ~30 s
    python bench/mail.py --quick --profile /tmp/hub.prof   # the webhook hub under cProfile

Child processes, the Dovecot and temp files are removed however the run ends (Ctrl-C included).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import quopri
import random
import re
import signal
import smtplib
import sqlite3
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.header import Header
from email.parser import BytesParser
from email.utils import format_datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from types import FrameType
from urllib.parse import quote

import aiohttp
from aioimaplib import aioimaplib

from channels.email import TOKEN_HEADER, MailReader
from databases import Database, database
from ingest import load_average, machine, ms, say, start_hub, timed
from loadgen import Check, Delivery, Script, Stats, check_hub, check_status, deliver, percentile
from procs import ChildError, Children, Server, child_env, free_port, python

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))  # the repository root, for the test mail servers
from tests.mailservers import Dovecot, MailServerError, mail_dir  # noqa: E402

TOKEN = "bench-email-token"  # noqa: S105 (a throwaway value for a private run)
FORM_SENDER = "robot@site.example"
FORM_SUBJECT = "заявка с сайта"
OWN_ADDRESS = "sales@company.example"
MAILBOX_USER = "sales@example.test"
WEBHOOK_PATH = "/webhooks/email"
RAW_TARGET = 500.0  # messages/s: raw RFC 822 bytes in, card and timeline entry stored
IMAP_TARGET = 100.0  # messages/s
REPEAT_SHARE = 0.10
ROUNDS = 3  # webhook rounds, hub and baseline taking turns
IMAP_BATCH = 50
LMTP_SESSIONS = 4
STALL_S = 20.0  # the IMAP run gives up when the hub stores nothing new for this long
STORED_IMAP = re.compile(
    r'^hub_ingested_events_total\{(?=[^}]*outcome="stored")(?=[^}]*source="imap")[^}]*\}\s+(\S+)',
    re.MULTILINE)
LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d")
EXCEPTION_LINE = re.compile(r"^[A-Za-z_.]*(Error|Exception|Warning)\b")

# ---- the corpus ---------------------------------------------------------------------------------

FIRST = ("Анна", "Мария", "Елена", "Ольга", "Наталья", "Ирина", "Алексей", "Дмитрий", "Сергей",
         "Андрей", "Михаил", "Игорь", "Татьяна", "Юлия", "Павел", "Николай")
LAST = ("Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов",
        "Новиков", "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов", "Егоров")
DOMAINS = ("mail.ru", "yandex.ru", "gmail.com", "bk.ru", "inbox.ru", "rambler.ru", "list.ru")
SENTENCES = (
    "Добрый день! Пишу по поводу вашего коммерческого предложения от прошлой недели.",
    "Нас интересует поставка оборудования в филиал в Екатеринбурге до конца квартала.",
    "Подскажите, пожалуйста, сроки доставки и возможна ли оплата по безналичному расчёту.",
    "В приложении реквизиты компании и подписанный договор, проверьте, всё ли верно.",
    "Счёт № 1843 оплачен вчера, платёжное поручение прикладываю.",
    "Менеджер обещал перезвонить, но звонка так и не было — свяжитесь со мной, пожалуйста.",
    "Хотелось бы уточнить цену при заказе от пятидесяти единиц и условия гарантии.",
    "Спасибо за быструю обратную связь, договорились, ждём ваших специалистов в четверг.",
    "Если потребуется доверенность на получение груза, сообщите, мы подготовим.",
    "Please find the revised quotation attached; prices are valid until the end of the month.",
)
RETURNING_SHARE = 0.7
SHAPES = ("plain_utf8", "koi8r_qp", "cp1251_base64", "alternative_html", "pdf_attachment",
          "web_form", "bounce_dsn", "auto_reply")


@dataclass(frozen=True, slots=True)
class Mail:
    """One generated message."""

    shape: str
    raw: bytes


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    addr: str
    phone: str


class Corpus:
    """Messages that are pure functions of (prefix, index): unique Message-IDs; 70 % of them
    from a sender who already wrote (as in life: most mail is from known clients)."""

    def __init__(self, prefix: str, seed: int) -> None:
        self.prefix = prefix
        self.seed = seed
        self.now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

    def mails(self, count: int) -> list[Mail]:
        return [self.mail(i) for i in range(count)]

    def mail(self, i: int) -> Mail:
        rng = random.Random(f"{self.seed}:{self.prefix}:{i}")
        shape = SHAPES[i % len(SHAPES)]
        person = self._person(i, rng)
        builders: dict[str, Callable[[int, Person, random.Random], str]] = {
            "plain_utf8": self._plain, "koi8r_qp": self._koi8r, "cp1251_base64": self._cp1251,
            "alternative_html": self._alternative, "pdf_attachment": self._attachment,
            "web_form": self._form, "bounce_dsn": self._bounce, "auto_reply": self._auto_reply,
        }
        text = builders[shape](i, person, rng)
        raw = text.replace("\r\n", "\n").replace("\n", "\r\n").encode()  # 8bit: utf-8
        return Mail(shape, raw)

    # -- pieces --

    def _person(self, i: int, rng: random.Random) -> Person:
        """Most mail comes from people who wrote before (RETURNING_SHARE, as most callers in
        bench/loadgen.py are known): the sender of an earlier message, else a new person."""
        if i >= 10 and rng.random() < RETURNING_SHARE:
            i = rng.randrange(i)
        own = random.Random(f"{self.seed}:{self.prefix}:person:{i}")
        first, last = own.choice(FIRST), own.choice(LAST)
        if first.endswith("а") or first.endswith("я"):
            last += "а"
        local = f"client.{self.prefix}.{i}"
        phone = f"+7 (9{i % 100:02d}) {(i // 100) % 1000:03d}-{self.seed % 100:02d}-{i % 97:02d}"
        return Person(f"{first} {last}", f"{local}@{own.choice(DOMAINS)}", phone)

    def _id(self, i: int, shape: str) -> str:
        return f"<{shape}.{self.prefix}.{i}.{self.seed}@bench.example>"

    def _date(self, i: int) -> str:
        return format_datetime(self.now - timedelta(seconds=37 * i))

    def _filler(self, rng: random.Random, size: int, quoted: bool = True) -> str:
        """Russian prose of about `size` UTF-8 bytes, with a quoted earlier message."""
        lines: list[str] = []
        total = 0
        while total < size:
            line = " ".join(rng.choice(SENTENCES) for _ in range(rng.randint(1, 3)))
            if quoted and total > size // 2 and rng.random() < 0.6:
                line = "> " + line
            lines.append(line)
            total += len(line.encode()) + 1
            if rng.random() < 0.3:
                lines.append("")
        return "\n".join(lines)

    def _headers(self, i: int, shape: str, sender: str, subject: str, charset: str = "utf-8",
                 extra: str = "") -> str:
        return (f"From: {sender}\nTo: {OWN_ADDRESS}\nSubject: {_word(subject, charset)}\n"
                f"Date: {self._date(i)}\nMessage-ID: {self._id(i, shape)}\n"
                f"MIME-Version: 1.0\n{extra}")

    def _from(self, person: Person, charset: str = "utf-8") -> str:
        return f"{_word(person.name, charset)} <{person.addr}>"

    # -- shapes --

    def _plain(self, i: int, person: Person, rng: random.Random) -> str:
        body = self._filler(rng, rng.randint(1500, 8000))
        body += f"\n\n--\n{person.name}\n{person.phone}"
        offer = f"<offer.{i}@company.example>"
        refs = f"In-Reply-To: {offer}\nReferences: {offer}\n"
        return (self._headers(i, "plain_utf8", self._from(person), "Re: Коммерческое предложение",
                              extra=refs)
                + "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
                + body + "\n")

    def _koi8r(self, i: int, person: Person, rng: random.Random) -> str:
        body = self._filler(rng, rng.randint(1500, 6000)).replace("—", "-").replace("№", "N")
        encoded = quopri.encodestring(body.encode("koi8-r")).decode("ascii")
        return (self._headers(i, "koi8r_qp", self._from(person, "koi8-r"), "Вопрос по доставке",
                              "koi8-r")
                + "Content-Type: text/plain; charset=koi8-r\n"
                  "Content-Transfer-Encoding: quoted-printable\n\n" + encoded + "\n")

    def _cp1251(self, i: int, person: Person, rng: random.Random) -> str:
        body = self._filler(rng, rng.randint(1500, 6000)) + f"\n\nС уважением,\n{person.name}"
        encoded = base64.encodebytes(body.encode("windows-1251")).decode("ascii")
        return (self._headers(i, "cp1251_base64", self._from(person, "windows-1251"),
                              "Счёт на оплату", "windows-1251")
                + "Content-Type: text/plain; charset=windows-1251\n"
                  "Content-Transfer-Encoding: base64\n\n" + encoded)

    def _alternative(self, i: int, person: Person, rng: random.Random) -> str:
        text = self._filler(rng, rng.randint(500, 1500), quoted=False)
        rows = "".join(f"<tr><td>{k}</td><td>{rng.randint(1, 90) * 100} ₽</td></tr>"
                       for k in ("Монтаж", "Доставка", "Гарантия"))
        html = ("<html><head><style>td{padding:4px}</style></head><body>"
                + "".join(f"<p>{p}</p>" for p in text.split("\n") if p)
                + f"<table>{rows}</table><p><a href=\"https://example.ru/o/{i}\">Заказ</a></p>"
                "<script>track()</script></body></html>")
        boundary = f"=_alt_{i}_{self.seed}"
        return (self._headers(i, "alternative_html", self._from(person), "Ваш заказ оформлен",
                              extra=f'Content-Type: multipart/alternative; boundary="{boundary}"\n')
                + f"\nThis is a multi-part message in MIME format.\n--{boundary}\n"
                + _qp_part("text/plain", text) + f"--{boundary}\n" + _qp_part("text/html", html)
                + f"--{boundary}--\n")

    def _attachment(self, i: int, person: Person, rng: random.Random) -> str:
        text = self._filler(rng, rng.randint(800, 2000), quoted=False)
        pdf = (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\nstream\n"
               + rng.randbytes(40 * 1024) + b"\nendstream\n%%EOF\n")
        name = f"Счёт_{i}.pdf"
        boundary = f"=_mix_{i}_{self.seed}"
        return (self._headers(i, "pdf_attachment", self._from(person), "Счёт и договор",
                              extra=f'Content-Type: multipart/mixed; boundary="{boundary}"\n')
                + f"\n--{boundary}\n" + _qp_part("text/plain", text) + f"--{boundary}\n"
                + f"Content-Type: application/pdf; name=\"{_word(name, 'utf-8')}\"\n"
                  "Content-Transfer-Encoding: base64\n"
                  f"Content-Disposition: attachment; filename*=utf-8''{quote(name)}\n\n"
                + base64.encodebytes(pdf).decode("ascii") + f"--{boundary}--\n")

    def _form(self, i: int, person: Person, rng: random.Random) -> str:
        comment = self._filler(rng, rng.randint(600, 2000), quoted=False).replace("\n", " ")
        body = (f"Новая заявка с сайта example.ru\n\nИмя: {person.name}\n"
                f"Телефон: {person.phone}\nE-mail: {person.addr}\n"
                f"Город: Новосибирск\nКомментарий: {comment}\n"
                f"Страница: https://example.ru/catalog/item-{i}\n"
                f"IP: 10.{i % 250}.{(i // 250) % 250}.7\n")
        sender = f"{_word('Сайт example.ru', 'utf-8')} <{FORM_SENDER}>"
        return (self._headers(i, "web_form", sender, f"Заявка с сайта: обратный звонок #{i}",
                              extra=f"Reply-To: {person.addr}\n")
                + "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
                + base64.encodebytes(body.encode()).decode("ascii"))

    def _bounce(self, i: int, person: Person, rng: random.Random) -> str:
        mx = f"mx{i}.{self.prefix}.example.net"
        boundary = f"=_dsn_{i}_{self.seed}"
        lost = f"<out.{self.prefix}.{i}@company.example>"
        notice = ("This is the mail system at host " + mx + ".\n\nI'm sorry to have to inform "
                  "you that your message could not be delivered to one or more recipients.\n\n"
                  + f"<{person.addr}>: host {mx} said: 550 5.1.1 user unknown\n\n"
                  + self._filler(rng, rng.randint(400, 1200), quoted=False))
        status = (f"Reporting-MTA: dns; {mx}\nArrival-Date: {self._date(i)}\n\n"
                  f"Final-Recipient: rfc822; {person.addr}\nOriginal-Recipient: rfc822; "
                  f"{person.addr}\nAction: failed\nStatus: 5.1.1\nRemote-MTA: dns; {mx}\n"
                  "Diagnostic-Code: smtp; 550 5.1.1 <" + person.addr + ">: Recipient address "
                  "rejected: User unknown in virtual mailbox table\n")
        original = (f"From: {OWN_ADDRESS}\nTo: {person.addr}\nSubject: "
                    f"{_word('Коммерческое предложение', 'utf-8')}\nMessage-ID: {lost}\n"
                    f"Date: {self._date(i + 1)}\n")
        sender = f"Mail Delivery System <MAILER-DAEMON@{mx}>"
        return (self._headers(i, "bounce_dsn", sender, "Undelivered Mail Returned to Sender",
                              extra="Auto-Submitted: auto-replied\nContent-Type: multipart/report;"
                                    f' report-type=delivery-status; boundary="{boundary}"\n')
                + f"\n--{boundary}\nContent-Type: text/plain; charset=us-ascii\n\n"
                + _ascii(notice) + f"\n--{boundary}\nContent-Type: message/delivery-status\n\n"
                + status + f"\n--{boundary}\nContent-Type: text/rfc822-headers\n\n" + original
                + f"\n--{boundary}--\n")

    def _auto_reply(self, i: int, person: Person, rng: random.Random) -> str:
        body = ("Здравствуйте! Я в отпуске до 15 декабря, доступ к почте ограничен. "
                "По срочным вопросам обращайтесь к коллеге.\n\n"
                + self._filler(rng, rng.randint(1500, 5000)))
        return (self._headers(i, "auto_reply", self._from(person),
                              "Автоответ: Re: Коммерческое предложение",
                              extra=f"Auto-Submitted: auto-replied\nX-Autoreply: yes\n"
                                    f"In-Reply-To: <offer.{i}@company.example>\n")
                + "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
                + base64.encodebytes(body.encode()).decode("ascii"))


def _word(text: str, charset: str) -> str:
    """An RFC 2047 encoded word (or several) for a header value."""
    return Header(text, charset).encode()


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")


def _qp_part(ctype: str, text: str) -> str:
    body = quopri.encodestring(text.encode()).decode("ascii")
    return (f"Content-Type: {ctype}; charset=utf-8\nContent-Transfer-Encoding: quoted-printable"
            f"\n\n{body}\n")


# ---- 1. parsing -----------------------------------------------------------------------------


@dataclass(slots=True)
class ParseFigures:
    """Seconds spent per shape by the hub's reader and by the bare stdlib."""

    hub: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    floor: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    count: Counter[str] = field(default_factory=Counter)

    def rate(self, seconds: float, count: int) -> float:
        return count / seconds if seconds else 0.0

    @property
    def hub_rate(self) -> float:
        return self.rate(sum(self.hub.values()), self.total)

    @property
    def floor_rate(self) -> float:
        return self.rate(sum(self.floor.values()), self.total)

    @property
    def total(self) -> int:
        return sum(self.count.values())


def mail_reader() -> MailReader:
    return MailReader((FORM_SENDER,), (FORM_SUBJECT,), OWN_ADDRESS)


def stdlib_floor(raw: bytes) -> str:
    """What any reader must do at least: parse the message and decode its body."""
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    body = msg.get_body(preferencelist=("plain", "html"))
    return str(body.get_content()) if body is not None else ""


def measure_parse(mails: list[Mail]) -> ParseFigures:
    """Each shape by both readers, in rounds taking turns (after one untimed pass each)."""
    reader, figures = mail_reader(), ParseFigures()
    by_shape: dict[str, list[bytes]] = {}
    for mail in mails:
        by_shape.setdefault(mail.shape, []).append(mail.raw)
    for raws in by_shape.values():
        for raw in raws[:20]:
            reader.event(raw)
            stdlib_floor(raw)
    for part in range(ROUNDS):
        for shape, raws in by_shape.items():
            share = raws[part::ROUNDS]
            figures.hub[shape] += _timed_loop(reader.event, share)
            figures.floor[shape] += _timed_loop(stdlib_floor, share)
            figures.count[shape] += len(share)
    return figures


def _timed_loop(read: Callable[[bytes], object], raws: list[bytes]) -> float:
    start = time.perf_counter()
    for raw in raws:
        read(raw)
    return time.perf_counter() - start


def describe_parse(figures: ParseFigures, mails: list[Mail]) -> None:
    sizes: dict[str, list[int]] = {}
    for mail in mails:
        sizes.setdefault(mail.shape, []).append(len(mail.raw))
    say(f"parse, {figures.total:,} messages in-process (hub MailReader | stdlib BytesParser + "
        "get_body):")
    for shape in SHAPES:
        n, size = figures.count[shape], sizes.get(shape, [0])
        if not n:
            continue
        hub_us, floor_us = figures.hub[shape] / n * 1e6, figures.floor[shape] / n * 1e6
        kib = sum(size) / len(size) / 1024
        say(f"  {shape:<17} {kib:5.1f} KiB  hub {1e6 / hub_us:7,.0f} msg/s {hub_us:7.0f} µs | "
            f"floor {1e6 / floor_us:7,.0f} msg/s {floor_us:7.0f} µs | "
            f"hub/floor {floor_us / hub_us:.2f}")
    hub_us = 1e6 / figures.hub_rate if figures.hub_rate else 0.0
    floor_us = 1e6 / figures.floor_rate if figures.floor_rate else 0.0
    say(f"  {'all':<17} {'':10} hub {figures.hub_rate:7,.0f} msg/s {hub_us:7.0f} µs | floor "
        f"{figures.floor_rate:7,.0f} msg/s {floor_us:7.0f} µs | hub/floor "
        f"{ratio(figures.hub_rate, figures.floor_rate):.2f}")


# ---- 1b. raw-message ingest, in-process -------------------------------------------------------


@dataclass(slots=True)
class RawFigures:
    messages: int = 0
    hub_rate: float = 0.0
    hub_cpu_ms: float = 0.0
    floor_rate: float = 0.0
    entries: int = 0


def measure_raw(url: str, sqlite_path: Path, mails: list[Mail], concurrency: int) -> RawFigures:
    """Raw bytes in, card and timeline entry stored: the hub's MailReader + Pipeline in this
    process, `concurrency` messages at a time; the floor is the stdlib parse plus one SQLite
    INSERT + COMMIT per message."""
    figures = RawFigures(messages=len(mails))
    figures.hub_rate, figures.hub_cpu_ms, figures.entries = asyncio.run(
        _hub_raw(url, mails, concurrency))
    floor = sqlite3.connect(sqlite_path, isolation_level=None)
    floor.execute("PRAGMA journal_mode=WAL")
    floor.execute("PRAGMA synchronous=NORMAL")
    floor.execute("CREATE TABLE message (id INTEGER PRIMARY KEY, subject TEXT, body BLOB)")
    start = time.perf_counter()
    for mail in mails:
        parsed = BytesParser(policy=policy.default).parsebytes(mail.raw)
        floor.execute("BEGIN")
        floor.execute("INSERT INTO message (subject, body) VALUES (?, ?)",
                      (str(parsed.get("Subject", "")), mail.raw))
        floor.execute("COMMIT")
    figures.floor_rate = len(mails) / (time.perf_counter() - start)
    floor.close()
    return figures


async def _hub_raw(url: str, mails: list[Mail], concurrency: int) -> tuple[float, float, int]:
    from hub import db as hub_db
    from hub.pipeline import Pipeline

    await hub_db.init_db(url)
    try:
        reader, pipeline = mail_reader(), Pipeline("RU")
        pending = iter(mails)

        async def worker() -> None:
            for mail in pending:
                await pipeline.ingest(reader.event(mail.raw))

        start, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed, used = time.perf_counter() - start, time.process_time() - cpu
        rows = await hub_db.execute(hub_db.connections.get("default"), hub_db.Stmt(
            "SELECT COUNT(*) AS n FROM interaction WHERE source = 'email'", ()))
        return len(mails) / elapsed, used / len(mails) * 1000, int(rows[0]["n"])
    finally:
        await hub_db.close_db()


def describe_raw(figures: RawFigures) -> None:
    ok = figures.hub_rate >= RAW_TARGET and figures.entries == figures.messages
    say(f"raw-message ingest, in-process, {figures.messages:,} messages:")
    say(f"  hub    {figures.hub_rate:7,.0f} messages/s  CPU {figures.hub_cpu_ms:.2f} ms/message "
        f"(MailReader + Pipeline: card matched or made, timeline entry stored)")
    say(f"  floor  {figures.floor_rate:7,.0f} messages/s  (stdlib parse + 1 SQLite INSERT + "
        "COMMIT)")
    say(f"  hub/floor {ratio(figures.hub_rate, figures.floor_rate):.2f}; target ≥ "
        f"{RAW_TARGET:.0f} messages/s: {verdict(ok)}; entries {figures.entries:,} of "
        f"{figures.messages:,}")


# ---- 2. the webhook -----------------------------------------------------------------------------


def scripts_of(mails: list[Mail], rng: random.Random) -> list[Script]:
    """One script per message; REPEAT_SHARE of all requests are exact re-deliveries, each
    sent by the same worker right after its original was answered (as an MTA retrying)."""
    headers = {"Content-Type": "message/rfc822", TOKEN_HEADER: TOKEN}
    repeats = round(len(mails) * REPEAT_SHARE / (1 - REPEAT_SHARE))
    again = set(rng.sample(range(len(mails)), min(repeats, len(mails))))
    scripts = []
    for i, mail in enumerate(mails):
        first = Delivery(mail.raw, headers, False)
        copies = [first, Delivery(mail.raw, headers, True)] if i in again else [first]
        scripts.append(Script(copies))
    return scripts


async def closed_loop(session: aiohttp.ClientSession, base_url: str, scripts: list[Script],
                      concurrency: int, check: Check) -> Stats:
    """`concurrency` messages in flight; a re-delivery follows its original in the same worker."""
    stats, url, pending = Stats(), base_url + WEBHOOK_PATH, iter(scripts)

    async def worker() -> None:
        for script in pending:
            for delivery in script.deliveries:
                await deliver(session, url, delivery, time.perf_counter(), stats, check)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    stats.elapsed = time.perf_counter() - start
    return stats


@dataclass(slots=True)
class HookFigures:
    hub: Stats = field(default_factory=Stats)
    base: Stats = field(default_factory=Stats)
    entries: int = 0
    distinct: int = 0


async def measure_webhook(args: argparse.Namespace, hub: Server, base: Server, db: Database,
                          warm: list[Mail], mails: list[Mail]) -> HookFigures:
    figures = HookFigures(distinct=len(warm) + len(mails))
    rng = random.Random(7)
    scripts = scripts_of(mails, rng)
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=120)) as session:
        await hub.wait_healthy(session)
        await base.wait_healthy(session)
        warm_scripts = scripts_of(warm, rng)
        await closed_loop(session, hub.url, warm_scripts, args.concurrency, check_hub)
        await closed_loop(session, base.url, warm_scripts, args.concurrency, check_status)
        say(f"webhook ingest, closed loop, {args.concurrency} in flight ({db.label}):")
        for part in range(ROUNDS):
            share = scripts[part::ROUNDS]
            figures.hub.add(await timed(_drive(session, args.concurrency), hub, share, check_hub))
            figures.base.add(await timed(_drive(session, args.concurrency), base, share,
                                         check_status))
    figures.entries = await email_entries(db)
    say("  hub      " + describe_hook(figures.hub))
    say("  baseline " + describe_hook(figures.base))
    hub_rate = figures.hub.rate
    say(f"  hub/baseline {ratio(hub_rate, figures.base.rate):.2f} (HTTP and the load generator "
        "on top of the raw-message ingest above)")
    same = "ok" if figures.entries == figures.distinct else "MISMATCH"
    say(f"  e-mail timeline entries: {figures.entries:,} for {figures.distinct:,} distinct "
        f"messages (warm-up included) — {same}")
    return figures


def _drive(session: aiohttp.ClientSession,
           concurrency: int) -> Callable[[str, list[Script], Check], Awaitable[Stats]]:
    def drive(url: str, scripts: list[Script], check: Check) -> Awaitable[Stats]:
        return closed_loop(session, url, scripts, concurrency, check)

    return drive


def describe_hook(stats: Stats) -> str:
    lat = stats.latencies
    errors = ", ".join(f"{k}: {v}" for k, v in stats.errors.items()) or "none"
    rounds = " / ".join(f"{r:,.0f}" for r in stats.round_rates)
    return (f"{stats.rate:7,.0f} messages/s  p50 {ms(percentile(lat, 0.5))}  "
            f"p99 {ms(percentile(lat, 0.99))}  server CPU {ms(stats.server_cpu_per_event)}/message "
            f"(rounds {rounds}; {stats.sent} requests in {stats.elapsed:.1f} s, "
            f"{stats.repeats} re-deliveries, {stats.duplicates} answered duplicate; "
            f"errors: {errors})")


async def email_entries(db: Database) -> int:
    """The e-mail entries on the timeline, counted in the hub's database."""
    query = "SELECT count(*) FROM interaction WHERE channel = 'email'"
    if db.sqlite_path is not None:
        with sqlite3.connect(db.sqlite_path) as con:
            return int(con.execute(query).fetchone()[0])
    import asyncpg

    con = await asyncpg.connect(db.url.replace("asyncpg://", "postgres://", 1))
    try:
        return int(await con.fetchval(query))
    finally:
        await con.close()


# ---- 3. IMAP --------------------------------------------------------------------------------


@dataclass(slots=True)
class ImapFigures:
    messages: int = 0
    deliver_s: float = 0.0
    floor_s: float = 0.0
    floor_fetched: int = 0
    hub_s: float = 0.0
    hub_counted: int = 0  # messages timed (those stored before /healthz answered are left out)
    hub_stored: int = 0
    entries: int = 0
    hub_cpu: float = 0.0
    timed_out: bool = False

    @property
    def floor_rate(self) -> float:
        return self.floor_fetched / self.floor_s if self.floor_s else 0.0

    @property
    def hub_rate(self) -> float:
        return self.hub_counted / self.hub_s if self.hub_s else 0.0


def deliver_all(dovecot: Dovecot, mails: list[Mail]) -> None:
    """LMTP, as MTAs hand mail over: a few sessions at once, many messages each."""
    shares = [mails[i::LMTP_SESSIONS] for i in range(LMTP_SESSIONS)]
    with ThreadPoolExecutor(LMTP_SESSIONS) as pool:
        list(pool.map(lambda share: _deliver_share(dovecot, share), shares))


def _deliver_share(dovecot: Dovecot, mails: list[Mail]) -> None:
    with smtplib.LMTP("127.0.0.1", dovecot.lmtp_port, timeout=30) as lmtp:
        for mail in mails:
            refused = lmtp.sendmail("mta@relay.example", [MAILBOX_USER], mail.raw)
            if refused:
                raise MailServerError(f"LMTP refused {refused}")


async def imap_floor(dovecot: Dovecot) -> int:
    """A bare client: log in, SELECT, UID SEARCH, then UID FETCH BODY.PEEK[] by 50 UIDs."""
    client = aioimaplib.IMAP4("127.0.0.1", dovecot.imap_port, timeout=60)
    await client.wait_hello_from_server()
    await client.login(MAILBOX_USER, dovecot.passwords[MAILBOX_USER])
    await client.select("INBOX")
    found = await client.uid_search("ALL")
    uids = bytes(found.lines[0]).decode().split()
    fetched = 0
    for start in range(0, len(uids), IMAP_BATCH):
        answer = await client.uid("fetch", ",".join(uids[start:start + IMAP_BATCH]),
                                  "(BODY.PEEK[])")
        fetched += sum(isinstance(line, bytearray) for line in answer.lines)
    await client.logout()
    return fetched


async def stored_imap(session: aiohttp.ClientSession, hub: Server) -> int:
    async with session.get(hub.url + "/metrics") as response:
        text = await response.text()
    match = STORED_IMAP.search(text)
    return int(float(match.group(1))) if match else 0


async def watch_hub(hub: Server, figures: ImapFigures, budget: float) -> None:
    """From the first /healthz answer until the listener has stored every message (or has
    stored nothing new for STALL_S, or the budget is spent)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        await hub.wait_healthy(session)
        start, cpu = time.perf_counter(), hub.cpu_seconds()
        before = stored = await stored_imap(session, hub)
        moved = start
        while stored < figures.messages:
            now = time.perf_counter()
            if now - start > budget or now - moved > STALL_S or hub.proc.poll() is not None:
                figures.timed_out = True
                break
            await asyncio.sleep(0.02)
            count = await stored_imap(session, hub)
            if count != stored:
                stored, moved = count, time.perf_counter()
        figures.hub_s = (moved if figures.timed_out else time.perf_counter()) - start
        figures.hub_cpu = hub.cpu_seconds() - cpu
        figures.hub_counted, figures.hub_stored = stored - before, stored


def measure_imap(args: argparse.Namespace, stack: ExitStack, children: Children, work: Path,
                 mails: list[Mail]) -> ImapFigures:
    figures = ImapFigures(messages=len(mails))
    root = stack.enter_context(mail_dir("crm-hub-bench-dovecot-"))
    dovecot = Dovecot(root)
    dovecot.start()
    stack.callback(dovecot.stop)
    dovecot.add_user(MAILBOX_USER, "bench-secret")
    start = time.perf_counter()
    deliver_all(dovecot, mails)
    figures.deliver_s = time.perf_counter() - start
    if (held := dovecot.count(MAILBOX_USER)) != len(mails):
        raise MailServerError(f"the mailbox holds {held} of {len(mails)} messages")
    asyncio.run(imap_floor(dovecot))  # untimed: Dovecot builds its index and cache here
    start = time.perf_counter()
    figures.floor_fetched = asyncio.run(imap_floor(dovecot))
    figures.floor_s = time.perf_counter() - start
    db = stack.enter_context(database(args.database_url, work / "imap"))
    env = child_env(HUB_DATABASE_URL=db.url, HUB_LOG_LEVEL="WARNING",
                    HUB_EMAIL_IMAP_URL=dovecot.imap_url(MAILBOX_USER), **mail_settings())
    port = free_port()
    hub = children.start("hub-imap", [python(), "-m", "hub", "serve", "--port", str(port)],
                         {**env, "HUB_PORT": str(port)}, work / "imap", port)
    asyncio.run(watch_hub(hub, figures, budget=max(60.0, len(mails) / 20)))
    figures.entries = asyncio.run(email_entries(db))
    hub.stop()
    describe_imap(figures, hub)
    return figures


def describe_imap(figures: ImapFigures, hub: Server) -> None:
    f = figures
    say(f"IMAP ingest, {f.messages:,} messages in a private Dovecot (delivered over LMTP in "
        f"{f.deliver_s:.1f} s, not timed):")
    say(f"  hub      {f.hub_rate:7,.0f} messages/s  ({f.hub_counted:,} stored in {f.hub_s:.1f} s "
        f"after /healthz answered, {f.hub_stored - f.hub_counted} before; hub CPU "
        f"{ms(f.hub_cpu / f.hub_counted if f.hub_counted else 0)}/message)")
    say(f"  floor    {f.floor_rate:7,.0f} messages/s  (bare aioimaplib, UID FETCH BODY.PEEK[] "
        f"by {IMAP_BATCH}: {f.floor_fetched:,} messages in {f.floor_s:.2f} s)")
    same = "ok" if f.entries == f.messages else "MISMATCH"
    say(f"  hub/floor {ratio(f.hub_rate, f.floor_rate):.2f}; target ≥ {IMAP_TARGET:.0f} "
        f"messages/s: {verdict(imap_ok(f))}; e-mail timeline entries {f.entries:,} of "
        f"{f.messages:,} — {same}")
    if f.timed_out:
        say(f"  the hub stopped short of the mailbox ({f.hub_stored:,} of {f.messages:,} stored, "
            f"then nothing new for {STALL_S:.0f} s); from its log:\n{_log_tail(hub)}")


def imap_ok(figures: ImapFigures) -> bool:
    return not figures.timed_out and figures.hub_rate >= IMAP_TARGET


def _log_tail(server: Server) -> str:
    """The hub's log records and exception lines (a deep traceback is mostly one frame
    repeated), last ones first kept."""
    from procs import tail

    lines = tail(server.log, 400).splitlines()
    keep = [line for line in lines if LOG_RECORD.match(line) or EXCEPTION_LINE.match(line)]
    return "\n".join("    " + line[:300] for line in keep[-12:])


# ---- the run --------------------------------------------------------------------------------


@dataclass(slots=True)
class Results:
    parse: ParseFigures = field(default_factory=ParseFigures)
    raw: RawFigures = field(default_factory=RawFigures)
    hook: HookFigures = field(default_factory=HookFigures)
    imap: ImapFigures = field(default_factory=ImapFigures)
    db_label: str = ""
    load: list[str] = field(default_factory=list)


def mail_settings() -> dict[str, str]:
    """The hub's [email] settings shared by both hub runs (the reader uses the same rules)."""
    return {"HUB_EMAIL_FORM_SENDERS": FORM_SENDER, "HUB_EMAIL_FORM_SUBJECTS": FORM_SUBJECT,
            "HUB_EMAIL_FROM_ADDRESS": OWN_ADDRESS}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parse", type=int, help="messages to parse in-process (default 1600)")
    parser.add_argument("--messages", type=int,
                        help="webhook requests, re-deliveries included (default 3000)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (8)")
    parser.add_argument("--imap", type=int, help="messages in the IMAP mailbox (default 2000)")
    parser.add_argument("--database-url", help="PostgreSQL admin URL: throwaway databases are "
                        "created under it (default: temp SQLite files)")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--profile", metavar="PATH", help="run the webhook hub under cProfile, "
                        "save the stats to PATH and print the hot spots")
    args = parser.parse_args(argv)
    quick = {"parse": 320, "messages": 800, "imap": 300}
    full = {"parse": 1600, "messages": 3000, "imap": 2000}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    for key in ("parse", "messages", "concurrency", "imap"):
        if getattr(args, key) <= 0:
            parser.error(f"--{key} must be positive")
    return args


def run(args: argparse.Namespace) -> tuple[Results, str]:
    results = Results(load=[load_average()])
    distinct = args.messages - round(args.messages * REPEAT_SHARE)
    say("generating the corpus …")
    hook_mails = Corpus("hook", 1).mails(distinct)
    warm = Corpus("warm", 2).mails(min(200, distinct // 8))
    parse_mails = hook_mails[:args.parse] + Corpus("parse", 3).mails(
        max(0, args.parse - len(hook_mails)))
    imap_mails = Corpus("imap", 4).mails(args.imap)
    results.parse = measure_parse(parse_mails)
    describe_parse(results.parse, parse_mails)
    with ExitStack() as stack:
        work = Path(stack.enter_context(TemporaryDirectory(prefix="crm-hub-bench-mail-")))
        (work / "imap").mkdir()
        (work / "raw").mkdir()
        raw_db = stack.enter_context(database(args.database_url, work / "raw"))
        results.raw = measure_raw(raw_db.url, work / "raw" / "floor.db",
                                  Corpus("raw", 5).mails(args.messages), args.concurrency)
        describe_raw(results.raw)
        db = stack.enter_context(database(args.database_url, work))
        results.db_label = db.label
        children = stack.enter_context(Children())
        env = child_env(HUB_DATABASE_URL=db.url, HUB_EMAIL_INBOUND_TOKEN=TOKEN,
                        HUB_LOG_LEVEL="WARNING", **mail_settings())
        hub = start_hub(children, env, work, args.profile)
        base_port = free_port()
        base = children.start("baseline", [python(), str(BENCH / "baseline_app.py"), "--port",
                              str(base_port), "--database", str(work / "baseline.db")],
                              child_env(), work, base_port)
        results.hook = asyncio.run(measure_webhook(args, hub, base, db, warm, hook_mails))
        if results.hook.hub.errors:
            say(f"  from the hub's log:\n{_log_tail(hub)}")
        hub.stop()  # under --profile, this is when the stats are written
        base.stop()
        results.imap = measure_imap(args, stack, children, work, imap_mails)
        results.load.append(load_average())
        return results, machine(db)


def ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def table(r: Results, args: argparse.Namespace, host: str) -> str:
    """The Markdown summary: scenario | hub | floor | hub/floor | target."""
    p, h, m = r.parse, r.hook, r.imap
    engine = r.db_label.split(" (")[0]
    hub_us = 1e6 / p.hub_rate if p.hub_rate else 0.0
    floor_us = 1e6 / p.floor_rate if p.floor_rate else 0.0
    w = r.raw
    raw_ok = w.hub_rate >= RAW_TARGET and w.entries == w.messages
    rows = [
        (f"Parse, {p.total:,} messages of {len(SHAPES)} shapes, in-process",
         f"{p.hub_rate:,.0f} msg/s ({hub_us:.0f} µs/msg)",
         f"stdlib BytesParser + get_body: {p.floor_rate:,.0f} msg/s ({floor_us:.0f} µs/msg)",
         f"{ratio(p.hub_rate, p.floor_rate):.2f}", "—"),
        (f"Raw-message ingest ({engine}), in-process, {w.messages:,} messages, "
         f"{args.concurrency} at a time",
         f"{w.hub_rate:,.0f} msg/s ({w.hub_cpu_ms:.2f} ms CPU/msg)",
         f"stdlib parse + 1 SQLite insert: {w.floor_rate:,.0f} msg/s",
         f"{ratio(w.hub_rate, w.floor_rate):.2f}",
         f"≥ {RAW_TARGET:.0f} msg/s — {verdict(raw_ok)}"),
        (f"Webhook ingest ({engine}), {args.concurrency} in flight, "
         f"{h.hub.sent:,} requests, 10 % re-deliveries",
         hook_figure(h.hub), "bare aiohttp + 1 SQLite insert: " + hook_figure(h.base),
         f"{ratio(h.hub.rate, h.base.rate):.2f}", "— (HTTP on top of the row above)"),
        (f"IMAP ingest ({engine}), {m.messages:,} messages waiting in Dovecot",
         f"{m.hub_rate:,.0f} msg/s", f"bare aioimaplib fetch: {m.floor_rate:,.0f} msg/s",
         f"{ratio(m.hub_rate, m.floor_rate):.2f}",
         f"≥ {IMAP_TARGET:.0f} msg/s — {verdict(imap_ok(m))}"),
    ]
    lines = ["| scenario | hub | floor | hub / floor | target |", "|---|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    return ("\n".join(lines) + f"\n\nMachine: {host}. Load average (1 min) at start / end: "
            f"{' / '.join(r.load)}.")


def hook_figure(stats: Stats) -> str:
    errors = sum(stats.errors.values())
    lat = stats.latencies
    return (f"{stats.rate:,.0f} msg/s, p50 {ms(percentile(lat, 0.5))}, "
            f"p99 {ms(percentile(lat, 0.99))}" + (f", {errors} errors" if errors else ""))


def failures(r: Results) -> list[str]:
    """Wrong answers and lost or doubled messages (a missed target is not a failure)."""
    found = []
    for name, stats in (("hub", r.hook.hub), ("baseline", r.hook.base)):
        if stats.errors:
            found.append(f"{name} webhook errors: {dict(stats.errors)}")
    if r.raw.entries != r.raw.messages:
        found.append(f"raw ingest: {r.raw.entries} entries for {r.raw.messages} messages")
    if r.hook.entries != r.hook.distinct:
        found.append(f"webhook: {r.hook.entries} entries for {r.hook.distinct} messages")
    if r.imap.entries != r.imap.messages or r.imap.timed_out:
        found.append(f"IMAP: {r.imap.entries} entries for {r.imap.messages} messages")
    if r.imap.floor_fetched != r.imap.messages:
        found.append(f"IMAP floor fetched {r.imap.floor_fetched} of {r.imap.messages}")
    return found


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # a SIGTERM unwinds like Ctrl-C: children stopped, temp files gone


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        results, host = run(args)
    except KeyboardInterrupt:
        print("interrupted; child processes stopped and temp files removed", file=sys.stderr)
        return 130
    except (ChildError, MailServerError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    if args.profile:
        from profile_hub import report

        say("\nwebhook hub profile (cProfile, event-loop thread):\n" + report(args.profile))
    say("\n" + table(results, args, host))
    problems = failures(results)
    for problem in problems:
        print(f"bench: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
