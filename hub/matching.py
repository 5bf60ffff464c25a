"""Which card does a person belong to: one function, one precedence, create when unknown."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tortoise import BaseDBAsyncClient
from tortoise.expressions import Q

from hub import identity
from hub.db import insert_ignore
from hub.events import Party
from hub.identity import Kind
from hub.models import Client, ClientStatus, Identity

# A person's strongest identity decides the card: a Telegram account is theirs alone, an
# e-mail almost always, a phone may be shared (an office line), so it counts last.
PRECEDENCE = (Kind.TELEGRAM, Kind.EMAIL, Kind.TELEGRAM_USERNAME, Kind.PHONE)


class RaceLost(Exception):
    """Another transaction claimed one of our identities first: retry the whole ingest."""


@dataclass(frozen=True, slots=True)
class Keys:
    """A party's normalized identities, strongest first."""

    items: tuple[tuple[Kind, str], ...]
    display_name: str

    def __bool__(self) -> bool:
        return bool(self.items)


def party_keys(party: Party, region: str) -> Keys:
    """Normalize every identity a party carries; anonymous and garbage values drop out."""
    found: dict[tuple[Kind, str], None] = {}
    tg = identity.normalize_telegram_id(party.telegram_id) if party.telegram_id else None
    candidates = [
        (Kind.TELEGRAM, str(tg) if tg else None),
        (Kind.EMAIL, identity.normalize_email(party.email)),
        *((Kind.EMAIL, identity.normalize_email(e)) for e in party.extra_emails),
        (Kind.TELEGRAM_USERNAME, identity.normalize_username(party.telegram_username)),
        (Kind.PHONE, identity.normalize_phone(party.phone, region)),
        *((Kind.PHONE, identity.normalize_phone(p, region)) for p in party.extra_phones),
    ]
    for kind, value in candidates:
        if value:
            found[(kind, value)] = None
    ordered = sorted(found, key=lambda k: PRECEDENCE.index(k[0]))
    return Keys(tuple(ordered), (party.display_name or "").strip()[:300])


def search_text(name: str, keys: list[tuple[str, str]]) -> str:
    """What the text search looks in: the name, e-mails and usernames, lower-cased."""
    words = [name] + [v for k, v in keys if k in (Kind.EMAIL, Kind.TELEGRAM_USERNAME)]
    return "\n".join(w for w in words if w).lower()


async def match_or_create_client(
    conn: BaseDBAsyncClient, keys: Keys, when: datetime
) -> tuple[Client, bool]:
    """The card for these identities (created if none matches) and whether it is new."""
    owners = await _owners(conn, keys)
    for key in keys.items:
        if key in owners:
            client = await Client.get(id=owners[key]).using_db(conn)
            await attach_identities(conn, client, [k for k in keys.items if k not in owners], when)
            return client, False
    client = await Client.create(
        name=keys.display_name,
        status=ClientStatus.NEW,
        search=search_text(keys.display_name, list(keys.items)),
        created_at=when,
        updated_at=when,
        activity_at=when,
        using_db=conn,
    )
    for kind, value in keys.items:
        if await add_identity(conn, client.id, kind, value, when) is None:
            raise RaceLost(kind)
    return client, True


async def _owners(conn: BaseDBAsyncClient, keys: Keys) -> dict[tuple[Kind, str], int]:
    query = Q()
    for kind, value in keys.items:
        query |= Q(kind=kind.value, value=value)
    rows = await Identity.filter(query).using_db(conn).values_list("kind", "value", "client_id")
    return {(Kind(kind), value): client_id for kind, value, client_id in rows}


async def add_identity(
    conn: BaseDBAsyncClient, client_id: int, kind: str, value: str, when: datetime
) -> int | None:
    """Give the card this identity; None when it already belongs to a card."""
    rev = identity.reversed_digits(value) if kind == Kind.PHONE else None
    row = {"client_id": client_id, "kind": str(kind), "value": value, "rev": rev, "created_at": when}
    return await insert_ignore(conn, "identity", row, ("kind", "value"))


async def attach_identities(
    conn: BaseDBAsyncClient, client: Client, keys: list[tuple[Kind, str]], when: datetime
) -> None:
    """Add identities nobody holds yet to a known card (a new e-mail of a known caller)."""
    added = [k for k in keys if await add_identity(conn, client.id, k[0], k[1], when) is not None]
    if any(kind in (Kind.EMAIL, Kind.TELEGRAM_USERNAME) for kind, _ in added):
        await refresh_search(conn, client)


async def refresh_search(conn: BaseDBAsyncClient, client: Client) -> None:
    """Recompute the card's search text from its name and identities."""
    rows = await Identity.filter(client_id=client.id).using_db(conn).values_list("kind", "value")
    client.search = search_text(client.name, [(k, v) for k, v in rows])
    await client.save(using_db=conn, update_fields=["search"])
