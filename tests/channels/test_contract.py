"""One contract over every registered adapter: declared metadata, fixtures, closed by default,
secrets masked, unsigned and forged requests refused, every fixture parses into hub events.
Each adapter brings tests/providers/<name>.py (how its requests are signed) and
tests/fixtures/<name>/ (what its provider sends)."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

from channels import ADAPTERS
from channels.base import Adapter
from hub.errors import SignatureError
from hub.events import CallEvent, MessageEvent
from tests.providers import FIXTURES

SECRET_VALUE = "s3cr3t-value-never-shown"


def support(cls: type[Adapter]) -> ModuleType:
    return importlib.import_module(f"tests.providers.{cls.name}")


@pytest.fixture(params=ADAPTERS, ids=lambda cls: cls.name)
def cls(request: pytest.FixtureRequest) -> type[Adapter]:
    return request.param  # type: ignore[no-any-return]


def configured(cls: type[Adapter]) -> Adapter:
    return cls(cls.Config.model_validate(support(cls).CONFIG),
               public_base_url="https://hub.example")


def test_metadata_is_declared(cls: type[Adapter]) -> None:
    assert cls.name and cls.title and cls.kind in {"telephony", "email", "telegram"}
    assert cls.required, "an adapter must name the secret that enables it"
    assert cls.paths and all(cls.name in path for path in (*cls.paths, *cls.check_paths))
    assert cls.__doc__ or importlib.import_module(cls.__module__).__doc__
    assert (FIXTURES / cls.name).is_dir(), f"tests/fixtures/{cls.name}/ is missing"
    assert support(cls).requests(), f"tests/providers/{cls.name}.py gives no requests"


def test_disabled_without_its_secret(cls: type[Adapter]) -> None:
    assert not cls.enabled(cls.Config())
    assert cls.enabled(configured(cls).config)
    for key in cls.required:  # every required secret on its own keeps it closed
        partial = {k: v for k, v in support(cls).CONFIG.items() if k != key}
        assert not cls.enabled(cls.Config.model_validate(partial))


def test_secrets_are_masked(cls: type[Adapter]) -> None:
    config = cls.Config.model_validate({key: SECRET_VALUE for key in cls.required})
    assert SECRET_VALUE not in repr(cls(config))
    assert SECRET_VALUE not in str(config)


def test_every_fixture_verifies_and_parses(cls: type[Adapter]) -> None:
    adapter = configured(cls)
    parsed = 0
    for inbound in support(cls).requests():
        adapter.verify(inbound)
        events = adapter.parse(inbound)
        assert all(isinstance(e, CallEvent | MessageEvent) for e in events)
        assert all(e.occurred_at.tzinfo is not None for e in events)
        assert all(e.source == cls.name for e in events)
        parsed += len(events)
    assert parsed, "no fixture gave a hub event"


def test_unsigned_and_forged_requests_are_refused(cls: type[Adapter]) -> None:
    adapter = configured(cls)
    for genuine in support(cls).requests():
        forged = support(cls).forgeries(genuine)
        assert forged
        for request in forged:
            with pytest.raises(SignatureError):
                adapter.verify(request)
