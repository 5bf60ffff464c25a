"""Which card does a person belong to: one function, one precedence, create when unknown."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise import BaseDBAsyncClient

from hub import identity
from hub.db import Program, RaceLost, Row, Stmt, as_datetime, execute
from hub.events import Party
from hub.identity import Kind
from hub.models import Client, ClientStatus, Identity

# A person's strongest identity decides the card: a Telegram account is theirs alone, an
# e-mail almost always, a phone may be shared (an office line), so it counts last.
PRECEDENCE = (Kind.TELEGRAM, Kind.EMAIL, Kind.TELEGRAM_USERNAME, Kind.PHONE)
TEXT_KINDS = (Kind.EMAIL, Kind.TELEGRAM_USERNAME)

# the card and its responsible manager, as every ingest query selects them
CLIENT_COLUMNS = (
    "c.id AS c_id, c.name AS c_name, c.status AS c_status, c.manager_id AS c_manager_id, "
    "c.last_interaction_at AS c_last, c.activity_at AS c_activity, "
    "c.merged_into_id AS c_merged, m.name AS m_name, m.extension AS m_extension, "
    "m.phone AS m_phone"
)
MANAGER_JOIN = "LEFT JOIN manager m ON m.id = c.manager_id"
# A merge holds FOR UPDATE on both cards while it moves their rows; an ingest that is about to
# write onto a card locks it first (FOR NO KEY UPDATE: the lock its own UPDATE of the card
# takes anyway). Whichever comes second waits, so an entry never lands on a card after the
# merge has moved that card's entries away. (FOR SHARE let two ingests of one card both hold
# the card and then deadlock upgrading to the UPDATE.)
SHARE_CARD = " FOR NO KEY UPDATE OF c"


@dataclass(frozen=True, slots=True)
class Keys:
    """A party's normalized identities, strongest first."""

    items: tuple[tuple[Kind, str], ...]
    display_name: str
    # the person's other addresses (an e-mail's Reply-To): written onto the card when free,
    # never used to find it, so nobody lands on a card by naming its address
    secondary: tuple[tuple[Kind, str], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.items)

    def first(self, kind: Kind) -> str | None:
        return next((v for k, v in self.items if k == kind), None)


@dataclass(slots=True)
class ClientRef:
    """What ingest needs of a card: who it is and who is responsible for it."""

    id: int
    name: str
    status: str
    manager_id: int | None
    last_interaction_at: datetime | None
    activity_at: datetime
    manager: dict[str, Any] | None
    merged_into: int | None = None
    manager_phone: str | None = None  # where a provider can ring the responsible manager

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "status": self.status}


def client_ref(row: Row) -> ClientRef | None:
    """The card columns of a row selected with CLIENT_COLUMNS (None when it has no card)."""
    if row["c_id"] is None:
        return None
    manager_id = row["c_manager_id"]
    manager = None
    if manager_id is not None and row["m_name"] is not None:
        manager = {"id": manager_id, "name": row["m_name"], "extension": row["m_extension"]}
    activity = as_datetime(row["c_activity"])
    assert activity is not None
    return ClientRef(
        id=int(row["c_id"]), name=row["c_name"], status=row["c_status"], manager_id=manager_id,
        last_interaction_at=as_datetime(row["c_last"]), activity_at=activity, manager=manager,
        merged_into=row["c_merged"], manager_phone=row["m_phone"] if manager else None,
    )


def card(client_id: int) -> Program[ClientRef | None]:
    """A card by id, locked against a concurrent merge, followed to where it lives now."""
    rows = yield Stmt(
        f"SELECT {CLIENT_COLUMNS} FROM client c {MANAGER_JOIN} WHERE c.id = ?",  # noqa: S608
        (client_id,),
        pg_suffix=SHARE_CARD,
    )
    found = client_ref(rows[0]) if rows else None
    return (yield from live_card(found)) if found else None


def live_card(client: ClientRef) -> Program[ClientRef]:
    """The card itself or, when it was merged away meanwhile, the card it lives on in now."""
    seen = {client.id}
    while client.merged_into is not None and client.merged_into not in seen:
        seen.add(client.merged_into)
        rows = yield Stmt(
            f"SELECT {CLIENT_COLUMNS} FROM client c {MANAGER_JOIN} WHERE c.id = ?",  # noqa: S608
            (client.merged_into,),
            pg_suffix=SHARE_CARD,
        )
        if not rows:
            break
        client = client_ref(rows[0]) or client
    return client


def party_keys(party: Party, region: str) -> Keys:
    """Normalize every identity a party carries; anonymous and garbage values drop out."""
    found: dict[tuple[Kind, str], None] = {}
    tg = identity.normalize_telegram_id(party.telegram_id) if party.telegram_id else None
    candidates = [
        (Kind.TELEGRAM, str(tg) if tg else None),
        (Kind.EMAIL, identity.normalize_email(party.email)),
        (Kind.TELEGRAM_USERNAME, identity.normalize_username(party.telegram_username)),
        (Kind.PHONE, identity.normalize_phone(party.phone, region)),
    ]
    for kind, value in candidates:
        if value:
            found[(kind, value)] = None
    ordered = sorted(found, key=lambda k: PRECEDENCE.index(k[0]))
    others = [
        *((Kind.EMAIL, identity.normalize_email(e)) for e in party.extra_emails),
        *((Kind.PHONE, identity.normalize_phone(p, region)) for p in party.extra_phones),
    ]
    secondary = tuple(dict.fromkeys((k, v) for k, v in others if v and (k, v) not in found))
    return Keys(tuple(ordered), (party.display_name or "").strip()[:300],
                secondary if ordered else ())


