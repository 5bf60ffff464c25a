"""Browser sessions of the manager web UI: a manager logs in with e-mail and password and gets a
random cookie; the database keeps only its SHA-256, so a leaked backup opens nothing.

A session ends SESSION_DAYS after login whatever happens, after IDLE_LIMIT without a request,
on logout, when the manager is deactivated, and (but for the one in use) when the password
changes. `last_seen_at` is written at most once per TOUCH_EVERY, so browsing does not write to
the database on every page.
"""

from __future__ import annotations

import functools
import secrets
from datetime import datetime, timedelta

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from hub.db import now
from hub.managers import hash_token, manager_by_email
from hub.models import Manager, WebSession
from hub.passwords import (
    MAX_LENGTH,
    check_password,
    hash_password,
    needs_rehash,
    run_hashing,
    verify_password,
)

SESSION_COOKIE = "hub_session"
SESSION_DAYS = 14
SESSION_LIFETIME = timedelta(days=SESSION_DAYS)
IDLE_LIMIT = timedelta(hours=12)
TOUCH_EVERY = timedelta(minutes=1)
USER_AGENT_LENGTH = 255  # the column's width; a longer header is cut


@functools.cache
def _dummy_hash() -> str:
    """A hash of a password nobody knows, with the current parameters: checking a login for an
    unknown e-mail against it costs what checking a real manager's password costs, so the
    answer's timing does not tell which e-mails have an account."""
    return hash_password(secrets.token_urlsafe(32))


def _matches(stored: str | None, password: str) -> bool:
    """Whether the password matches `stored`; the same work when there is nothing stored."""
    if stored is None:
        verify_password(_dummy_hash(), password)
        return False
    return verify_password(stored, password)


async def login(email: str, password: str, user_agent: str | None) -> tuple[Manager, str] | None:
    """The active manager with that e-mail and password, and the token of their new session
    (the cookie value, never stored); None when the e-mail or password is wrong, the manager
    has no password or is deactivated (the caller cannot tell which, and should not say)."""
    if len(password) > MAX_LENGTH:
        return None  # no stored password is that long: spare the hashing, for any e-mail alike
    manager = await manager_by_email(email)
    stored = manager.password_hash if manager is not None else None
    matched = await run_hashing(_matches, stored, password)
    if not matched or manager is None or stored is None or not manager.is_active:
        return None
    if needs_rehash(stored):
        # the parameters grew stronger since this hash was made: store one made with them
        fresh = await run_hashing(hash_password, password)
        await Manager.filter(id=manager.id, password_hash=stored).update(password_hash=fresh)
        manager.password_hash = fresh
    token = secrets.token_urlsafe(32)
    at = now()
    await WebSession.create(
        manager=manager,
        token_hash=hash_token(token),
        csrf=secrets.token_urlsafe(32),
        created_at=at,
        last_seen_at=at,
        expires_at=at + SESSION_LIFETIME,
        user_agent=user_agent[:USER_AGENT_LENGTH] if user_agent else None,
    )
    return manager, token


def _ended(session: WebSession, at: datetime) -> bool:
    return at >= session.expires_at or at - session.last_seen_at >= IDLE_LIMIT


async def session_for(token: str) -> tuple[Manager, WebSession] | None:
    """The manager and session a cookie value belongs to; None when it is unknown, expired,
    idle too long or its manager is deactivated (such a session is deleted: it never comes
    back, not even when the manager is activated again)."""
    if not token:
        return None
    session = (
        await WebSession.filter(token_hash=hash_token(token)).select_related("manager").first()
    )
    if session is None:
        return None
    at = now()
    if _ended(session, at) or not session.manager.is_active:
        await WebSession.filter(id=session.id).delete()
        return None
    if at - session.last_seen_at >= TOUCH_EVERY:
        await WebSession.filter(id=session.id).update(last_seen_at=at)
        session.last_seen_at = at
    return session.manager, session


async def logout(token: str) -> None:
    """End the session of this cookie value (nothing happens for an unknown one)."""
    if token:
        await WebSession.filter(token_hash=hash_token(token)).delete()


async def logout_everywhere(manager_id: int) -> None:
    """End every browser session of the manager (API tokens are not sessions: they stay)."""
    await WebSession.filter(manager_id=manager_id).delete()


async def set_password(manager: Manager, password: str, *, keep: WebSession | None = None) -> None:
    """Give the manager a new password (ValidationError when the policy refuses it) and end
    their other sessions: whoever knew the old password is logged out. `keep` is the session
    the change was made in, which stays; without it every session ends."""
    check_password(password)
    fresh = await run_hashing(hash_password, password)
    async with in_transaction() as conn:
        await Manager.filter(id=manager.id).using_db(conn).update(password_hash=fresh)
        others = WebSession.filter(manager_id=manager.id)
        if keep is not None:
            others = others.exclude(id=keep.id)
        await others.using_db(conn).delete()
    manager.password_hash = fresh


async def prune_sessions(now: datetime) -> int:
    """Delete the sessions that ended by `now` (expired or idle too long); how many."""
    return await WebSession.filter(
        Q(expires_at__lte=now) | Q(last_seen_at__lte=now - IDLE_LIMIT)
    ).delete()
