"""Managers and their API tokens. Tokens are random; only their SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from hub.db import now
from hub.errors import AuthError, ConflictError
from hub.models import ApiToken, Manager, Role

TOKEN_PREFIX = "hub_"  # noqa: S105 (a prefix, not a secret)


def hash_token(token: str) -> str:
    """The stored form of a token (256 random bits need no slow hash)."""
    return hashlib.sha256(token.encode()).hexdigest()


async def create_manager(
    name: str,
    *,
    email: str | None = None,
    extension: str | None = None,
    phone: str | None = None,
    role: Role = Role.MANAGER,
) -> tuple[Manager, str]:
    """A new manager and their first API token (shown once, never stored in clear)."""
    try:
        async with in_transaction() as conn:
            manager = await Manager.create(
                name=name, email=(email or None) and email.strip().lower(),
                extension=extension or None, phone=phone or None, role=role, using_db=conn,
            )
            token = await issue_token(manager, conn)
    except IntegrityError:
        raise ConflictError("a manager with that e-mail or extension exists") from None
    return manager, token


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
