"""Passwords and browser sessions of the manager web UI: argon2 hashes that verify and never
raise, the password policy, login (right and wrong password, unknown e-mail checked at the same
cost, deactivated manager), a session's end (14 days, 12 idle hours, logout, a new password),
and a database that holds only the hash of a cookie."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher, profiles

from hub import passwords, sessions
from hub.errors import ValidationError
from hub.managers import create_manager
from hub.models import Manager, WebSession
from hub.passwords import check_password, hash_password, needs_rehash, verify_password
from hub.sessions import (
    IDLE_LIMIT,
    SESSION_COOKIE,
    SESSION_DAYS,
    login,
    logout,
    logout_everywhere,
    prune_sessions,
    session_for,
    set_password,
)

PASSWORD = "correct horse battery"  # noqa: S105 (a test password)
UA = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The cheapest argon2 parameters: the tests exercise the logic, not the cost (the CLI
    tests hash with the real ones). The dummy hash follows the parameters in use."""
    monkeypatch.setattr(passwords, "_HASHER", PasswordHasher.from_parameters(profiles.CHEAPEST))
    sessions._dummy_hash.cache_clear()
    yield
    sessions._dummy_hash.cache_clear()


class Clock:
    """sessions.now, moved by hand."""

    def __init__(self) -> None:
        self.at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(sessions, "now", clock)
    return clock


@pytest.fixture
async def olga(orm: None) -> Manager:
    manager, _ = await create_manager("Olga", email="olga@example.com", password=PASSWORD)
    return manager


async def logged_in(email: str = "olga@example.com", password: str = PASSWORD) -> str:
    found = await login(email, password, UA)
    assert found is not None
    return found[1]


# --- hashing and the policy -------------------------------------------------------------------


def test_a_hash_is_salted_argon2id_and_verifies_only_the_right_password() -> None:
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first.startswith("$argon2id$") and PASSWORD not in first
    assert first != second  # salted
    assert verify_password(first, PASSWORD) and verify_password(second, PASSWORD)
    assert not verify_password(first, PASSWORD + "!")
    assert not verify_password(first, "")


@pytest.mark.parametrize(
    "stored",
    [None, "", "x", "$2b$12$abcdefghijklmnopqrstuv", "$argon2id$v=19$m=65536,t=3,p=4$xx$yy",
     "$argon2id$v=19$m=8,t=1,p=1$YC0kUoSpaFo$", "plain text password"],
    ids=["none", "empty", "junk", "bcrypt", "bad-base64", "no-digest", "clear-text"],
)
def test_verify_is_false_and_never_raises_on_a_missing_or_malformed_hash(
    stored: str | None,
) -> None:
    assert verify_password(stored, "plain text password") is False


def test_verify_is_false_for_a_password_that_is_not_valid_text() -> None:
    assert verify_password(hash_password(PASSWORD), "\ud800 lone surrogate") is False


def test_needs_rehash_when_the_parameters_changed_or_the_hash_is_not_argon2() -> None:
    assert needs_rehash(hash_password(PASSWORD)) is False
    older = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1).hash(PASSWORD)
    assert verify_password(older, PASSWORD)  # still verifies: the parameters are in the hash
    assert needs_rehash(older) is True
    assert needs_rehash("not a hash") is True


@pytest.mark.parametrize("password", ["12345678", "пароль-из-кириллицы", "x" * 1024])
def test_the_policy_accepts_8_to_1024_characters(password: str) -> None:
    check_password(password)


@pytest.mark.parametrize(
    ("password", "says"),
    [("", "at least 8"), ("1234567", "at least 8"), ("x" * 1025, "at most 1024"),
     ("\ud800" * 8, "not valid text")],
    ids=["empty", "seven", "too-long", "surrogates"],
)
def test_the_policy_refuses_with_a_clear_message(password: str, says: str) -> None:
    with pytest.raises(ValidationError) as caught:
        check_password(password)
    assert says in caught.value.message and caught.value.message.startswith("password: ")
    assert caught.value.extra == {"field": "password"} and caught.value.status == 422


# --- managers with a password -----------------------------------------------------------------


