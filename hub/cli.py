"""The `hub` command: serve, migrate, managers add, managers password, demo, import clients,
export clients, backup, restore.

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
    backup = sub.add_parser("backup", help="copy the SQLite database to a file, consistent "
                            "while the hub runs (PostgreSQL: use pg_dump)")
    backup.add_argument("file")
    backup.add_argument("--force", action="store_true", help="overwrite the file if it exists")
    restore = sub.add_parser("restore", help="put a backup made by `hub backup` in place of the "
                             "SQLite database; stop the hub first (PostgreSQL: use pg_restore)")
    restore.add_argument("file")
    restore.add_argument("--force", action="store_true",
                         help="replace a database that already has data")
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


HUB_TABLES = ("client", "aerich")  # a file without these is not a hub database


def _sqlite_path(settings: Settings, command: str, file: str) -> str:
    """The database file of a SQLite URL. On PostgreSQL, the pg_dump / pg_restore command to
    run instead, with the URL's parts and never its password (exit 2)."""
    from tortoise.backends.base.config_generator import expand_db_url

    url = settings.database_url
    if not url.startswith("sqlite:"):
        raise ConfigError(_pg_hint(url, command, file))
    path = str(expand_db_url(url)["credentials"]["file_path"])
    if path == ":memory:" or "mode=memory" in path:
        raise ConfigError(f"hub {command}: an in-memory database has nothing to {command}")
    return path


def _pg_hint(url: str, command: str, file: str) -> str:
    from shlex import quote
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    options = [f"--host={parts.hostname or 'localhost'}", f"--port={parts.port or 5432}"]
    if parts.username:
        options.append(f"--username={unquote(parts.username)}")
    options.append(f"--dbname={unquote(parts.path.lstrip('/')) or 'postgres'}")
    flags = " ".join(quote(option) for option in options)
    if command == "backup":
        tool = f"pg_dump -Fc {flags} --file={quote(file)}"
    else:
        tool = f"pg_restore --clean --if-exists --no-owner {flags} {quote(file)}"
    return (f"hub {command} works on SQLite only; on PostgreSQL run: {tool} "
            "(the password from PGPASSWORD or ~/.pgpass)")


def _tables(conn: Any) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {str(r[0]) for r in rows}


def _open_hub_file(path: str, what: str, *, check: bool = False) -> Any:
    """A read-only connection to an existing SQLite file that holds a hub database; `check`
    also reads every page once (PRAGMA quick_check), for a backup about to be restored."""
    import sqlite3
    from pathlib import Path

    if not Path(path).is_file():
        raise CommandError(f"{what} {path!r} does not exist")
    try:
        conn = sqlite3.connect(f"file:{Path(path).resolve().as_posix()}?mode=ro", uri=True)
        missing = set(HUB_TABLES) - _tables(conn)
        verdict = "ok"
        if check and not missing:
            verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.Error as exc:
        raise CommandError(f"{what} {path!r} is not a SQLite database: {exc}") from None
    if missing or verdict != "ok":
        conn.close()
        why = f"no {', '.join(sorted(missing))} table" if missing else verdict
        raise CommandError(f"{what} {path!r} is not a hub database ({why})")
    return conn


def _backup(settings: Settings, args: argparse.Namespace) -> int:
    """SQLite's online backup API: a consistent copy page by page, even while the hub writes
    (a plain file copy of a WAL database can miss committed data or tear)."""
    import os
    import sqlite3
    from pathlib import Path

    source_path = _sqlite_path(settings, "backup", args.file)
    target = Path(args.file)
    if target.exists() and not args.force:
        raise CommandError(f"{args.file} exists; give --force to overwrite it")
    partial = target.with_name(target.name + ".partial")
    source = _open_hub_file(source_path, "database")
    try:
        partial.unlink(missing_ok=True)
        copy = sqlite3.connect(partial)
        try:
            source.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            copy.close()
        os.replace(partial, target)  # never a half-written backup under the given name
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise CommandError(f"backup to {args.file} failed: {exc}") from None
    finally:
        source.close()
    print(f"database {source_path} backed up to {args.file}", flush=True)
    return 0


def _restore(settings: Settings, args: argparse.Namespace) -> int:
    """The backup replaces the database's content through the backup API (never a file copy
    over a WAL database). Refused while another process (a running hub) has the database open,
    and over a database with tables unless --force."""
    import sqlite3

    target_path = _sqlite_path(settings, "restore", args.file)
    source = _open_hub_file(args.file, "backup", check=True)
    try:
        target = sqlite3.connect(target_path, isolation_level=None, timeout=0)
    except sqlite3.Error as exc:
        source.close()
        raise CommandError(f"cannot open the database {target_path}: {exc}") from None
    try:
        if _tables(target) and not args.force:
            raise CommandError(f"the database {target_path} already has data; give --force to "
                               "replace it with the backup")
        try:
            # leaving WAL mode needs the only connection: a running hub makes this fail
            target.execute("PRAGMA journal_mode=DELETE").fetchone()
        except sqlite3.OperationalError:
            raise CommandError(f"the database {target_path} is in use (is the hub running?); "
                               "stop the hub, then restore") from None
        source.backup(target)
        target.execute("PRAGMA journal_mode=WAL").fetchone()
    except sqlite3.Error as exc:
        raise CommandError(f"restore into {target_path} failed: {exc}") from None
    finally:
        target.close()
        source.close()
    print(f"backup {args.file} restored into {target_path}", flush=True)
    return 0


_COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "serve": _serve,
    "migrate": _migrate,
    "managers": _managers,
    "demo": _demo,
    "import": _import,
    "export": _export,
    "backup": _backup,
    "restore": _restore,
}
