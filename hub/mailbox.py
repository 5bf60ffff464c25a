"""The IMAP listener: the company mailbox (`[email] imap_url`) read as it fills, every message
onto its card exactly once.

One session: log in, SELECT the mailbox, fetch every message above the last UID ingested
(BODY.PEEK: nothing is marked read unless `imap_mark_seen` says so), then IDLE until the server
announces new mail (or, on a server without IDLE, sleep `imap_poll_seconds`), again. The
mailbox's UIDVALIDITY and last ingested UID are kept in `mailbox_state`, so a restart or a
dropped connection resumes where the last one stopped; when UIDVALIDITY changes (the mailbox
was rebuilt) everything is read again and the Message-ID check of the ingest drops what is
already stored. A dropped connection, a refused login or a database outage ends the session;
the next one starts after a backoff that doubles up to a minute.

Several hub processes on one database share the mailbox through a lease on its state row: the
holder renews it on every round, the others wait and take over once it runs out (at most
`imap_idle_seconds` + LEASE_MARGIN after the holder died); a clean stop releases it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from aiohttp import web
from aioimaplib import aioimaplib
from tortoise import connections

from channels.email import MailReader
from hub.db import Stmt, execute, now
from hub.errors import ValidationError
from hub.events import MessageEvent
from hub.loops import while_running
from hub.settings import EmailSettings

log = logging.getLogger("hub.mailbox")
T = TypeVar("T")

LEASE_MARGIN = timedelta(seconds=60)
BACKOFF_START_S = 1.0
BACKOFF_CAP_S = 60.0
COMMAND_TIMEOUT_S = 30.0
BATCH_BYTES = 4 * 1024 * 1024  # one UID FETCH asks for at most this much
BATCH_COUNT = 50
SIZE_WINDOW = 200  # UIDs whose sizes one UID FETCH asks for
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]", re.IGNORECASE)
_FETCH_ITEM = re.compile(rb"\(.*?UID (\d+).*?RFC822\.SIZE (\d+)", re.IGNORECASE)
_FETCH_UID = re.compile(rb"UID (\d+)", re.IGNORECASE)


class ImapError(Exception):
    """The server refused something or the connection broke: the session ends, the next
    one retries after a backoff."""


@dataclass(frozen=True, slots=True)
class MailboxAddress:
    """Where the mailbox is, parsed from `imap[s]://user:pass@host:port/MAILBOX`."""

    use_tls: bool
    host: str
    port: int
    user: str
    password: str
    mailbox: str

    @classmethod
    def parse(cls, url: str) -> MailboxAddress:
        parts = urlsplit(url)
        use_tls = parts.scheme == "imaps"
        return cls(
            use_tls=use_tls,
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (993 if use_tls else 143),
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            mailbox=unquote(parts.path.lstrip("/")) or "INBOX",
        )

    @property
    def key(self) -> str:
        """The state row's name: no password in it."""
        return f"{self.user}@{self.host}:{self.port}/{self.mailbox}"[:255]


Ingest = Callable[[MessageEvent], Awaitable[object]]


