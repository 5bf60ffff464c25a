"""The Reports page's figures (hub.web.reports.build) on a seeded timeline: requests per channel
and day, calls answered and missed, the median time to first answer by channel and by manager,
offers sent and replied; the period parsing; the manager filter; SVG charts that carry client
text only escaped; and the page template. Runs on SQLite and on PostgreSQL (HUB_TEST_DATABASE_URL).
The page itself, through HTTP, is tested with the other pages."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jinja2
import pytest
from markupsafe import Markup

from hub import i18n
from hub.db import now
from hub.models import Client, Interaction, Manager
from hub.web import reports
from hub.web.reports import Period

ROOT = Path(__file__).resolve().parents[2]
PERIOD = Period(date(2026, 3, 2), date(2026, 3, 4))
D2, D3, D4 = date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    """Labels in English, whatever the catalogs hold; the language is put back afterwards."""
    with i18n.using("en"):
        yield


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, second, tzinfo=UTC)


async def card(name: str, manager: Manager | None) -> Client:
    when = now()
    return await Client.create(name=name, manager=manager, created_at=when, updated_at=when,
                               activity_at=when)


async def entry(
    client: Client | None, kind: str, direction: str | None, when: datetime, *,
    channel: str | None = None, status: str | None = None, author: Manager | None = None,
    meta: dict[str, Any] | None = None,
) -> Interaction:
    return await Interaction.create(
        client=client, kind=kind, direction=direction, channel=channel or kind, occurred_at=when,
        status=status, author=author, meta=meta or {}, created_at=when, updated_at=when,
        text="private words",
    )


@pytest.fixture
async def seeded(orm: None, admin: dict[str, Any], manager: dict[str, Any]) -> dict[str, Any]:
    """Three days (2026-03-02..04) on three cards (Olga's, the admin's, nobody's) and one call
    on no card. The numbers in the comments are referred to by the tests."""
    olga, boss = manager["manager"], admin["manager"]
    anna, boris, cleo = (await card("Anna", olga), await card("Boris", boss),
                         await card("Cleo", None))
    # Anna (Olga's card)
    await entry(anna, "email", "in", at(1, 23, 30), status="received")  # 1: the evening before
    await entry(anna, "telegram", "in", at(2, 0, 10), status="received")  # 2: < 1 h after 1
    await entry(anna, "email", "out", at(2, 0, 40), status="sent", author=olga)  # 3
    await entry(anna, "note", None, at(2, 9), channel="hub", author=olga)  # not on any figure
    await entry(anna, "call", "in", at(2, 10), channel="zadarma", status="missed")  # 4: request
    await entry(anna, "call", "in", at(2, 10, 20), channel="zadarma", status="completed",
                meta={"answered_at": at(2, 10, 20, 30).isoformat()})  # 5: answers 4 (1230 s)
    await entry(anna, "email", "in", at(3, 9), status="received")  # 6: request
    await entry(anna, "reminder", None, at(3, 9, 30), channel="telegram", status="sent",
                author=olga)  # a notice to Olga: no answer
    await entry(anna, "email", "out", at(3, 9, 40), status="failed", author=olga)  # no answer
    await entry(anna, "telegram", "out", at(3, 10), status="sent", author=olga)  # answers 6
    await entry(anna, "offer", "out", at(3, 11), channel="email", status="sent",
                author=olga)  # 10: replied by 12
    await entry(anna, "email", "in", at(4, 8), status="auto_reply")  # 11: a robot, not a client
    await entry(anna, "telegram", "in", at(4, 12), status="received")  # 12: request
    await entry(anna, "call", "out", at(5, 9), channel="zadarma",
                status="missed")  # 13: after the period, answers 12 (75600 s)
    # Boris (the admin's card)
    await entry(boris, "email", "in", at(2, 15), status="received")  # 14: request
    await entry(boris, "email", "out", at(2, 15, 5), status="queued", author=boss)  # 300 s
    await entry(boris, "offer", "out", at(3, 12), channel="telegram", status="sent", author=boss,
                meta={"reply_id": 999, "replied_at": at(3, 12, 30).isoformat()})  # 16: threaded
    await entry(boris, "offer", "out", at(4, 13), channel="email", status="failed",
                author=boss)  # 17: never sent
    await entry(boris, "call", "in", at(4, 20), channel="mango", status="busy")  # 19: request
    await entry(boris, "offer", "out", at(4, 21), channel="email", status="sent",
                author=olga)  # 18: Olga's offer on the admin's card, answers 19 (3600 s); no reply
    await entry(boris, "offer", "out", at(4, 21, 30), channel="email", status="queued",
                author=boss)  # not sent yet: not counted
    # Cleo (nobody's card)
    await entry(cleo, "telegram", "in", at(3, 18), status="received")  # 20: request
    await entry(cleo, "telegram", "out", at(3, 18, 30), status="sent", author=boss)  # 1800 s
    await entry(cleo, "offer", "out", at(4, 20), channel="telegram", status="sent",
                author=olga)  # 22: replied by 25
    await entry(cleo, "call", "in", at(4, 21), channel="twilio", status="ringing")  # 25: request
    await entry(cleo, "email", "in", at(6, 10), status="received")  # 23: no answer to 25
    # a call from a hidden number: on no card
    await entry(None, "call", "in", at(3, 8), channel="twilio", status="missed")  # 24
    return {"olga": olga, "boss": boss, "anna": anna, "boris": boris, "cleo": cleo}


def answers(stats: tuple[reports.AnswerStat, ...]) -> dict[str, tuple[int, int, float | None]]:
    return {s.key: (s.requests, s.answered, s.median_s) for s in stats}


def offers(stats: tuple[reports.OfferStat, ...]) -> dict[str, tuple[int, int]]:
    return {s.key: (s.sent, s.replied) for s in stats}


# ---- the figures ---------------------------------------------------------------------------------


async def test_every_figure_of_the_period(seeded: dict[str, Any]) -> None:
    report = await reports.build(PERIOD)

    assert report.requests.days == (D2, D3, D4)
    assert [s.key for s in report.requests.series] == ["phone", "email", "telegram"]
    assert report.requests.by_day() == {
        D2: {"phone": 2, "email": 1, "telegram": 1},
        D3: {"phone": 1, "email": 1, "telegram": 1},
        D4: {"phone": 2, "telegram": 1},
    }
    assert report.requests.totals() == {"phone": 5, "email": 2, "telegram": 3}
    assert report.requests.total == 10
    assert report.requests.count("phone", D4) == 2
    assert report.requests.rows() == [(D2, (2, 1, 1)), (D3, (1, 1, 1)), (D4, (2, 0, 1))]

    assert report.calls.by_day() == {
        D2: {"answered": 1, "missed": 1}, D3: {"missed": 1}, D4: {"missed": 1},
    }
    assert report.calls.totals() == {"answered": 1, "missed": 3}

    olga, boss = str(seeded["olga"].id), str(seeded["boss"].id)
    assert answers(report.answers_by_channel) == {
        "phone": (3, 2, 2415.0),  # 1230 s (4 → 5 picked up), 3600 s (19 → 18), 25 never
        "email": (2, 2, 1950.0),  # 3600 s (6), 300 s (14)
        "telegram": (2, 2, 38700.0),  # 75600 s (12, after the period), 1800 s (20)
    }
    assert [s.key for s in report.answers_by_channel] == ["phone", "email", "telegram"]
    assert answers(report.answers_by_manager) == {
        olga: (3, 3, 3600.0), boss: (2, 2, 1950.0), "": (2, 1, 1800.0),
    }
    # by name, then the cards without a manager
    assert [s.label for s in report.answers_by_manager] == ["Admin", "Olga", "No manager"]
    total = report.answers_total
    assert (total.requests, total.answered, total.unanswered, total.median_s) == (7, 6, 1, 2700.0)

    assert offers(report.offers_by_channel) == {"email": (2, 1), "telegram": (2, 2)}
    assert [s.key for s in report.offers_by_channel] == ["email", "telegram"]
    assert (report.offers_total.sent, report.offers_total.replied) == (4, 3)
    assert report.offers_total.reply_rate == 0.75


async def test_the_manager_filter_keeps_their_cards(seeded: dict[str, Any]) -> None:
    olga = seeded["olga"]
    report = await reports.build(Period(PERIOD.start, PERIOD.end, olga.id))

    assert report.requests.by_day() == {
        D2: {"phone": 2, "telegram": 1}, D3: {"email": 1}, D4: {"telegram": 1},
    }
    assert report.calls.by_day() == {D2: {"answered": 1, "missed": 1}}
    assert answers(report.answers_by_channel) == {
        "phone": (1, 1, 1230.0), "email": (1, 1, 3600.0), "telegram": (1, 1, 75600.0),
    }
    # the same row as in the unfiltered report
    assert answers(report.answers_by_manager) == {str(olga.id): (3, 3, 3600.0)}
    # her own offers to her own clients: not the one on the admin's card, not the one on Cleo's
    assert offers(report.offers_by_channel) == {"email": (1, 1)}

    boss = seeded["boss"]
    report = await reports.build(Period(PERIOD.start, PERIOD.end, boss.id))
    assert report.requests.by_day() == {D2: {"email": 1}, D4: {"phone": 1}}
    assert report.calls.by_day() == {D4: {"missed": 1}}
    assert answers(report.answers_by_manager) == {str(boss.id): (2, 2, 1950.0)}
    # Olga's offer on his card is hers, the failed and the queued ones were never sent
    assert offers(report.offers_by_channel) == {"telegram": (1, 1)}


async def test_a_manager_with_no_cards_gets_an_empty_report(seeded: dict[str, Any]) -> None:
    nobody = await Manager.create(name="Nobody")
    report = await reports.build(Period(PERIOD.start, PERIOD.end, nobody.id))
    assert report.requests.total == report.calls.total == 0
    assert report.answers_total.requests == 0 and report.answers_total.median_s is None
    assert report.answers_by_channel == report.answers_by_manager == ()
    assert report.offers_total.sent == 0 and report.offers_total.reply_rate is None
    assert "No data for this period" in report.requests_chart
    assert "No data for this period" in report.offers_chart


async def test_the_period_bounds_are_utc_days(seeded: dict[str, Any]) -> None:
    one_day = await reports.build(Period(D3, D3))
    assert one_day.requests.days == (D3,)
    assert one_day.requests.by_day() == {D3: {"phone": 1, "email": 1, "telegram": 1}}
    # 6 answered at 10:00 the same day, 20 at 18:30
    assert answers(one_day.answers_by_channel) == {"email": (1, 1, 3600.0),
                                                   "telegram": (1, 1, 1800.0)}
    # 10 is replied the day after (found after the period), 16 by its threaded reply
    assert offers(one_day.offers_by_channel) == {"email": (1, 1), "telegram": (1, 1)}


async def test_a_quiet_hour_starts_a_new_request(orm: None, manager: dict[str, Any]) -> None:
    olga = manager["manager"]
    ann = await card("Ann", olga)
    await entry(ann, "email", "in", at(10, 9), status="received")  # request
    await entry(ann, "telegram", "in", at(10, 9, 59, 59), status="received")  # same wait
    await entry(ann, "email", "in", at(10, 10, 59, 59), status="received")  # exactly 1 h quiet
    await entry(ann, "email", "out", at(10, 11), status="sent", author=olga)  # answers both
    # within the hour after the client's last message: no new request, our reply or not
    await entry(ann, "email", "in", at(10, 11, 30), status="received")
    await entry(ann, "email", "out", at(10, 11, 40), status="sent", author=olga)
    report = await reports.build(Period(date(2026, 3, 10), date(2026, 3, 10)))
    assert answers(report.answers_by_channel) == {"email": (2, 2, (7200 + 1) / 2)}
    assert report.requests.totals() == {"phone": 0, "email": 3, "telegram": 1}


async def test_a_request_just_before_the_period_is_not_counted_again(
    orm: None, manager: dict[str, Any]
) -> None:
    ann = await card("Ann", manager["manager"])
    await entry(ann, "email", "in", at(9, 23, 30), status="received")
    await entry(ann, "email", "in", at(10, 0, 15), status="received")
    report = await reports.build(Period(date(2026, 3, 10), date(2026, 3, 10)))
    assert report.requests.totals()["email"] == 1
    assert report.answers_total.requests == 0  # it belongs to the day before


async def test_follow_up_lookups_in_small_batches(
    seeded: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Card ids go to the follow-up lookups in chunks; one per query gives the same figures."""
    monkeypatch.setattr(reports, "CHUNK", 1)
    report = await reports.build(PERIOD)
    assert answers(report.answers_by_channel)["telegram"] == (2, 2, 38700.0)
    assert (report.offers_total.sent, report.offers_total.replied) == (4, 3)


async def test_unknown_channels_are_shown_by_their_name_after_the_known_ones(
    orm: None, manager: dict[str, Any]
) -> None:
    ann = await card("Ann", manager["manager"])
    await entry(ann, "whatsapp", "in", at(10, 9), status="received")
    await entry(ann, "email", "in", at(10, 12), status="received")
    report = await reports.build(Period(date(2026, 3, 10), date(2026, 3, 10)))
    assert [(s.key, s.label) for s in report.requests.series] == [
        ("phone", "Phone"), ("email", "E-mail"), ("telegram", "Telegram"),
        ("whatsapp", "whatsapp"),
    ]
    assert [s.key for s in report.answers_by_channel] == ["email", "whatsapp"]


# ---- the period ----------------------------------------------------------------------------------

TODAY = date(2026, 3, 15)


@pytest.mark.parametrize(
    ("query", "start", "end"),
    [
        ({}, date(2026, 2, 14), TODAY),  # the last 30 days
        ({"from": "", "to": ""}, date(2026, 2, 14), TODAY),
        ({"from": "2026-03-01", "to": "2026-03-10"}, date(2026, 3, 1), date(2026, 3, 10)),
        ({"from": "2026-03-10", "to": "2026-03-01"}, date(2026, 3, 1), date(2026, 3, 10)),
        ({"from": " 2026-03-01 "}, date(2026, 3, 1), TODAY),  # no `to`: until today
        ({"to": "2026-01-31"}, date(2026, 1, 2), date(2026, 1, 31)),  # no `from`: 30 days
        ({"from": "2026-03-20"}, TODAY, date(2026, 3, 20)),  # after today: swapped
        ({"from": "2026-02-30", "to": "2026-03-10"}, date(2026, 2, 9), date(2026, 3, 10)),
        ({"from": "2026-03-01", "to": "nonsense"}, date(2026, 3, 1), TODAY),
        ({"from": "20260301", "to": "2026-W10-1"}, date(2026, 2, 14), TODAY),  # not YYYY-MM-DD
        ({"from": "0001-01-01", "to": "9999-12-31"}, date(2026, 2, 14), TODAY),  # out of range
        ({"from": "2025-03-15", "to": "2026-03-15"}, date(2025, 3, 15), TODAY),  # 366 days
        ({"from": "2025-03-14", "to": "2026-03-15"}, date(2025, 3, 15), TODAY),  # 367: cut
        ({"from": "2010-01-01", "to": "2020-06-30"}, date(2019, 7, 1), date(2020, 6, 30)),
        ({"from": "1900-01-01", "to": "1900-01-02"}, date(1900, 1, 1), date(1900, 1, 2)),
    ],
)
def test_period_from_query(query: dict[str, str], start: date, end: date) -> None:
    period = Period.from_query(query, today=TODAY)
    assert (period.start, period.end) == (start, end)
    assert len(period.days) == (end - start).days + 1 <= reports.MAX_DAYS


@pytest.mark.parametrize(
    ("value", "expected"),
    [("7", 7), (" 12 ", 12), ("", None), ("abc", None), ("-3", None), ("1e3", None),
     ("0", None), ("3.0", None), ("\u0663", None), ("99999999999", None), ("2147483648", None),
     ("2147483647", 2147483647)],
)
def test_period_manager_id_is_digits_or_nothing(value: str, expected: int | None) -> None:
    assert Period.from_query({"manager_id": value}, today=TODAY).manager_id == expected


def test_period_defaults_to_the_utc_today() -> None:
    period = Period.from_query({})
    assert period.end in (datetime.now(UTC).date(), now().date())
    assert len(period.days) == reports.DEFAULT_DAYS and period.manager_id is None


def test_period_query_string_round_trips() -> None:
    period = Period(date(2026, 3, 1), date(2026, 3, 10), 4)
    assert period.query_string() == "from=2026-03-01&to=2026-03-10&manager_id=4"
    assert Period.from_query(dict(parse_qsl(period.query_string())), today=TODAY) == period
    assert Period(date(2026, 3, 1), date(2026, 3, 1)).query_string() == (
        "from=2026-03-01&to=2026-03-01")
    assert period.query_string(manager_id=None) == "from=2026-03-01&to=2026-03-10"
    assert period.since == datetime(2026, 3, 1, tzinfo=UTC)
    assert period.until == datetime(2026, 3, 11, tzinfo=UTC)
    assert period.shifted(-1) == Period(date(2026, 2, 19), date(2026, 2, 28), 4)
    assert period.shifted(1) == Period(date(2026, 3, 11), date(2026, 3, 20), 4)
    edge = Period(date(1900, 1, 1), date(1900, 1, 5))
    assert edge.shifted(-1) == edge


# ---- words ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "—"), (0, "0 sec"), (42.4, "42 sec"), (1230, "20 min"), (3600, "1 hr"),
     (3660, "1 hr 1 min"), (75600, "21 hr"), (90000, "1 day 1 hr"), (3 * 86400, "3 days")],
)
def test_duration_text(seconds: float | None, text: str) -> None:
    assert reports.duration_text(seconds) == text


