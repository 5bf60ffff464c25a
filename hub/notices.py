"""Reminders by e-mail: when a reminder fires, its manager also gets an e-mail (when the hub
can send mail and the manager has an address). The notice is queued in the durable outbox in
the same transaction that claims the reminder, so a process that dies after the claim loses
no notice, and it shows on the client's timeline as a `reminder` entry whose status moves
queued → sent or failed like any mail of ours. It carries Auto-Submitted: auto-generated, so
no autoresponder answers it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from channels.smtp import OutgoingEmail
from hub.db import Program, Row, Stmt, as_datetime
from hub.outbox import queue_email

MAX_SUBJECT_TEXT = 80


def queue_reminder_mails(
    rows: Iterable[Row], when: datetime, message_id: Callable[[], str],
    link_base: str | None = None,
) -> Program[int]:
    """A notice for each fired reminder whose manager has an e-mail address; how many."""
    rows = [r for r in rows if r["manager_id"] is not None]
    if not rows:
        return 0
    managers = yield from _by_id(
        "SELECT id, name, email FROM manager WHERE is_active = ? AND email IS NOT NULL "
        "AND id IN ({})", [r["manager_id"] for r in rows], (True,))
    if not managers:
        return 0
    client_ids = [r["client_id"] for r in rows]
    cards = yield from _by_id("SELECT id, name FROM client WHERE id IN ({})", client_ids)
    contacts = yield from _contacts(client_ids)
    queued = 0
    for row in rows:
        manager = managers.get(row["manager_id"])
        if manager is None:
            continue
        card = cards.get(row["client_id"], {"id": row["client_id"], "name": ""})
        mail = reminder_mail(row, manager, card, contacts.get(row["client_id"], {}), when,
                             message_id(), link_base)
        meta = {"reminder_id": row["id"], "due_at": _iso(row["due_at"]), "origin": row["origin"]}
        yield from queue_email("reminder", int(row["client_id"]), int(manager["id"]), mail,
                               meta, when, direction=None)
        queued += 1
    return queued


def reminder_mail(
    row: Row, manager: Row, card: Row, contacts: dict[str, list[str]], when: datetime,
    message_id: str, link_base: str | None,
) -> OutgoingEmail:
    """What the manager reads: the reminder, who to call and how, and the card's address."""
    name = card["name"] or f"#{card['id']}"
    text = " ".join(str(row["text"] or "").split())
    about = text[:MAX_SUBJECT_TEXT] + ("..." if len(text) > MAX_SUBJECT_TEXT else "")
    lines = [text or "Call the client back.", "", f"Client: {name}"]
    lines += [f"Phone: {p}" for p in contacts.get("phone", [])]
    lines += [f"E-mail: {e}" for e in contacts.get("email", [])]
    lines.append(f"Due: {_iso(row['due_at'])}")
    if link_base:
        lines.append(f"Card: {link_base.rstrip('/')}/api/clients/{card['id']}")
    return OutgoingEmail(
        to=str(manager["email"]), subject=f"Reminder: {name}" + (f" — {about}" if about else ""),
        text="\n".join(lines) + "\n", html=None, message_id=message_id, date=when,
        auto_submitted=True,
    )


def _iso(value: Any) -> str:
    moment = as_datetime(value)
    return moment.isoformat() if moment else str(value)


def _by_id(sql: str, ids: list[Any], params: tuple[Any, ...] = ()) -> Program[dict[Any, Row]]:
    unique = sorted(set(ids))
    rows = yield Stmt(sql.format(", ".join("?" * len(unique))), (*params, *unique))
    return {r["id"]: r for r in rows}


def _contacts(client_ids: list[Any]) -> Program[dict[Any, dict[str, list[str]]]]:
    unique = sorted(set(client_ids))
    rows = yield Stmt(
        "SELECT client_id, kind, value FROM identity WHERE kind IN ('phone', 'email') "  # noqa: S608
        f"AND client_id IN ({', '.join('?' * len(unique))}) ORDER BY id",
        tuple(unique),
    )
    found: dict[Any, dict[str, list[str]]] = {}
    for r in rows:
        found.setdefault(r["client_id"], {}).setdefault(r["kind"], []).append(r["value"])
    return found
