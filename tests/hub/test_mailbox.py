"""The IMAP listener against a real, private Dovecot (IMAP + LMTP) and Postfix: mail delivered
to the company mailbox reaches its card through IDLE within seconds; a restart, a connection cut
in the middle of a FETCH and a rebuilt mailbox (new UIDVALIDITY) lose and double nothing; two
listeners share one mailbox; seen/move options; mail sent over SMTP through Postfix arrives."""

from __future__ import annotations

import asyncio
import contextlib
import email.message
import json
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from aioimaplib import aioimaplib

from channels.smtp import OutgoingEmail, SmtpSender
from hub import mailbox as hub_mailbox
from hub.app import create_app
from hub.db import now
from hub.keys import BUS
from hub.mailbox import MailboxListener
from hub.models import Client, Interaction, MailboxState
from hub.pipeline import Pipeline
from hub.settings import EmailSettings
from tests.mailservers import Dovecot, Postfix, TcpProxy, mail_dir

MAILBOX = "sales@example.test"
WAIT_S = 15.0


def message(n: int, sender: str | None = None, size: int = 0, **headers: str) -> bytes:
    msg = email.message.EmailMessage()
    msg["From"] = sender or f"Клиент {n} <client{n}@example.ru>"
    msg["To"] = MAILBOX
    msg["Subject"] = f"Заявка №{n}"
    msg["Message-ID"] = f"<m{n}@example.ru>"
    msg["Date"] = "Mon, 30 Nov 2026 10:00:00 +0300"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(f"Добрый день! Заявка номер {n}.\n" + "x" * size)
    return msg.as_bytes()


def settings(url: str, **extra: Any) -> EmailSettings:
    values: dict[str, Any] = {"imap_url": url, "from_address": "sales@example.test",
                              "imap_idle_seconds": 30, **extra}
    return EmailSettings(**values)


async def entries() -> int:
    return await Interaction.filter(source="email").count()


async def wait_for(check: Callable[[], Awaitable[bool]], within: float = WAIT_S) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


async def count_is(n: int) -> None:
    async def check() -> bool:
        return await entries() >= n
    await wait_for(check)
    await asyncio.sleep(0.2)  # and nothing more comes
    assert await entries() == n


@contextlib.asynccontextmanager
async def listening(url: str, **extra: Any) -> AsyncIterator[MailboxListener]:
    listener = MailboxListener(settings(url, **extra), Pipeline("RU").ingest,
                               command_timeout=5.0, backoff_start=0.1)
    task = asyncio.create_task(listener.run())
    try:
        yield listener
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def connected(listener: MailboxListener) -> None:
    await asyncio.wait_for(listener.connected.wait(), WAIT_S)


@pytest.fixture
def mailbox(dovecot: Dovecot) -> str:
    dovecot.add_user(MAILBOX, "secret")
    return dovecot.imap_url(MAILBOX)


async def test_mail_reaches_its_card_through_idle(
    orm: None, dovecot: Dovecot, mailbox: str
) -> None:
    dovecot.deliver(message(1), MAILBOX)  # waiting before the hub starts
    async with listening(mailbox) as listener:
        await connected(listener)
        await count_is(1)
        started = asyncio.get_running_loop().time()
        dovecot.deliver(message(2), MAILBOX)  # pushed while the listener IDLEs
        await count_is(2)
        latency = asyncio.get_running_loop().time() - started
    assert latency < 5.0, latency
    assert listener.sessions == 1
    card = await Client.get(name="Клиент 2")
    entry = await Interaction.get(external_id="<m2@example.ru>")
    assert entry.client_id == card.id and entry.text.startswith("Добрый день!")  # type: ignore[attr-defined]
    state = await MailboxState.get()
    assert state.last_uid == 2 and state.uidvalidity == dovecot.status(MAILBOX)["uidvalidity"]
    assert "\\Seen" not in dovecot.flags(MAILBOX, 1)  # read with PEEK: left as it was
    assert dovecot.count(MAILBOX) == 2  # never deleted


async def test_a_restart_resumes_after_the_last_message(
    orm: None, dovecot: Dovecot, mailbox: str
) -> None:
    for n in range(1, 4):
        dovecot.deliver(message(n), MAILBOX)
    async with listening(mailbox) as first:
        await count_is(3)
    assert first.ingested == 3
    for n in range(4, 6):
        dovecot.deliver(message(n), MAILBOX)  # while the hub is down
    async with listening(mailbox) as second:
        await count_is(5)
    assert second.ingested == 2  # only what it had not seen
    assert (await MailboxState.get()).last_uid == 5
    assert (await MailboxState.get()).owner is None  # a clean stop hands the mailbox over


