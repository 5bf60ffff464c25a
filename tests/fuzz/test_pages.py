"""The web UI's pages are outside /api/openapi.json, so schemathesis does not reach them: here
Hypothesis sends a logged-in manager's browser to every page with any query it can make up (the
filters, cursors, ids, dates a page reads, and strangers), and to the card pages with any id.
No answer may be a server error; a page answers 200, a redirect or a 4xx."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.managers import create_manager
from hub.models import Role
from tests.fuzz.conftest import Answer, in_thread
from tests.helpers import call_body, post_call
from tests.web.test_pages import PASSWORD, log_in

# what the pages read, and a few they do not
PARAMS = ["q", "status", "channel", "manager_id", "idle_months", "cursor", "ids", "from", "to",
          "next", "lang", "page", "limit"]
VALUES = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"-?[0-9]{1,25}", fullmatch=True),
    st.sampled_from(["", "0", "lead", "client", "email", "telegram", "phone", "2026-12-01",
                     "9999-99-99", "0001-01-01", "1,2,3", ",", "²", "١٢", "eyJ9", "%00", "\x00",
                     "../../etc/passwd", "<script>alert(1)</script>"]),
)
QUERIES = st.dictionaries(st.sampled_from(PARAMS), VALUES, max_size=4)
IDS = st.one_of(st.integers(min_value=0, max_value=10**30).map(str), st.just("1"))


def page_paths() -> st.SearchStrategy[str]:
    fixed = st.sampled_from(["/", "/clients", "/reminders", "/reports", "/login"])
    card = IDS.map(lambda i: f"/clients/{i}")
    entries = IDS.map(lambda i: f"/clients/{i}/entries")
    return st.one_of(fixed, card, entries)


async def test_any_query_to_any_page_is_answered_without_a_server_error(
    make_client: Any,
) -> None:
    client = await make_client()
    await create_manager("Ольга", email="olga.web@example.com", password=PASSWORD,
                         role=Role.ADMIN)
    await log_in(client)
    for n, event in enumerate(("ringing", "answered", "ended")):  # card 1, with an entry
        assert (await post_call(client, call_body(
            event, "c1", timestamp=f"2026-11-22T10:0{n}:00+00:00"))).status == 200
    loop = asyncio.get_running_loop()
    seen: list[int] = []

    def get(target: str) -> Answer:
        async def send() -> Answer:
            resp = await client.get(target, allow_redirects=False)
            return Answer(resp.status, resp.content_type, await resp.read())

        return asyncio.run_coroutine_threadsafe(send(), loop).result(timeout=60)

    @settings(max_examples=300, deadline=None, derandomize=True, database=None)
    @given(path=page_paths(), query=QUERIES)
    def run(path: str, query: dict[str, str]) -> None:
        target = path + (f"?{urlencode(query)}" if query else "")
        answer = get(target)
        seen.append(answer.status)
        assert answer.status < 500, (target, answer.status, answer.body[:300])

    await in_thread(run)
    assert len(seen) >= 300 and 200 in seen and 404 in seen
