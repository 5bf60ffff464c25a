"""The managers' web UI: server-rendered pages (aiohttp-jinja2, templates/pages/) with a little
JavaScript of our own (static/hub.js) that calls the same JSON API and listens to the live stream.

A page needs the session cookie that `/login` sets (else a redirect to the login page). Every
form carries the session's CSRF token, and the script sends it as `X-CSRF-Token`. Client text
(names, messages, subjects) is escaped by Jinja's autoescape; an e-mail's HTML, already cleaned
at intake, is shown only inside a sandboxed frame that may run no script."""

from __future__ import annotations

import contextvars
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import aiohttp_jinja2
import jinja2
from aiohttp import web

import hub
from hub import clients, i18n, search, sessions, timeline
from hub.db import as_datetime, now
from hub.errors import GoneError, NotFoundError
from hub.keys import MANAGER, SETTINGS, WEB_SESSION
from hub.models import ClientStatus, Interaction, Manager, Reminder, ReminderStatus, Role
from hub.web.auth import check_csrf, current_manager
from hub.web.inputs import MAX_ID, path_id
from hub.web.throttle import FailedLogins

routes = web.RouteTableDef()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
LOGIN_CSRF_COOKIE = "hub_login_csrf"
LANG_COOKIE = "hub_lang"
PAGE_SIZE = 50
TIMELINE_SIZE = 50
# paths a browser may open without a session
OPEN_PATHS = ("/login", "/static/", "/favicon.ico")
# paths that are not pages (they answer JSON or take webhooks, with their own auth)
NOT_PAGES = ("/api", "/webhooks", "/healthz", "/metrics")


def bundled(name: str) -> Path:
    """A folder the installed package carries (`hub/bundled/<name>`)."""
    return Path(hub.__file__).resolve().parent / "bundled" / name


FAILED_LOGINS: web.AppKey[FailedLogins] = web.AppKey("failed_logins", FailedLogins)


def setup_pages(app: web.Application) -> None:
    """Templates, translations, static files and the page routes."""
    app[FAILED_LOGINS] = FailedLogins()
    env = aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(bundled("templates") / "pages"),
        autoescape=jinja2.select_autoescape(["html"], default_for_string=True, default=True),
        undefined=jinja2.ChainableUndefined, extensions=["jinja2.ext.i18n"],
    )
    i18n.load()  # a broken catalog stops the start, not the first page
    i18n.install(env)
    env.globals.update(status_label=status_label, kind_label=kind_label,
                       channel_label=channel_label, recording_src=recording_src)
    env.filters.update(when=when, duration=duration, filesize=filesize)
    app.router.add_static("/static", bundled("static"), name="static", append_version=True)
    app.add_routes(routes)


async def render(request: web.Request, name: str, data: dict[str, Any],
                 status: int = 200) -> web.Response:
    """A page: the template with what every page shows (the manager, the CSRF token, the
    language, the badge) and the handler's data."""
    context = {**await _context(request), **data}
    return aiohttp_jinja2.render_template(name, request, context, status=status)


async def _context(request: web.Request) -> dict[str, Any]:
    manager = request.get(MANAGER)
    session = request.get(WEB_SESSION)
    query = dict(request.query)

    def page_query(**changes: Any) -> str:
        """This page's query string with some parameters changed (links keep the filters)."""
        return urlencode({k: v for k, v in {**query, **changes}.items() if v not in (None, "")})

    return {
        "me": manager, "csrf": session.csrf if session is not None else "",
        "lang": i18n.current(), "languages": i18n.LANGUAGES, "path": request.path,
        "static": lambda name: request.app.router["static"].url_for(filename=name),
        "is_admin": manager is not None and manager.role == Role.ADMIN,
        "due_count": await due_count(manager) if manager is not None else 0,
        "page_query": page_query,
    }


# ---- words and numbers in the manager's language ------------------------------------------------


