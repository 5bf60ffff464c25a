"""The `hub` command, run as a real process from a directory that is not the project's:
migrate, managers add (with a password from stdin), managers password, demo, serve (health,
auth, SIGTERM), and start-up errors."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from hub import cli
from hub.demo import PEOPLE, fill_demo
from hub.errors import ValidationError
from hub.identity import Kind
from hub.models import Client, Identity, Interaction, Reminder, ReminderStatus
from hub.passwords import verify_password
from hub.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = os.environ.get("HUB_TEST_DATABASE_URL", "")


def hub_env(**extra: str) -> dict[str, str]:
    """The environment of a `hub` process: ours without HUB_* settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(extra)
    return env


def run_hub(
    cwd: Path, *args: str, timeout: float = 30, stdin_text: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """`hub *args` in `cwd`; its stdin is `stdin_text`, or empty."""
    return subprocess.run(
        [sys.executable, "-m", "hub", *args],
        cwd=cwd,
        env=hub_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **({"input": stdin_text} if stdin_text is not None else {"stdin": subprocess.DEVNULL}),
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, token: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, headers={"Authorization": f"Bearer {token}"} if token else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310 (local URL)
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def wait_healthy(proc: subprocess.Popen[str], base: str, deadline: float = 60) -> tuple[int, Any]:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            pytest.fail(f"hub serve exited with {proc.returncode}")
        try:
            return http_get(base + "/healthz")
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    pytest.fail("hub serve did not answer /healthz in time")


def dockerfile_healthcheck() -> str:
    """The Python code the Docker image's HEALTHCHECK runs."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    match = re.search(r'^HEALTHCHECK .*CMD python -c "(.+?)"', text, re.M)
    assert match is not None
    return match.group(1)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty directory outside the project: `hub` must not need the checkout as cwd."""
    path = tmp_path / "elsewhere"
    path.mkdir()
    return path


def test_migrate_twice_creates_the_schema_once(workdir: Path) -> None:
    first = run_hub(workdir, "migrate", HUB_DATABASE_URL="sqlite://./hub.db")
    assert first.returncode == 0, first.stderr
    assert (workdir / "hub.db").is_file()
    second = run_hub(workdir, "migrate", HUB_DATABASE_URL="sqlite://./hub.db")
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "schema is up to date"


def test_managers_add_prints_a_token_that_opens_the_served_api(workdir: Path) -> None:
    db = {"HUB_DATABASE_URL": "sqlite://./hub.db"}
    added = run_hub(
        workdir,
        "managers",
        "add",
        "Olga Orlova",
        "--email",
        "olga@example.com",
        "--extension",
        "101",
        "--role",
        "admin",
        **db,
    )
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"hub_[A-Za-z0-9_-]{20,}", token)

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub", "serve"],
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=hub_env(HUB_PORT=str(port), **db),
    )
    try:
        base = f"http://127.0.0.1:{port}"
        assert wait_healthy(proc, base) == (200, {"status": "ok", "database": "up"})
        status, body = http_get(base + "/api/managers", token)
        assert status == 200
        assert [m["name"] for m in body["items"]] == ["Olga Orlova"]
        assert body["items"][0]["extension"] == "101" and body["items"][0]["role"] == "admin"
        status, body = http_get(base + "/api/managers", "hub_wrong")
        assert status == 401 and "error" in body
        probe = subprocess.run(
            [sys.executable, "-c", dockerfile_healthcheck()],
            timeout=10,
            env=hub_env(HUB_PORT=str(port)),
            check=False,
        )
        assert probe.returncode == 0  # the image's HEALTHCHECK command sees the hub as healthy
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert f"listening on {base}" in out
    assert "Traceback" not in err


def stored_password_hash(database: Path, email: str) -> str | None:
    with closing(sqlite3.connect(database)) as conn:
        row = conn.execute("SELECT password_hash FROM manager WHERE email = ?", (email,)).fetchone()
    assert row is not None, email
    return row[0]  # type: ignore[no-any-return]