def test_duration_text_speaks_russian() -> None:
    with i18n.using("ru"):
        assert reports.duration_text(3660) == "1 ч 1 мин"


# ---- the charts ----------------------------------------------------------------------------------

ALLOWED_TAGS = {"svg", "title", "rect", "text", "line"}
SVG = "{http://www.w3.org/2000/svg}"


def check_svg(chart: Markup) -> ET.Element:
    """A well-formed SVG of plain shapes and text: no script, no event handler, no link."""
    assert isinstance(chart, Markup)
    root = ET.fromstring(str(chart))
    assert root.tag == SVG + "svg" and root.get("viewBox", "").startswith("0 0 ")
    assert root[0].tag == SVG + "title" and root[0].text
    for element in root.iter():
        assert element.tag.removeprefix(SVG) in ALLOWED_TAGS
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on") and "href" not in name.lower()
            assert "url(" not in value and "javascript" not in value.lower()
    return root


async def test_charts_show_the_figures(seeded: dict[str, Any]) -> None:
    report = await reports.build(PERIOD)
    charts = [report.requests_chart, report.calls_chart, report.answers_chart,
              report.managers_chart, report.offers_chart]
    for chart in charts:
        check_svg(chart)
    root = check_svg(report.requests_chart)
    tips = [t.text for t in root.iter(SVG + "title")]
    assert "2 Mar · Phone: 2" in tips and "4 Mar · Telegram: 1" in tips
    labels = [t.text for t in root.iter(SVG + "text")]
    assert {"Phone", "E-mail", "Telegram", "2 Mar", "3 Mar", "4 Mar"} <= set(labels)
    calls = [t.text for t in check_svg(report.calls_chart).iter(SVG + "title")]
    assert "2 Mar · Answered: 1" in calls and "2 Mar · Missed: 1" in calls
    medians = [t.text for t in check_svg(report.answers_chart).iter(SVG + "text")]
    assert {"Phone", "E-mail", "Telegram", "40 min", "32 min", "10 hr 45 min"} <= set(medians)
    managers = [t.text for t in check_svg(report.managers_chart).iter(SVG + "text")]
    assert {"Admin", "Olga", "No manager", "32 min", "1 hr", "30 min"} <= set(managers)
    offered = [t.text for t in check_svg(report.offers_chart).iter(SVG + "title")]
    assert "E-mail · Sent: 2" in offered and "Telegram · Replied: 2" in offered


