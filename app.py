"""Access Review Bot: the application factory and the command line.

``python app.py`` serves the bot on ``PORT`` (default 3978). ``python app.py --help`` lists the
subcommands. Nothing is built at import time: ``create_app(settings)`` wires everything with one
aiohttp cleanup context per long-lived resource, in dependency order.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Callable, Sequence

from aiohttp import web
from prometheus_client import CollectorRegistry

from bot.clock import Clock, SystemClock
from bot.logs import configure_logging
from bot.settings import Settings, SettingsError, load_settings
from bot.store import StoreError, open_store
from bot.teams import ReviewBot, create_adapter
from bot.web.keys import ADAPTER, BOT, CLOCK, METRICS, REGISTRY, SETTINGS, STORE
from bot.web.metrics import Metrics
from bot.web.middleware import request_middleware
from bot.web.routes import routes

log = logging.getLogger("bot.app")


def create_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    """Build the aiohttp application for ``settings``. Resources open when the app starts."""
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[request_middleware])
    registry = CollectorRegistry()
    app[SETTINGS] = settings
    app[CLOCK] = clock or SystemClock()
    app[REGISTRY] = registry
    app[METRICS] = Metrics.create(registry)
    app.cleanup_ctx.append(_store_ctx)
    app.cleanup_ctx.append(_bot_ctx)
    app.add_routes(routes)
    return app


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    store = await open_store(app[SETTINGS].database_url, clock=app[CLOCK])
    app[STORE] = store
    yield
    await store.close()


async def _bot_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[ADAPTER] = create_adapter(settings)
    app[BOT] = ReviewBot(store=app[STORE], clock=app[CLOCK])
    mode = "anonymous (no MicrosoftAppId)" if settings.demo_mode else settings.app_type
    log.info("bot endpoint ready at /api/messages, auth mode: %s", mode)
    yield


# -- command line -----------------------------------------------------------------------------


def _serve(settings: Settings, _args: argparse.Namespace) -> int:
    app = create_app(settings)
    print(
        f"Access Review Bot listening on http://{settings.host}:{settings.port} "
        f"(bot endpoint /api/messages, health /healthz)",
        flush=True,
    )
    web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None)
    return 0


Command = Callable[[Settings, argparse.Namespace], int]


def _parser() -> tuple[argparse.ArgumentParser, dict[str, Command]]:
    parser = argparse.ArgumentParser(
        prog="app.py",
        description="Access Review Bot: Microsoft Entra ID access reviews done in Microsoft Teams.",
        epilog="Configuration comes from the environment and .env; see .env.example.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands: dict[str, Command] = {}
    sub.add_parser("serve", help="serve the bot on PORT (the default when no command is given)")
    commands["serve"] = _serve
    return parser, commands


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse the command line, load and validate settings, run the command."""
    parser, commands = _parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    command = commands[args.command or "serve"]
    try:
        return command(settings, args)
    except StoreError as exc:
        print(f"store error: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        return 130


if __name__ == "__main__":
    sys.exit(main())
