"""A local receiver of the hub's outgoing webhooks: a real aiohttp server on a free loopback
port that checks every request's signature and answers from a script (a status, `slow` to
answer after the hub's deadline, `drop` to cut the connection), then 200 once the script is
used up. Tests read what it accepted, in arrival order."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest_asyncio
from aiohttp import web

from tests.helpers import free_port


@dataclass
class Seen:
    """One request as the receiver saw it."""

    body: dict[str, Any]
    headers: dict[str, str]
    signature_ok: bool
    answer: str


@dataclass
class Receiver:
    url: str = ""
    secret: str = ""
    script: list[int | str] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    slow_s: float = 2.0
    runner: web.AppRunner | None = None
    port: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def accepted(self) -> list[dict[str, Any]]:
        """The bodies it answered 2xx, in order."""
        return [s.body for s in self.seen if s.answer.startswith("2")]

    async def wait_for(self, count: int, within: float = 20.0) -> list[dict[str, Any]]:
        """Until `count` bodies were accepted (or `within` seconds: then what there is)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while True:
                    self.arrived.clear()
                    if len(self.accepted) >= count:
                        break
                    await self.arrived.wait()
        return self.accepted

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        expected = "sha256=" + hmac.new(self.secret.encode(), raw, hashlib.sha256).hexdigest()
        given = request.headers.get("X-Hub-Signature-256", "")
        step: int | str = self.script.pop(0) if self.script else 200
        self.seen.append(Seen(json.loads(raw), dict(request.headers),
                              hmac.compare_digest(expected, given), str(step)))
        self.arrived.set()
        if step == "slow":
            await asyncio.sleep(self.slow_s)
            return web.Response(status=200)
        if step == "drop":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        assert isinstance(step, int)
        headers = {"Retry-After": "0"} if step in (429, 503) else {}
        return web.Response(status=step, text="answer", headers=headers)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app, handle_signals=False)
        await self.runner.setup()
        self.port = self.port or free_port()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        self.url = f"http://127.0.0.1:{self.port}/hook"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    await found.start()
    yield found
    await found.stop()