def status_label(status: str | None) -> str:
    """A card's, call's, message's or offer's status in words."""
    words = {
        "new": i18n.gettext("new"), "cold": i18n.gettext("cold"), "hot": i18n.gettext("hot"),
        "vip": i18n.gettext("VIP"), "regular": i18n.gettext("regular"),
        "ringing": i18n.gettext("ringing"), "answered": i18n.gettext("answered"),
        "completed": i18n.gettext("completed"), "missed": i18n.gettext("missed"),
        "busy": i18n.gettext("busy"), "failed": i18n.gettext("failed"),
        "queued": i18n.gettext("queued"), "sending": i18n.gettext("sending"),
        "sent": i18n.gettext("sent"), "received": i18n.gettext("received"),
        "bounce": i18n.gettext("bounce"), "auto_reply": i18n.gettext("auto-reply"),
        "list": i18n.gettext("mailing list"), "system": i18n.gettext("robot"),
        "pending": i18n.gettext("pending"), "fired": i18n.gettext("due"),
        "done": i18n.gettext("done"), "replied": i18n.gettext("replied"),
    }
    return words.get(status or "", status or "")


def kind_label(kind: str, direction: str | None = None) -> str:
    """What a timeline entry is, with its direction."""
    if kind == "call":
        return i18n.gettext("Outgoing call") if direction == "out" else i18n.gettext(
            "Incoming call")
    words = {
        "email": i18n.gettext("E-mail"), "telegram": i18n.gettext("Telegram"),
        "note": i18n.gettext("Note"), "offer": i18n.gettext("Offer"),
        "reminder": i18n.gettext("Reminder"), "system": i18n.gettext("System"),
    }
    word = words.get(kind, kind)
    if direction == "out" and kind in ("email", "telegram"):
        return f"{word} →"
    if direction == "in" and kind in ("email", "telegram"):
        return f"{word} ←"
    return word


def channel_label(channel: str) -> str:
    words = {"phone": i18n.gettext("Phone"), "email": i18n.gettext("E-mail"),
             "telegram": i18n.gettext("Telegram")}
    return words.get(channel, channel)


def recording_src(url: str) -> str | None:
    """A recording's address for the audio player: the provider's https link or the hub's own
    redirect; anything else (a `javascript:` URL from a forged event) is not played."""
    return url if url.startswith(("https://", "http://", "/api/recordings/")) else None


ZONE: contextvars.ContextVar[str] = contextvars.ContextVar("zone", default="UTC")


def when(value: Any) -> str:
    """A time from the API's ISO text (or a datetime), in the manager's language and the hub's
    time zone (`timezone`)."""
    at = as_datetime(value)
    return i18n.format_datetime(at, tzinfo=ZONE.get()) if at is not None else ""


def duration(seconds: Any) -> str:
    try:
        total = int(seconds)
    except (TypeError, ValueError):
        return ""
    return f"{total // 60}:{total % 60:02d}"


def filesize(size: Any) -> str:
    try:
        value = float(size)
    except (TypeError, ValueError):
        return ""
    for unit in ("B", "KB", "MB"):
        if value < 1024:
            return f"{i18n.format_number(round(value, 1))} {unit}"
        value /= 1024
    return f"{i18n.format_number(round(value, 1))} GB"


def _is_page(path: str) -> bool:
    return not any(path == p or path.startswith(p + "/") for p in NOT_PAGES)


@web.middleware
async def pages_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A page needs a live session (else: to the login page, then back); the page's language
    is the manager's choice, else the browser's."""
    if not _is_page(request.path) or request.match_info.http_exception is not None:
        return await handler(request)  # not a page, or no such page: the JSON answer
    chosen = request.cookies.get(LANG_COOKIE)
    if not request.path.startswith(OPEN_PATHS):
        cookie = request.cookies.get(sessions.SESSION_COOKIE)
        found = await sessions.session_for(cookie) if cookie else None
        if found is None:
            target = request.path_qs if request.method == "GET" else "/"
            raise web.HTTPSeeOther(f"/login?next={quote(target, safe='')}")
        request[MANAGER], request[WEB_SESSION] = found
        chosen = found[0].language or chosen
    token = i18n.use(i18n.negotiate(request.headers.get("Accept-Language"), chosen))
    zone = ZONE.set(request.app[SETTINGS].timezone)
    try:
        response = await handler(request)
    finally:
        ZONE.reset(zone)
        i18n.reset(token)
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


# scripts only from the hub itself; an e-mail's HTML frame is sandboxed on top of this
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'self'")


def _safe_next(value: str | None) -> str:
    """Only a path of this site (never `//evil.example` or a full URL)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/clients"
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else "/clients"


# ---- logging in and out --------------------------------------------------------------------------


