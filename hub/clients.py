"""Client cards: create, change, find, serialize. Identities stay unique across cards."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from tortoise import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from hub import identity, outgoing
from hub.db import now
from hub.errors import ConflictError, GoneError, NotFoundError, ValidationError
from hub.identity import Kind
from hub.matching import add_identity, search_text
from hub.models import Client, Identity, Manager
from hub.schemas import ClientCreate, ClientPatch


async def get_client(client_id: int, conn: BaseDBAsyncClient | None = None) -> Client:
    """The live card; 404 when absent, 410 with `merged_into` when merged away."""
    client = await Client.filter(id=client_id).using_db(conn).first()
    if client is None:
        raise NotFoundError(f"client {client_id} does not exist")
    merged_into = client.merged_into_id  # type: ignore[attr-defined]
    if merged_into is not None:
        raise GoneError(
            f"client {client_id} was merged into {merged_into}", merged_into=merged_into
        )
    return client


def identity_keys(
    region: str, phones: Iterable[str], emails: Iterable[str], telegram: Iterable[int | str]
) -> list[tuple[Kind, str]]:
    """Normalize what a manager typed; 422 naming the first value that is not valid."""
    keys: dict[tuple[Kind, str], None] = {}
    for raw in phones:
        keys[_phone_key(raw, region, "phones")] = None
    for raw in emails:
        keys[_email_key(raw, "emails")] = None
    for handle in telegram:
        keys[_telegram_key(handle)] = None
    return list(keys)


def _phone_key(raw: str, region: str, field: str) -> tuple[Kind, str]:
    value = identity.normalize_phone(raw, region)
    if value is None:
        raise ValidationError(f"{field}: {raw!r} is not a valid phone number", field=field)
    return (Kind.PHONE, value)


def _email_key(raw: str, field: str) -> tuple[Kind, str]:
    value = identity.normalize_email(raw)
    if value is None:
        raise ValidationError(f"{field}: {raw!r} is not a valid e-mail address", field=field)
    return (Kind.EMAIL, value)


def _telegram_key(raw: int | str) -> tuple[Kind, str]:
    tg = identity.normalize_telegram_id(raw)
    if tg is not None and not str(raw).startswith("@"):
        return (Kind.TELEGRAM, str(tg))
    username = identity.normalize_username(str(raw))
    if username is None:
        raise ValidationError(
            f"telegram: {raw!r} is neither a user id nor an @username", field="telegram"
        )
    return (Kind.TELEGRAM_USERNAME, username)


async def create_client(data: ClientCreate, region: str) -> Client:
    """A card made by a manager; its identities must not belong to another card (409)."""
    keys = identity_keys(region, data.phones, data.emails, data.telegram)
    await _check_manager(data.manager_id)
    when = now()
    async with in_transaction() as conn:
        client = await Client.create(
            name=data.name.strip(), status=data.status, manager_id=data.manager_id,
            custom_fields=data.fields, search=search_text(data.name.strip(), list(keys)),
            created_at=when, updated_at=when, activity_at=when, using_db=conn,
        )
        await _claim(conn, client.id, keys, when)
        await outgoing.emit_on(conn, [outgoing.Outgoing("client.created", {
            "client": _serialize(client, [(k.value, v) for k, v in keys])}, when)], when)
    return client


async def update_client(client: Client, data: ClientPatch, region: str) -> Client:
    """Apply a partial change; lists given replace the card's identities of that kind."""
    sent = data.model_fields_set
    if "manager_id" in sent:
        await _check_manager(data.manager_id)
    when = now()
    async with in_transaction() as conn:
        client = await get_client(client.id, conn)
        if data.name is not None:
            client.name = data.name.strip()
        if data.status is not None:
            client.status = data.status
        if "manager_id" in sent:
            client.manager_id = data.manager_id
        if data.fields is not None:
            client.custom_fields = {**client.custom_fields, **data.fields}
            client.custom_fields = {k: v for k, v in client.custom_fields.items() if v is not None}
        await _replace_identities(conn, client, data, region, when)
        rows = await (
            Identity.filter(client_id=client.id).using_db(conn).values_list("kind", "value")
        )
        client.search = search_text(client.name, list(rows))
        client.updated_at = when
        await client.save(using_db=conn)
    return client


