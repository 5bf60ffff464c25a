"""The Reports page's figures for a period of whole UTC days, and their charts as inline SVG.

What is counted, and why:

- A *client's message or call* (a "request" in figure 1) is an inbound entry a person made: every
  inbound call (whatever its outcome: a missed call is a client asking too), and every inbound
  e-mail or Telegram message whose status is `received` (a person's message or a web form).
  Bounces, auto-replies, mailing lists and robots keep their category as their status and are
  left out: nobody is waiting for an answer to them. Calls are one channel, `phone`, whichever
  provider carried them (a call entry's own `channel` names the provider).
- Calls (figure 2): inbound calls by their status; `completed` (and `answered`, a call picked up
  whose end has not arrived yet) are answered; `missed`, `busy` and `failed` are missed; a call
  still ringing is neither.
- Time to first answer (figure 3) is measured per *conversation*, not per message: a request
  starts with a client's message or call that follows at least `SILENCE` (1 h) without one from
  that client (the client's follow-ups within the hour wait for the same answer; a message after
  a quiet hour starts a new wait even when the earlier one is still unanswered). Our own replies
  do not end the silence, so a client answering our outreach starts a request too. The request is
  answered by the card's first *answer* at or after its start: an outbound call (any outcome: we
  tried), or an e-mail, Telegram message or offer a manager wrote (`author_id` set; the hub's own
  reminder notices are not answers), unless its sending failed; an inbound call that was picked
  up answers the client at the moment it was picked up. The answer may come after the period's
  end (it is looked for up to now); a request with no answer yet counts as unanswered and stays
  out of the median. Requests are grouped by the opening entry's channel and by the card's
  responsible manager as it is now (the hub keeps no history of reassignments).
- Offers (figure 4): offers whose status is `sent` and whose time (when they were queued) falls
  in the period, by channel; one is replied when the hub threaded a reply to it
  (`meta.replied_at`, hub.mail.mark_replied) or when the client wrote or called on that card
  after it (a reply that does not quote the offer, or a call back, is an answer too).

The manager filter keeps the cards that manager is responsible for, in every figure (an entry
on no card, such as a call from a hidden number, drops out). Offers must also be authored by the
manager: the figure is that manager's own offers to their own clients. Answers are not filtered
by author: a client's wait ends whoever answers, so the filtered figures equal the manager's row
of the unfiltered table.

Days are UTC days. The queries read one window of the timeline, [start − 1 h, end of period),
through the (client_id, occurred_at) index: card by card, or (with the manager filter) only that
manager's cards through the client (manager_id, ...) index. Two follow-up lookups, for the cards
still waiting at the period's end only, find answers and replies that came after it. Bucketing
by day, the medians and the request logic run in Python, so the SQL is the same on SQLite (text
timestamps) and PostgreSQL (timestamptz) but for one JSON lookup.
"""

from __future__ import annotations

import math
import re
import statistics
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup, escape
from tortoise import connections

from hub import i18n
from hub.db import Stmt, as_datetime, execute, now
from hub.models import Manager

DEFAULT_DAYS = 30
MAX_DAYS = 366
SILENCE = timedelta(hours=1)
# dates outside these never reach SQL: a day before or after them could not be computed
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(9999, 12, 30)
MAX_ID = 2**31 - 1  # manager ids are 32-bit integers (PostgreSQL refuses a larger parameter)
CHUNK = 500  # card ids per follow-up query, well under both databases' parameter limits

ANSWERED_CALL = frozenset({"completed", "answered"})
MISSED_CALL = frozenset({"missed", "busy", "failed"})
CHANNEL_ORDER = ("phone", "email", "telegram")

_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_ID = re.compile(r"^[0-9]{1,10}$")


# ---- the period --------------------------------------------------------------------------------


def _day(value: str | None) -> date | None:
    text = (value or "").strip()
    if not _DAY.match(text):
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    return day if FIRST_DAY <= day <= LAST_DAY else None


