"""SIGTERM stops `hub serve` gracefully: it stops listening, lets the requests it is handling
finish, lets a message it is handing to the SMTP server finish (so it is neither lost nor sent
again after a restart), then exits 0. Real processes, a real SMTP server (aiosmtpd), and the
database's own locks to hold a request or a send in the middle."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import asyncpg
import pytest

from hub.models import Interaction, Outbox
from tests.helpers import GENERIC_SECRET, call_body, free_port, sign, wait_healthy
from tests.smtpserver import FROM, Sink, SmtpServer

pytestmark = pytest.mark.usefixtures("orm")


@contextlib.asynccontextmanager
async def hub_serve(
    database_url: str, **env: str
) -> AsyncIterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    environ = {**os.environ, "HUB_DATABASE_URL": database_url, "HUB_LOG_LEVEL": "WARNING",
               "HUB_TELEPHONY_GENERIC_SECRET": GENERIC_SECRET, **env}
    proc = subprocess.Popen(  # noqa: ASYNC220 (start-up only)
        [sys.executable, "-m", "hub", "serve", "--port", str(port)], env=environ,
        stdout=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            await wait_healthy(session, url, proc)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


async def until(check: Callable[[], Any], what: str, seconds: float = 15.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


async def exits(proc: subprocess.Popen[bytes], seconds: float = 30.0) -> int:
    code = await asyncio.to_thread(proc.wait, seconds)
    return int(code)


@contextlib.asynccontextmanager
async def writes_held(database_url: str) -> AsyncIterator[None]:
    """Nobody else can write a call's timeline entry until the block ends."""
    if database_url.startswith("sqlite"):
        conn = sqlite3.connect(database_url.removeprefix("sqlite://"), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")  # the write lock of the whole file
        try:
            yield
        finally:
            conn.execute("COMMIT")
            conn.close()
        return
    pg = await asyncpg.connect(database_url)
    try:
        async with pg.transaction():
            await pg.execute("LOCK TABLE interaction IN EXCLUSIVE MODE")  # reads still pass
            yield
    finally:
        await pg.close()


async def test_sigterm_lets_a_webhook_in_progress_finish_then_exits_0(database_url: str) -> None:
    body = call_body("ended", "stop-1", duration=42)
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body)}
    async with hub_serve(database_url) as (proc, url), aiohttp.ClientSession() as session:

        async def in_progress() -> bool:
            async with session.get(url + "/metrics") as resp:
                return "hub_webhooks_in_progress 1.0" in await resp.text()

        async with writes_held(database_url):
            request = asyncio.create_task(
                session.post(url + "/webhooks/telephony/generic", data=body, headers=headers))
            await until(in_progress, "the webhook to be in progress")
            proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            assert proc.poll() is None, "the hub must wait for the request it is handling"
            with pytest.raises(aiohttp.ClientConnectionError):  # no new requests taken
                async with aiohttp.ClientSession() as fresh:
                    await fresh.get(url + "/healthz")
        async with await request as resp:
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["duplicate"] is False
        assert await exits(proc) == 0
    assert await Interaction.filter(kind="call").count() == 1


class HeldSink(Sink):
    """Takes a message, then answers only when the test lets it."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.entered.set()
        await asyncio.to_thread(self.release.wait, 30)
        return await super().handle_DATA(server, session, envelope)


async def test_sigterm_lets_an_offer_being_sent_finish_and_it_is_sent_once(
    database_url: str, manager: dict[str, Any]
) -> None:
    smtp = SmtpServer()
    smtp.sink = sink = HeldSink()
    smtp.start()
    env = {"HUB_EMAIL_SMTP_URL": smtp.url, "HUB_EMAIL_FROM_ADDRESS": FROM}
    try:
        async with hub_serve(database_url, **env) as (proc, url), \
                aiohttp.ClientSession(headers=manager["headers"]) as session:
            async with session.post(url + "/api/clients", json={
                    "name": "Иван Петров", "emails": ["ivan@example.com"]}) as resp:
                assert resp.status == 201, await resp.text()
                card = await resp.json()
            async with session.post(f"{url}/api/clients/{card['id']}/offers",
                                    json={"template": "price", "channel": "email"}) as resp:
                assert resp.status == 202, await resp.text()
            assert await asyncio.to_thread(sink.entered.wait, 20), "the send never started"
            proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            assert proc.poll() is None, "the hub must finish the send it started"
            sink.release.set()
            assert await exits(proc) == 0
    finally:
        sink.release.set()
        smtp.stop()
    assert len(sink.received) == 1
    [row] = await Outbox.all()
    assert row.status == "sent" and row.attempts == 1  # so a restart has nothing to send again
