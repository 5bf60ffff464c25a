"""One contract over every registered adapter: declared metadata, fixtures, closed by default,
secrets masked, unsigned requests refused, every fixture parses into hub events."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from channels import ADAPTERS
from channels.base import Adapter, InboundRequest
from hub.errors import SignatureError
from hub.events import CallEvent, MessageEvent
from tests.helpers import EMAIL_TOKEN, GENERIC_SECRET, sign

FIXTURES = Path(__file__).parent.parent / "fixtures"
SECRET_VALUE = "s3cr3t-value-never-shown"


def _generic(body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, GENERIC_SECRET)}


def _email(body: bytes) -> dict[str, str]:
    return {"Content-Type": "message/rfc822", "X-Hub-Token": EMAIL_TOKEN}


# how a genuine request of each adapter is signed, and its test configuration
SIGNED: dict[str, tuple[dict[str, Any], Callable[[bytes], dict[str, str]]]] = {
    "generic": ({"secret": GENERIC_SECRET}, _generic),
    "email": ({"inbound_token": EMAIL_TOKEN}, _email),
}


def bodies(name: str) -> list[bytes]:
    """Every request body in an adapter's fixture folder."""
    found: list[bytes] = []
    for path in sorted((FIXTURES / name).iterdir()):
        if path.suffix == ".json":
            found += [json.dumps(item).encode() for item in json.loads(path.read_text())]
        else:
            found.append(path.read_bytes())
    return found


def request(body: bytes, headers: dict[str, str]) -> InboundRequest:
    return InboundRequest(
        method="POST", url="https://hub.example/x", path="/x", headers=headers, query={}, body=body
    )


@pytest.fixture(params=ADAPTERS, ids=lambda cls: cls.name)
def cls(request: pytest.FixtureRequest) -> type[Adapter]:
    return request.param  # type: ignore[no-any-return]


def configured(cls: type[Adapter]) -> Adapter:
    config, _ = SIGNED[cls.name]
    return cls(cls.Config.model_validate(config))


def test_metadata_is_declared(cls: type[Adapter]) -> None:
    assert cls.name and cls.title and cls.kind in {"telephony", "email", "telegram"}
    assert cls.required, "an adapter must name the secret that enables it"
    assert all(cls.name in path for path in cls.paths)
    assert cls.name in SIGNED, "add how this adapter signs requests to SIGNED"
    assert (FIXTURES / cls.name).is_dir(), f"tests/fixtures/{cls.name}/ is missing"


def test_disabled_without_its_secret(cls: type[Adapter]) -> None:
    assert not cls.enabled(cls.Config())
    assert cls.enabled(configured(cls).config)


def test_secrets_are_masked(cls: type[Adapter]) -> None:
    config = cls.Config.model_validate({key: SECRET_VALUE for key in cls.required})
    assert SECRET_VALUE not in repr(cls(config))
    assert SECRET_VALUE not in str(config)


def test_every_fixture_verifies_and_parses(cls: type[Adapter]) -> None:
    adapter = configured(cls)
    _, headers_for = SIGNED[cls.name]
    for body in bodies(cls.name):
        inbound = request(body, headers_for(body))
        adapter.verify(inbound)
        events = adapter.parse(inbound)
        assert events and all(isinstance(e, CallEvent | MessageEvent) for e in events)
        assert all(e.occurred_at.tzinfo is not None for e in events)


def test_unsigned_and_wrongly_signed_requests_are_refused(cls: type[Adapter]) -> None:
    adapter = configured(cls)
    _, headers_for = SIGNED[cls.name]
    body = bodies(cls.name)[0]
    with pytest.raises(SignatureError):
        adapter.verify(request(body, {}))
    forged = {
        k: (v[:-2] + "00" if k != "Content-Type" else v) for k, v in headers_for(body).items()
    }
    with pytest.raises(SignatureError):
        adapter.verify(request(body, forged))