def _manager_id(value: str | None) -> int | None:
    text = (value or "").strip()
    if not _ID.match(text):
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


@dataclass(frozen=True)
class Period:
    """Whole UTC days from `start` to `end`, both included, optionally one manager's cards."""

    start: date
    end: date
    manager_id: int | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str], today: date | None = None) -> Period:
        """The period a page's query names (`from`, `to` as YYYY-MM-DD, `manager_id`), never an
        error: a missing or malformed `to` is today (UTC), a missing or malformed `from` is 30
        days before `to` (so nothing at all gives the last 30 days), reversed dates are swapped,
        and a period longer than MAX_DAYS keeps its last MAX_DAYS days (the recent end is what a
        report is usually about). `manager_id` is digits or nothing."""
        end = _day(query.get("to")) or today or now().date()
        start = _day(query.get("from")) or end - timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            start, end = end, start
        if (end - start).days >= MAX_DAYS:
            start = end - timedelta(days=MAX_DAYS - 1)
        return cls(start, end, _manager_id(query.get("manager_id")))

    @property
    def since(self) -> datetime:
        """The period's first moment (UTC midnight of `start`)."""
        return datetime.combine(self.start, time(), UTC)

    @property
    def until(self) -> datetime:
        """The first moment after the period (UTC midnight after `end`)."""
        return datetime.combine(self.end + timedelta(days=1), time(), UTC)

    @property
    def days(self) -> tuple[date, ...]:
        count = (self.end - self.start).days + 1
        return tuple(self.start + timedelta(days=n) for n in range(count))

    def shifted(self, periods: int) -> Period:
        """The period of the same length `periods` lengths later (negative: earlier), kept
        inside the dates a query may name."""
        length = timedelta(days=(self.end - self.start).days + 1)
        start, end = self.start + length * periods, self.end + length * periods
        if start < FIRST_DAY or end > LAST_DAY:
            return self
        return Period(start, end, self.manager_id)

    def query_string(self, **changes: Any) -> str:
        """The query that names this period (for links: the filter form's own fields);
        `changes` replace or, given None, drop parameters."""
        params: dict[str, Any] = {"from": self.start.isoformat(), "to": self.end.isoformat(),
                                  "manager_id": self.manager_id}
        params.update(changes)
        return urlencode({k: v for k, v in params.items() if v is not None})


# ---- the figures ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """One series of a per-day figure: a key (a channel, "answered"), its words, its counts in
    the order of the figure's days."""

    key: str
    label: str
    counts: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.counts)


@dataclass(frozen=True)
class DailyCounts:
    """Counts per day and per series (the series in display order)."""

    days: tuple[date, ...]
    series: tuple[Series, ...]

    @property
    def total(self) -> int:
        return sum(s.total for s in self.series)

    def totals(self) -> dict[str, int]:
        return {s.key: s.total for s in self.series}

    def count(self, key: str, day: date) -> int:
        """One cell (0 for a series or a day the figure does not have)."""
        if day not in self.days:
            return 0
        index = self.days.index(day)
        return next((s.counts[index] for s in self.series if s.key == key), 0)

    def by_day(self) -> dict[date, dict[str, int]]:
        """The days that have anything, each with its non-zero counts (for tests and tables)."""
        found: dict[date, dict[str, int]] = {}
        for index, day in enumerate(self.days):
            cells = {s.key: s.counts[index] for s in self.series if s.counts[index]}
            if cells:
                found[day] = cells
        return found

    def rows(self) -> list[tuple[date, tuple[int, ...]]]:
        """The days that have anything, each with one count per series (a table's rows)."""
        return [(day, tuple(s.counts[i] for s in self.series))
                for i, day in enumerate(self.days) if any(s.counts[i] for s in self.series)]