async def test_a_connection_cut_mid_fetch_loses_and_doubles_nothing(
    orm: None, dovecot: Dovecot, mailbox: str
) -> None:
    for n in range(1, 41):
        dovecot.deliver(message(n, size=20_000), MAILBOX)
    proxy = TcpProxy("127.0.0.1", dovecot.imap_port)
    await proxy.start()
    try:
        # the first two sessions die in the middle of their message bodies
        proxy.cut_after(150_000, connections=2)
        url = mailbox.replace(f":{dovecot.imap_port}/", f":{proxy.port}/")
        async with listening(url) as listener:
            await count_is(40)
            assert listener.sessions >= 3
            dovecot.deliver(message(41), MAILBOX)
            await count_is(41)
            proxy.cut()  # and once more while it IDLEs
            dovecot.deliver(message(42), MAILBOX)
            await count_is(42)
    finally:
        await proxy.stop()
    assert await Interaction.filter(external_id="<m7@example.ru>").count() == 1
    assert await Client.all().count() == 42


async def test_a_rebuilt_mailbox_is_read_again_without_doubles(
    orm: None, dovecot: Dovecot, mailbox: str
) -> None:
    for n in (1, 2):
        dovecot.deliver(message(n), MAILBOX)
    async with listening(mailbox):
        await count_is(2)
    dovecot.recreate_mailbox(MAILBOX)  # UIDVALIDITY changes, UIDs start from 1 again
    for n in (1, 2, 3):  # the old ones restored from a backup, and a new one
        dovecot.deliver(message(n), MAILBOX)
    async with listening(mailbox) as listener:
        await count_is(3)
    assert listener.ingested == 3  # all read again; the two known ones changed nothing
    state = await MailboxState.get()
    assert state.last_uid == 3 and state.uidvalidity == dovecot.status(MAILBOX)["uidvalidity"]