class MailboxListener:
    """One per hub process; `run()` until cancelled."""

    def __init__(
        self, settings: EmailSettings, ingest: Ingest, *,
        tls_context: ssl.SSLContext | None = None, command_timeout: float = COMMAND_TIMEOUT_S,
        backoff_start: float = BACKOFF_START_S,
    ) -> None:
        assert settings.imap_url is not None
        self.address = MailboxAddress.parse(settings.imap_url.get_secret_value())
        self.settings = settings
        self.ingest = ingest
        self.reader = MailReader(settings.form_senders, settings.form_subjects,
                                 settings.from_address)
        self.tls_context = tls_context
        self.command_timeout = command_timeout
        self.backoff_start = backoff_start
        self.owner = uuid.uuid4().hex
        self.lease = timedelta(seconds=settings.imap_idle_seconds) + LEASE_MARGIN
        self.ingested = 0  # messages this process put through the ingest
        self.sessions = 0  # sessions started (1 + reconnects)
        self.connected = asyncio.Event()  # set while a session has the mailbox selected
        self._lost = asyncio.Event()

    # ---- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        delay = self.backoff_start
        try:
            while True:
                if not await self._take_lease():
                    await asyncio.sleep(min(self.lease.total_seconds() / 4, 15.0))
                    continue
                try:
                    await self._session()
                    delay = self.backoff_start
                except (ImapError, aioimaplib.AioImapException, OSError, TimeoutError) as exc:
                    delay = self._next_delay(delay)
                    log.warning("mailbox %s: %s; reconnecting in %.0f s", self.address.key,
                                _describe(exc), delay)
                except Exception:
                    delay = self._next_delay(delay)
                    log.exception("mailbox %s: session failed; reconnecting in %.0f s",
                                  self.address.key, delay)
                finally:
                    self.connected.clear()
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_CAP_S)
        finally:
            with contextlib.suppress(Exception):
                await self._release_lease()

    def _next_delay(self, delay: float) -> float:
        """After a session that had the mailbox selected, the next try comes soon again: the
        wait grows only while connecting keeps failing (a cut every few minutes must not
        leave the mailbox unread for the longest wait)."""
        return self.backoff_start if self.connected.is_set() else delay

    async def _session(self) -> None:
        """One connection, until it breaks or the lease is lost (then it returns)."""
        self.sessions += 1
        self._lost = asyncio.Event()
        client = self._connect()
        try:
            await self._call(client.wait_hello_from_server())
            await self._ok(client.login(self.address.user, self.address.password), "LOGIN")
            selected = await self._ok(client.select(self.address.mailbox), "SELECT")
            uidvalidity = _uidvalidity(selected.lines)
            last_uid = await self._resume(uidvalidity)
            self.connected.set()
            log.info("mailbox %s: selected (UIDVALIDITY %s), resuming after UID %d",
                     self.address.key, uidvalidity, last_uid)
            idle = client.has_capability("IDLE")
            while True:
                last_uid = await self._fetch_new(client, last_uid)
                if not await self._renew_lease():
                    log.info("mailbox %s: another process holds it now", self.address.key)
                    return
                if idle:
                    await self._idle(client)
                else:
                    await self._sleep_or_lost(self.settings.imap_poll_seconds)
        finally:
            await self._close(client)

    def _connect(self) -> aioimaplib.IMAP4:
        def lost(exc: Exception | None) -> None:
            self._lost.set()

        if self.address.use_tls:
            context = self.tls_context or ssl.create_default_context()
            client: aioimaplib.IMAP4 = aioimaplib.IMAP4_SSL(
                self.address.host, self.address.port, timeout=self.command_timeout,
                ssl_context=context)
            client.protocol.conn_lost_cb = lost
            return client
        return aioimaplib.IMAP4(self.address.host, self.address.port,
                                timeout=self.command_timeout, conn_lost_cb=lost)

    async def _close(self, client: aioimaplib.IMAP4) -> None:
        with contextlib.suppress(Exception):
            if not self._lost.is_set():
                await asyncio.wait_for(client.logout(), 2.0)
        transport = getattr(client.protocol, "transport", None)
        if transport is not None:
            transport.close()

    # ---- IMAP commands, raced against the connection dropping --------------------------------

    async def _call(self, coro: Awaitable[T]) -> T:
        task = asyncio.ensure_future(coro)
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            await asyncio.wait({task, lost}, timeout=self.command_timeout * 2,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            if not task.done():  # given up on, or this listener is stopping
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        if not task.cancelled():
            return task.result()
        if self._lost.is_set():
            raise ImapError("the connection was lost")
        raise ImapError("the server did not answer in time")

    async def _ok(self, coro: Awaitable[Any], what: str) -> Any:
        response = await self._call(coro)
        if response.result != "OK":
            text = b" ".join(bytes(line) for line in response.lines[-1:]).decode("ascii", "replace")
            raise ImapError(f"{what} refused: {text[:200]}")
        return response

    async def _sleep_or_lost(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._lost.wait(), seconds)
        if self._lost.is_set():
            raise ImapError("the connection was lost")

    async def _idle(self, client: aioimaplib.IMAP4) -> None:
        """Wait for the server to announce new mail, at most `imap_idle_seconds`."""
        seconds = float(self.settings.imap_idle_seconds)
        idle = await self._call(client.idle_start(timeout=seconds))
        try:
            while True:
                push = await self._call(client.wait_server_push(timeout=seconds + 5))
                if push == aioimaplib.STOP_WAIT_SERVER_PUSH:
                    break
                if any(b"EXISTS" in bytes(line) for line in push):
                    break
        except TimeoutError:
            pass
        finally:
            if not self._lost.is_set() and client.has_pending_idle():
                client.idle_done()
        await self._call(asyncio.wait_for(idle, self.command_timeout))

    # ---- fetching --------------------------------------------------------------------------

    async def _fetch_new(self, client: aioimaplib.IMAP4, last_uid: int) -> int:
        """Ingest every message above `last_uid`; the new last UID."""
        found = await self._ok(client.uid_search("UID", f"{last_uid + 1}:*", charset=None),
                               "UID SEARCH")
        # "n:*" always names the newest message, even when its UID is below n
        uids = sorted(uid for uid in _numbers(found.lines) if uid > last_uid)
        for start in range(0, len(uids), SIZE_WINDOW):
            window = uids[start:start + SIZE_WINDOW]
            sizes = await self._sizes(client, window)
            for batch in _batches([u for u in window if u in sizes], sizes,
                                  self.settings.imap_max_message_bytes):
                messages = await self._fetch_batch(client, batch, sizes)
                for uid in batch:
                    await self._ingest_one(uid, messages.get(uid), sizes[uid])
                last_uid = batch[-1]
                await self._save(last_uid)
                await self._after_ingest(client, batch)
        return last_uid

    async def _sizes(self, client: aioimaplib.IMAP4, uids: list[int]) -> dict[int, int]:
        """The sizes of these messages (a window at a time: aioimaplib reads an answer line by
        line recursively, and a few thousand lines in one answer exhaust Python's stack)."""
        found = await self._ok(
            client.uid("fetch", ",".join(map(str, uids)), "(UID RFC822.SIZE)"), "UID FETCH")
        sizes = {}
        for line in found.lines:
            match = _FETCH_ITEM.search(bytes(line)) if isinstance(line, bytes | bytearray) else None
            if match:
                sizes[int(match.group(1))] = int(match.group(2))
        return sizes

    async def _fetch_batch(
        self, client: aioimaplib.IMAP4, uids: list[int], sizes: dict[int, int]
    ) -> dict[int, bytes]:
        limit = self.settings.imap_max_message_bytes
        whole = [u for u in uids if sizes[u] <= limit]
        heads = [u for u in uids if sizes[u] > limit]
        found: dict[int, bytes] = {}
        for group, part in ((whole, "BODY.PEEK[]"), (heads, "BODY.PEEK[HEADER]")):
            if group:
                response = await self._ok(
                    client.uid("fetch", ",".join(map(str, group)), f"(UID {part})"), "UID FETCH")
                found.update(_literals(response.lines))
        return found

    async def _ingest_one(self, uid: int, raw: bytes | None, size: int) -> None:
        if raw is None:
            # expunged by someone else between SEARCH and FETCH: nothing left to read
            log.info("mailbox %s: UID %d is gone", self.address.key, uid)
            return
        if size > self.settings.imap_max_message_bytes:
            note = (f"\r\n(This message is {size / 1048576:.1f} MB; only its headers were "
                    "read. It stays in the mailbox.)\r\n")
            raw = raw.rstrip(b"\r\n") + b"\r\n\r\n" + note.encode()
        try:
            event = self.reader.event(raw)
        except ValidationError as exc:
            # it stays in the mailbox; there is no person to put it on a card for
            log.warning("mailbox %s: UID %d skipped: %s", self.address.key, uid, exc.message)
            return
        await self.ingest(event)  # a database error ends the session before the UID is saved
        self.ingested += 1

    async def _after_ingest(self, client: aioimaplib.IMAP4, uids: list[int]) -> None:
        """Mark or move what is now on its cards, if the settings ask for it."""
        uid_set = ",".join(map(str, uids))
        if self.settings.imap_mark_seen:
            await self._ok(client.uid("store", uid_set, "+FLAGS", "(\\Seen)"), "UID STORE")
        if self.settings.imap_move_to:
            target = _quote(self.settings.imap_move_to)
            if client.has_capability("MOVE"):
                await self._ok(client.uid("move", uid_set, target), "UID MOVE")
            else:
                await self._ok(client.uid("copy", uid_set, target), "UID COPY")
                await self._ok(client.uid("store", uid_set, "+FLAGS", "(\\Deleted)"),
                               "UID STORE")

    # ---- state and lease ---------------------------------------------------------------------

    async def _db(self, stmt: Stmt) -> list[dict[str, Any]]:
        return await execute(connections.get("default"), stmt)

    async def _take_lease(self) -> bool:
        when = now()
        await self._db(Stmt(
            "INSERT INTO mailbox_state (mailbox, last_uid, updated_at) VALUES (?, 0, ?) "
            "ON CONFLICT (mailbox) DO NOTHING", (self.address.key, when)))
        return await self._renew_lease(when)

    async def _renew_lease(self, when: datetime | None = None) -> bool:
        when = when or now()
        rows = await self._db(Stmt(
            "UPDATE mailbox_state SET owner = ?, lease_until = ?, updated_at = ? "
            "WHERE mailbox = ? AND (owner = ? OR owner IS NULL OR lease_until IS NULL "
            "OR lease_until < ?) RETURNING id",
            (self.owner, when + self.lease, when, self.address.key, self.owner, when)))
        return bool(rows)

    async def _release_lease(self) -> None:
        await self._db(Stmt(
            "UPDATE mailbox_state SET owner = NULL, lease_until = NULL WHERE mailbox = ? "
            "AND owner = ?", (self.address.key, self.owner)))

    async def _resume(self, uidvalidity: int | None) -> int:
        """The last UID ingested under this UIDVALIDITY (0 when the mailbox is new to us or was
        rebuilt)."""
        rows = await self._db(Stmt(
            "SELECT uidvalidity, last_uid FROM mailbox_state WHERE mailbox = ?",
            (self.address.key,)))
        if rows and rows[0]["uidvalidity"] is not None and uidvalidity is not None \
                and int(rows[0]["uidvalidity"]) == uidvalidity:
            return int(rows[0]["last_uid"])
        if rows and rows[0]["uidvalidity"] is not None:
            log.warning("mailbox %s: UIDVALIDITY changed (%s → %s); reading it all again",
                        self.address.key, rows[0]["uidvalidity"], uidvalidity)
        await self._db(Stmt(
            "UPDATE mailbox_state SET uidvalidity = ?, last_uid = 0, updated_at = ? "
            "WHERE mailbox = ? AND owner = ?", (uidvalidity, now(), self.address.key, self.owner)))
        return 0

    async def _save(self, last_uid: int) -> None:
        rows = await self._db(Stmt(
            "UPDATE mailbox_state SET last_uid = ?, updated_at = ? "
            "WHERE mailbox = ? AND owner = ? AND last_uid < ? RETURNING id",
            (last_uid, now(), self.address.key, self.owner, last_uid)))
        if not rows:
            log.info("mailbox %s: UID %d was saved already", self.address.key, last_uid)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:300]


