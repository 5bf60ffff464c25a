"""Shared by the fuzz tests: a hub with every channel on, and a way to run Hypothesis against it.

The app lives in the test's event loop; a property runs in a worker thread (Hypothesis is
synchronous) and sends each request on the loop that serves the app (`Remote`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from tests.providers import mango, twilio, zadarma
from tests.web.test_route_auth import full_settings

T = TypeVar("T")


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes


@dataclass
class Remote:
    """The app under the test client, callable from another thread."""

    client: Any
    loop: asyncio.AbstractEventLoop
    calls: int = 0

    def post(self, path: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        async def send() -> Answer:
            resp = await self.client.post(path, data=body, headers=dict(headers))
            return Answer(resp.status, resp.content_type, await resp.read())

        self.calls += 1
        return asyncio.run_coroutine_threadsafe(send(), self.loop).result(timeout=60)


async def in_thread(func: Callable[[], T]) -> T:
    """Run a (Hypothesis) test body in a worker thread while this loop keeps serving."""
    return await asyncio.get_running_loop().run_in_executor(None, func)


@pytest.fixture
def full_hub(make_client: Any, aiohttp_server: Any, telegram_api: Any) -> Any:
    """Build the hub with every channel on: each telephony provider, e-mail push, the Telegram
    webhook (its Bot API faked). The providers that place calls talk to local fakes of their
    APIs, so click-to-call and recording links get an answer (an unreachable provider is a
    documented 502, not what fuzzing is after)."""

    async def make() -> Any:
        settings = full_settings(telegram_api.url)
        for name, module in (("zadarma", zadarma), ("mango", mango), ("twilio", twilio)):
            server = await aiohttp_server(module.fake_api())
            settings["telephony"][name]["api_base"] = str(server.make_url("")).rstrip("/")
        return await make_client(**settings)

    return make
