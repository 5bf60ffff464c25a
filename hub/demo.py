"""`hub demo`: sample managers, cards and a realistic timeline, through the real pipeline.

Each sample person follows the product's story: a call from an unknown number creates the card,
the manager fills in name, status and e-mail (as in PATCH /api/clients/{id}), the client's e-mail
then lands on the same card, the manager leaves notes, and a missed call leaves a call-back
reminder. Nothing here bypasses the pipeline for calls or e-mails.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from hub.clients import update_client
from hub.db import now
from hub.events import CallEvent, CallOutcome, CallState, Direction, MessageEvent, Party
from hub.managers import create_manager, issue_token
from hub.matching import party_keys
from hub.models import Client, ClientStatus, Identity, Interaction, Manager, Reminder, Role
from hub.pipeline import Pipeline
from hub.schemas import ClientPatch
from hub.sessions import set_password
from hub.settings import Settings

OFFICE_LINE = "+74950000000"


class DemoRefused(Exception):
    """The database already holds cards and --force was not given."""


@dataclass(frozen=True, slots=True)
class Staff:
    key: str
    name: str
    email: str
    extension: str | None
    role: Role


STAFF = (
    Staff("admin", "Demo Admin", "admin@demo.local", None, Role.ADMIN),
    Staff("olga", "Ольга Орлова", "olga@demo.local", "101", Role.MANAGER),
    Staff("dmitry", "Дмитрий Козлов", "dmitry@demo.local", "102", Role.MANAGER),
)


@dataclass(frozen=True, slots=True)
class Step:
    """One thing that happened, `days_ago` days back (fractions allowed)."""

    days_ago: float
    kind: str  # call_in, missed_in, call_out, email, note, remind
    text: str = ""
    subject: str = ""
    minutes: int = 4


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    phone: str
    email: str | None
    status: ClientStatus
    manager: str
    steps: tuple[Step, ...] = field(default_factory=tuple)
    fields: dict[str, str] = field(default_factory=dict)


PEOPLE = (
    Person(
        "Анна Смирнова",
        "+7 912 345-67-89",
        "anna.smirnova@example.ru",
        ClientStatus.HOT,
        "olga",
        (
            Step(5, "call_in", minutes=6),
            Step(4.99, "note", "Интересуется доставкой в Казань, просит коммерческое предложение."),
            Step(
                4.9,
                "email",
                "Здравствуйте! Пришлите, пожалуйста, прайс-лист и условия доставки "
                "в Казань. Объём — около 40 коробок в месяц.",
                "Запрос коммерческого предложения",
            ),
            Step(4.8, "note", "КП отправлено, обещала ответить до конца недели."),
            Step(0.2, "missed_in"),
        ),
        {"city": "Казань"},
    ),
    Person(
        "Иван Петров",
        "8 (903) 111-22-33",
        "i.petrov@example.ru",
        ClientStatus.REGULAR,
        "dmitry",
        (
            Step(12, "call_in", minutes=3),
            Step(
                11.9,
                "email",
                "Добрый день! Подтверждаю заказ №1482, оплату проведём в пятницу.",
                "Заказ №1482",
            ),
            Step(2, "call_out", minutes=9),
            Step(1.99, "note", "Думает о расширении заказа, просил перезвонить через сутки."),
            Step(1, "remind", "Перезвонить Ивану: решение по расширению заказа"),
        ),
    ),
    Person(
        "Ольга Иванова",
        "+7 916 555 44 33",
        None,
        ClientStatus.NEW,
        "olga",
        (
            Step(3, "missed_in"),
            Step(2.9, "call_out", minutes=5),
            Step(
                2.89, "note", "Перезвонили после пропущенного: нужна консультация по оптовым ценам."
            ),
        ),
    ),
    Person(
        "ООО «Ромашка»",
        "+7 495 123-45-67",
        "zakaz@romashka.example",
        ClientStatus.VIP,
        "admin",
        (
            Step(30, "call_in", minutes=12),
            Step(
                29,
                "email",
                "Направляем реквизиты для договора поставки. Контактное лицо — Елена, бухгалтерия.",
                "Реквизиты для договора",
            ),
            Step(1.5, "email", "Просим выставить счёт на ежемесячную поставку.", "Счёт на декабрь"),
            Step(1.4, "note", "Счёт выставлен, отправлен по e-mail."),
        ),
        {"inn": "7701234567"},
    ),
    Person(
        "Sergey Kuznetsov",
        "+7 921 765-43-21",
        "sergey.k@example.com",
        ClientStatus.COLD,
        "dmitry",
        (
            Step(130, "call_in", minutes=2),
            Step(
                129,
                "email",
                "Thanks, I will come back to you after the holidays.",
                "Re: price list",
            ),
            Step(128.9, "note", "Не выходил на связь больше 4 месяцев — кандидат для рассылки."),
        ),
    ),
)


async def fill_demo(settings: Settings, *, force: bool = False) -> str:
    """Add demo data; refuses a database that already has cards unless forced."""
    if not force and await Client.exists():
        raise DemoRefused(
            "the database already has clients, so no demo data was added "
            "(`hub demo --force` adds it anyway)"
        )
    password = secrets.token_urlsafe(9)  # this run's web UI password for every demo manager
    staff = {s.key: await _staff_member(s, password) for s in STAFF}
    demo = _Demo(Pipeline(settings.phone_region), settings.phone_region, secrets.token_hex(4))
    for person in PEOPLE:
        await demo.play(person, staff[person.manager][0])
    lines = [f"demo data added: {len(PEOPLE)} clients, {len(STAFF)} managers; API tokens:"]
    lines += [
        f"  {m.name} ({m.role}{', ext. ' + m.extension if m.extension else ''}): {token}"
        for m, token in staff.values()
    ]
    lines.append("web UI (/login): " + ", ".join(s.email for s in STAFF)
                 + f"; password for each: {password}")
    return "\n".join(lines)


async def _staff_member(s: Staff, password: str) -> tuple[Manager, str]:
    """The demo manager (reused on --force, with a fresh token and password) and an API
    token."""
    existing = await Manager.get_or_none(email=s.email)
    if existing is not None:
        await set_password(existing, password)
        return existing, await issue_token(existing)
    return await create_manager(s.name, email=s.email, extension=s.extension, role=s.role,
                                password=password)


@dataclass(slots=True)
class _Demo:
    pipeline: Pipeline
    region: str
    run: str
    counter: int = 0
    start: datetime = field(default_factory=now)

    def _id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.run}-{self.counter}"

    async def play(self, person: Person, manager: Manager) -> None:
        """Replay one person's story; the first call creates the card, the manager fills it in."""
        client: Client | None = None
        for step in person.steps:
            at = self.start - timedelta(days=step.days_ago)
            if step.kind in ("call_in", "missed_in", "call_out"):
                await self._call(person.phone, at, step, manager)
                if client is None:
                    client = await self._fill_card(person, manager)
            elif step.kind == "email":
                assert person.email, person.name
                await self._email(person, at, step)
            elif step.kind == "note":
                assert client is not None
                await _note(client, manager, at, step.text)
            elif step.kind == "remind":
                assert client is not None
                await Reminder.create(
                    client=client,
                    manager=manager,
                    due_at=at + timedelta(days=1.2),
                    text=step.text,
                    origin="manual",
                    created_at=at,
                )

    async def _call(self, phone: str, at: datetime, step: Step, manager: Manager) -> None:
        inbound = step.kind != "call_out"
        answered = step.kind != "missed_in"
        ringing = CallEvent(
            source="demo",
            call_id=self._id("demo-call"),
            state=CallState.RINGING,
            direction=Direction.INBOUND if inbound else Direction.OUTBOUND,
            remote=Party(phone=phone),
            occurred_at=at,
            line=OFFICE_LINE,
            extension=manager.extension,
        )
        await self.pipeline.ingest(ringing)
        talk = timedelta(minutes=step.minutes) if answered else timedelta(seconds=25)
        if answered:
            await self.pipeline.ingest(
                replace(ringing, state=CallState.ANSWERED, occurred_at=at + timedelta(seconds=9))
            )
        await self.pipeline.ingest(
            replace(
                ringing,
                state=CallState.ENDED,
                occurred_at=at + talk,
                outcome=CallOutcome.ANSWERED if answered else CallOutcome.MISSED,
                duration_s=int(talk.total_seconds()) if answered else 0,
            )
        )

    async def _fill_card(self, person: Person, manager: Manager) -> Client:
        """What the manager types during the first call: name, status, e-mail, responsible."""
        keys = party_keys(Party(phone=person.phone), self.region)
        phone = next(value for _, value in keys.items)
        ident = await Identity.get(kind="phone", value=phone)
        client = await Client.get(id=ident.client_id)  # type: ignore[attr-defined]
        patch = ClientPatch(
            name=person.name,
            status=person.status,
            manager_id=manager.id,
            fields=dict(person.fields) or None,
            emails=[person.email] if person.email else None,
        )
        return await update_client(client, patch, self.region)

    async def _email(self, person: Person, at: datetime, step: Step) -> None:
        await self.pipeline.ingest(
            MessageEvent(
                source="email",
                channel="email",
                external_id=f"<{self._id('demo')}@example.invalid>",
                sender=Party(email=person.email, display_name=person.name),
                subject=step.subject,
                text=step.text,
                occurred_at=at,
            )
        )


async def _note(client: Client, manager: Manager, at: datetime, text: str) -> None:
    """A manager's comment, shaped like POST /api/clients/{id}/notes makes it."""
    await Interaction.create(
        client=client,
        kind="note",
        direction=None,
        channel="hub",
        occurred_at=at,
        status=None,
        text=text,
        meta={"author": manager.name},
        author=manager,
        created_at=at,
        updated_at=at,
    )
