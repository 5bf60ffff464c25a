"""Request and response bodies of the manager API (pydantic); the OpenAPI document uses them too."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hub.models import ClientStatus, Role


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClientCreate(Body):
    name: str = Field(default="", max_length=300)
    status: ClientStatus = ClientStatus.NEW
    phones: list[str] = Field(default_factory=list, max_length=20)
    emails: list[str] = Field(default_factory=list, max_length=20)
    telegram: list[int | str] = Field(default_factory=list, max_length=20)
    manager_id: int | None = None
    fields: dict[str, Any] = Field(default_factory=dict)


class ClientPatch(Body):
    name: str | None = Field(default=None, max_length=300)
    status: ClientStatus | None = None
    phones: list[str] | None = Field(default=None, max_length=20)
    emails: list[str] | None = Field(default=None, max_length=20)
    telegram: list[int | str] | None = Field(default=None, max_length=20)
    manager_id: int | None = None
    fields: dict[str, Any] | None = None


class MergeRequest(Body):
    other_id: int


class NoteCreate(Body):
    text: str = Field(min_length=1, max_length=20_000)


class ManagerCreate(Body):
    name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=254)
    extension: str | None = Field(default=None, max_length=32)
    phone: str | None = Field(default=None, max_length=32)
    role: Role = Role.MANAGER


class ClientOut(BaseModel):
    id: int
    name: str
    status: ClientStatus
    phones: list[str]
    emails: list[str]
    telegram: list[int | str]
    manager_id: int | None
    fields: dict[str, Any]
    created_at: datetime
    last_interaction_at: datetime | None


class InteractionOut(BaseModel):
    id: int
    client_id: int | None
    kind: str
    direction: str | None
    channel: str
    occurred_at: datetime
    status: str | None
    text: str
    meta: dict[str, Any]


class ManagerOut(BaseModel):
    id: int
    name: str
    email: str | None
    extension: str | None
    phone: str | None
    role: Role


class ReminderOut(BaseModel):
    id: int
    client_id: int
    manager_id: int | None
    due_at: datetime
    text: str
    status: str
    origin: str
    count: int


class MergeOut(BaseModel):
    id: int
    survivor_id: int
    merged_id: int
    by_id: int | None
    created_at: datetime
    undone_at: datetime | None


class WebhookAnswer(BaseModel):
    client_id: int | None
    created: bool
    duplicate: bool
    manager: dict[str, Any] | None


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody
