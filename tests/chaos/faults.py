"""What the chaos runs break and how they look at the result: `hub serve` as a child process
that can be SIGKILLed and started again, a private PostgreSQL cluster that can be restarted
under it, a sender that retries like a provider, and plain SQL reads of the hub's database.

Used by the quick runs in tests/chaos/ and by the full run, bench/chaos.py."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]  # the repository: its `hub` is the one run
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


@dataclass
class Report:
    """What one scenario did (`figures`) and what it found wrong (`problems`)."""

    name: str
    figures: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def figure(self, text: str) -> None:
        self.figures.append(text)

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def expect(self, what: str, got: Any, want: Any) -> None:
        """A figure line; a problem too when `got` is not `want`."""
        self.figure(f"{what}: {got} (expected {want})")
        if got != want:
            self.problem(f"{what}: {got}, expected {want}")

    def text(self) -> str:
        verdict = "PASS" if self.ok else "FAIL"
        lines = [f"[{self.name}] {verdict}", *(f"  {line}" for line in self.figures)]
        lines += [f"  PROBLEM: {line}" for line in self.problems[:40]]
        if len(self.problems) > 40:
            lines.append(f"  ... and {len(self.problems) - 40} more problems")
        return "\n".join(lines)


def hub_env(database_url: str, **settings: str) -> dict[str, str]:
    """The environment of a hub child: no stray HUB_* or CHAOS_* of ours, the repository first
    on the path (a worktree's `hub` shadows an installed one), and the given settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "CHAOS_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update({"HUB_DATABASE_URL": database_url, "HUB_LOG_LEVEL": "WARNING",
                "HUB_CONFIG": os.devnull})
    env.update(settings)
    return env