def test_managers_add_reads_the_password_from_stdin_and_never_prints_it(workdir: Path) -> None:
    db = {"HUB_DATABASE_URL": "sqlite://./hub.db"}
    secret = "first-secret-1"  # noqa: S105 (a test password)
    added = run_hub(workdir, "managers", "add", "Olga", "--email", "Olga@Example.com",
                    "--password", stdin_text=secret + "\n", **db)
    assert added.returncode == 0, added.stderr
    assert secret not in added.stdout + added.stderr
    assert re.fullmatch(r"hub_[A-Za-z0-9_-]{20,}", added.stdout.strip().splitlines()[-1])
    assert "password" in added.stdout.splitlines()[0]
    stored = stored_password_hash(workdir / "hub.db", "olga@example.com")
    assert stored is not None and stored.startswith("$argon2id$")
    assert verify_password(stored, secret) and not verify_password(stored, secret + "\n")
    plain = run_hub(workdir, "managers", "add", "Ivan", "--email", "ivan@example.com", **db)
    assert plain.returncode == 0, plain.stderr  # without --password: as before, no password
    assert stored_password_hash(workdir / "hub.db", "ivan@example.com") is None


def test_managers_password_sets_a_new_one_and_ends_the_browser_sessions(workdir: Path) -> None:
    db = {"HUB_DATABASE_URL": "sqlite://./hub.db"}
    added = run_hub(workdir, "managers", "add", "Olga", "--email", "olga@example.com", **db)
    assert added.returncode == 0, added.stderr
    with closing(sqlite3.connect(workdir / "hub.db")) as conn, conn:
        conn.execute(
            "INSERT INTO web_session (manager_id, token_hash, csrf, created_at, last_seen_at, "
            "expires_at) SELECT id, 'h', 'c', '2026-12-01 09:00:00+00:00', "
            "'2026-12-01 09:00:00+00:00', '2099-12-01 09:00:00+00:00' FROM manager"
        )
    secret = "second-secret-2"  # noqa: S105 (a test password)
    changed = run_hub(workdir, "managers", "password", "OLGA@example.com",
                      stdin_text=secret + "\r\n", **db)
    assert changed.returncode == 0, changed.stderr
    assert secret not in changed.stdout + changed.stderr
    assert "password changed" in changed.stdout
    assert verify_password(stored_password_hash(workdir / "hub.db", "olga@example.com"), secret)
    with closing(sqlite3.connect(workdir / "hub.db")) as conn:
        assert conn.execute("SELECT count(*) FROM web_session").fetchone() == (0,)
    unknown = run_hub(workdir, "managers", "password", "nobody@example.com",
                      stdin_text=secret + "\n", **db)
    assert unknown.returncode == 1 and "nobody@example.com" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1 and unknown.stdout == ""


@pytest.mark.parametrize(
    ("stdin_text", "says"),
    [(None, "no password on standard input"), ("abc1234\n", "at least 8 characters")],
    ids=["no-stdin", "too-short"],
)
def test_a_missing_or_weak_password_is_refused_before_the_database_opens(
    workdir: Path, stdin_text: str | None, says: str
) -> None:
    for args in (("add", "Olga", "--email", "olga@example.com", "--password"),
                 ("password", "olga@example.com")):
        result = run_hub(workdir, "managers", *args, stdin_text=stdin_text,
                         HUB_DATABASE_URL="sqlite://./hub.db")
        assert result.returncode == 1 and result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("hub: error: ") and says in lines[0]
        assert "abc1234" not in result.stderr
        assert not (workdir / "hub.db").exists()


class Terminal:
    """A stdin that is a terminal (getpass is faked: it reads from the real /dev/tty)."""

    def isatty(self) -> bool:
        return True

    def readline(self) -> str:
        raise AssertionError("a terminal's password is read with getpass, not from stdin")


@pytest.mark.parametrize(
    ("typed", "outcome"),
    [(["good-password", "good-password"], "good-password"),
     (["good-password", "good-passwort"], "differ"),
     (["short", "short"], "at least 8")],
    ids=["same-twice", "differ", "too-short"],
)
def test_on_a_terminal_the_password_is_asked_twice_without_echo(
    monkeypatch: pytest.MonkeyPatch, typed: list[str], outcome: str
) -> None:
    prompts: list[str] = []

    def fake_getpass(prompt: str = "Password: ", stream: Any = None) -> str:
        prompts.append(prompt)
        return typed[len(prompts) - 1]

    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    if outcome == "good-password":
        assert cli.read_password() == "good-password"
    else:
        with pytest.raises((cli.CommandError, ValidationError), match=outcome):
            cli.read_password()
    assert len(prompts) == 2 and "good" not in " ".join(prompts)