async def test_client_text_in_charts_is_escaped(orm: None, manager: dict[str, Any]) -> None:
    evil = await Manager.create(name='<script>alert("m")</script>')
    ann = await card("Ann", evil)
    channel = "<img src=x onerror=alert(1)>"
    await entry(ann, "chat", "in", at(10, 9), channel=channel, status="received")
    await entry(ann, "offer", "out", at(10, 10), channel=channel, status="sent", author=evil)
    report = await reports.build(Period(date(2026, 3, 10), date(2026, 3, 10)))
    charts = [report.requests_chart, report.calls_chart, report.answers_chart,
              report.managers_chart, report.offers_chart]
    for chart in charts:
        check_svg(chart)
        assert "<script" not in chart and "<img" not in chart
    assert "&lt;script&gt;alert(&#34;m&#34;)&lt;/script&gt;" in report.managers_chart
    assert "&lt;img src=x onerror=alert(1)&gt;" in report.requests_chart
    assert "&lt;img src=x onerror=alert(1)&gt;" in report.offers_chart
    texts = [t.text for t in ET.fromstring(str(report.managers_chart)).iter(SVG + "text")]
    assert '<script>alert("m")</script>' in texts  # what the browser shows: the plain text


def test_a_year_of_days_fits_the_chart() -> None:
    days = Period(date(2025, 1, 1), date(2025, 12, 31)).days
    figure = reports.DailyCounts(days, (reports.Series("a", "A", tuple(range(len(days)))),))
    root = check_svg(reports.stacked_bars("Year", figure))
    bars = [r for r in root.iter(SVG + "rect") if r.find(SVG + "title") is not None]
    assert len(bars) == len(days) - 1  # the day with 0 draws nothing
    width = int(root.get("viewBox", "").split()[2])
    assert all(0 <= float(r.get("x", "-1")) < width for r in bars)
    assert len([t for t in root.iter(SVG + "text") if "2025" not in (t.text or "")]) < 30