@dataclass(frozen=True)
class AnswerStat:
    """Requests of one group (a channel, a manager, all) and how fast they were answered."""

    key: str
    label: str
    requests: int
    answered: int
    median_s: float | None  # seconds; None when none was answered

    @property
    def unanswered(self) -> int:
        return self.requests - self.answered

    @property
    def median_text(self) -> str:
        return duration_text(self.median_s)


@dataclass(frozen=True)
class OfferStat:
    """Offers sent on one channel (or all) and how many got a reply."""

    key: str
    label: str
    sent: int
    replied: int

    @property
    def reply_rate(self) -> float | None:
        """The replied share, 0..1 (None when nothing was sent)."""
        return self.replied / self.sent if self.sent else None


@dataclass(frozen=True)
class Report:
    """Everything the Reports page shows, with its charts ready to embed."""

    period: Period
    requests: DailyCounts  # series per channel
    calls: DailyCounts  # series "answered", "missed"
    answers_total: AnswerStat
    answers_by_channel: tuple[AnswerStat, ...]
    answers_by_manager: tuple[AnswerStat, ...]
    offers_total: OfferStat
    offers_by_channel: tuple[OfferStat, ...]
    requests_chart: Markup
    calls_chart: Markup
    answers_chart: Markup
    managers_chart: Markup
    offers_chart: Markup


# ---- reading the timeline ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entry:
    id: int
    client_id: int | None
    manager_id: int | None
    kind: str
    direction: str
    channel: str
    at: datetime
    status: str | None
    author_id: int | None
    mark: datetime | None  # a call's answered_at, an offer's replied_at

    @property
    def from_client(self) -> bool:
        """A person's inbound message or call."""
        return self.direction == "in" and (self.kind == "call" or self.status == "received")

    @property
    def answer_at(self) -> datetime | None:
        """When this entry answered the client, if it is an answer."""
        if self.direction == "out":
            if self.status == "failed" or (self.author_id is None and self.kind != "call"):
                return None
            return self.at
        if self.kind == "call" and self.status in ANSWERED_CALL:
            return max(self.mark or self.at, self.at)
        return None

    @property
    def report_channel(self) -> str:
        return "phone" if self.kind == "call" else self.channel


# Kept in step with _Entry.from_client and _Entry.answer_at.
_FROM_CLIENT = "i.direction = 'in' AND (i.kind = 'call' OR i.status = 'received')"
_ANSWER = (
    "((i.direction = 'out' AND (i.author_id IS NOT NULL OR i.kind = 'call') "
    "AND (i.status IS NULL OR i.status <> 'failed')) "
    "OR (i.direction = 'in' AND i.kind = 'call' AND i.status IN ('answered', 'completed')))"
)
_MARK = {
    False: "CASE WHEN i.kind = 'call' THEN json_extract(i.meta, '$.answered_at') "
           "WHEN i.kind = 'offer' THEN json_extract(i.meta, '$.replied_at') END",
    True: "CASE WHEN i.kind = 'call' THEN i.meta->>'answered_at' "
          "WHEN i.kind = 'offer' THEN i.meta->>'replied_at' END",
}
_COLUMNS = ("i.id, i.client_id, i.kind, i.direction, i.channel, i.occurred_at, i.status, "
            "i.author_id, {mark} AS mark")


def _stmt(template: str, params: Sequence[Any]) -> Stmt:
    """A statement whose `{mark}` is the dialect's JSON lookup (the only difference)."""
    return Stmt(template.format(mark=_MARK[False]), tuple(params),
                pg=template.format(mark=_MARK[True]))


def _moment(value: Any) -> datetime | None:
    try:
        at = as_datetime(value)
    except (TypeError, ValueError):
        return None  # a meta timestamp someone wrote by hand: ignored, not a failed page
    return at.astimezone(UTC) if at is not None else None


