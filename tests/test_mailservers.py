"""The private mail servers the e-mail tests run against: Dovecot takes LMTP deliveries and
serves them over IMAP (IDLE included), Postfix relays SMTP to it, the TCP proxy forwards and
breaks IMAP connections, and nothing keeps running once a server is stopped."""

from __future__ import annotations

import asyncio
import email.message
import re
import socket
from collections.abc import AsyncIterator, Callable

import aiosmtplib
import pytest
from aioimaplib import aioimaplib

from tests.mailservers import (
    HOST,
    Dovecot,
    MailServerError,
    Postfix,
    TcpProxy,
    group_members,
    mail_dir,
    require_mail_binaries,
)

USER = "bob@example.test"
PASSWORD = "s3cret word"  # a space, to prove the passwd-file and the URL cope
RAW = (b"From: Alice <alice@example.org>\r\nTo: bob@example.test\r\nSubject: =?utf-8?q?Hi?=\r\n"
       b"Message-ID: <m1@example.org>\r\n\r\nfirst line\r\n.dot line\r\n")


def _raw(subject: str, body: bytes = b"hello\r\n") -> bytes:
    return f"From: a@example.org\r\nTo: {USER}\r\nSubject: {subject}\r\n\r\n".encode() + body


async def _wait_for(check: Callable[[], bool]) -> None:
    """Poll a condition every 50 ms until it holds (10 s at most)."""
    for _ in range(200):
        if check():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("condition not met within 10 s")


async def _login(port: int, lost: asyncio.Future[Exception | None] | None = None
                 ) -> aioimaplib.IMAP4:
    def on_lost(exc: Exception | None) -> None:
        if lost is not None and not lost.done():
            lost.set_result(exc)

    client = aioimaplib.IMAP4(host=HOST, port=port, timeout=5, conn_lost_cb=on_lost)
    await client.wait_hello_from_server()
    assert (await client.login(USER, PASSWORD)).result == "OK"
    return client


def _uidvalidity(lines: list[bytes]) -> int:
    found = re.search(rb"UIDVALIDITY (\d+)", b" ".join(lines))
    assert found, lines
    return int(found.group(1))


@pytest.fixture
def bob(dovecot: Dovecot) -> str:
    return dovecot.add_user(USER, PASSWORD)


@pytest.fixture
async def proxy(dovecot: Dovecot) -> AsyncIterator[TcpProxy]:
    server = TcpProxy(HOST, dovecot.imap_port)
    await server.start()
    yield server
    await server.stop()


def test_lmtp_delivery_lands_in_the_mailbox(dovecot: Dovecot, bob: str) -> None:
    dovecot.deliver(RAW, bob)
    dovecot.append(_raw("appended"), bob, "Archive")
    assert dovecot.count(bob) == 1
    assert dovecot.count(bob, "Archive") == 1
    assert dovecot.uids(bob) == [1]
    assert "\\Seen" not in dovecot.flags(bob, 1)
    assert dovecot.imap_url(bob) == (
        f"imap://bob%40example.test:s3cret%20word@127.0.0.1:{dovecot.imap_port}/INBOX")


async def test_imap_sees_the_delivery_byte_exact(dovecot: Dovecot, bob: str) -> None:
    dovecot.deliver(RAW, bob)
    client = await _login(dovecot.imap_port)
    assert (await client.select("INBOX")).result == "OK"
    found = await client.uid_search("ALL")
    assert found.lines[0].split() == [b"1"]
    fetched = await client.uid("fetch", "1", "(BODY[])")
    assert fetched.result == "OK"
    assert bytes(fetched.lines[1]) == b"Return-Path: <sender@example.test>\r\n" + RAW
    await client.logout()
    assert "\\Seen" in dovecot.flags(bob, 1)  # a non-PEEK fetch marks it read


async def test_idle_gets_exists_after_lmtp(dovecot: Dovecot, bob: str) -> None:
    client = await _login(dovecot.imap_port)
    await client.select("INBOX")
    idle = await client.idle_start(timeout=10)
    await asyncio.to_thread(dovecot.deliver, _raw("pushed"), bob)
    push = await client.wait_server_push(timeout=5)
    assert any(b"EXISTS" in line for line in push), push
    client.idle_done()
    await asyncio.wait_for(idle, 5)
    await client.logout()


async def test_postfix_relays_smtp_to_dovecot(
    dovecot: Dovecot, postfix: Postfix, bob: str
) -> None:
    message = email.message.EmailMessage()
    message["From"] = "hub@example.test"
    message["To"] = bob
    message["Subject"] = "via postfix"
    message.set_content("postfix -> lmtp -> dovecot")
    await aiosmtplib.send(message, hostname=HOST, port=postfix.smtp_port)
    await _wait_for(lambda: dovecot.count(bob) == 1)
    assert "status=sent" in postfix.maillog.read_text()


async def test_postfix_refuses_other_domains(postfix: Postfix) -> None:
    async with aiosmtplib.SMTP(hostname=HOST, port=postfix.smtp_port) as smtp:
        await smtp.mail("hub@example.test")
        with pytest.raises(aiosmtplib.SMTPRecipientRefused):
            await smtp.rcpt("someone@example.org")