# ---- the page template ---------------------------------------------------------------------------

STAND_IN_BASE = (
    "<!doctype html><title>{% block title %}{% endblock %}</title>"
    "<main>{% block content %}{% endblock %}</main>"
)


@pytest.fixture
def pages(tmp_path: Path) -> jinja2.Environment:
    """The pages' environment as hub.web.pages sets it up, with a bare base page in front."""
    (tmp_path / "base.html").write_text(STAND_IN_BASE, encoding="utf-8")
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(tmp_path),
                                    jinja2.FileSystemLoader(ROOT / "templates" / "pages")]),
        autoescape=jinja2.select_autoescape(["html"], default=True),
        undefined=jinja2.StrictUndefined, extensions=["jinja2.ext.i18n"],
    )
    i18n.install(env)
    return env


async def test_the_page_template(seeded: dict[str, Any], pages: jinja2.Environment) -> None:
    evil = await Manager.create(name="<b>Mallory</b>")
    period = Period(PERIOD.start, PERIOD.end, seeded["olga"].id)
    report = await reports.build(period)
    managers = await Manager.filter(is_active=True).order_by("name")
    html = pages.get_template("reports.html").render(
        period=period, report=report, managers=managers)
    assert "<title>Reports</title>" in html
    assert '<form id="report-filter"' in html and 'method="get"' in html
    assert 'name="from" value="2026-03-02"' in html and 'name="to" value="2026-03-04"' in html
    assert f'<option value="{seeded["olga"].id}" selected>Olga</option>' in html
    assert f'<option value="{evil.id}">&lt;b&gt;Mallory&lt;/b&gt;</option>' in html
    for section in ("requests-per-channel", "calls", "first-answer", "offers"):
        assert f'<section id="{section}">' in html
    assert html.count("<svg ") == 5 and "&lt;svg" not in html
    assert "from=2026-02-27&amp;to=2026-03-01&amp;manager_id=" in html  # the period before
    assert "<td>1 hr</td>" in html  # Olga's median
    with i18n.using("ru"):
        russian = pages.get_template("reports.html").render(
            period=period, report=report, managers=managers)
    assert "<title>Отчёты</title>" in russian or "<title>Отчеты</title>" in russian


def test_the_page_extends_the_real_base() -> None:
    source = (ROOT / "templates" / "pages" / "reports.html").read_text(encoding="utf-8")
    assert source.startswith('{% extends "base.html" %}')
    assert "<script" not in source
