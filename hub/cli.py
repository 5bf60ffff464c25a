"""The `hub` command: serve, migrate, managers add, managers password, demo, import clients,
export clients.

Exit codes: 0 done (also when `demo` finds cards and adds nothing), 1 the command could not do
its work (database unreachable, port taken), 2 bad settings or usage. Errors are one line on
stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from hub import __version__
from hub.errors import ConfigError, HubError
from hub.models import Role
from hub.settings import Settings, load_settings, redact_url

log = logging.getLogger("hub.cli")


class CommandError(Exception):
    """The command could not do its work; the message is for the operator (exit 1)."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `hub` command."""
    parser = argparse.ArgumentParser(prog="hub", description="crm-hub: one card per client")
    parser.add_argument("--version", action="version", version=f"crm-hub {__version__}")
    parser.add_argument(
        "--config", help="TOML settings file (default: $HUB_CONFIG or config/hub.toml)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser("serve", help="run the HTTP service (migrates first)")
    serve.add_argument("--host", help="listen address (default: $HUB_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default: $HUB_PORT or 8080)")
    sub.add_parser("migrate", help="create or migrate the database schema, then exit")
    managers = sub.add_parser("managers", help="manage managers").add_subparsers(
        dest="managers_command", required=True, metavar="ACTION"
    )
    add = managers.add_parser("add", help="add a manager and print their API token (last line)")
    add.add_argument("name")
    add.add_argument("--email")
    add.add_argument("--extension", help="the manager's PBX extension, e.g. 101")
    add.add_argument("--phone")
    add.add_argument("--role", choices=[r.value for r in Role], default=Role.MANAGER.value)
    add.add_argument("--password", action="store_true",
                     help="also set a password for the web UI: asked for twice on a terminal, "
                     "otherwise one line read from stdin (never on the command line)")
    password = managers.add_parser(
        "password", help="set a manager's web UI password (asked for, or one line from stdin) "
        "and end their browser sessions")
    password.add_argument("email")
    demo = sub.add_parser("demo", help="fill a fresh database with sample managers and clients")
    demo.add_argument("--force", action="store_true", help="add the sample data even if not empty")
    imp = sub.add_parser("import", help="import clients from a spreadsheet").add_subparsers(
        dest="what", required=True, metavar="WHAT")
    clients = imp.add_parser("clients", help="an .xlsx or .csv client list: merged into the "
                             "cards by phone, e-mail or Telegram, new cards for the rest")
    clients.add_argument("file")
    clients.add_argument("--dry-run", action="store_true",
                         help="report what would happen, change nothing")
    clients.add_argument("--map", help='columns by hand: "Клиент=name,Моб.=phone,Почта=email" '
                         "(name, phone, email, telegram, status, manager, address, "
                         "field:<name> or skip)")
    exp = sub.add_parser("export", help="export every client card").add_subparsers(
        dest="what", required=True, metavar="WHAT")
    out = exp.add_parser("clients", help="write every card to an .xlsx or .csv file")
    out.add_argument("file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hub` command."""
    args = build_parser().parse_args(argv)
    try:
        settings = _load(args)
        _setup_logging(settings.log_level)
        return _COMMANDS[args.command](settings, args)
    except ConfigError as exc:
        return _fail(exc.message, 2)
    except (HubError, CommandError) as exc:
        return _fail(exc.message if isinstance(exc, HubError) else str(exc), 1)
    except _runtime_errors() as exc:
        log.debug("command failed", exc_info=True)
        return _fail(_one_line(exc), 1)
    except KeyboardInterrupt:
        return 130


def _load(args: argparse.Namespace) -> Settings:
    """Settings from file and environment, validated in full (provider tables included)."""
    from channels import build_registry

    overrides = {k: getattr(args, k, None) for k in ("host", "port")}
    settings = load_settings(args.config, **{k: v for k, v in overrides.items() if v is not None})
    build_registry(settings)  # unknown providers and bad provider keys fail here, at start-up
    return settings


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level != "DEBUG":
        for noisy in ("tortoise", "aerich", "aiosqlite", "asyncio"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def _fail(message: str, code: int) -> int:
    print(f"hub: error: {message}", file=sys.stderr, flush=True)
    return code


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def _runtime_errors() -> tuple[type[Exception], ...]:
    """What a database or the network raises when it is unreachable or refuses us."""
    from asyncpg import PostgresError
    from tortoise.exceptions import BaseORMException

    return (OSError, BaseORMException, PostgresError)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from aiohttp import web

    from hub.app import create_app

    app = create_app(settings)
    url = f"http://{settings.host}:{settings.port}"
    log.info("database %s", redact_url(settings.database_url))

    def announce(_: str) -> None:  # aiohttp calls this once the socket listens
        print(f"crm-hub listening on {url} (Ctrl+C to stop)", flush=True)

    try:
        web.run_app(
            app,
            host=settings.host,
            port=settings.port,
            print=announce,
            access_log=None,
            shutdown_timeout=10,
        )
    except _runtime_errors() as exc:
        log.debug("start-up failed", exc_info=True)
        raise CommandError(f"cannot start on {url}: {_db_hint(settings, exc)}") from None
    print("crm-hub stopped", flush=True)
    return 0


def _db_hint(settings: Settings, exc: BaseException) -> str:
    """The error, naming the database (password hidden) when the database raised it."""
    text = _one_line(exc)
    if isinstance(exc, OSError) and "bind" in str(exc):
        return text  # the listen address, not the database
    return f"database {redact_url(settings.database_url)} (HUB_DATABASE_URL): {text}"


def _with_db(
    settings: Settings, work: Callable[[], Awaitable[Any]], *, migrate: bool = True
) -> Any:
    """Open (and migrate) the database, run `work`, close; database failures become one line."""
    from hub import db

    async def run() -> Any:
        await db.init_db(settings.database_url, migrate=migrate)
        try:
            return await work()
        finally:
            await db.close_db()

    try:
        return asyncio.run(run())
    except _runtime_errors() as exc:
        log.debug("database command failed", exc_info=True)
        raise CommandError(_db_hint(settings, exc)) from None


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from hub import db

    applied = _with_db(settings, lambda: db.migrate_db(settings.database_url), migrate=False)
    print(f"applied: {', '.join(applied)}" if applied else "schema is up to date")
    return 0


def _managers(settings: Settings, args: argparse.Namespace) -> int:
    if args.managers_command == "password":
        return _managers_password(settings, args)
    from hub.managers import create_manager

    password = read_password() if args.password else None

    async def add() -> Any:
        return await create_manager(
            args.name,
            email=args.email,
            extension=args.extension,
            phone=args.phone,
            role=Role(args.role),
            password=password,
        )

    manager, token = _with_db(settings, add)
    login = " and a web UI password" if password is not None else ""
    print(f"manager {manager.id} {manager.name!r} ({manager.role}) created{login}; API token:")
    print(token, flush=True)
    return 0


def _managers_password(settings: Settings, args: argparse.Namespace) -> int:
    from hub.errors import NotFoundError
    from hub.managers import manager_by_email
    from hub.sessions import set_password

    password = read_password()

    async def change() -> Any:
        manager = await manager_by_email(args.email)
        if manager is None:
            raise NotFoundError(f"no manager has the e-mail {args.email!r}")
        await set_password(manager, password)
        return manager

    manager = _with_db(settings, change)
    print(f"manager {manager.id} {manager.name!r}: password changed; their browser sessions "
          "were ended", flush=True)
    return 0


def read_password() -> str:
    """A new password, policy-checked before the database is opened: asked for twice without
    echo on a terminal, otherwise the first line of stdin (`echo ... | hub managers ...`)."""
    from hub.passwords import check_password

    stdin = sys.stdin
    if stdin is not None and stdin.isatty():
        try:
            password = getpass.getpass("Password: ")
            again = getpass.getpass("Repeat the password: ")
        except EOFError:
            raise CommandError("no password was given; nothing was changed") from None
        if again != password:
            raise CommandError("the two passwords differ; nothing was changed")
    else:
        line = stdin.readline() if stdin is not None else ""
        if not line:
            raise CommandError("no password on standard input (its first line is the password)")
        password = line.removesuffix("\n").removesuffix("\r")
    check_password(password)
    return password


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from hub.demo import DemoRefused, fill_demo

    try:
        summary = _with_db(settings, lambda: fill_demo(settings, force=args.force))
    except DemoRefused as exc:
        # not a failure: `hub demo && hub serve` must start the hub on every run
        print(f"hub: {exc}", file=sys.stderr, flush=True)
        return 0
    print(summary, flush=True)
    return 0


def _import(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from hub.importing import import_rows
    from hub.sheets import SheetReader, parse_map

    try:
        mapping = parse_map(args.map) if args.map else None
        sheet = SheetReader(Path(args.file), mapping)  # rows are read as they are imported
    except (OSError, ValueError) as exc:
        raise CommandError(f"{args.file}: {exc}") from None
    tty = sys.stderr.isatty()

    def progress(done: int) -> None:
        if tty:
            print("\r" + progress_bar(done, sheet.expected), end="", file=sys.stderr,
                  flush=True)

    with sheet:
        try:
            report = _with_db(settings, lambda: import_rows(
                sheet, settings.phone_region, dry_run=args.dry_run, progress=progress))
        except ValueError as exc:
            raise CommandError(f"{args.file}: {exc}") from None
    if tty:
        print(file=sys.stderr)
    for number, reason in sheet.skipped:
        print(f"row {number}: skipped: {reason}")
    for outcome in report.every if args.dry_run else report.with_notes:
        print(outcome.describe())
    print(("dry run, nothing changed: " if args.dry_run else "") + report.summary(), flush=True)
    return 0


def progress_bar(done: int, total: int | None, width: int = 30) -> str:
    """`[#########.....]  45%  45,000 / 100,000 rows`, or a count when the total is unknown."""
    if not total:
        return f"{done:,} rows"
    share = min(done / total, 1.0)
    filled = round(width * share)
    return f"[{'#' * filled}{'.' * (width - filled)}] {share:4.0%}  {done:,} / {total:,} rows"


def _export(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from hub.importing import export_file

    try:
        count = _with_db(settings, lambda: export_file(Path(args.file)))
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    print(f"{count} cards written to {args.file}", flush=True)
    return 0


_COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "serve": _serve,
    "migrate": _migrate,
    "managers": _managers,
    "demo": _demo,
    "import": _import,
    "export": _export,
}
