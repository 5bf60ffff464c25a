"""The `hub` command: serve, migrate, managers add, demo."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from hub.errors import ConfigError, HubError
from hub.models import Role
from hub.settings import Settings, load_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hub", description="crm-hub: one card per client")
    parser.add_argument("--config", help="TOML settings file (default: $HUB_CONFIG or config/hub.toml)")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP service (migrates first)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    sub.add_parser("migrate", help="create or migrate the schema, then exit")
    managers = sub.add_parser("managers", help="manage managers").add_subparsers(
        dest="managers_command", required=True
    )
    add = managers.add_parser("add", help="add a manager and print their API token (last line)")
    add.add_argument("name")
    add.add_argument("--email")
    add.add_argument("--extension")
    add.add_argument("--phone")
    add.add_argument("--role", choices=[r.value for r in Role], default=Role.MANAGER.value)
    demo = sub.add_parser("demo", help="fill a fresh database with sample managers and clients")
    demo.add_argument("--force", action="store_true", help="add the sample data even if not empty")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hub` command."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
        logging.basicConfig(level=settings.log_level,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        return _COMMANDS[args.command](settings, args)
    except (ConfigError, HubError) as exc:
        print(f"hub: error: {exc.message if isinstance(exc, HubError) else exc}", file=sys.stderr)
        return 2


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from aiohttp import web

    from hub.app import create_app

    updates = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = settings.model_copy(update=updates)
    app = create_app(settings)
    print(f"crm-hub listening on http://{settings.host}:{settings.port}", flush=True)
    web.run_app(app, host=settings.host, port=settings.port, print=None,
                access_log=None, shutdown_timeout=10)
    return 0


def _with_db(settings: Settings, work: Callable[[], Awaitable[Any]]) -> Any:
    from hub import db

    async def run() -> Any:
        await db.init_db(settings.database_url)
        try:
            return await work()
        finally:
            await db.close_db()

    return asyncio.run(run())


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    _with_db(settings, lambda: asyncio.sleep(0))
    print("schema is up to date")
    return 0


def _managers(settings: Settings, args: argparse.Namespace) -> int:
    from hub.managers import create_manager

    async def add() -> Any:
        return await create_manager(args.name, email=args.email, extension=args.extension,
                                    phone=args.phone, role=Role(args.role))

    manager, token = _with_db(settings, add)
    print(f"manager {manager.id} {manager.name!r} ({manager.role}) created; API token:")
    print(token)
    return 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from hub.demo import fill_demo

    summary = _with_db(settings, lambda: fill_demo(settings, force=args.force))
    print(summary)
    return 0


_COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "serve": _serve, "migrate": _migrate, "managers": _managers, "demo": _demo,
}
