"""Folding one card into another, recorded so that it can be undone."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

from tortoise import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from hub import outgoing
from hub.clients import card_object, get_client
from hub.db import is_postgres, now
from hub.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from hub.matching import refresh_search
from hub.models import Call, Client, Identity, Interaction, Manager, Merge, Reminder, Role

_MOVED = {"identities": Identity, "interactions": Interaction, "calls": Call, "reminders": Reminder}
_KEPT = ("name", "status", "manager_id", "custom_fields", "last_interaction_at", "activity_at")


async def merge_clients(survivor_id: int, other_id: int, by: Manager | None) -> Merge:
    """Fold `other` into `survivor`: identities, timeline, calls and reminders move over."""
    if survivor_id == other_id:
        raise ValidationError("other_id: a card cannot be merged into itself", field="other_id")
    async with in_transaction() as conn:
        await _lock(conn, survivor_id, other_id)
        survivor = await get_client(survivor_id, conn)
        other = await get_client(other_id, conn)
        before = {k: _plain(getattr(survivor, k)) for k in _KEPT}
        moved = {name: await _move(conn, model, other.id, survivor.id)
                 for name, model in _MOVED.items()}
        _absorb(survivor, other)
        await survivor.save(using_db=conn)
        await refresh_search(conn, survivor)
        other.merged_into_id = survivor.id
        await other.save(using_db=conn, update_fields=["merged_into_id"])
        when = now()
        merge: Merge = await Merge.create(
            survivor=survivor, merged=other, by=by, moved={**moved, "survivor_before": before},
            created_at=when, using_db=conn,
        )
        card = await Identity.filter(client_id=survivor.id).using_db(conn).order_by(
            "id").values_list("kind", "value")
        await outgoing.emit_on(conn, [outgoing.Outgoing("client.merged", {
            "client": card_object(survivor.id, survivor.name, str(survivor.status),
                                  survivor.manager_id,  # type: ignore[attr-defined]
                                  survivor.custom_fields, survivor.created_at,
                                  survivor.last_interaction_at, card),
            "merged_id": other.id, "merge_id": merge.id,
            "by": {"id": by.id, "name": by.name} if by is not None else None}, when)], when)
        return merge


async def _lock(conn: BaseDBAsyncClient, *ids: int) -> None:
    """Row locks in id order, so crossing merges of the same cards queue instead of racing."""
    if is_postgres(conn):
        await Client.filter(id__in=ids).using_db(conn).order_by("id").select_for_update()


async def _move(conn: BaseDBAsyncClient, model: Any, from_id: int, to_id: int) -> list[int]:
    ids = await model.filter(client_id=from_id).using_db(conn).values_list("id", flat=True)
    if ids:
        await model.filter(id__in=ids).using_db(conn).update(client_id=to_id)
    return [int(i) for i in ids]


def _absorb(survivor: Client, other: Client) -> None:
    survivor.name = survivor.name or other.name
    if survivor.manager_id is None:  # type: ignore[attr-defined]
        survivor.manager_id = other.manager_id  # type: ignore[attr-defined]
    survivor.custom_fields = {**other.custom_fields, **survivor.custom_fields}
    last = [t for t in (survivor.last_interaction_at, other.last_interaction_at) if t is not None]
    survivor.last_interaction_at = max(last) if last else None
    survivor.activity_at = max(survivor.activity_at, other.activity_at)
    survivor.updated_at = now()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value) if isinstance(value, Enum) else value


async def undo_merge(merge_id: int, by: Manager) -> Merge:
    """Split the cards again: what moved goes back, the survivor's own values return."""
    async with in_transaction() as conn:
        merge = await Merge.filter(id=merge_id).using_db(conn).select_for_update().first()
        if merge is None:
            raise NotFoundError(f"merge {merge_id} does not exist")
        if merge.undone_at is not None:
            raise ConflictError("that merge was already undone")
        if by.role != Role.ADMIN and merge.by_id not in (None, by.id):  # type: ignore[attr-defined]
            raise ForbiddenError("only an admin or the manager who merged can undo it")
        await _lock(conn, merge.survivor_id, merge.merged_id)  # type: ignore[attr-defined]
        survivor = await Client.get(id=merge.survivor_id).using_db(conn)  # type: ignore[attr-defined]
        other = await Client.get(id=merge.merged_id).using_db(conn)  # type: ignore[attr-defined]
        if survivor.merged_into_id is not None:
            raise ConflictError("the surviving card was itself merged since; undo that first")
        for name, model in _MOVED.items():
            ids = merge.moved.get(name, [])
            await model.filter(id__in=ids, client_id=survivor.id).using_db(conn).update(
                client_id=other.id
            )
        _restore(survivor, merge.moved.get("survivor_before", {}))
        await survivor.save(using_db=conn)
        other.merged_into_id = None
        await other.save(using_db=conn, update_fields=["merged_into_id"])
        await refresh_search(conn, survivor)
        await refresh_search(conn, other)
        merge.undone_at = now()
        await merge.save(using_db=conn, update_fields=["undone_at"])
        return merge


def _restore(survivor: Client, before: dict[str, Any]) -> None:
    for key, value in before.items():
        if key in ("last_interaction_at", "activity_at") and value is not None:
            value = datetime.fromisoformat(value)
        setattr(survivor, key, value)


def serialize(merge: Merge) -> dict[str, Any]:
    """A merge record as the API shows it."""
    return {
        "id": merge.id,
        "survivor_id": merge.survivor_id,  # type: ignore[attr-defined]
        "merged_id": merge.merged_id,  # type: ignore[attr-defined]
        "by_id": merge.by_id,  # type: ignore[attr-defined]
        "created_at": merge.created_at.isoformat(),
        "undone_at": merge.undone_at.isoformat() if merge.undone_at else None,
    }
