"""The chaos runs, small (bench/chaos.py runs them full size): calls while the hub is SIGKILLed
(and, on the PostgreSQL pass, a private cluster restarted under it), IMAP intake while the
connection to the mail server is cut and the server restarted, offers while the SMTP server is
down and the hub is killed. Each checks the database for what was lost or doubled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from hub.managers import create_manager
from hub.models import Role
from tests.chaos.calls import CallsRun, run_calls
from tests.chaos.faults import PrivatePostgres, private_postgres_possible
from tests.chaos.mailrun import MailRun, run_mail
from tests.chaos.offers import OffersRun, run_offers
from tests.mailservers import binary, require_mail_binaries

pytestmark = pytest.mark.usefixtures("orm")


@pytest_asyncio.fixture
async def private_pg(is_pg: bool) -> AsyncIterator[PrivatePostgres | None]:
    """On the PostgreSQL pass, a private cluster this test may restart (the shared server is
    never touched); None on the SQLite pass, or when no cluster can be made here."""
    if not is_pg or private_postgres_possible() is not None:
        yield None
        return
    cluster = PrivatePostgres()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


async def test_nothing_is_lost_or_doubled_under_faults(
    database_url: str, is_pg: bool, private_pg: PrivatePostgres | None, tmp_path: Path
) -> None:
    """The three runs side by side (each one mostly waits for a hub to start or a retry to
    fall due), each with its own hub: calls on a database of their own (the private cluster
    on the PostgreSQL pass, which they restart), e-mail and offers on the test's database
    (they check only their own cards)."""
    if private_pg is not None:
        calls_url = await private_pg.create_database("hub")
        calls = CallsRun(calls=60, faults=("kill", "pg-restart"))
    else:
        calls_url = database_url if is_pg else f"sqlite://{tmp_path / 'calls.db'}"
        calls = CallsRun(calls=90, faults=("kill",))
    mail_url = database_url if is_pg else f"sqlite://{tmp_path / 'mail.db'}"

    async def token(env: dict[str, Any], workdir: Path) -> str:
        return (await create_manager("Ольга", email="olga@example.test", role=Role.ADMIN))[1]

    runs = [run_calls(calls_url, _dir(tmp_path, "calls"), calls, private_pg),
            run_offers(database_url, _dir(tmp_path, "offers"),
                       OffersRun(offers=4, down_s=0.5, tempfail_s=1.0, lease_s=2.0),
                       make_token=token)]
    if mail_binaries():
        runs.append(run_mail(mail_url, _dir(tmp_path, "mail"),
                             MailRun(messages=30, faults=("cut", "refuse", "dovecot-restart"))))
    reports = await asyncio.gather(*runs)
    assert all(r.ok for r in reports), "\n".join(r.text() for r in reports)
    require_mail_binaries("dovecot", "doveadm")  # skipped (failed under CI) without them


def mail_binaries() -> bool:
    return all(binary(name) for name in ("dovecot", "doveadm"))


def _dir(parent: Path, name: str) -> Path:
    path = parent / name
    path.mkdir()
    return path
