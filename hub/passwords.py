"""Managers' web UI passwords: argon2id hashes (argon2-cffi's recommended parameters) and the
password policy.

Hashing is slow on purpose (tenths of a second, 64 MiB each), so the async callers run it
through `run_hashing`: off the event loop, and in a small pool of its own, so that a burst of
login attempts neither stalls the hub nor takes all its memory."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hub.errors import ValidationError

T = TypeVar("T")

MIN_LENGTH = 8
MAX_LENGTH = 1024  # bounds the work one login attempt can cause

_HASHER = PasswordHasher()
_POOL = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1),
                           thread_name_prefix="hub-passwords")


def check_password(password: str) -> None:
    """The password policy: ValidationError (field "password") saying what is wrong."""
    if len(password) < MIN_LENGTH:
        raise ValidationError(f"password: needs at least {MIN_LENGTH} characters",
                              field="password")
    if len(password) > MAX_LENGTH:
        raise ValidationError(f"password: may have at most {MAX_LENGTH} characters",
                              field="password")
    try:
        password.encode()
    except UnicodeEncodeError:  # a lone surrogate: no byte form to hash
        raise ValidationError("password: contains characters that are not valid text",
                              field="password") from None


def hash_password(password: str) -> str:
    """The stored form of a password (salted argon2id; the parameters are part of it)."""
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches the stored hash. False, never an exception, when there is no
    hash or it is not one argon2 can read: a damaged row must not break the login page."""
    if not stored:
        return False
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError, UnicodeEncodeError):
        return False


def needs_rehash(stored: str) -> bool:
    """Whether a hash was made with other parameters than the current ones (the caller, who
    just verified the password, should store a new hash). True for something that is not an
    argon2 hash at all."""
    try:
        return _HASHER.check_needs_rehash(stored)
    except ValueError:  # InvalidHashError, UnsupportedParametersError
        return True


async def run_hashing(func: Callable[..., T], *args: object) -> T:
    """`func(*args)` in the hashing pool: off the event loop, a few at a time."""
    return await asyncio.get_running_loop().run_in_executor(_POOL, func, *args)