async def test_create_manager_stores_only_a_hash_and_checks_the_policy(orm: None) -> None:
    manager, token = await create_manager("Olga", email="olga@example.com", password=PASSWORD)
    stored = (await Manager.get(id=manager.id)).password_hash
    assert stored is not None and PASSWORD not in stored and verify_password(stored, PASSWORD)
    assert token.startswith("hub_")
    plain, _ = await create_manager("Ivan")  # every existing caller: no password, no login
    assert (await Manager.get(id=plain.id)).password_hash is None
    with pytest.raises(ValidationError):
        await create_manager("Petr", email="petr@example.com", password="short")
    assert not await Manager.filter(name="Petr").exists()


# --- login ------------------------------------------------------------------------------------


async def test_login_opens_a_session_the_cookie_finds(olga: Manager, clock: Clock) -> None:
    assert SESSION_COOKIE == "hub_session" and SESSION_DAYS == 14
    found = await login("olga@example.com", PASSWORD, UA)
    assert found is not None
    manager, token = found
    assert manager.id == olga.id and len(token) >= 43
    opened = await session_for(token)
    assert opened is not None
    assert opened[0].id == olga.id
    session = opened[1]
    assert session.user_agent == UA and len(session.csrf) >= 32
    assert session.created_at == clock.at and session.last_seen_at == clock.at
    assert session.expires_at == clock.at + timedelta(days=14)


async def test_the_database_holds_only_the_hash_of_the_cookie(olga: Manager) -> None:
    token = await logged_in()
    rows = await WebSession.all().values()
    assert len(rows) == 1
    assert rows[0]["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert all(token not in str(value) for value in rows[0].values())
    assert rows[0]["csrf"] != token


async def test_login_ignores_the_case_and_spaces_of_the_email(olga: Manager) -> None:
    found = await login("  Olga@EXAMPLE.com ", PASSWORD, None)
    assert found is not None and found[0].id == olga.id
    assert (await WebSession.get(manager_id=olga.id)).user_agent is None


async def test_a_wrong_password_opens_nothing(olga: Manager) -> None:
    for wrong in (PASSWORD.upper(), "", PASSWORD + " ", "x" * 5000):
        assert await login("olga@example.com", wrong, UA) is None
    assert await WebSession.all().count() == 0


async def test_an_unknown_email_or_a_manager_without_password_costs_one_verification(
    olga: Manager, monkeypatch: pytest.MonkeyPatch
) -> None:
    await create_manager("Ivan", email="ivan@example.com")  # no password: no browser login
    checked: list[str | None] = []
    real = sessions.verify_password

    def spy(stored: str | None, password: str) -> bool:
        checked.append(stored)
        return real(stored, password)

    monkeypatch.setattr(sessions, "verify_password", spy)
    assert await login("nobody@example.com", PASSWORD, UA) is None
    assert await login("ivan@example.com", PASSWORD, UA) is None
    assert await login("", PASSWORD, UA) is None
    dummy = sessions._dummy_hash()
    assert checked == [dummy, dummy, dummy]  # the same work as for a real account
    assert dummy.startswith("$argon2id$") and dummy != olga.password_hash
    assert await login("olga@example.com", PASSWORD, UA) is not None
    assert checked[-1] == olga.password_hash
    assert await WebSession.all().count() == 1


async def test_a_deactivated_manager_cannot_log_in_and_their_sessions_end(olga: Manager) -> None:
    token = await logged_in()
    await Manager.filter(id=olga.id).update(is_active=False)
    assert await login("olga@example.com", PASSWORD, UA) is None
    assert await session_for(token) is None
    await Manager.filter(id=olga.id).update(is_active=True)
    assert await session_for(token) is None  # ended for good, not paused
    assert await WebSession.all().count() == 0


async def test_login_upgrades_a_hash_made_with_older_parameters(orm: None) -> None:
    older = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1).hash(PASSWORD)
    manager, _ = await create_manager("Olga", email="olga@example.com")
    await Manager.filter(id=manager.id).update(password_hash=older)
    assert await login("olga@example.com", PASSWORD, UA) is not None
    upgraded = (await Manager.get(id=manager.id)).password_hash
    assert upgraded is not None and upgraded != older
    assert not needs_rehash(upgraded) and verify_password(upgraded, PASSWORD)


# --- the end of a session ---------------------------------------------------------------------


async def test_unknown_or_empty_cookies_find_nothing(olga: Manager) -> None:
    await logged_in()
    assert await session_for("") is None
    assert await session_for("not-a-session") is None