def hub_command(*args: str, env: dict[str, str], cwd: Path) -> str:
    """Run a one-shot `hub` command (through the launcher); its stdout."""
    done = subprocess.run([sys.executable, "-m", "tests.chaos.launch", *args], env=env,
                          cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"hub {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done.stdout


class HubProcess:
    """`hub serve` on a fixed free port, run through tests/chaos/launch.py (which can shorten
    the outbox's retry waits), in its own session; output goes to `log`."""

    def __init__(self, env: dict[str, str], workdir: Path, name: str = "hub") -> None:
        self.env = env
        self.workdir = workdir
        self.port = free_port()
        self.log = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills = 0
        self.starts = 0
        self.unexpected_exits: list[int] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.chaos.launch", "serve", "--port", str(self.port)],
                env=self.env, cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        self.starts += 1

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def wait_healthy(self, limit_s: float = START_TIMEOUT) -> None:
        """Poll /healthz until 200; a hub that exits meanwhile is started again (counted)."""
        deadline = time.monotonic() + limit_s
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while time.monotonic() < deadline:
                if not self.alive():
                    self.note_exit()
                    await asyncio.sleep(0.5)
                    self.start()
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(self.url + "/healthz") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.05)
        raise RuntimeError(f"hub did not become healthy; log {self.log}:\n{self.tail()}")

    def note_exit(self) -> None:
        if self.proc is not None and self.proc.returncode is not None:
            self.unexpected_exits.append(self.proc.returncode)
            self.proc = None

    def kill(self) -> None:
        """SIGKILL: no clean stop, nothing flushed, no lease released."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.kills += 1
        self.proc = None

    async def restart_after_kill(self) -> None:
        self.kill()
        self.start()
        await self.wait_healthy()

    def stop(self) -> None:
        """SIGINT (the clean stop), then SIGKILL if it lingers; safe to call twice."""
        if self.proc is None or self.proc.poll() is not None:
            self.proc = None
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def log_count(self, needle: str) -> int:
        try:
            return self.log.read_text(errors="replace").count(needle)
        except OSError:
            return 0


async def keep_alive(hub: HubProcess, stop: asyncio.Event) -> None:
    """Start the hub again whenever it exits by itself (that is counted, and reported)."""
    while not stop.is_set():
        if hub.proc is not None and hub.proc.poll() is not None:
            hub.note_exit()
            hub.start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.2)


# -- a private PostgreSQL cluster -------------------------------------------------------------


def postgres_bin() -> Path | None:
    """The newest PostgreSQL server binaries installed (Debian: /usr/lib/postgresql/N/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(found[-1]).parent if found else None


def private_postgres_possible() -> str | None:
    """None when a private cluster can be made here, else why not."""
    if postgres_bin() is None:
        return "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin"
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root without runuser"
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run the cluster as"
    return None


class PrivatePostgres:
    """A throwaway cluster in a temp directory on a free loopback port, trust auth, started and
    restarted with pg_ctl. As root it runs as the postgres user (initdb refuses root).

    fsync is off (the machine does not crash in these runs, only processes do), but
    synchronous_commit stays on: an immediate stop must not lose what was committed."""

    def __init__(self) -> None:
        binary = postgres_bin()
        assert binary is not None
        self.bin = binary
        # a directory of its own that the postgres user can enter (pytest's tmp_path is 0700)
        self.root = Path(tempfile.mkdtemp(prefix="hub-chaos-pg-"))
        self.data = self.root / "data"
        self.logfile = self.root / "postgres.log"
        self.port = free_port()
        self.restarts = 0

    def _as_owner(self, *args: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *args]
        return list(args)

    def _run(self, *args: str, timeout: float = 60) -> None:
        done = subprocess.run(self._as_owner(*args), capture_output=True, text=True,
                              timeout=timeout, check=False, cwd="/")
        if done.returncode != 0:
            log = self.logfile.read_text(errors="replace")[-2000:] if self.logfile.exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed: {done.stderr}{done.stdout}\n{log}")

    def start(self) -> None:
        self.root.chmod(0o755)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        if not self.data.exists():
            self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                      "-A", "trust", "-E", "UTF8", "--no-sync")
        self._pg_ctl("start")

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c full_page_writes=off -c max_connections=200")
        self._run(str(self.bin / "pg_ctl"), action, "-D", str(self.data), "-l",
                  str(self.logfile), "-w", "-t", "60", "-o", options, *extra)

    def restart(self, mode: str = "immediate") -> None:
        """Stop (fast: sessions are ended; immediate: the server is killed and recovers from
        its WAL on start) and start again on the same port."""
        self._pg_ctl("restart", "-m", mode)
        self.restarts += 1

    def stop(self) -> None:
        """Stop the server and remove its files; safe to call twice."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._run(str(self.bin / "pg_ctl"), "stop", "-D", str(self.data), "-m",
                          "immediate", "-w")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    async def create_database(self, name: str) -> str:
        import asyncpg

        conn = await asyncpg.connect(self.url())
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.url(name)


# -- reading the hub's database -------------------------------------------------------------


async def query(database_url: str, sql: str) -> list[dict[str, Any]]:
    """Rows of one read (no parameters: the callers build constant SQL)."""
    if database_url.startswith("sqlite://"):
        path = database_url.removeprefix("sqlite://")

        def read() -> list[dict[str, Any]]:
            conn = sqlite3.connect(path, timeout=30)
            conn.row_factory = sqlite3.Row
            try:
                return [dict(row) for row in conn.execute(sql)]
            finally:
                conn.close()

        return await asyncio.to_thread(read)
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        return [dict(row) for row in await conn.fetch(sql)]
    finally:
        await conn.close()


async def scalar(database_url: str, sql: str) -> Any:
    rows = await query(database_url, sql)
    return next(iter(rows[0].values())) if rows else None


def as_dict(value: Any) -> dict[str, Any]:
    """A JSON column as a dict, from either database."""
    import json

    if value is None:
        return {}
    return dict(json.loads(value)) if isinstance(value, str | bytes) else dict(value)


# -- a sender that retries like a provider -----------------------------------------------------


class Refused(Exception):
    """The hub answered a delivery with a 4xx: a provider would not retry that."""


@dataclass
class Courier:
    """POSTs each delivery until the hub answers 2xx: connection errors, timeouts, 429 and 5xx
    are retried after a short growing pause (with jitter); another 4xx is an error."""

    session: aiohttp.ClientSession
    rng: random.Random = field(default_factory=lambda: random.Random(1))
    give_up_s: float = 180.0
    sent: int = 0
    attempts: int = 0
    retries: Counter[str] = field(default_factory=Counter)

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
        deadline = time.monotonic() + self.give_up_s
        pause = 0.05
        while True:
            self.attempts += 1
            try:
                async with self.session.post(url, data=body, headers=headers) as response:
                    payload = await response.read()
                    if 200 <= response.status < 300:
                        self.sent += 1
                        import json

                        return dict(json.loads(payload)) if payload else {}
                    if response.status < 500 and response.status != 429:
                        raise Refused(f"HTTP {response.status}: {payload[:300]!r}")
                    self.retries[f"HTTP {response.status}"] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.retries[type(exc).__name__] += 1
            if time.monotonic() > deadline:
                raise TimeoutError(f"no 2xx for a delivery within {self.give_up_s:.0f} s")
            await asyncio.sleep(pause * (0.5 + self.rng.random()))
            pause = min(pause * 2, 1.0)

    def describe(self) -> str:
        retried = ", ".join(f"{k} ×{v}" for k, v in self.retries.most_common()) or "none"
        return f"{self.sent} deliveries in {self.attempts} attempts; retried: {retried}"


async def cards_without_identity(database_url: str) -> int:
    """Cards holding no phone, e-mail or chat at all: what a doubled card would leave behind
    (a card made by an ingest always has the identity it was made for)."""
    rows = await query(database_url, "SELECT COUNT(*) AS n FROM client c WHERE NOT EXISTS "
                                     "(SELECT 1 FROM identity i WHERE i.client_id = c.id)")
    return int(rows[0]["n"])


async def expect_one_card_each(report: Report, database_url: str, kind: str, who: str,
                               values: set[str]) -> dict[str, Any]:
    """Each of `values` (phones or addresses, identities of `kind`) has a card, a card of its
    own, and no card was left without an identity; each identity's card id."""
    owners = {r["value"]: r["client_id"] for r in await query(
        database_url, f"SELECT value, client_id FROM identity WHERE kind = '{kind}'")}  # noqa: S608
    report.expect(f"{who} with a card", sum(1 for v in values if v in owners), len(values))
    report.expect(f"distinct cards of the {who}", len({owners.get(v) for v in values}),
                  len(values))
    report.expect("cards without any identity", await cards_without_identity(database_url), 0)
    return owners
