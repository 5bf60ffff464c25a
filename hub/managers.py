"""Managers and their API tokens. Tokens are random; only their SHA-256 is stored. A manager
may also have a password for the web UI (hub.passwords), stored as an argon2 hash."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from hub.db import now
from hub.errors import AuthError, ConflictError
from hub.models import ApiToken, Manager, Role
from hub.passwords import check_password, hash_password, run_hashing

TOKEN_PREFIX = "hub_"  # noqa: S105 (a prefix, not a secret)


def hash_token(token: str) -> str:
    """The stored form of a token (256 random bits need no slow hash). A presented value with
    bytes that were not UTF-8 (surrogate escapes) hashes too, and matches nothing."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


async def create_manager(
    name: str,
    *,
    email: str | None = None,
    extension: str | None = None,
    phone: str | None = None,
    role: Role = Role.MANAGER,
    password: str | None = None,
) -> tuple[Manager, str]:
    """A new manager and their first API token (shown once, never stored in clear); with a
    password (policy-checked: ValidationError) they can also log in to the web UI."""
    password_hash = None
    if password is not None:
        check_password(password)
        password_hash = await run_hashing(hash_password, password)
    try:
        async with in_transaction() as conn:
            manager = await Manager.create(
                name=name, email=(email or None) and email.strip().lower(),
                extension=extension or None, phone=phone or None, role=role,
                password_hash=password_hash, using_db=conn,
            )
            token = await issue_token(manager, conn)
    except IntegrityError:
        raise ConflictError("a manager with that e-mail or extension exists") from None
    return manager, token


async def manager_by_email(email: str) -> Manager | None:
    """The manager with that e-mail in any letter case (create_manager stores it lower-case),
    active or not; None when there is none."""
    address = email.strip().lower()
    if not address:
        return None
    return await Manager.get_or_none(email=address)


async def issue_token(manager: Manager, conn: Any = None) -> str:
    """A new API token for the manager."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    await ApiToken.create(manager=manager, token_hash=hash_token(token), created_at=now(),
                          using_db=conn)
    return token


async def manager_for_token(token: str) -> Manager:
    """The active manager a token belongs to; AuthError otherwise."""
    row = await ApiToken.filter(token_hash=hash_token(token)).select_related("manager").first()
    if row is None or not row.manager.is_active:
        raise AuthError("invalid or revoked token")
    return row.manager


def serialize(manager: Manager) -> dict[str, Any]:
    """A manager as the API shows them."""
    return {
        "id": manager.id,
        "name": manager.name,
        "email": manager.email,
        "extension": manager.extension,
        "phone": manager.phone,
        "role": str(manager.role),
    }