def _numbers(lines: list[Any]) -> list[int]:
    """The UIDs of a UID SEARCH answer (its untagged line: numbers only)."""
    found: list[int] = []
    for line in lines[:-1]:  # the last line is the tagged status
        words = bytes(line).split()
        if words and all(w.isdigit() for w in words):
            found.extend(int(w) for w in words)
    return found


def _uidvalidity(lines: list[Any]) -> int | None:
    for line in lines:
        match = _UIDVALIDITY.search(bytes(line))
        if match:
            return int(match.group(1))
    return None


def _literals(lines: list[Any]) -> dict[int, bytes]:
    """The message bytes in a UID FETCH answer, by UID (each literal follows its FETCH line)."""
    found: dict[int, bytes] = {}
    uid = None
    for line in lines:
        if isinstance(line, bytearray):
            if uid is not None:
                found[uid] = bytes(line)
                uid = None
            continue
        match = _FETCH_UID.search(line) if isinstance(line, bytes) else None
        uid = int(match.group(1)) if match else uid
    return found


def _batches(uids: list[int], sizes: dict[int, int], max_message: int) -> list[list[int]]:
    """UIDs in fetch groups of bounded count and bytes."""
    batches: list[list[int]] = []
    current: list[int] = []
    total = 0
    for uid in uids:
        size = min(sizes[uid], 65536) if sizes[uid] > max_message else sizes[uid]
        if current and (len(current) >= BATCH_COUNT or total + size > BATCH_BYTES):
            batches.append(current)
            current, total = [], 0
        current.append(uid)
        total += size
    if current:
        batches.append(current)
    return batches


def _quote(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


MAILBOX: web.AppKey[MailboxListener | None] = web.AppKey("mailbox", MailboxListener)


listening = while_running(lambda app: app[MAILBOX])