def _entry(row: Mapping[str, Any]) -> _Entry:
    at = _moment(row["occurred_at"])
    assert at is not None  # occurred_at is NOT NULL
    return _Entry(
        id=int(row["id"]),
        client_id=None if row["client_id"] is None else int(row["client_id"]),
        manager_id=None if row["manager_id"] is None else int(row["manager_id"]),
        kind=str(row["kind"]), direction=str(row["direction"]), channel=str(row["channel"]),
        at=at, status=row["status"],
        author_id=None if row["author_id"] is None else int(row["author_id"]),
        mark=_moment(row["mark"]),
    )


async def _window(period: Period) -> list[_Entry]:
    """The period's inbound and outbound entries, and the hour before it (to tell whether the
    first messages of the period follow a quiet hour), oldest first."""
    params: list[Any] = [period.since - SILENCE, period.until]
    # no index leads with occurred_at: SQLite would read the whole timeline, bodies and all.
    # CROSS JOIN makes it go card by card instead (the cards come from a small index, the
    # period's entries of each from (client_id, occurred_at)); PostgreSQL plans it as any join.
    sql = (
        f"SELECT {_COLUMNS}, c.manager_id FROM client c CROSS JOIN interaction i "  # noqa: S608
        "WHERE i.client_id = c.id AND i.occurred_at >= ? AND i.occurred_at < ? "
        "AND i.direction IN ('in', 'out')"
    )
    if period.manager_id is not None:
        sql += " AND c.manager_id = ?"
        params.append(period.manager_id)
    else:  # entries on no card (a call from a hidden number): the index has them under NULL
        sql += (
            f" UNION ALL SELECT {_COLUMNS}, NULL AS manager_id FROM interaction i "  # noqa: S608
            "WHERE i.client_id IS NULL AND i.occurred_at >= ? AND i.occurred_at < ? "
            "AND i.direction IN ('in', 'out')"
        )
        params += [period.since - SILENCE, period.until]
    rows = await execute(connections.get("default"), _stmt(sql, params))
    return sorted((_entry(r) for r in rows), key=lambda e: (e.at, e.id))


def _chunks(ids: Iterable[int]) -> Iterable[list[int]]:
    ordered = sorted(set(ids))
    for index in range(0, len(ordered), CHUNK):
        yield ordered[index:index + CHUNK]


async def _first_answers_after(cards: Iterable[int], after: datetime) -> dict[int, datetime]:
    """Each card's first answer at or after `after` (the period's end), up to now."""
    found: dict[int, datetime] = {}
    conn = connections.get("default")
    for chunk in _chunks(cards):
        marks = ", ".join("?" * len(chunk))
        sql = (
            "SELECT client_id, direction, kind, status, occurred_at, author_id, mark FROM ("  # noqa: S608
            "SELECT i.client_id, i.direction, i.kind, i.status, i.occurred_at, i.author_id, "
            "{mark} AS mark, ROW_NUMBER() OVER (PARTITION BY i.client_id "
            "ORDER BY i.occurred_at, i.id) AS n FROM interaction i "
            f"WHERE i.client_id IN ({marks}) AND i.occurred_at >= ? AND {_ANSWER}) t WHERE n = 1"
        )
        for row in await execute(conn, _stmt(sql, [*chunk, after])):
            entry = _entry({**row, "id": 0, "manager_id": None, "channel": ""})
            if entry.answer_at is not None and entry.client_id is not None:
                found[entry.client_id] = entry.answer_at
    return found


async def _last_from_client_after(cards: Iterable[int], after: datetime) -> dict[int, datetime]:
    """Each card's latest message or call from the client at or after `after`, up to now."""
    found: dict[int, datetime] = {}
    conn = connections.get("default")
    for chunk in _chunks(cards):
        marks = ", ".join("?" * len(chunk))
        rows = await execute(conn, Stmt(
            "SELECT i.client_id, MAX(i.occurred_at) AS at FROM interaction i "  # noqa: S608
            f"WHERE i.client_id IN ({marks}) AND i.occurred_at >= ? AND {_FROM_CLIENT} "
            "GROUP BY i.client_id", (*chunk, after)))
        for row in rows:
            at = _moment(row["at"])
            if at is not None:
                found[int(row["client_id"])] = at
    return found


