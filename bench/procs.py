"""Child processes the benchmark owns: the hub, the baseline and one-shot `hub` commands.

Children run in their own session, so a Ctrl-C reaches only the benchmark, which then stops
them itself (SIGINT first — the graceful stop of aiohttp — then SIGKILL).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import aiohttp

STOP_TIMEOUT = 15.0
START_TIMEOUT = 120.0


class ChildError(RuntimeError):
    """A child process failed; the message carries the tail of its output."""


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def run_command(argv: list[str], env: dict[str, str], cwd: Path) -> str:
    """Run a one-shot command to completion; its stdout, or ChildError with its output."""
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True,
                          start_new_session=True, timeout=600, check=False)
    if done.returncode != 0:
        raise ChildError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout


class Server:
    """A long-running child serving HTTP on 127.0.0.1:port."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path,
                 port: int) -> None:
        self.name = name
        self.port = port
        self.log = cwd / f"{name}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_healthy(self, session: aiohttp.ClientSession) -> None:
        """Poll GET /healthz until it answers 200 (the hub migrates before it listens)."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ChildError(f"{self.name} exited {self.proc.returncode}:\n{tail(self.log)}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(self.url + "/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.05)
        raise ChildError(f"{self.name} did not become healthy:\n{tail(self.log)}")

    def rss_mib(self) -> float | None:
        """Resident set size from /proc (psutil is not a dependency)."""
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return None

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far, all threads."""
        try:
            stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        except OSError:
            return 0.0
        fields = stat.rsplit(")", 1)[1].split()  # the command name may contain spaces
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """SIGINT, then SIGKILL if it lingers; idempotent."""
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Children:
    """Every server started inside the `with` block is stopped when it ends, however it ends."""

    def __init__(self) -> None:
        self.servers: list[Server] = []

    def __enter__(self) -> Children:
        return self

    def start(self, name: str, argv: list[str], env: dict[str, str], cwd: Path,
              port: int) -> Server:
        server = Server(name, argv, env, cwd, port)
        self.servers.append(server)
        return server

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for server in reversed(self.servers):
            server.stop()


def python() -> str:
    """The interpreter running the benchmark (its environment has the hub installed)."""
    return sys.executable


def child_env(**settings: str) -> dict[str, str]:
    """The inherited environment without stray HUB_* settings, plus the given ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    # the load generator is one address sending far more than a provider would: the hub's
    # per-source webhook limit (429 past it) would measure itself, not the hub
    env["HUB_WEBHOOK_RATE_PER_SOURCE"] = "0"
    env.update(settings)
    return env
