"""E-mail under faults: messages delivered over LMTP into a private Dovecot while `hub serve`
reads the mailbox over IMAP through a TCP proxy; the proxy cuts the hub's connection (RST
both ways) and refuses it for a while, and Dovecot itself is stopped and started again. Some
messages are delivered twice (two copies in the mailbox, one Message-ID). At the end every
message has exactly one timeline entry, on the one card of its sender."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.chaos.faults import HubProcess, Report, expect_one_card_each, hub_env, query
from tests.mailservers import HOST, Dovecot, MailServerError, TcpProxy, mail_dir

MAILBOX = "crm@example.test"
T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
NAMES = ["Иван Петров", "Мария Сидорова", "Олег Кузнецов", "Анна Смирнова", "John Smith"]


@dataclass
class MailRun:
    messages: int = 40
    senders: int | None = None  # a quarter of the messages by default
    redeliver_share: float = 0.1
    faults: tuple[str, ...] = ("cut", "refuse", "cut")  # cut, refuse, dovecot-restart
    refuse_s: float = 1.0
    seed: int = 1
    settle_timeout_s: float = 90.0


@dataclass(frozen=True)
class Planned:
    message_id: str  # without angle brackets
    sender: str  # the address as the card must hold it (lower case)
    raw: bytes


def plan_messages(run: MailRun) -> list[Planned]:
    rng = random.Random(run.seed)
    count = max(1, run.senders or run.messages // 4)
    senders = [(NAMES[i % len(NAMES)], f"client{i}.{run.seed}@client.test") for i in range(count)]
    out = []
    for i in range(run.messages):
        name, address = senders[i] if i < count else rng.choice(senders)
        written = address.upper() if rng.random() < 0.3 else address  # any case, one card
        message = EmailMessage()
        message["From"] = f"{name} <{written}>"
        message["To"] = MAILBOX
        message["Subject"] = f"Заявка {i}"
        message["Date"] = format_datetime(T0 + timedelta(minutes=i))
        message_id = make_msgid(f"chaos{i}", domain="client.test")
        message["Message-ID"] = message_id
        message.set_content(f"Добрый день! Пришлите, пожалуйста, счёт №{i}.\n")
        raw = message.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        out.append(Planned(message_id.strip("<>"), address.lower(), raw))
    return out


async def run_mail(database_url: str, workdir: Path, run: MailRun) -> Report:
    report = Report("e-mail")
    plan = plan_messages(run)
    rng = random.Random(run.seed + 7)
    copies = plan + [rng.choice(plan) for _ in range(round(len(plan) * run.redeliver_share))]
    rng.shuffle(copies)
    report.figure(f"{len(plan)} messages from {len({p.sender for p in plan})} senders, "
                  f"{len(copies)} deliveries ({len(copies) - len(plan)} second copies), "
                  f"faults {', '.join(run.faults)}")
    with mail_dir("hub-chaos-mail-") as root:
        dovecot = Dovecot(root)
        dovecot.add_user(MAILBOX)
        dovecot.start()
        proxy = TcpProxy(HOST, dovecot.imap_port)
        await proxy.start()
        url = (f"imap://{quote(MAILBOX, safe='')}:secret@{HOST}:{proxy.port}/INBOX")
        hub = HubProcess(hub_env(database_url, HUB_EMAIL_IMAP_URL=url), workdir, "hub-mail")
        hub.start()
        try:
            await hub.wait_healthy()
            started = time.monotonic()
            delivered = await _deliver_with_faults(dovecot, proxy, copies, run, report)
            report.figure(f"delivered {delivered} over LMTP in {time.monotonic() - started:.1f}"
                          f" s; mailbox holds {dovecot.count(MAILBOX)}")
            stored = await _wait_stored(database_url, len(plan), run.settle_timeout_s)
            report.figure(f"all read after {time.monotonic() - started:.1f} s "
                          f"({stored} distinct messages ingested); IMAP connections "
                          f"{proxy.connections}, reconnects logged "
                          f"{hub.log_count('reconnecting in')}")
        finally:
            hub.stop()
            await proxy.stop()
            dovecot.stop()
    if hub.unexpected_exits:
        report.problem(f"the hub exited by itself: {hub.unexpected_exits}")
    await check_mail(database_url, plan, report)
    return report


async def _deliver_with_faults(dovecot: Dovecot, proxy: TcpProxy, copies: list[Planned],
                               run: MailRun, report: Report) -> int:
    """LMTP deliveries one after the other (retried while Dovecot is down), the faults at
    even shares of them."""
    marks = {len(copies) * (n + 1) // (len(run.faults) + 1): fault
             for n, fault in enumerate(run.faults)}
    retries = 0
    for index, item in enumerate(copies):
        if index in marks:
            await _fault(marks[index], dovecot, proxy, run, report, index)
        for _ in range(200):
            try:
                await asyncio.to_thread(dovecot.deliver, item.raw, MAILBOX)
                break
            except (OSError, MailServerError):
                retries += 1
                await asyncio.sleep(0.1)
        else:
            report.problem(f"LMTP delivery of {item.message_id} never succeeded")
        await asyncio.sleep(0.01)  # a trickle, so faults land while the hub is reading
    if retries:
        report.figure(f"LMTP deliveries retried {retries} times")
    return len(copies)


async def _fault(fault: str, dovecot: Dovecot, proxy: TcpProxy, run: MailRun, report: Report,
                 index: int) -> None:
    if fault == "cut":
        open_now = proxy.open_connections
        proxy.cut()
        what = f"IMAP connection cut (RST; {open_now} open)"
    elif fault == "refuse":
        proxy.cut()
        proxy.pause()
        await asyncio.sleep(run.refuse_s)
        proxy.resume()
        what = f"IMAP cut and new connections reset for {run.refuse_s:g} s"
    elif fault == "dovecot-restart":
        await asyncio.to_thread(dovecot.stop)
        await asyncio.sleep(0.5)
        await asyncio.to_thread(dovecot.start)
        proxy.target = (HOST, dovecot.imap_port)
        what = "Dovecot stopped and started again"
    else:
        raise ValueError(fault)
    report.figure(f"fault after {index} deliveries: {what}")


async def _wait_stored(database_url: str, want: int, limit_s: float) -> int:
    """Until the hub has ingested `want` distinct messages and a moment passes with nothing
    more (a doubled one would show up then), or `limit_s`."""
    deadline = time.monotonic() + limit_s
    got = -1
    while time.monotonic() < deadline:
        rows = await query(database_url, "SELECT COUNT(*) AS n FROM processed_event "
                                         "WHERE source = 'email'")
        got = int(rows[0]["n"])
        if got >= want:
            await asyncio.sleep(1.0)
            return got
        await asyncio.sleep(0.2)
    return got


async def check_mail(database_url: str, plan: list[Planned], report: Report) -> None:
    entries = await query(database_url, "SELECT external_id, client_id, status FROM interaction "
                                        "WHERE kind = 'email'")
    per_message: Counter[str] = Counter(str(e["external_id"]).strip("<>") for e in entries)
    report.expect("e-mail timeline entries", len(entries), len(plan))
    missing = [p.message_id for p in plan if per_message[p.message_id] == 0]
    doubled = [m for m, n in per_message.items() if n > 1]
    report.expect("messages without an entry", len(missing), 0)
    report.expect("messages with more than one entry", len(doubled), 0)
    owners = await expect_one_card_each(
        report, database_url, "email", "senders", {p.sender for p in plan})
    by_id: dict[str, Any] = defaultdict(list)
    for entry in entries:
        by_id[str(entry["external_id"]).strip("<>")].append(entry["client_id"])
    wrong = [p.message_id for p in plan
             if by_id.get(p.message_id) and by_id[p.message_id][0] != owners.get(p.sender)]
    report.expect("entries on another card than their sender's", len(wrong), 0)