# ---- computing ---------------------------------------------------------------------------------


def channel_label(channel: str) -> str:
    """A channel in words; a channel the hub has no words for shows its own name."""
    words = {"phone": i18n.gettext("Phone"), "email": i18n.gettext("E-mail"),
             "telegram": i18n.gettext("Telegram")}
    return words.get(channel, channel)


def _channel_key(channel: str) -> tuple[int, str]:
    return (CHANNEL_ORDER.index(channel) if channel in CHANNEL_ORDER else len(CHANNEL_ORDER),
            channel)


def _daily(days: tuple[date, ...], keyed: Iterable[tuple[str, date]],
           order: Sequence[tuple[str, str]]) -> DailyCounts:
    """Count (key, day) pairs into series; `order` names the keys shown even when empty."""
    index = {day: n for n, day in enumerate(days)}
    counts: dict[str, list[int]] = {key: [0] * len(days) for key, _ in order}
    labels = dict(order)
    for key, day in keyed:
        if day in index:
            counts.setdefault(key, [0] * len(days))[index[day]] += 1
    keys = [k for k, _ in order] + sorted((k for k in counts if k not in labels),
                                          key=_channel_key)
    return DailyCounts(days, tuple(
        Series(k, labels.get(k) or channel_label(k), tuple(counts[k])) for k in keys))


def _utc_day(at: datetime) -> date:
    return at.astimezone(UTC).date()


@dataclass(frozen=True, slots=True)
class _Request:
    client_id: int
    manager_id: int | None
    channel: str
    at: datetime


def _requests(entries: list[_Entry], since: datetime) -> list[_Request]:
    """The conversations clients opened in the period (see the module's docstring)."""
    last: dict[int, datetime] = {}
    found = []
    for e in entries:
        if e.client_id is None or not e.from_client:
            continue
        before = last.get(e.client_id)
        last[e.client_id] = e.at
        if e.at >= since and (before is None or e.at - before >= SILENCE):
            found.append(_Request(e.client_id, e.manager_id, e.report_channel, e.at))
    return found


def _answer_stat(key: str, label: str, waits: Sequence[float | None]) -> AnswerStat:
    done = [w for w in waits if w is not None]
    return AnswerStat(key, label, len(waits), len(done),
                      statistics.median(done) if done else None)


async def _answers(
    entries: list[_Entry], period: Period
) -> tuple[AnswerStat, tuple[AnswerStat, ...], tuple[AnswerStat, ...]]:
    requests = _requests(entries, period.since)
    moments: dict[int, list[datetime]] = defaultdict(list)
    for e in entries:
        at = e.answer_at
        if at is not None and e.client_id is not None:
            moments[e.client_id].append(at)
    for times in moments.values():
        times.sort()

    def answered_in_window(r: _Request) -> datetime | None:
        times = moments.get(r.client_id, [])
        index = bisect_left(times, r.at)
        return times[index] if index < len(times) else None

    answers = {id(r): answered_in_window(r) for r in requests}
    waiting = {r.client_id for r in requests if answers[id(r)] is None}
    later = await _first_answers_after(waiting, period.until) if waiting else {}
    waits: list[tuple[_Request, float | None]] = []
    for r in requests:
        at = answers[id(r)] or later.get(r.client_id)
        waits.append((r, (at - r.at).total_seconds() if at is not None else None))

    by_channel: dict[str, list[float | None]] = defaultdict(list)
    by_manager: dict[int | None, list[float | None]] = defaultdict(list)
    for r, wait in waits:
        by_channel[r.channel].append(wait)
        by_manager[r.manager_id].append(wait)
    names = await _manager_names(k for k in by_manager if k is not None)
    total = _answer_stat("", i18n.gettext("All requests"), [w for _, w in waits])
    channels = tuple(_answer_stat(c, channel_label(c), by_channel[c])
                     for c in sorted(by_channel, key=_channel_key))
    managers = [_answer_stat(str(m), names.get(m) or f"#{m}", w)
                for m, w in by_manager.items() if m is not None]
    managers.sort(key=lambda s: (s.label.casefold(), s.key))
    if None in by_manager:
        managers.append(_answer_stat("", i18n.gettext("No manager"), by_manager[None]))
    return total, channels, tuple(managers)


