from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from channels.base import InboundRequest
from channels.generic import GenericAdapter, GenericConfig
from hub.errors import PayloadError, SignatureError, ValidationError
from hub.events import CallOutcome, CallState, Direction
from tests.helpers import GENERIC_SECRET, call_body, sign

ADAPTER = GenericAdapter(GenericConfig(secret=GENERIC_SECRET))  # type: ignore[arg-type]


def req(body: bytes, signature: str | None = None) -> InboundRequest:
    headers = {"X-Hub-Signature-256": signature or sign(body)}
    return InboundRequest(
        "POST",
        "http://hub/webhooks/telephony/generic",
        "/webhooks/telephony/generic",
        headers,
        {},
        body,
    )


def test_the_documented_vector() -> None:
    body = b'{"event":"call.ringing","call_id":"1","direction":"inbound","from":"1","to":"2"}'
    expected = "sha256=" + __import__("hmac").new(b"k", body, "sha256").hexdigest()
    adapter = GenericAdapter(GenericConfig(secret="k"))  # type: ignore[arg-type]
    adapter.verify(req(body, expected))
    with pytest.raises(SignatureError):
        adapter.verify(req(body, expected.upper().replace("SHA256", "sha1")))


def test_inbound_maps_from_to_remote_and_to_to_line() -> None:
    body = call_body(
        "ended",
        "c1",
        phone="8 912 345 67 89",
        status="missed",
        duration=0,
        timestamp="2026-11-22T13:00:00+03:00",
        extension="101",
    )
    [event] = ADAPTER.parse(req(body))
    assert event.state == CallState.ENDED and event.outcome == CallOutcome.MISSED
    assert event.direction == Direction.INBOUND
    assert event.remote.phone == "8 912 345 67 89" and event.line == "+74950000000"
    assert event.occurred_at == datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    assert event.extension == "101" and event.duration_s == 0


def test_outbound_maps_to_to_remote() -> None:
    body = call_body(
        "ringing", "c1", direction="outbound", **{"from": "+74950000000", "to": "+79161112233"}
    )
    [event] = ADAPTER.parse(req(body))
    assert event.remote.phone == "+79161112233" and event.line == "+74950000000"


def test_naive_timestamps_are_utc() -> None:
    [event] = ADAPTER.parse(req(call_body("ringing", "c1", timestamp="2026-11-22T10:00:00")))
    assert event.occurred_at.tzinfo is not None and event.occurred_at.hour == 10


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1,2]", b'"text"', b"\xff\xfe"])
def test_malformed_bodies(raw: bytes) -> None:
    with pytest.raises(PayloadError):
        ADAPTER.parse(req(raw))


@pytest.mark.parametrize(
    "change",
    [
        {"event": "call.exploded"},
        {"direction": "sideways"},
        {"call_id": ""},
        {"duration": -5},
        {"status": "weird"},
        {"timestamp": "yesterday"},
        {"call_id": "x" * 300},
    ],
)
def test_invalid_fields_name_the_field(change: dict[str, object]) -> None:
    data = json.loads(call_body("ended", "c1"))
    data.update(change)
    with pytest.raises(ValidationError) as info:
        ADAPTER.parse(req(json.dumps(data).encode()))
    assert next(iter(change)) in info.value.message


def test_recording_needs_its_url() -> None:
    with pytest.raises(ValidationError):
        ADAPTER.parse(req(call_body("recording", "c1")))


def test_missing_required_field() -> None:
    data = json.loads(call_body("ringing", "c1"))
    del data["from"]
    with pytest.raises(ValidationError) as info:
        ADAPTER.parse(req(json.dumps(data).encode()))
    assert "from" in info.value.message