def search_text(name: str, keys: list[tuple[str, str]]) -> str:
    """What the text search looks in: the name, e-mails and usernames, lower-cased."""
    words = [name] + [v for k, v in keys if k in TEXT_KINDS]
    return "\n".join(w for w in words if w).lower()


def identity_stmt(client_id: int, kind: str, value: str, when: datetime) -> Stmt:
    """Give a card an identity unless some card holds it (then no row comes back)."""
    rev = identity.reversed_digits(value) if kind == Kind.PHONE else None
    return Stmt(
        "INSERT INTO identity (client_id, kind, value, rev, created_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (kind, value) DO NOTHING RETURNING id",
        (client_id, str(kind), value, rev, when),
    )


def _owners(keys: Keys) -> Program[dict[tuple[Kind, str], Row]]:
    where = " OR ".join(["(i.kind = ? AND i.value = ?)"] * len(keys.items))
    rows = yield Stmt(
        f"SELECT i.kind AS i_kind, i.value AS i_value, {CLIENT_COLUMNS} FROM identity i "  # noqa: S608
        f"JOIN client c ON c.id = i.client_id {MANAGER_JOIN} WHERE {where}",
        tuple(p for key in keys.items for p in (key[0].value, key[1])),
        pg_suffix=SHARE_CARD,
    )
    return {(Kind(r["i_kind"]), r["i_value"]): r for r in rows}


def find_card(keys: Keys) -> Program[ClientRef | None]:
    """The card these identities already belong to, if any: nothing is created or added."""
    if not keys:
        return None
    owners = yield from _owners(keys)
    for key in keys.items:
        if key in owners and (found := client_ref(owners[key])) is not None:
            return (yield from live_card(found))
    return None


def match_or_create(
    keys: Keys, when: datetime, touched_at: datetime | None = None
) -> Program[tuple[ClientRef, bool]]:
    """The card for these identities (created if none matches) and whether it is new; a card
    made here for a message already carries the message's time (`touched_at`)."""
    owners = yield from _owners(keys)
    for key in keys.items:
        if key in owners:
            found = client_ref(owners[key])
            assert found is not None
            client = yield from live_card(found)
            missing = [k for k in (*keys.items, *keys.secondary) if k not in owners]
            yield from _attach(client, missing, when)
            return client, False
    client = yield from create_card(keys, when, touched_at)
    if keys.secondary:
        yield from _attach(client, list(keys.secondary), when)
    return client, True


def create_card(
    keys: Keys, when: datetime, touched_at: datetime | None = None
) -> Program[ClientRef]:
    """A new card with these identities (a card may have none: a web form with only a name).
    `touched_at` is the time of the interaction that made it, stored at once instead of by a
    second UPDATE."""
    activity_at = max(when, touched_at) if touched_at else when
    rows = yield Stmt(
        "INSERT INTO client (name, status, custom_fields, created_at, updated_at, activity_at, "
        "last_interaction_at, search) VALUES (?, ?, '{}', ?, ?, ?, ?, ?) RETURNING id",
        (keys.display_name, ClientStatus.NEW.value, when, when, activity_at, touched_at,
         search_text(keys.display_name, list(keys.items))),
    )
    client_id = int(rows[0]["id"])
    for kind, value in keys.items:
        if not (yield identity_stmt(client_id, kind, value, when)):
            raise RaceLost(f"{kind} was claimed by a concurrent ingest")
    return ClientRef(client_id, keys.display_name, ClientStatus.NEW.value, None, touched_at,
                     activity_at, None)


def _attach(client: ClientRef, keys: list[tuple[Kind, str]], when: datetime) -> Program[None]:
    added = []
    for kind, value in keys:
        if (yield identity_stmt(client.id, kind, value, when)):
            added.append(kind)
    if any(kind in TEXT_KINDS for kind in added):
        rows = yield Stmt("SELECT kind, value FROM identity WHERE client_id = ?", (client.id,))
        text = search_text(client.name, [(r["kind"], r["value"]) for r in rows])
        yield Stmt("UPDATE client SET search = ? WHERE id = ?", (text, client.id))


async def add_identity(
    conn: BaseDBAsyncClient, client_id: int, kind: str, value: str, when: datetime
) -> int | None:
    """Give the card this identity; None when it already belongs to a card."""
    rows = await execute(conn, identity_stmt(client_id, kind, value, when))
    return int(rows[0]["id"]) if rows else None


async def refresh_search(conn: BaseDBAsyncClient, client: Client) -> None:
    """Recompute the card's search text from its name and identities."""
    rows = await Identity.filter(client_id=client.id).using_db(conn).values_list("kind", "value")
    client.search = search_text(client.name, [(k, v) for k, v in rows])
    await client.save(using_db=conn, update_fields=["search"])
