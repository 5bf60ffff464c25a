"""Small helpers shared by tests: signing generic webhooks, building call bodies, free ports
and waiting for a real `hub serve` process."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

GENERIC_SECRET = "test-generic-secret"
EMAIL_TOKEN = "test-email-token"


def sign(body: bytes, secret: str = GENERIC_SECRET) -> str:
    """The X-Hub-Signature-256 value for a body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def call_body(event: str, call_id: str, phone: str = "+79123456789", **extra: Any) -> bytes:
    """A generic telephony webhook body."""
    data: dict[str, Any] = {
        "event": f"call.{event}" if "." not in event else event,
        "call_id": call_id,
        "direction": "inbound",
        "from": phone,
        "to": "+74950000000",
        "extension": None,
        "timestamp": "2026-11-22T10:00:00+00:00",
    }
    data.update(extra)
    return json.dumps(data).encode()


async def post_call(client: Any, body: bytes, secret: str = GENERIC_SECRET) -> Any:
    """POST a signed generic call event through the test client."""
    return await client.post(
        "/webhooks/telephony/generic",
        data=body,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, secret)},
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_healthy(
    session: aiohttp.ClientSession, url: str, proc: subprocess.Popen[bytes], tries: int = 300
) -> None:
    """Poll a hub process's /healthz until it answers 200 (it migrates before it listens)."""
    for _ in range(tries):
        if proc.poll() is not None:
            raise RuntimeError(f"hub exited with {proc.returncode}")
        try:
            async with session.get(url + "/healthz") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise TimeoutError("hub did not become healthy")


@contextlib.asynccontextmanager
async def hub_processes(
    database_url: str, count: int = 2, **env: str
) -> AsyncIterator[list[str]]:
    """`count` real `hub serve` processes on one database (with every clock-driven loop), the
    extra HUB_* variables in `env`; their base URLs. Terminated (then killed) on the way out."""
    environ = {**os.environ, "HUB_DATABASE_URL": database_url, "HUB_LOG_LEVEL": "WARNING", **env}
    procs: list[subprocess.Popen[bytes]] = []
    urls = []
    try:
        for _ in range(count):
            port = free_port()
            procs.append(subprocess.Popen(  # noqa: ASYNC220 (start-up only)
                [sys.executable, "-m", "hub", "serve", "--port", str(port)],
                env=environ, stdout=subprocess.DEVNULL))
            urls.append(f"http://127.0.0.1:{port}")
        async with aiohttp.ClientSession() as session:
            for url, proc in zip(urls, procs, strict=True):
                await wait_healthy(session, url, proc)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
