"""The outbox worker against a real SMTP server (aiosmtpd on a free loopback port): sent once,
retried with backoff while the server is down or answers 4xx, failed on 5xx, rows left in
`sending` past the lease taken back after a restart, racing workers sending each row once."""

from __future__ import annotations

import asyncio
import email
import ssl
from collections.abc import Iterator
from datetime import timedelta
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from channels.smtp import OutgoingEmail, SmtpSender, build_message
from hub import outbox
from hub.db import now, run_program
from hub.errors import ConfigError, DeliveryError
from hub.models import Client, Interaction, Outbox
from hub.outbox import OutboxWorker, queue_email
from tests.helpers import free_port
from tests.smtpserver import FROM, Sink, SmtpServer


@pytest.fixture
def smtp_down() -> Iterator[SmtpServer]:
    server = SmtpServer()
    yield server
    server.stop()


@pytest.fixture
def smtp(smtp_down: SmtpServer) -> SmtpServer:
    smtp_down.start()
    return smtp_down


async def queued(to: str = "ivan@example.com", name: str = "Иван Петров") -> tuple[int, int]:
    """A card and one queued offer for it: (interaction id, outbox id)."""
    when = now()
    card = await Client.create(name=name, created_at=when, updated_at=when, activity_at=when)
    meta = {"template": "price", "version": 0, "language": None, "to": to}
    mail = OutgoingEmail(to=to, subject=f"Прайс для {name}", text=f"Здравствуйте, {name}!",
                         html=f"<p>{name}</p>", message_id=f"<{card.id}.test@example.test>",
                         date=when)
    entry = await run_program(lambda: queue_email("offer", card.id, None, mail, meta, when))
    row = await Outbox.get(interaction_id=entry["id"])
    return int(entry["id"]), row.id


def worker(server: SmtpServer) -> OutboxWorker:
    return OutboxWorker(SmtpSender(server.url, FROM, timeout=5))


async def test_a_queued_offer_is_sent_once_with_its_message_id(
    orm: None, smtp: SmtpServer
) -> None:
    interaction_id, outbox_id = await queued()
    sender = worker(smtp)
    assert await sender.run_pass() == 1
    assert await sender.run_pass() == 0
    assert len(smtp.sink.received) == 1
    message = smtp.sink.received[0]
    assert message["To"] == "ivan@example.com" and message["From"] == FROM
    assert message["Subject"] == "Прайс для Иван Петров"
    assert message["Date"]
    assert message.get_content_type() == "multipart/alternative"
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None and html is not None
    assert "Здравствуйте, Иван Петров!" in plain.get_content()
    assert "<p>Иван Петров</p>" in html.get_content()
    row = await Outbox.get(id=outbox_id)
    assert row.status == "sent" and row.attempts == 1 and row.sent_at is not None
    assert message["Message-ID"] == row.message_id
    entry = await Interaction.get(id=interaction_id)
    assert entry.status == "sent" and entry.meta["message_id"] == row.message_id
    assert entry.kind == "offer" and entry.direction == "out" and entry.channel == "email"


async def test_server_down_retries_with_backoff_then_sends_exactly_once(
    orm: None, smtp_down: SmtpServer
) -> None:
    interaction_id, outbox_id = await queued()
    sender = worker(smtp_down)
    assert await sender.run_pass() == 1
    row = await Outbox.get(id=outbox_id)
    assert row.status == "queued" and row.attempts == 1
    assert row.last_error and "unreachable" in row.last_error
    delay = (row.next_attempt_at - now()).total_seconds()
    assert 20 < delay <= 30
    entry = await Interaction.get(id=interaction_id)
    assert entry.status == "queued"  # retrying: still queued, the reason in meta
    assert entry.meta["attempts"] == 1 and "unreachable" in entry.meta["last_error"]
    assert "next_attempt_at" in entry.meta

    assert await sender.run_pass() == 0  # not due yet: the backoff holds
    smtp_down.start()
    later = now() + timedelta(minutes=1)
    assert await sender.run_pass(later) == 1
    assert await sender.run_pass(later + timedelta(hours=1)) == 0
    assert len(smtp_down.sink.received) == 1
    row = await Outbox.get(id=outbox_id)
    assert row.status == "sent" and row.attempts == 2
    entry = await Interaction.get(id=interaction_id)
    assert entry.status == "sent" and "last_error" not in entry.meta


async def test_a_4xx_answer_is_retried_a_5xx_answer_fails_with_the_reason(
    orm: None, smtp: SmtpServer
) -> None:
    interaction_id, outbox_id = await queued()
    sender = worker(smtp)
    smtp.sink.answer = "451 4.3.0 try again later"
    await sender.run_pass()
    row = await Outbox.get(id=outbox_id)
    assert row.status == "queued" and row.last_error and "451" in row.last_error

    smtp.sink.answer = "550 5.7.1 message rejected"
    await sender.run_pass(now() + timedelta(minutes=5))
    row = await Outbox.get(id=outbox_id)
    assert row.status == "failed" and row.attempts == 2
    assert row.last_error and "550" in row.last_error and "rejected" in row.last_error
    entry = await Interaction.get(id=interaction_id)
    assert entry.status == "failed" and "550 5.7.1 message rejected" in entry.meta["error"]
    assert await sender.run_pass(now() + timedelta(days=1)) == 0
    assert smtp.sink.received == []


async def test_retryable_errors_give_up_after_max_attempts(
    orm: None, smtp_down: SmtpServer
) -> None:
    interaction_id, outbox_id = await queued()
    sender = worker(smtp_down)
    at = now()
    for _ in range(outbox.MAX_ATTEMPTS):
        assert await sender.run_pass(at) == 1
        at += timedelta(hours=2)
    row = await Outbox.get(id=outbox_id)
    assert row.status == "failed" and row.attempts == outbox.MAX_ATTEMPTS
    assert (await Interaction.get(id=interaction_id)).status == "failed"


