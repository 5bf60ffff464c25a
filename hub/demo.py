"""`hub demo`: sample managers, cards and a realistic timeline, through the real pipeline."""

from __future__ import annotations

from datetime import timedelta

from hub.db import now
from hub.events import CallEvent, CallOutcome, CallState, Direction, MessageEvent, Party
from hub.managers import create_manager
from hub.models import Client, ClientStatus, Interaction, Manager, Role
from hub.pipeline import Pipeline
from hub.settings import Settings

CLIENTS = [
    ("Анна Смирнова", "+7 912 345-67-89", "anna.smirnova@example.ru", ClientStatus.HOT),
    ("Иван Петров", "8 (903) 111-22-33", "i.petrov@example.ru", ClientStatus.REGULAR),
    ("Olga Ivanova", "+7 916 555 44 33", None, ClientStatus.NEW),
    ("ООО «Ромашка»", "+7 495 123-45-67", "zakaz@romashka.example", ClientStatus.VIP),
    ("Sergey Kuznetsov", "+7 921 765-43-21", "sergey.k@example.com", ClientStatus.COLD),
]


async def fill_demo(settings: Settings, *, force: bool = False) -> str:
    """Add demo data; refuses a database that already has cards unless forced."""
    if not force and await Client.exists():
        return "the database already has clients; run `hub demo --force` to add the demo anyway"
    admin, admin_token = await create_manager("Demo Admin", email="admin@demo.local", role=Role.ADMIN)
    olga, olga_token = await create_manager("Ольга Менеджер", email="olga@demo.local", extension="101")
    pipeline = Pipeline(settings.phone_region)
    start = now() - timedelta(days=5)
    for i, (name, phone, email, status) in enumerate(CLIENTS):
        at = start + timedelta(hours=7 * i)
        await _call(pipeline, f"demo-{i}", phone, at, answered=i % 3 != 2)
        if email:
            await pipeline.ingest(MessageEvent(
                source="email", channel="email", external_id=f"<demo-{i}@demo.local>",
                sender=Party(email=email, display_name=name), subject="Запрос коммерческого предложения",
                text="Здравствуйте! Пришлите, пожалуйста, прайс-лист и условия доставки.",
                occurred_at=at + timedelta(hours=2),
            ))
        await _finish_card(phone, settings, name, status, olga if i % 2 == 0 else admin)
    return (
        f"demo data added: {len(CLIENTS)} clients, 2 managers\n"
        f"admin token (Demo Admin): {admin_token}\nmanager token (Ольга, ext. 101): {olga_token}"
    )


async def _call(pipeline: Pipeline, call_id: str, phone: str, at: object, *, answered: bool) -> None:
    from datetime import datetime

    assert isinstance(at, datetime)
    party = Party(phone=phone)
    base = dict(source="demo", call_id=call_id, direction=Direction.INBOUND, remote=party,
                line="+74950000000", extension="101")
    await pipeline.ingest(CallEvent(state=CallState.RINGING, occurred_at=at, **base))  # type: ignore[arg-type]
    if answered:
        await pipeline.ingest(CallEvent(state=CallState.ANSWERED, occurred_at=at + timedelta(seconds=8), **base))  # type: ignore[arg-type]
    outcome = CallOutcome.ANSWERED if answered else CallOutcome.MISSED
    await pipeline.ingest(CallEvent(
        state=CallState.ENDED, occurred_at=at + timedelta(minutes=4), outcome=outcome,
        duration_s=232 if answered else 0, **base,  # type: ignore[arg-type]
    ))


async def _finish_card(phone: str, settings: Settings, name: str, status: ClientStatus,
                       manager: Manager) -> None:
    from hub.identity import normalize_phone
    from hub.models import Identity

    ident = await Identity.get(kind="phone", value=normalize_phone(phone, settings.phone_region))
    client = await Client.get(id=ident.client_id)  # type: ignore[attr-defined]
    client.name, client.status = name, status
    client.manager_id = manager.id  # type: ignore[attr-defined]
    await client.save()
    from tortoise import connections

    from hub.matching import refresh_search

    await refresh_search(connections.get("default"), client)
    when = now()
    await Interaction.create(
        client=client, kind="note", channel="hub", occurred_at=when, text="Просит перезвонить после 15:00",
        meta={"author": manager.name}, author=manager, created_at=when, updated_at=when,
    )