async def _replace_identities(
    conn: BaseDBAsyncClient, client: Client, data: ClientPatch, region: str, when: datetime
) -> None:
    wanted: list[tuple[Kind, str]] = []
    kinds: list[str] = []
    if data.phones is not None:
        wanted += identity_keys(region, data.phones, [], [])
        kinds.append(Kind.PHONE)
    if data.emails is not None:
        wanted += identity_keys(region, [], data.emails, [])
        kinds.append(Kind.EMAIL)
    if data.telegram is not None:
        wanted += identity_keys(region, [], [], data.telegram)
        kinds += [Kind.TELEGRAM, Kind.TELEGRAM_USERNAME]
    if not kinds:
        return
    current = await Identity.filter(client_id=client.id, kind__in=kinds).using_db(conn)
    keep = set(wanted)
    for row in current:
        if (row.kind, row.value) not in keep:
            await row.delete(using_db=conn)
    have = {(r.kind, r.value) for r in current}
    await _claim(conn, client.id, [k for k in wanted if k not in have], when)


async def _claim(
    conn: BaseDBAsyncClient, client_id: int, keys: list[tuple[Kind, str]], when: datetime
) -> None:
    for kind, value in keys:
        if await add_identity(conn, client_id, kind, value, when) is None:
            holder = await Identity.filter(kind=kind, value=value).using_db(conn).get()
            raise ConflictError(
                f"{kind} {value} already belongs to client {holder.client_id}",  # type: ignore[attr-defined]
                client_id=holder.client_id,  # type: ignore[attr-defined]
            )


async def _check_manager(manager_id: int | None) -> None:
    if manager_id is not None and not await Manager.exists(id=manager_id):
        raise ValidationError(
            f"manager_id: manager {manager_id} does not exist", field="manager_id"
        )


async def serialize_many(clients: list[Client]) -> list[dict[str, Any]]:
    """Cards as the API shows them, their identities read in one query."""
    by_client: dict[int, list[tuple[str, str]]] = defaultdict(list)
    ids = [c.id for c in clients]
    if ids:
        rows = await Identity.filter(client_id__in=ids).order_by("id").values_list(
            "client_id", "kind", "value"
        )
        for client_id, kind, value in rows:
            by_client[client_id].append((kind, value))
    return [_serialize(c, by_client[c.id]) for c in clients]


async def serialize(client: Client) -> dict[str, Any]:
    """One card as the API shows it."""
    return (await serialize_many([client]))[0]


def _serialize(client: Client, keys: list[tuple[str, str]]) -> dict[str, Any]:
    return card_object(client.id, client.name, str(client.status), client.manager_id,  # type: ignore[attr-defined]
                       client.custom_fields, client.created_at, client.last_interaction_at, keys)


def card_object(
    client_id: int, name: str, status: str, manager_id: int | None, fields: dict[str, Any],
    created_at: datetime, last_interaction_at: datetime | None,
    keys: Iterable[tuple[str, str]],
) -> dict[str, Any]:
    """A card as the API (and an outgoing webhook) shows it, from its columns and identities."""
    keys = list(keys)
    telegram: list[int | str] = [int(v) for k, v in keys if k == Kind.TELEGRAM]
    telegram += ["@" + v for k, v in keys if k == Kind.TELEGRAM_USERNAME]
    return {
        "id": client_id,
        "name": name,
        "status": status,
        "phones": [v for k, v in keys if k == Kind.PHONE],
        "emails": [v for k, v in keys if k == Kind.EMAIL],
        "telegram": telegram,
        "manager_id": manager_id,
        "fields": fields,
        "created_at": created_at.isoformat(),
        "last_interaction_at": _iso(last_interaction_at),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def lookup(region: str, phone: str | None, email: str | None, telegram: str | None) -> Client:
    """The card holding this phone (any written form), e-mail or Telegram id/@username."""
    key = _lookup_key(region, phone, email, telegram)
    row = await Identity.filter(kind=key[0], value=key[1]).first()
    if row is None:
        raise NotFoundError("no client has that contact")
    return await get_client(row.client_id)  # type: ignore[attr-defined]


def _lookup_key(
    region: str, phone: str | None, email: str | None, telegram: str | None
) -> tuple[Kind, str]:
    if phone is not None:
        return _phone_key(phone, region, "phone")
    if email is not None:
        return _email_key(email, "email")
    if telegram is not None:
        return _telegram_key(telegram)
    raise ValidationError("give one of phone, email or telegram", field="phone")