def test_backoff_doubles_and_is_capped() -> None:
    assert [outbox.backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert outbox.backoff(20) == timedelta(hours=1)


async def test_a_row_left_sending_past_the_lease_is_sent_once_after_a_restart(
    orm: None, smtp: SmtpServer
) -> None:
    _, stale_id = await queued()
    _, fresh_id = await queued("anna@example.com", "Анна")
    # a process claimed both and died; one claim is older than the lease
    await Outbox.filter(id=stale_id).update(status="sending", attempts=1,
                                            updated_at=now() - outbox.LEASE - timedelta(seconds=1))
    await Outbox.filter(id=fresh_id).update(status="sending", attempts=1, updated_at=now())
    sender = worker(smtp)  # the restarted process
    assert await sender.run_pass() == 1
    assert await sender.run_pass() == 0
    assert [m["To"] for m in smtp.sink.received] == ["ivan@example.com"]
    stale, fresh = await Outbox.get(id=stale_id), await Outbox.get(id=fresh_id)
    assert stale.status == "sent" and stale.attempts == 2
    assert fresh.status == "sending"  # still within its lease: left to its sender
    assert await sender.run_pass(now() + outbox.LEASE + timedelta(seconds=1)) == 1
    assert len(smtp.sink.received) == 2


async def test_racing_workers_send_each_row_once(orm: None, smtp: SmtpServer) -> None:
    ids = [(await queued(f"c{i}@example.com", f"Client {i}"))[1] for i in range(25)]
    workers = [worker(smtp) for _ in range(3)]
    counts = await asyncio.gather(*(w.run_pass() for w in workers))
    assert sum(counts) == len(ids)
    assert sorted(m["To"] for m in smtp.sink.received) == sorted(
        f"c{i}@example.com" for i in range(25))
    assert await Outbox.filter(status="sent").count() == len(ids)


async def test_without_a_sender_the_worker_does_nothing(orm: None) -> None:
    await queued()
    assert await OutboxWorker(None).run_pass() == 0
    assert await Outbox.filter(status="queued").count() == 1


def test_the_smtp_url_and_the_message() -> None:
    tls = SmtpSender("smtps://hub%40x:p%3Ass@mail.example.test", FROM)
    assert (tls.use_tls, tls.hostname, tls.port) == (True, "mail.example.test", 465)
    assert (tls.username, tls.password) == ("hub@x", "p:ss")
    plain = SmtpSender("smtp://mail.example.test:2525", FROM)
    assert (plain.use_tls, plain.port, plain.username) == (False, 2525, None)
    with pytest.raises(ConfigError):
        SmtpSender("http://mail.example.test", FROM)
    message_id = plain.message_id()
    assert message_id.startswith("<") and message_id.endswith("@example.test>")
    assert plain.message_id() != message_id
    mail = OutgoingEmail("ivan@example.com", "Прайс для Иван", "текст", None, message_id, now())
    raw = build_message(FROM, mail).as_bytes()
    assert b"=?utf-8?" in raw  # the subject is encoded
    parsed = email.message_from_bytes(raw, policy=default_policy)
    assert parsed["Subject"] == "Прайс для Иван" and parsed.get_content_type() == "text/plain"
    assert parsed["Message-ID"] == message_id


async def test_the_late_outcome_of_an_attempt_taken_back_is_ignored(orm: None) -> None:
    interaction_id, outbox_id = await queued()
    [first] = await run_program(lambda: outbox.claim(now(), 10))  # a sender that hangs
    later = now() + outbox.LEASE + timedelta(seconds=1)
    [second] = await run_program(lambda: outbox.claim(later, 10))  # taken back after the lease
    assert (first["attempts"], second["attempts"]) == (1, 2)
    late = await run_program(lambda: outbox.settle(
        outbox_id, 1, interaction_id, "failed", now(), {"error": "late"}))
    assert late is None
    entry = await run_program(lambda: outbox.settle(
        outbox_id, 2, interaction_id, "sent", now(), {"message_id": "<m@x>"}))
    assert entry is not None and entry["status"] == "sent"
    assert entry["meta"]["language"] is None and entry["meta"]["message_id"] == "<m@x>"
    assert "error" not in entry["meta"]
    assert (await Outbox.get(id=outbox_id)).status == "sent"


@pytest.mark.parametrize("scheme", ["smtp", "smtps"])
async def test_starttls_when_offered_and_implicit_tls(
    certificate: tuple[Path, Path], scheme: str
) -> None:
    cert, key = certificate
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    sink, port = Sink(), free_port()
    tls_kwargs: dict[str, Any] = (
        {"tls_context": server_ctx, "require_starttls": True} if scheme == "smtp"
        else {"ssl_context": server_ctx})
    controller = Controller(sink, hostname="127.0.0.1", port=port, server_hostname="localhost",
                            **tls_kwargs)
    controller.start()
    try:
        sender = SmtpSender(f"{scheme}://localhost:{port}", FROM,
                            tls_context=ssl.create_default_context(cafile=str(cert)))
        mail = OutgoingEmail("ivan@example.com", "Тест", "текст", "<p>html</p>",
                             sender.message_id(), now())
        assert await sender.send(mail)  # the server's answer to DATA
        untrusted = SmtpSender(f"{scheme}://localhost:{port}", FROM, timeout=5)
        with pytest.raises(DeliveryError) as refused:
            await untrusted.send(mail)  # a certificate nobody vouches for is not accepted
        assert refused.value.retryable
    finally:
        controller.stop()
    assert [m["Subject"] for m in sink.received] == ["Тест"]