async def _manager_names(ids: Iterable[int]) -> dict[int, str]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {int(i): str(n) for i, n in
            await Manager.filter(id__in=wanted).values_list("id", "name")}


async def _offers(entries: list[_Entry], period: Period) -> tuple[OfferStat, tuple[OfferStat, ...]]:
    offers = [e for e in entries
              if e.kind == "offer" and e.direction == "out" and e.status == "sent"
              and e.at >= period.since and e.client_id is not None
              and (period.manager_id is None or e.author_id == period.manager_id)]
    latest: dict[int, datetime] = {}
    for e in entries:
        if e.client_id is not None and e.from_client:
            latest[e.client_id] = max(e.at, latest.get(e.client_id, e.at))
    unsure = {e.client_id for e in offers
              if e.mark is None and e.client_id is not None
              and not latest.get(e.client_id, e.at) > e.at}
    if unsure:
        for card, at in (await _last_from_client_after(unsure, period.until)).items():
            latest[card] = max(at, latest.get(card, at))
    sent: dict[str, int] = defaultdict(int)
    replied: dict[str, int] = defaultdict(int)
    for e in offers:
        sent[e.channel] += 1
        card_latest = latest.get(e.client_id) if e.client_id is not None else None
        if e.mark is not None or (card_latest is not None and card_latest > e.at):
            replied[e.channel] += 1
    channels = tuple(OfferStat(c, channel_label(c), sent[c], replied[c])
                     for c in sorted(sent, key=_channel_key))
    total = OfferStat("", i18n.gettext("All offers"), sum(sent.values()), sum(replied.values()))
    return total, channels


async def build(period: Period) -> Report:
    """The period's figures and charts (one read of the period's timeline, plus the lookups of
    answers and replies that came after it)."""
    entries = await _window(period)
    days = period.days
    inside = [e for e in entries if e.at >= period.since]
    requests = _daily(
        days, ((e.report_channel, _utc_day(e.at)) for e in inside if e.from_client),
        [(c, channel_label(c)) for c in CHANNEL_ORDER])
    calls = _daily(
        days,
        (("answered" if e.status in ANSWERED_CALL else "missed", _utc_day(e.at)) for e in inside
         if e.kind == "call" and e.direction == "in"
         and (e.status in ANSWERED_CALL or e.status in MISSED_CALL)),
        [("answered", i18n.gettext("Answered")), ("missed", i18n.gettext("Missed"))])
    answers_total, by_channel, by_manager = await _answers(entries, period)
    offers_total, offers = await _offers(entries, period)
    median = i18n.gettext("Median")
    return Report(
        period=period, requests=requests, calls=calls, answers_total=answers_total,
        answers_by_channel=by_channel, answers_by_manager=by_manager, offers_total=offers_total,
        offers_by_channel=offers,
        requests_chart=stacked_bars(i18n.gettext("Client requests per day, by channel"),
                                    requests),
        calls_chart=stacked_bars(i18n.gettext("Incoming calls per day"), calls,
                                 colors=(GREEN, RED)),
        answers_chart=grouped_bars(
            i18n.gettext("Median time to first answer, by channel"),
            [s.label for s in by_channel], [(median, [s.median_s for s in by_channel])],
            duration_text),
        managers_chart=grouped_bars(
            i18n.gettext("Median time to first answer, by manager"),
            [s.label for s in by_manager], [(median, [s.median_s for s in by_manager])],
            duration_text),
        offers_chart=grouped_bars(
            i18n.gettext("Offers sent and replied, by channel"), [s.label for s in offers],
            [(i18n.gettext("Sent"), [float(s.sent) for s in offers]),
             (i18n.gettext("Replied"), [float(s.replied) for s in offers])],
            _count_text),
    )


