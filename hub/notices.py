"""Reminders reach their manager: when a reminder fires, a manager who linked Telegram gets
a message from the bot, else one with an e-mail address gets an e-mail (when the hub has a bot,
or sends mail). The notice is queued in the durable outbox in
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
    rows: Iterable[Row], when: datetime, message_id: Callable[[], str] | None,
    link_base: str | None = None, telegram_id: Callable[[], str] | None = None,
) -> Program[int]:
    """A notice for each fired reminder: by Telegram to a manager who linked their account
    (when the hub has a bot), else by e-mail to one with an address (when it sends mail).
    `message_id`/`telegram_id` make the outbox row's id for each channel. How many."""
    rows = [r for r in rows if r["manager_id"] is not None]
    if not rows:
        return 0
    managers = yield from _by_id(
        "SELECT id, name, email, telegram_user_id FROM manager WHERE is_active = ? "
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
        if manager["telegram_user_id"] and telegram_id is not None:
            channel, to, new_id = "telegram", str(manager["telegram_user_id"]), telegram_id
        elif manager["email"] and message_id is not None:
            channel, to, new_id = "email", str(manager["email"]), message_id
        else:
            continue
        card = cards.get(row["client_id"], {"id": row["client_id"], "name": ""})
        mail = reminder_mail(row, to, card, contacts.get(row["client_id"], {}), when,
                             new_id(), link_base, channel)
        meta = {"reminder_id": row["id"], "due_at": _iso(row["due_at"]), "origin": row["origin"]}
        yield from queue_email("reminder", int(row["client_id"]), int(manager["id"]), mail,
                               meta, when, direction=None, channel=channel)
        queued += 1
    return queued


def reminder_mail(
    row: Row, to: str, card: Row, contacts: dict[str, list[str]], when: datetime,
    message_id: str, link_base: str | None, channel: str = "email",
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
    subject = f"Reminder: {name}" + (f" — {about}" if about else "")
    if channel == "telegram":  # no subject line there: it heads the text
        lines = [subject, "", *lines[2:]]
    return OutgoingEmail(
        to=to, subject=subject, text="\n".join(lines) + "\n", html=None,
        message_id=message_id, date=when, auto_submitted=True,
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