@routes.get("/login")
async def login_page(request: web.Request) -> web.StreamResponse:
    token = secrets.token_urlsafe(24)
    response = await render(request, "login.html", {
        "login_csrf": token, "next": _safe_next(request.query.get("next")), "failed": False,
        "email": ""})
    _set_cookie(request, response, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


@routes.post("/login")
async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    given = str(form.get("csrf", ""))
    if not expected or not secrets.compare_digest(expected, given):
        raise web.HTTPSeeOther("/login")  # an old or forged form: show a fresh one
    email, password = str(form.get("email", "")).strip(), str(form.get("password", ""))
    target = _safe_next(str(form.get("next", "")))
    guard = request.app[FAILED_LOGINS]
    if wait := guard.wait(email, request.remote):
        response = await render(request, "login.html", {
            "login_csrf": expected, "next": target, "failed": False, "email": email,
            "wait_minutes": (wait + 59) // 60}, status=429)
        response.headers["Retry-After"] = str(wait)
        return response
    found = await sessions.login(email, password, request.headers.get("User-Agent"))
    if found is None:
        guard.failed(email, request.remote)
        token = secrets.token_urlsafe(24)
        response = await render(request, "login.html", {
            "login_csrf": token, "next": target, "failed": True, "email": email}, status=401)
        _set_cookie(request, response, LOGIN_CSRF_COOKIE, token, max_age=3600)
        return response
    guard.succeeded(email)
    _, cookie = found
    response = see_other(target)
    _set_cookie(request, response, sessions.SESSION_COOKIE, cookie,
                max_age=int(timedelta(days=sessions.SESSION_DAYS).total_seconds()))
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@routes.post("/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    check_csrf(request, str(form.get("csrf", "")))
    cookie = request.cookies.get(sessions.SESSION_COOKIE)
    if cookie:
        await sessions.logout(cookie)
    response = see_other("/login")
    response.del_cookie(sessions.SESSION_COOKIE, path="/")
    return response


@routes.post("/language")
async def choose_language(request: web.Request) -> web.StreamResponse:
    """The manager's language, kept on their account (and in a cookie for the login page)."""
    form = await request.post()
    check_csrf(request, str(form.get("csrf", "")))
    lang = str(form.get("lang", ""))
    if lang not in i18n.LANGUAGES:
        raise web.HTTPSeeOther("/clients")
    manager = current_manager(request)
    manager.language = lang
    await manager.save(update_fields=["language"])
    response = see_other(_safe_next(str(form.get("next", ""))))
    _set_cookie(request, response, LANG_COOKIE, lang, max_age=365 * 24 * 3600)
    return response


def see_other(location: str) -> web.Response:
    """A 303 to `location` that can carry cookies (an HTTPException is raised, not returned)."""
    return web.Response(status=303, headers={"Location": location})


def _set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str,
                max_age: int) -> None:
    base = request.app[SETTINGS].public_base_url or ""
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="Lax",
                        secure=base.startswith("https://"))


# ---- the pages -----------------------------------------------------------------------------------


@routes.get("/")
async def home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/clients")


@routes.get("/clients")
async def clients_page(request: web.Request) -> web.StreamResponse:
    """The list: one search box, filters, newest activity first, keyset paging."""
    query = request.query
    manager_id = _int(query.get("manager_id"))
    months = _int(query.get("idle_months"))
    status = query.get("status") or None
    if status not in (None, *(s.value for s in ClientStatus)):
        status = None
    channel = query.get("channel") or None
    if channel not in (None, *search.CHANNELS):
        channel = None
    q = (query.get("q") or "").strip()[:200] or None
    items, nxt = await search.list_clients(
        region=request.app[SETTINGS].phone_region, q=q, status=status, manager_id=manager_id,
        channel=channel, idle_since=now() - timedelta(days=30 * months) if months else None,
        limit=PAGE_SIZE, cursor=_cursor(query.get("cursor")))
    managers = await Manager.filter(is_active=True).order_by("name")
    return await render(request, "clients.html", {
        "items": await clients.serialize_many(items), "next_cursor": nxt, "q": q or "",
        "status": status or "", "manager_id": manager_id, "channel": channel or "",
        "idle_months": months or "", "statuses": [s.value for s in ClientStatus],
        "channels": search.CHANNELS, "managers": {m.id: m for m in managers},
        "manager_list": managers,
    })


def _int(raw: str | None) -> int | None:
    # isascii: "²" is a digit to isdigit() but not to int()
    return int(raw) if raw and raw.isascii() and raw.isdigit() and len(raw) < 10 else None


def _cursor(raw: str | None) -> str | None:
    """A cursor as the list made it; anything else starts from the top."""
    if not raw:
        return None
    try:
        timeline.decode_keyset(raw, 2**31)
    except Exception:
        return None
    return raw


@routes.get(r"/clients/{id:\d+}")
async def card_page(request: web.Request) -> web.StreamResponse:
    """The card: its fields on the left, the timeline on the right, the buttons on top."""
    try:
        client = await clients.get_client(path_id(request))
    except GoneError as gone:
        raise web.HTTPSeeOther(f"/clients/{gone.extra.get('merged_into')}") from None
    except (NotFoundError, ValueError):
        raise web.HTTPNotFound() from None
    items, nxt = await timeline.page(client.id, TIMELINE_SIZE, None)
    managers = await Manager.filter(is_active=True).order_by("name")
    merges = await _recent_merges(client.id)
    return await render(request, "card.html", {
        "client": await clients.serialize(client),
        "entries": [timeline.serialize(i) for i in items], "next_cursor": nxt,
        "managers": managers, "statuses": [s.value for s in ClientStatus],
        "merges": merges,
    })


async def _recent_merges(client_id: int) -> list[dict[str, Any]]:
    from hub.models import Merge

    rows = await Merge.filter(survivor_id=client_id, undone_at=None).order_by("-id").limit(5)
    return [{"id": m.id, "merged_id": m.merged_id} for m in rows]  # type: ignore[attr-defined]


@routes.get(r"/clients/{id:\d+}/entries")
async def entries_fragment(request: web.Request) -> web.StreamResponse:
    """Timeline entries as HTML, rendered like the page's: `cursor` for the next page, or `ids`
    for entries the live stream announced."""
    client_id = path_id(request)
    ids = [int(i) for i in request.query.get("ids", "").split(",")
           if i.isascii() and i.isdigit() and int(i) <= MAX_ID][:50]
    if ids:
        rows = await Interaction.filter(id__in=ids, client_id=client_id).order_by(
            "-occurred_at", "-id")
        entries, nxt = [timeline.serialize(r) for r in rows], None
    else:
        items, nxt = await timeline.page(client_id, TIMELINE_SIZE, _cursor_any(
            request.query.get("cursor")))
        entries = [timeline.serialize(i) for i in items]
    return await render(request, "entries.html", {
        "entries": entries, "next_cursor": nxt, "client_id": client_id})


def _cursor_any(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        timeline.decode_keyset(raw, 2**62)
    except Exception:
        return None
    return raw


@routes.get("/reminders")
async def reminders_page(request: web.Request) -> web.StreamResponse:
    """My reminders: due and overdue first, then what is coming."""
    manager = current_manager(request)
    mine = Reminder.filter(manager_id=manager.id) if manager.role != Role.ADMIN else (
        Reminder.all())
    due = await mine.filter(status=ReminderStatus.FIRED).order_by("due_at").limit(200)
    pending = await mine.filter(status=ReminderStatus.PENDING).order_by("due_at").limit(200)
    names = {c["id"]: c["name"] for c in await hub.models.Client.filter(
        id__in={r.client_id for r in (*due, *pending)}).values("id", "name")}  # type: ignore[attr-defined]
    at = now()
    return await render(request, "reminders.html",
                        {"due": due, "pending": pending, "names": names, "now": at})


@routes.get("/reports")
async def reports_page(request: web.Request) -> web.StreamResponse:
    """Requests per channel per day, calls answered and missed, time to first answer, offers
    sent and replied; for a date range and a manager."""
    from hub.web import reports  # the charts' module loads with the page that uses it

    current_manager(request)
    period = reports.Period.from_query(request.query)
    managers = await Manager.filter(is_active=True).order_by("name")
    return await render(request, "reports.html", {
        "period": period, "report": await reports.build(period), "managers": managers})


async def due_count(manager: Manager) -> int:
    """The header's badge: fired reminders not done yet."""
    query = Reminder.filter(status=ReminderStatus.FIRED)
    if manager.role != Role.ADMIN:
        query = query.filter(manager_id=manager.id)
    return await query.count()