# ---- words for numbers --------------------------------------------------------------------------


def duration_text(seconds: float | None) -> str:
    """A wait in the current language, to the minute once it is a minute or more ("1 hr 5 min",
    "2 дн. 3 ч"); "—" for none."""
    if seconds is None:
        return "—"
    total = max(0, round(seconds))
    if total < 60:
        return _unit(timedelta(seconds=total), "second")
    minutes = total // 60
    day_count, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts: list[tuple[timedelta, i18n.Granularity]] = (
        [(timedelta(days=day_count), "day"), (timedelta(hours=hours), "hour")] if day_count
        else [(timedelta(hours=hours), "hour"), (timedelta(minutes=minutes), "minute")])
    shown = [_unit(value, unit) for value, unit in parts if value]
    return " ".join(shown)


def _unit(value: timedelta, unit: i18n.Granularity) -> str:
    return i18n.format_timedelta(value, granularity=unit, threshold=1, format="short")


def _count_text(value: float | None) -> str:
    return "—" if value is None else i18n.format_number(round(value))


# ---- charts ------------------------------------------------------------------------------------
# Hand-written SVG: the markup is built only from numbers this module computes, colour constants
# below, and text passed through markupsafe.escape (a channel or a manager's name may hold
# anything). No script, no external resource; the viewBox lets the page size it.

PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#b279a2", "#72b7b2", "#eeca3b", "#9d755d",
           "#bab0ac")
GREEN, RED = "#54a24b", "#e45756"
WIDTH = 720
FONT = 'font-family="sans-serif" font-size="11" fill="#333"'
MAX_LABEL = 28  # characters of a bar's label; longer ones end in "…"


def _n(value: float) -> str:
    """A coordinate: at most two decimals, no exponent."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _clip(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[:MAX_LABEL - 1] + "…"


def _svg(title: str, height: float, body: list[str]) -> Markup:
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="100%" '
            f'viewBox="0 0 {WIDTH} {_n(height)}" preserveAspectRatio="xMidYMid meet">'
            f"<title>{escape(title)}</title>")
    return Markup(head + "".join(body) + "</svg>")  # noqa: S704 - numbers and escaped text only


def _legend(labels: Sequence[str], colors: Sequence[str], y: float) -> list[str]:
    parts, x = [], 8.0
    for label, color in zip(labels, colors, strict=True):
        shown = _clip(label)
        parts.append(f'<rect x="{_n(x)}" y="{_n(y - 9)}" width="10" height="10" fill="{color}"/>'
                     f'<text x="{_n(x + 14)}" y="{_n(y)}" {FONT}>{escape(shown)}</text>')
        x += 14 + 6.5 * len(shown) + 16
    return parts


def _empty(y: float) -> str:
    words = i18n.gettext("No data for this period")  # outside the f-string: Babel finds it
    return (f'<text x="{_n(WIDTH / 2)}" y="{_n(y)}" text-anchor="middle" {FONT}>'
            f"{escape(words)}</text>")


def _ticks(top: float) -> list[int]:
    """Round steps from 0 to at least `top` (about five of them, whole numbers)."""
    if top <= 0:
        return [0, 1]
    raw = top / 5
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return [step * i for i in range(math.ceil(top / step) + 1)]


def stacked_bars(title: str, figure: DailyCounts, colors: Sequence[str] = PALETTE) -> Markup:
    """One bar per day, its series stacked, a legend above, counts on the left axis and a
    date under every few bars; each segment's tooltip (its <title>) says the day, series, count."""
    height, left, right, top, bottom = 260.0, 40.0, 10.0, 30.0, 30.0
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    days, series = figure.days, figure.series
    palette = [colors[i % len(colors)] for i in range(len(series))]
    body = _legend([s.label for s in series], palette, 16)
    totals = [sum(s.counts[i] for s in series) for i in range(len(days))]
    ticks = _ticks(max(totals, default=0))
    scale = plot_h / ticks[-1]
    base = top + plot_h
    for tick in ticks:
        y = base - tick * scale
        body.append(f'<line x1="{_n(left)}" y1="{_n(y)}" x2="{_n(WIDTH - right)}" y2="{_n(y)}" '
                    f'stroke="#ddd" stroke-width="1"/>'
                    f'<text x="{_n(left - 4)}" y="{_n(y + 4)}" text-anchor="end" {FONT}>'
                    f"{escape(i18n.format_number(tick))}</text>")
    slot = plot_w / max(len(days), 1)
    bar = max(slot * 0.8, 0.5)
    every = max(1, math.ceil(len(days) / 8))
    for i, day in enumerate(days):
        x = left + i * slot + (slot - bar) / 2
        y = base
        day_text = i18n.format_date(day, "d MMM")
        for s, color in zip(series, palette, strict=True):
            count = s.counts[i]
            if not count:
                continue
            h = count * scale
            y -= h
            body.append(f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(bar)}" height="{_n(h)}" '
                        f'fill="{color}"><title>{escape(day_text)} · {escape(s.label)}: '
                        f"{count}</title></rect>")
        if i % every == 0:
            body.append(f'<text x="{_n(x + bar / 2)}" y="{_n(base + 16)}" text-anchor="middle" '
                        f"{FONT}>{escape(day_text)}</text>")
    body.append(f'<line x1="{_n(left)}" y1="{_n(base)}" x2="{_n(WIDTH - right)}" '
                f'y2="{_n(base)}" stroke="#999" stroke-width="1"/>')
    if not any(totals):
        body.append(_empty(top + plot_h / 2))
    return _svg(title, height, body)