async def test_a_session_used_every_few_hours_ends_after_14_days(
    olga: Manager, clock: Clock
) -> None:
    token = await logged_in()
    start = clock.at
    while clock.at + timedelta(hours=11) < start + timedelta(days=14):
        clock.advance(hours=11)
        assert await session_for(token) is not None, clock.at - start
    clock.at = start + timedelta(days=14)
    assert await session_for(token) is None
    assert await WebSession.all().count() == 0  # an ended session is deleted when seen


async def test_a_session_idle_for_12_hours_ends(olga: Manager, clock: Clock) -> None:
    kept, idle = await logged_in(), await logged_in()
    clock.advance(hours=11, minutes=59)
    assert await session_for(kept) is not None
    clock.advance(minutes=1)  # `idle` was last seen 12 h ago, `kept` a minute ago
    assert await session_for(idle) is None
    assert await session_for(kept) is not None
    assert timedelta(hours=12) == IDLE_LIMIT


async def test_last_seen_is_written_at_most_once_a_minute(olga: Manager, clock: Clock) -> None:
    token = await logged_in()
    opened = clock.at

    async def stored_last_seen() -> datetime:
        return (await WebSession.get(manager_id=olga.id)).last_seen_at

    clock.advance(seconds=59)
    assert await session_for(token) is not None
    assert await stored_last_seen() == opened
    clock.advance(seconds=1)
    found = await session_for(token)
    assert found is not None and found[1].last_seen_at == clock.at
    assert await stored_last_seen() == clock.at


async def test_logout_ends_that_session_only(olga: Manager) -> None:
    here, there = await logged_in(), await logged_in()
    await logout(here)
    await logout(here)  # twice, or an unknown cookie: nothing happens
    await logout("")
    assert await session_for(here) is None
    assert await session_for(there) is not None


async def test_logout_everywhere_ends_every_session_of_the_manager(olga: Manager) -> None:
    await create_manager("Ivan", email="ivan@example.com", password=PASSWORD)
    mine = [await logged_in(), await logged_in()]
    his = await logged_in("ivan@example.com")
    await logout_everywhere(olga.id)
    assert [await session_for(t) for t in mine] == [None, None]
    assert await session_for(his) is not None


async def test_a_new_password_ends_the_other_sessions(olga: Manager) -> None:
    here, there = await logged_in(), await logged_in()
    current = await session_for(here)
    assert current is not None
    await set_password(olga, "a brand new secret", keep=current[1])
    assert await session_for(here) is not None  # the session the change was made in stays
    assert await session_for(there) is None
    assert await login("olga@example.com", PASSWORD, UA) is None
    assert await login("olga@example.com", "a brand new secret", UA) is not None
    await set_password(olga, "yet another secret")  # no session to keep (the CLI): all end
    assert await WebSession.filter(manager_id=olga.id).count() == 0


async def test_a_new_password_that_breaks_the_policy_changes_nothing(olga: Manager) -> None:
    token = await logged_in()
    with pytest.raises(ValidationError, match="at least 8"):
        await set_password(olga, "short")
    assert await session_for(token) is not None
    assert await login("olga@example.com", PASSWORD, UA) is not None


async def test_prune_deletes_the_sessions_that_ended(olga: Manager, clock: Clock) -> None:
    start = clock.at
    expired = await logged_in()  # will be kept busy until it expires
    idle = await logged_in()
    clock.advance(days=13, hours=23)
    live = await logged_in()
    rows: dict[str, Any] = {}
    for name, token in (("expired", expired), ("idle", idle), ("live", live)):
        rows[name] = await WebSession.get(token_hash=hashlib.sha256(token.encode()).hexdigest())
    await WebSession.filter(id=rows["expired"].id).update(last_seen_at=clock.at)
    assert await prune_sessions(start + timedelta(days=13)) == 1  # only `idle` ended by then
    assert await prune_sessions(start + timedelta(days=14)) == 1  # `expired` reached 14 days
    assert await prune_sessions(start + timedelta(days=14)) == 0
    assert [s.id for s in await WebSession.all()] == [rows["live"].id]


async def test_deleting_a_manager_deletes_their_sessions(olga: Manager) -> None:
    await logged_in()
    await Manager.filter(id=olga.id).delete()
    assert await WebSession.all().count() == 0
