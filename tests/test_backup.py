"""`hub backup` and `hub restore`, run as real processes: a SQLite round trip gives back the same
cards (also when the backup is taken while the hub serves), restore refuses a running hub's
database, one with data (without --force) and a file that is no hub database; on PostgreSQL
both point to pg_dump / pg_restore without showing the password."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from tests.helpers import free_port
from tests.test_cli import hub_env, run_hub, wait_healthy

DB = {"HUB_DATABASE_URL": "sqlite://./hub.db"}
RESTORED = {"HUB_DATABASE_URL": "sqlite://./restored.db"}


def cards(path: Path) -> list[tuple[int, str, str]]:
    with closing(sqlite3.connect(path)) as conn:
        return [(int(i), str(n), str(s)) for i, n, s in conn.execute(
            "SELECT id, name, status FROM client ORDER BY id")]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A directory outside the project holding a hub database with the demo's cards."""
    path = tmp_path / "elsewhere"
    path.mkdir()
    filled = run_hub(path, "demo", **DB)
    assert filled.returncode == 0, filled.stderr
    assert len(cards(path / "hub.db")) > 3
    return path


def test_a_backup_restores_the_same_cards(workdir: Path) -> None:
    made = run_hub(workdir, "backup", "hub-backup.db", **DB)
    assert made.returncode == 0, made.stderr
    assert "backed up to hub-backup.db" in made.stdout
    assert not list(workdir.glob("*.partial"))
    again = run_hub(workdir, "backup", "hub-backup.db", **DB)
    assert again.returncode == 1 and "--force" in again.stderr  # never overwritten silently
    assert run_hub(workdir, "backup", "hub-backup.db", "--force", **DB).returncode == 0

    back = run_hub(workdir, "restore", "hub-backup.db", **RESTORED)
    assert back.returncode == 0, back.stderr
    assert cards(workdir / "restored.db") == cards(workdir / "hub.db")
    migrate = run_hub(workdir, "migrate", **RESTORED)  # a complete hub database
    assert migrate.returncode == 0 and migrate.stdout.strip() == "schema is up to date"


def test_restore_refuses_a_database_with_data_unless_forced(workdir: Path) -> None:
    assert run_hub(workdir, "backup", "b.db", **DB).returncode == 0
    with closing(sqlite3.connect(workdir / "hub.db")) as conn:
        conn.execute("UPDATE client SET name = 'changed after the backup'")
        conn.commit()
    refused = run_hub(workdir, "restore", "b.db", **DB)
    assert refused.returncode == 1
    assert "already has data" in refused.stderr and "--force" in refused.stderr
    assert {n for _, n, _ in cards(workdir / "hub.db")} == {"changed after the backup"}
    forced = run_hub(workdir, "restore", "b.db", "--force", **DB)
    assert forced.returncode == 0, forced.stderr
    assert cards(workdir / "hub.db") == cards(workdir / "b.db")
    assert "changed after the backup" not in {n for _, n, _ in cards(workdir / "hub.db")}


def test_restore_takes_only_a_hub_database(workdir: Path) -> None:
    with closing(sqlite3.connect(workdir / "other.db")) as conn:
        conn.execute("CREATE TABLE client (id INTEGER)")  # no aerich table: not ours
        conn.commit()
    (workdir / "junk.db").write_bytes(b"not a database at all" * 100)
    for name, why in (("other.db", "not a hub database"), ("junk.db", "not a SQLite database"),
                      ("absent.db", "does not exist")):
        refused = run_hub(workdir, "restore", name, **RESTORED)
        assert refused.returncode == 1 and why in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
    assert not (workdir / "restored.db").exists()


def test_backup_while_the_hub_serves_and_no_restore_under_it(workdir: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub", "serve", "--port", str(port)], cwd=workdir,
        env=hub_env(**DB), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    try:
        status, _ = wait_healthy(proc, f"http://127.0.0.1:{port}")
        assert status == 200
        made = run_hub(workdir, "backup", "live.db", **DB)
        assert made.returncode == 0, made.stderr
        assert cards(workdir / "live.db") == cards(workdir / "hub.db")
        refused = run_hub(workdir, "restore", "live.db", "--force", **DB)
        assert refused.returncode == 1 and "in use" in refused.stderr, refused.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert run_hub(workdir, "restore", "live.db", "--force", **DB).returncode == 0


@pytest.mark.parametrize(("command", "tool"), [
    ("backup", "pg_dump -Fc --host=db.example --port=5433 --username=crm_user --dbname=crm "
               "--file=crm.dump"),
    ("restore", "pg_restore --clean --if-exists --no-owner --host=db.example --port=5433 "
                "--username=crm_user --dbname=crm crm.dump"),
])
def test_on_postgresql_both_point_to_the_postgresql_tools(
    tmp_path: Path, command: str, tool: str
) -> None:
    url = "postgres://crm_user:Sup3r-Secret@db.example:5433/crm"
    done = run_hub(tmp_path, command, "crm.dump", HUB_DATABASE_URL=url)
    assert done.returncode == 2
    assert tool in done.stderr, done.stderr
    assert "Sup3r-Secret" not in done.stderr + done.stdout
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "crm.dump").exists()