def test_demo_fills_once_and_adds_nothing_a_second_time(workdir: Path) -> None:
    db = {"HUB_DATABASE_URL": "sqlite://./demo.db"}
    first = run_hub(workdir, "demo", **db)
    assert first.returncode == 0, first.stderr
    assert f"{len(PEOPLE)} clients" in first.stdout
    assert len(re.findall(r"hub_[A-Za-z0-9_-]{20,}", first.stdout)) >= 2
    again = run_hub(workdir, "demo", **db)  # exit 0, so `hub demo && hub serve` always serves
    assert again.returncode == 0 and again.stdout == ""
    assert "no demo data was added" in again.stderr and "--force" in again.stderr
    with closing(sqlite3.connect(workdir / "demo.db")) as conn:
        assert conn.execute("SELECT count(*) FROM client").fetchone() == (len(PEOPLE),)
    forced = run_hub(workdir, "demo", "--force", **db)
    assert forced.returncode == 0, forced.stderr


@pytest.mark.parametrize(
    ("env", "config", "named"),
    [
        ({"HUB_PORT": "eighty"}, None, "port (HUB_PORT) = 'eighty'"),
        ({"HUB_PHONE_REGION": "XX"}, None, "phone_region (HUB_PHONE_REGION)"),
        ({}, "prot = 8080\n", "unknown setting 'prot'"),
        ({}, '[telephony.acme]\nsecret = "x"\n', "telephony.acme"),
        ({}, "port = \n", "not valid TOML"),
    ],
    ids=["bad-port", "bad-region", "unknown-key", "unknown-provider", "malformed-toml"],
)
def test_serve_with_bad_settings_exits_2_naming_the_key(
    workdir: Path, env: dict[str, str], config: str | None, named: str
) -> None:
    if config is not None:
        (workdir / "config").mkdir()
        (workdir / "config" / "hub.toml").write_text(config, encoding="utf-8")
    result = run_hub(workdir, "serve", HUB_DATABASE_URL="sqlite://./hub.db", **env)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hub: error: ") and named in lines[0]
    assert not (workdir / "hub.db").exists()  # nothing was started


def test_unreachable_database_is_one_line_without_the_password(workdir: Path) -> None:
    url = f"postgres://hub:s3cr3t@127.0.0.1:{free_port()}/hub"
    result = run_hub(workdir, "migrate", HUB_DATABASE_URL=url)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "HUB_DATABASE_URL" in lines[0] and "s3cr3t" not in lines[0]


@pytest.mark.skipif(not PG_SERVER, reason="HUB_TEST_DATABASE_URL is not set")
def test_migrate_twice_on_postgres(workdir: Path) -> None:
    import asyncpg

    name = f"hub_cli_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_SERVER)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        url = urlunsplit(urlsplit(PG_SERVER)._replace(path="/" + name))
        first = run_hub(workdir, "migrate", HUB_DATABASE_URL=url)
        assert first.returncode == 0, first.stderr
        second = run_hub(workdir, "migrate", HUB_DATABASE_URL=url)
        assert (second.returncode, second.stdout.strip()) == (0, "schema is up to date")
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# --- the demo's content (in-process, on the test database) ------------------------------------


async def test_demo_gives_each_person_one_card_with_calls_emails_and_notes(
    orm: None, settings: Settings
) -> None:
    summary = await fill_demo(settings)
    assert summary.count("hub_") >= 2
    cards = await Client.all().order_by("id")
    assert [c.name for c in cards] == [p.name for p in PEOPLE]
    for person, card in zip(PEOPLE, cards, strict=True):
        kinds = set(await Identity.filter(client_id=card.id).values_list("kind", flat=True))
        assert Kind.PHONE in kinds
        if person.email:
            assert Kind.EMAIL in kinds, person.name
        entries = set(await Interaction.filter(client_id=card.id).values_list("kind", flat=True))
        assert {"call", "note"} <= entries, person.name
        assert ("email" in entries) == bool(person.email), person.name
        assert card.status == person.status and card.manager_id is not None  # type: ignore[attr-defined]
    assert await Interaction.filter(client_id=None).count() == 0
    callback = await Reminder.filter(origin="missed_call", status=ReminderStatus.PENDING).first()
    assert callback is not None and callback.manager_id is not None  # type: ignore[attr-defined]
    assert await Reminder.filter(origin="manual", status=ReminderStatus.PENDING).exists()


# --- the README and CI agree ------------------------------------------------------------------


def quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(?:sh|bash|shell)?\n(.*?)```", section, re.S)
    return [line for block in blocks for line in block.strip().splitlines() if line.strip()]


def test_readme_quick_start_is_two_commands_and_ci_runs_the_second() -> None:
    commands = quick_start_commands()
    assert len(commands) == 2, commands
    assert "hub serve" in commands[0]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    match = re.search(r'^TEST_COMMAND="(.*)"$', ci, re.M)
    assert match is not None and match.group(1) == commands[1]