async def test_proxy_forwards_imap_and_cut_drops_it(
    dovecot: Dovecot, bob: str, proxy: TcpProxy
) -> None:
    dovecot.deliver(RAW, bob)
    lost: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()
    client = await _login(proxy.port, lost)
    assert (await client.select("INBOX")).result == "OK"
    assert proxy.connections == 1 and proxy.open_connections == 1
    assert proxy.bytes_up > 0 and proxy.bytes_down > 0
    proxy.cut()
    await asyncio.wait_for(lost, 5)
    assert proxy.open_connections == 0
    again = await _login(proxy.port)  # the proxy itself keeps listening
    await again.logout()
    assert proxy.connections == 2


async def _read_all(port: int, commands: list[bytes]) -> bytes:
    """Send IMAP commands on a raw connection and read until the peer drops it."""
    reader, writer = await asyncio.open_connection(HOST, port)
    received = await reader.readline()
    for command in commands:
        writer.write(command)
    try:
        while chunk := await reader.read(65536):
            received += chunk
    except ConnectionResetError:
        pass
    writer.close()
    return received


async def test_proxy_cut_after_breaks_a_fetch_midway(
    dovecot: Dovecot, bob: str, proxy: TcpProxy
) -> None:
    dovecot.deliver(_raw("small"), bob)
    dovecot.deliver(_raw("big", (b"x" * 76 + b"\r\n") * 2000), bob)
    proxy.cut_after(20_000)
    login = f'a LOGIN "{USER}" "{PASSWORD}"\r\n'.encode()
    got = await asyncio.wait_for(
        _read_all(proxy.port, [login, b"b SELECT INBOX\r\n", b"c UID FETCH 2 BODY[]\r\n"]), 5)
    assert len(got) == 20_000
    assert b"* 2 FETCH" in got and b"c OK" not in got
    assert proxy.open_connections == 0
    whole = await asyncio.wait_for(  # only the armed connection was cut
        _read_all(proxy.port, [login, b"b SELECT INBOX\r\n", b"c UID FETCH 2 BODY[]\r\n",
                               b"d LOGOUT\r\n"]), 5)
    assert b"c OK" in whole and len(whole) > 156_000


async def test_paused_proxy_drops_new_connections(
    dovecot: Dovecot, bob: str, proxy: TcpProxy
) -> None:
    proxy.pause()
    # the reset may surface at connect time or at the first read, as whichever error the
    # kernel's timing makes it: either way no greeting ever arrives
    with pytest.raises((OSError, asyncio.IncompleteReadError)):
        reader, writer = await asyncio.open_connection(HOST, proxy.port)
        try:
            await asyncio.wait_for(reader.readuntil(b"\n"), 5)
        finally:
            writer.close()
    proxy.resume()
    client = await _login(proxy.port)
    await client.logout()
    assert proxy.connections == 2


async def test_recreate_mailbox_changes_uidvalidity(
    dovecot: Dovecot, bob: str
) -> None:
    dovecot.deliver(RAW, bob)
    dovecot.deliver(RAW, bob)
    dovecot.append(RAW, bob, "Archive")
    client = await _login(dovecot.imap_port)
    before = _uidvalidity((await client.select("INBOX")).lines)
    await client.logout()

    new = dovecot.recreate_mailbox(bob)
    assert new != before and dovecot.count(bob) == 0
    dovecot.deliver(RAW, bob)
    assert dovecot.uids(bob) == [1]  # UIDs start over, as on a new mailbox
    client = await _login(dovecot.imap_port)
    assert _uidvalidity((await client.select("INBOX")).lines) == new
    await client.logout()

    archive = dovecot.status(bob, "Archive")["uidvalidity"]
    assert dovecot.recreate_mailbox(bob, "Archive") != archive
    assert dovecot.count(bob, "Archive") == 0


def _group_gone(pid: int | None) -> bool:
    assert pid is not None
    return not group_members(pid)


def test_stop_leaves_no_process_behind() -> None:
    require_mail_binaries()
    with mail_dir("hub-dovecot-") as droot, mail_dir("hub-postfix-") as proot:
        server = Dovecot(droot)
        server.start()
        relay = Postfix(proot, server.lmtp_port)
        relay.start()
        server.add_user(USER, PASSWORD)
        server.deliver(RAW, USER)  # spawns lmtp/auth children
        assert not _group_gone(server.pid) and not _group_gone(relay.pid)
        relay.stop()
        server.stop()
        assert _group_gone(server.pid) and _group_gone(relay.pid)
        relay.stop()  # idempotent
        server.stop()
        assert not server.running and not relay.running


def test_failed_start_shows_the_log() -> None:
    require_mail_binaries()
    with mail_dir("hub-dovecot-") as root, socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        server = Dovecot(root, imap_port=taken.getsockname()[1])
        with pytest.raises(MailServerError, match="(?s)dovecot exited.*Address already in use"):
            server.start()
        assert not server.running and _group_gone(server.pid)