async def test_without_idle_the_mailbox_is_polled(
    orm: None, dovecot: Dovecot, mailbox: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = aioimaplib.IMAP4.has_capability
    monkeypatch.setattr(aioimaplib.IMAP4, "has_capability",
                        lambda self, name: name != "IDLE" and real(self, name))
    async with listening(mailbox, imap_poll_seconds=1) as listener:
        await connected(listener)
        dovecot.deliver(message(1), MAILBOX)
        await count_is(1)


async def test_messages_can_be_marked_seen_or_moved_once_on_their_card(
    orm: None, dovecot: Dovecot, mailbox: str
) -> None:
    dovecot.deliver(message(1), MAILBOX)
    async with listening(mailbox, imap_mark_seen=True):
        await count_is(1)
    assert "\\Seen" in dovecot.flags(MAILBOX, 1)

    dovecot.doveadm("mailbox", "create", "-u", MAILBOX, "Processed")
    dovecot.deliver(message(2), MAILBOX)
    async with listening(mailbox, imap_move_to="Processed"):
        await count_is(2)
        await wait_for(lambda: _is(dovecot.count(MAILBOX, "Processed") == 1))
    assert dovecot.count(MAILBOX) == 1  # message 1 stays; message 2 moved


async def _is(value: bool) -> bool:
    return value


async def test_two_listeners_share_one_mailbox(
    orm: None, dovecot: Dovecot, mailbox: str
) -> None:
    for n in range(1, 11):
        dovecot.deliver(message(n), MAILBOX)
    async with listening(mailbox) as one, listening(mailbox) as two:
        await count_is(10)
        dovecot.deliver(message(11), MAILBOX)
        await count_is(11)
    assert {one.sessions, two.sessions} == {0, 1}  # one held the mailbox, the other waited
    assert one.ingested + two.ingested == 11


async def test_a_refused_login_is_retried_without_harm(
    orm: None, dovecot: Dovecot, mailbox: str
) -> None:
    wrong = dovecot.imap_url(MAILBOX, password="wrong")
    async with listening(wrong) as listener:
        await wait_for(lambda: _is(listener.sessions >= 2), within=10)
        assert not listener.connected.is_set()
    assert await entries() == 0


async def test_mail_sent_over_smtp_through_postfix_reaches_the_card(
    orm: None, dovecot: Dovecot, postfix: Postfix, mailbox: str
) -> None:
    async with listening(mailbox) as listener:
        await connected(listener)
        await aiosmtplib.send(message(1, "Анна <anna@example.ru>"), sender="anna@example.ru",
                              recipients=[MAILBOX], hostname="127.0.0.1",
                              port=postfix.smtp_port, timeout=10)
        await count_is(1)
    card = await Client.get(name="Анна")
    assert await Interaction.filter(client_id=card.id, kind="email").count() == 1


async def test_our_mail_goes_out_through_postfix_into_the_clients_mailbox(
    dovecot: Dovecot, postfix: Postfix
) -> None:
    client = dovecot.add_user("ivan@example.test", "secret")
    sender = SmtpSender(f"smtp://127.0.0.1:{postfix.smtp_port}", "sales@example.test")
    mail = OutgoingEmail(to=client, subject="Прайс-лист", text="Здравствуйте, Иван!",
                         html="<p>Здравствуйте, Иван!</p>", message_id=sender.message_id(),
                         date=now(), in_reply_to="<q1@example.test>")
    answer = await sender.send(mail)
    assert answer.startswith("2.0.0")
    await wait_for(lambda: _is(dovecot.count(client) == 1))
    imap = aioimaplib.IMAP4("127.0.0.1", dovecot.imap_port, timeout=10)
    await imap.wait_hello_from_server()
    await imap.login(client, "secret")
    await imap.select("INBOX")
    found = await imap.uid("fetch", "1:*", "(BODY.PEEK[])")
    raw = next(bytes(line) for line in found.lines if isinstance(line, bytearray))
    await imap.logout()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Message-ID"] == mail.message_id and parsed["Subject"] == "Прайс-лист"
    assert parsed["In-Reply-To"] == "<q1@example.test>"


async def test_the_running_hub_listens_and_tells_managers(
    aiohttp_client: Any, make_settings: Any, orm: None, dovecot: Dovecot, mailbox: str,
    manager: dict[str, Any],
) -> None:
    app = create_app(make_settings(email={"imap_url": mailbox, "imap_idle_seconds": 30}),
                     manage_db=False, background=True)
    client = await aiohttp_client(app)
    listener = app[hub_mailbox.MAILBOX]
    assert listener is not None
    await connected(listener)
    sub = app[BUS].subscribe(manager["manager"].id)
    dovecot.deliver(message(1), MAILBOX)
    event = json.loads(await asyncio.wait_for(sub.queue.get(), WAIT_S) or "")
    assert event["type"] == "message.in" and event["created"] is True
    assert event["client"]["name"] == "Клиент 1"
    assert event["interaction"]["meta"]["subject"] == "Заявка №1"
    metrics = await (await client.get("/metrics")).text()
    assert 'hub_ingested_events_total{outcome="stored",source="imap"} 1.0' in metrics


async def test_imaps_with_a_verified_certificate(
    orm: None, certificate: tuple[Path, Path]
) -> None:
    cert, _ = certificate
    with mail_dir("hub-dovecot-tls-") as root:
        server = Dovecot(root, tls=certificate)
        server.start()
        try:
            server.add_user(MAILBOX, "secret")
            server.deliver(message(1), MAILBOX)
            url = server.imap_url(MAILBOX).replace("imap://", "imaps://").replace(
                f":{server.imap_port}/", f":{server.imaps_port}/")
            listener = MailboxListener(settings(url), Pipeline("RU").ingest,
                                       tls_context=ssl.create_default_context(cafile=str(cert)),
                                       command_timeout=5.0, backoff_start=0.1)
            task = asyncio.create_task(listener.run())
            try:
                await count_is(1)
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            assert listener.sessions == 1
        finally:
            server.stop()


async def test_a_huge_message_is_recorded_by_its_headers(
    orm: None, dovecot: Dovecot, mailbox: str
) -> None:
    dovecot.deliver(message(1, size=200_000), MAILBOX)
    dovecot.deliver(message(2), MAILBOX)
    async with listening(mailbox, imap_max_message_bytes=65536):
        await count_is(2)
    big = await Interaction.get(external_id="<m1@example.ru>")
    assert big.meta["subject"] == "Заявка №1" and "only its headers were read" in big.text
    assert (await Client.get(id=big.client_id)).name == "Клиент 1"  # type: ignore[attr-defined]
    assert dovecot.count(MAILBOX) == 2  # it stays in the mailbox


async def test_a_mailbox_with_a_long_backlog_is_read_in_windows(
    orm: None, dovecot: Dovecot, mailbox: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More messages than aioimaplib can take in one answer (it recursed per line and broke
    at about a thousand): sizes are asked for a window of UIDs at a time."""
    dovecot.deliver(message(0), MAILBOX)
    new = dovecot.maildir(MAILBOX) / "new"
    for n in range(1, 1201):  # dropped straight into the Maildir: a backlog in a blink
        path = new / f"1700000000.M{n}P1.bench"
        path.write_bytes(message(n))
        os.chown(path, 65534, 65534)
    async with listening(mailbox):
        await count_is(1201)
    assert (await MailboxState.get()).last_uid == 1201


async def test_the_reconnect_wait_grows_only_while_connecting_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sessions that had the mailbox selected and then were cut are tried again after the
    shortest wait, however many there were; the wait doubles only while connecting fails."""
    settings = EmailSettings(imap_url="imap://crm:secret@127.0.0.1:1/INBOX")
    listener = MailboxListener(settings, lambda event: None)  # type: ignore[arg-type,return-value]
    outcomes = iter(["selected", "selected", "selected", "refused", "refused", "refused",
                     "selected", "refused"])
    waits: list[float] = []

    async def take_lease() -> bool:
        return True

    async def session() -> None:
        if next(outcomes) == "selected":
            listener.connected.set()
            raise OSError("connection reset by peer")
        raise OSError("connection refused")

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 8:
            raise asyncio.CancelledError

    monkeypatch.setattr(listener, "_take_lease", take_lease)
    monkeypatch.setattr(listener, "_release_lease", take_lease)
    monkeypatch.setattr(listener, "_session", session)
    monkeypatch.setattr(hub_mailbox.asyncio, "sleep", sleep)
    with pytest.raises(asyncio.CancelledError):
        await listener.run()
    assert waits == [1.0, 1.0, 1.0, 2.0, 4.0, 8.0, 1.0, 2.0]
