"""Per-provider test support, one module per adapter (tests/providers/<name>.py), each with:

CONFIG                   the adapter's settings table for tests
requests()               every fixture in tests/fixtures/<name>/ as a genuine, signed request
forgeries(genuine)       the same request unsigned and wrongly signed (each must be refused)

tests/channels/test_contract.py runs over every registered adapter with these.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from channels.base import InboundRequest

FIXTURES = Path(__file__).parent.parent / "fixtures"
BASE_URL = "https://hub.example"


def fixture_items(name: str, suffix: str = ".json") -> list[Any]:
    """The items of every fixture file of an adapter: a .json file holds a list of items,
    any other file is one item (its bytes)."""
    items: list[Any] = []
    for path in sorted((FIXTURES / name).iterdir()):
        if path.suffix == ".json":
            items += json.loads(path.read_text())
        elif path.suffix == suffix:
            items.append(path.read_bytes())
    return items


def inbound(
    body: bytes, headers: Mapping[str, str], path: str = "/webhooks", *,
    query: Mapping[str, str] | None = None, method: str = "POST",
) -> InboundRequest:
    """A request as the webhook view hands it to an adapter (public URL = BASE_URL + path)."""
    qs = "&".join(f"{k}={v}" for k, v in (query or {}).items())
    return InboundRequest(
        method=method, url=BASE_URL + path + (f"?{qs}" if qs else ""), path=path,
        headers=dict(headers), query=dict(query or {}), body=body,
    )