def grouped_bars(
    title: str, groups: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]],
    value_text: Callable[[float | None], str], colors: Sequence[str] = PALETTE,
) -> Markup:
    """Horizontal bars: one group per label (a channel, a manager), one bar per series in each,
    scaled to the largest value, its value in words at its end; a legend above."""
    bar_h, gap, group_gap, top, left, right = 14.0, 3.0, 12.0, 30.0, 190.0, 110.0
    palette = [colors[i % len(colors)] for i in range(len(series))]
    body = _legend([label for label, _ in series], palette, 16)
    group_h = len(series) * (bar_h + gap) - gap
    values = [v for _, vs in series for v in vs if v is not None]
    peak = max(values, default=0.0)
    plot_w = WIDTH - left - right
    y = top
    for g, group in enumerate(groups):
        body.append(f'<text x="{_n(left - 8)}" y="{_n(y + group_h / 2 + 4)}" text-anchor="end" '
                    f"{FONT}>{escape(_clip(group))}</text>")
        for (label, vs), color in zip(series, palette, strict=True):
            value = vs[g] if g < len(vs) else None
            w = plot_w * value / peak if value and peak else 0.0
            words = value_text(value)
            if w:
                body.append(f'<rect x="{_n(left)}" y="{_n(y)}" width="{_n(w)}" '
                            f'height="{_n(bar_h)}" fill="{color}"><title>{escape(group)} · '
                            f"{escape(label)}: {escape(words)}</title></rect>")
            body.append(f'<text x="{_n(left + w + 4)}" y="{_n(y + bar_h - 3)}" {FONT}>'
                        f"{escape(words)}</text>")
            y += bar_h + gap
        y += group_gap - gap
    if not groups:
        body.append(_empty(top + 20))
        y += 30
    body.append(f'<line x1="{_n(left)}" y1="{_n(top - 4)}" x2="{_n(left)}" y2="{_n(y)}" '
                f'stroke="#999" stroke-width="1"/>')
    return _svg(title, y + 8, body)
