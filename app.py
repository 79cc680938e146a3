"""Access Review Bot: the application factory and the command line.

``python app.py`` serves the bot on ``PORT`` (default 3978). ``python app.py --help`` lists the
subcommands. Nothing is built at import time: ``create_app(settings)`` wires everything with one
aiohttp cleanup context per long-lived resource, in dependency order.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import socket
import ssl
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace

import httpx
from aiohttp import web
from prometheus_client import CollectorRegistry

from bot.admin import ReviewSummary
from bot.clock import Clock, SystemClock
from bot.graph import (
    AccessReviewsApi,
    AppTokenProvider,
    DirectoryApi,
    GraphClient,
    OboTokenProvider,
    TeamsAppsApi,
)
from bot.http import AiohttpTransport
from bot.logs import configure_logging
from bot.notify.delivery import DeliveryMetrics, OutboxWorker
from bot.notify.language import LanguageDefaults, MailboxLanguages
from bot.notify.notifier import GraphProvisioner, ReviewNotifier
from bot.notify.ratelimit import RateLimiter
from bot.notify.reminders import ReminderScheduler
from bot.reviews import Discovery, DiscoveryMetrics, Poller, PollerConfig
from bot.reviews.decisions import DecisionService, DecisionWorker
from bot.settings import Settings, SettingsError, load_settings
from bot.store import Store, StoreError, open_store
from bot.teams.actions import ActionRouter, SsoConfig
from bot.teams.adapter import create_adapter
from bot.teams.bot import ReviewBot
from bot.teams.connector import ConnectorClient
from bot.teams.credentials import MsalCredentialsFactory
from bot.web.keys import (
    ACTIONS,
    ADAPTER,
    APP_TOKENS,
    BOT,
    CLOCK,
    CONNECTOR,
    DECISION_WORKER,
    DECISIONS,
    DIRECTORY_API,
    DISCOVERY,
    GRAPH,
    HTTP,
    HTTP_TRANSPORT,
    LIMITER,
    MAILBOX_LANGUAGES,
    METRICS,
    MICROSOFT,
    NOTIFIER,
    OBO_TOKENS,
    OUTBOX,
    POLLER,
    REGISTRY,
    REMINDERS,
    REVIEWS_API,
    SETTINGS,
    STORE,
)
from bot.web.metrics import Metrics
from bot.web.middleware import request_middleware
from bot.web.notifications import notifications_routes
from bot.web.routes import routes
from bot.web.status import add_status_page
from bot.wiring import MicrosoftSide, check_demo_shortcuts, microsoft_side
from cards.i18n import warm_locales

log = logging.getLogger("bot.app")

BOT_FRAMEWORK_RESOURCE = "https://api.botframework.com"


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    workers: bool = True,
    microsoft: MicrosoftSide | None = None,
) -> web.Application:
    """Build the aiohttp application for ``settings``. Resources open when the app starts.

    ``microsoft`` says where Graph, Entra ID and the Bot Connector are (default: from the
    settings; the demo passes the emulator's). ``workers=False`` leaves out the background loops
    (poller, outbox, decision retries), for tests that drive them.
    """
    side = microsoft if microsoft is not None else microsoft_side(settings)
    check_demo_shortcuts(settings, side)
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[request_middleware])
    registry = CollectorRegistry()
    app[SETTINGS] = settings
    app[CLOCK] = clock or SystemClock()
    app[REGISTRY] = registry
    app[METRICS] = Metrics.create(registry)
    app.cleanup_ctx.append(_languages_ctx)
    app.cleanup_ctx.append(_store_ctx)
    if side is not None:
        app[MICROSOFT] = side
        app.cleanup_ctx.append(_http_ctx)
        app.cleanup_ctx.append(_graph_ctx)
    app.cleanup_ctx.append(_bot_ctx)
    if side is not None and workers:
        app.cleanup_ctx.append(_workers_ctx)
    app.add_routes(routes)
    app.add_routes(notifications_routes)
    add_status_page(app)
    return app


def _language_defaults(settings: Settings) -> LanguageDefaults:
    """The tenant's default language and zone (``DEFAULT_LOCALE``, ``DEFAULT_TIME_ZONE``)."""
    return LanguageDefaults(
        locale=settings.default_locale, time_zone=settings.schedule.default_hours.zone.key
    )


async def _languages_ctx(app: web.Application) -> AsyncIterator[None]:
    # Babel reads CLDR data from disk the first time a locale is used: load every language the
    # cards speak now, off the loop, so that no card render (in the outbox's send slots) reads
    # a file.
    await asyncio.to_thread(warm_locales)
    yield


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = await open_store(
        settings.database_url,
        clock=app[CLOCK],
        pool_size=settings.db_pool_size,
        statement_timeout_ms=settings.db_statement_timeout_ms,
    )
    app[STORE] = store
    yield
    await store.close()


async def _http_ctx(app: web.Application) -> AsyncIterator[None]:
    ca_bundle = app[MICROSOFT].ca_bundle
    # One connection pool (aiohttp's, under httpx's API) for every Graph and connector call.
    context: ssl.SSLContext | None = None
    if ca_bundle:
        # The system's CAs plus the configured bundle (the emulator's local CA).
        context = ssl.create_default_context()
        context.load_verify_locations(cafile=ca_bundle)
    transport = AiohttpTransport(ssl_context=context, limit=100)
    async with httpx.AsyncClient(
        transport=transport, timeout=httpx.Timeout(30.0, connect=10.0)
    ) as http:
        app[HTTP] = http
        app[HTTP_TRANSPORT] = transport
        yield


async def _graph_ctx(app: web.Application) -> AsyncIterator[None]:
    side = app[MICROSOFT]
    config = side.graph
    store = app[STORE]
    app_tokens = AppTokenProvider(config, store=store)
    obo_tokens = OboTokenProvider(config, store=store)
    graph = GraphClient.from_settings(
        app[HTTP], tokens=app_tokens, settings=config, registry=app[REGISTRY]
    )
    app[APP_TOKENS] = app_tokens
    app[OBO_TOKENS] = obo_tokens
    app[GRAPH] = graph
    app[REVIEWS_API] = AccessReviewsApi(graph)
    app[DIRECTORY_API] = DirectoryApi(graph)
    app[DISCOVERY] = Discovery(
        reviews=app[REVIEWS_API],
        directory=app[DIRECTORY_API],
        store=store,
        clock=app[CLOCK],
        metrics=DiscoveryMetrics(app[REGISTRY]),
    )
    app[POLLER] = Poller(
        discovery=app[DISCOVERY],
        store=store,
        clock=app[CLOCK],
        config=PollerConfig(
            interval_s=app[SETTINGS].poll_interval_s,
            lease_ttl_s=app[SETTINGS].lease_ttl_s,
            tick_s=min(5.0, app[SETTINGS].lease_ttl_s / 3),
        ),
    )
    # The Bot Connector takes tokens for https://api.botframework.com from the same app.
    connector_tokens = AppTokenProvider(
        replace(
            config,
            graph_resource=BOT_FRAMEWORK_RESOURCE,
            tenant_id=side.connector_tenant or side.tenant_id,
        ),
        store=store,
    )
    settings = app[SETTINGS]
    app[CONNECTOR] = ConnectorClient(
        app[HTTP_TRANSPORT],
        bot_app_id=side.bot_app_id,
        tokens=connector_tokens if side.connector_auth else None,
    )
    app[LIMITER] = RateLimiter()
    app[OUTBOX] = OutboxWorker(
        store=store,
        connector=app[CONNECTOR],
        limiter=app[LIMITER],
        clock=app[CLOCK],
        tenant_id=side.tenant_id,
        service_url=side.service_url,
        provisioner=GraphProvisioner(teams_apps=TeamsAppsApi(graph), bot_app_id=side.bot_app_id),
        metrics=DeliveryMetrics(app[REGISTRY]),
        lease_name="delivery",
        claim_lease_s=settings.claim_lease_s,
        lease_ttl_s=settings.lease_ttl_s / 2,
        languages=_language_defaults(settings),
    )
    languages = MailboxLanguages(store=store, directory=app[DIRECTORY_API], clock=app[CLOCK])
    app[MAILBOX_LANGUAGES] = languages
    notifier = ReviewNotifier(store=store, tenant_id=side.tenant_id, wake=app[OUTBOX].wake)
    app[NOTIFIER] = notifier
    # New reviewers' mailbox languages are read before the notifier queues their first cards.
    app[DISCOVERY].add_handler(languages)
    app[DISCOVERY].add_handler(notifier)
    app[DISCOVERY].add_reconciler(notifier.ensure_first_cards)
    app[DECISIONS] = DecisionService(
        store=store,
        graph=graph,
        obo=obo_tokens,
        clock=app[CLOCK],
        tenant_id=side.tenant_id,
        on_settled=notifier.items_changed,
        claim_lease_s=settings.claim_lease_s,
    )
    app[DECISION_WORKER] = DecisionWorker(
        store=store, service=app[DECISIONS], claim_lease_s=settings.claim_lease_s
    )
    app[REMINDERS] = ReminderScheduler(
        store=store,
        directory=app[DIRECTORY_API],
        clock=app[CLOCK],
        schedule=settings.schedule,
        tenant_id=side.tenant_id,
        escalation_fallback=settings.escalation_fallback_user,
        digest=settings.reminder_digest,
        wake=app[OUTBOX].wake,
        languages=languages,
    )
    app[ACTIONS] = ActionRouter(
        store=store,
        decisions=app[DECISIONS],
        clock=app[CLOCK],
        simulated_sso=side.simulated_sso,
        reminders=app[REMINDERS],
        tenant_id=side.tenant_id,
        languages=_language_defaults(settings),
        sso=SsoConfig(
            app_id=side.bot_app_id,
            app_id_uri=side.sso_app_id_uri or f"api://botid-{side.bot_app_id}",
            authority=config.authority,
            redirect_uri=f"https://{settings.bot_domain}/auth/signed-in"
            if settings.bot_domain
            else "",
        ),
    )
    yield
    await connector_tokens.close()
    await obo_tokens.close()
    await app_tokens.close()


async def _workers_ctx(app: web.Application) -> AsyncIterator[None]:
    """The background loops: discovery under its lease, and the outbox."""
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(app[POLLER].run_forever(stop), name="poller"),
        asyncio.create_task(app[OUTBOX].run_forever(stop), name="outbox"),
        asyncio.create_task(app[DECISION_WORKER].run_forever(stop), name="decisions"),
        asyncio.create_task(_reminder_loop(app, stop), name="reminders"),
    ]
    yield
    stop.set()
    await asyncio.gather(*tasks)


async def _reminder_loop(
    app: web.Application, stop: asyncio.Event, *, every_s: float = 60.0
) -> None:
    """Reminders and escalations, by whichever replica holds the reminder lease."""
    store, holder = app[STORE], f"reminders-{os.getpid()}-{id(app)}"
    while not stop.is_set():
        try:
            if await store.acquire_lease(name="reminders", holder=holder, ttl_s=every_s * 3):
                await app[REMINDERS].run_once()
        except Exception:
            log.exception("reminder pass failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every_s)


async def _bot_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    credentials = None
    if settings.app_id and settings.app_password:
        tenant = (
            settings.app_tenant_id if settings.app_type == "SingleTenant" else "botframework.com"
        )
        credentials = MsalCredentialsFactory(
            app_id=settings.app_id,
            password=settings.app_password,
            authority=f"{settings.authority_host}/{tenant}",
            ca_bundle=settings.ca_bundle or None,
        )
    app[ADAPTER] = create_adapter(settings, credentials_factory=credentials)
    obo = app.get(OBO_TOKENS)
    side = app.get(MICROSOFT)
    tenant_id = side.tenant_id if side is not None else settings.app_tenant_id

    async def exchange(user_oid: str, sso_token: str) -> None:
        assert obo is not None
        await obo.acquire(user_oid=user_oid, tenant_id=tenant_id, sso_token=sso_token)

    app[BOT] = ReviewBot(
        store=app[STORE],
        clock=app[CLOCK],
        actions=app.get(ACTIONS),
        tenant_id=tenant_id,
        token_exchange=exchange if obo is not None else None,
        on_new_conversation=app[NOTIFIER].conversation_changed if NOTIFIER in app else None,
        languages=_language_defaults(settings),
    )
    mode = "anonymous (no MicrosoftAppId)" if settings.demo_mode else settings.app_type
    log.info("bot endpoint ready at /api/messages, auth mode: %s", mode)
    yield
    if credentials is not None:
        credentials.close()


# -- command line -----------------------------------------------------------------------------
#
# Each subcommand is one ``_add_*`` function: it declares its arguments on the parser it is given
# and returns the function that runs it. A new subcommand is one more such function in
# ``SUBCOMMANDS``.

Command = Callable[[Settings, argparse.Namespace], int]
AddCommand = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], Command]


class CommandError(Exception):
    """A command cannot do what was asked; ``main`` prints the message as one line and exits 1."""


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> Command:
    serve = sub.add_parser(
        "serve", help="serve the bot on PORT (the default when no command is given)"
    )
    _serve_options(serve)
    return _serve


def _serve_options(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: `app.py --port N serve` keeps N (a subparser's None would overwrite it).
    parser.add_argument(
        "--port",
        type=int,
        default=argparse.SUPPRESS,
        help="port to listen on (default: PORT, else 3978; 0: any free port, printed)",
    )
    parser.add_argument(
        "--host",
        default=argparse.SUPPRESS,
        help="interface to listen on (default: HOST, else 127.0.0.1 in demo mode, 0.0.0.0 "
        "with credentials)",
    )


def _serve_settings(settings: Settings, args: argparse.Namespace) -> Settings:
    port = getattr(args, "port", None)
    host = getattr(args, "host", None)
    if port is not None:
        if not 0 <= port <= 65535:
            raise CommandError("--port must be a whole number from 0 (any free port) to 65535")
        settings = replace(settings, port=port)
    if host is not None:
        settings = replace(settings, host=host.strip())
    return settings


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything starts: with port 0 the OS picks the port,
    and the demo must know it before its emulated connector can be told the bot's endpoint."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise CommandError(f"cannot listen on {host}: {exc.strerror}") from None
    family, kind, proto, _name, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    return sock


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    settings = _serve_settings(settings, args)
    sock = _listen(settings.bind_host, settings.port)
    settings = replace(settings, port=sock.getsockname()[1])
    if settings.demo_mode:
        return _serve_demo(settings, sock)
    app = create_app(settings)
    print(
        f"Access Review Bot listening on http://{settings.bind_host}:{settings.port} "
        f"(bot endpoint /api/messages, health /healthz)",
        flush=True,
    )
    web.run_app(app, sock=sock, print=None, access_log=None)
    return 0


def _serve_demo(settings: Settings, sock: socket.socket) -> int:
    from bot.demo import DEMO_STATE_FILE, banner, next_steps, start_demo_cloud, wait_until_settled
    from bot.logs import quiet_loggers

    # The emulated Microsoft side and the bot's routine start-up lines (every install, every
    # conversation, every request of the emulated connector) would bury what to do next; they
    # stay available with LOG_LEVEL=DEBUG.
    quiet_loggers(DEMO_QUIET_LOGGERS, level=settings.log_level)
    # The emulated connector reaches the bot where it listens (loopback when that is all of them).
    local = settings.bind_host in ("0.0.0.0", "::", "localhost")  # noqa: S104
    reach = "127.0.0.1" if local else settings.bind_host
    endpoint = f"http://{reach}:{settings.port}/api/messages"
    demo = start_demo_cloud(settings, bot_endpoint=endpoint, state_file=DEMO_STATE_FILE)
    try:
        app = create_app(demo.settings, microsoft=demo.side)
        print(banner(demo, host=settings.bind_host, port=settings.port), flush=True)

        async def announce() -> None:
            await wait_until_settled(
                cycles_run=lambda: app[POLLER].cycles_run,
                queued=lambda: _queued(app),
            )
            reviews = await app[STORE].list_instances(status="InProgress")
            cards = await app[STORE].list_audit(actions=["notified"], limit=100_000)
            print(
                next_steps(port=settings.port, reviews=len(reviews), cards=len(cards)),
                flush=True,
            )

        async def announce_ctx(app: web.Application) -> AsyncIterator[None]:
            task = asyncio.create_task(announce(), name="demo-next-steps")
            yield
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        app.cleanup_ctx.append(announce_ctx)
        web.run_app(app, sock=sock, print=None, access_log=None)
    finally:
        demo.stop()
    return 0


# Loggers whose INFO lines the demo keeps out of the terminal (LOG_LEVEL=DEBUG shows them).
DEMO_QUIET_LOGGERS = (
    "emulator",
    "bot.web.access",
    "bot.teams.bot",
    "bot.notify.notifier",
    "bot.store.sql",
    "bot.graph.client",
)


async def _queued(app: web.Application) -> int:
    store = app[STORE]
    return await store.count_outbox(status="pending") + await store.count_outbox(status="in_flight")


def _store_url(settings: Settings) -> str:
    """The store the server uses in this mode: the demo's file without credentials.

    A SQLite file that does not exist is an error, not a new empty store: a command that reads
    must not answer "nothing happened" about a store it just created.
    """
    url = settings.database_url
    if settings.demo_mode:
        from bot.demo import demo_database_url

        url = demo_database_url(settings)
    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else ""
    if path and path != ":memory:" and not os.path.exists(path):
        mode = "the demo" if settings.demo_mode else "the bot"
        raise CommandError(f"no store at {path}: start {mode} first (scripts/run)")
    return url


async def _open_cli_store(settings: Settings) -> Store:
    return await open_store(
        _store_url(settings),
        pool_size=2,
        statement_timeout_ms=settings.db_statement_timeout_ms,
    )


def _tenant_for(settings: Settings) -> str:
    side = microsoft_side(settings)
    if side is not None:
        return side.tenant_id
    from bot.demo import read_state

    state = read_state()
    return str(state.get("tenant_id") or "") if state else settings.app_tenant_id


def _instance_argument(value: str) -> str:
    from bot.admin import valid_instance_id

    if not valid_instance_id(value):
        raise argparse.ArgumentTypeError(
            "must be a review instance id (letters, digits, '-', '_', '.'): "
            "python app.py reviews lists them"
        )
    return value


def _add_remind(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> Command:
    remind = sub.add_parser(
        "remind", help="queue a reminder now for everyone with pending items in a review"
    )
    remind.add_argument(
        "--instance", required=True, type=_instance_argument, help="the review instance id"
    )
    return _remind


def _remind(settings: Settings, args: argparse.Namespace) -> int:
    from bot.admin import remind_now

    async def run() -> list[str]:
        store = await _open_cli_store(settings)
        try:
            return await remind_now(
                store,
                clock=SystemClock(),
                tenant_id=_tenant_for(settings),
                instance_id=args.instance,
                by="cli",
            )
        finally:
            await store.close()

    try:
        reminded = asyncio.run(run())
    except LookupError as exc:
        raise CommandError(str(exc)) from None
    print(f"queued a reminder for {len(reminded)} reviewer(s); the running bot sends them")
    return 0


def _add_audit(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> Command:
    audit = sub.add_parser(
        "audit", help="export a review's audit trail (audit export --instance ID)"
    )
    audit.add_argument("action", choices=["export"])
    audit.add_argument(
        "--instance", required=True, type=_instance_argument, help="the review instance id"
    )
    audit.add_argument("--format", choices=["csv", "json"], default="csv")
    audit.add_argument("--out", help="write to this file instead of standard output")
    return _audit


def _audit(settings: Settings, args: argparse.Namespace) -> int:
    from bot.admin import UnknownInstance, export_audit

    async def run() -> str:
        store = await _open_cli_store(settings)
        try:
            return await export_audit(store, instance_id=args.instance, fmt=args.format)
        finally:
            await store.close()

    try:
        text = asyncio.run(run())
    except UnknownInstance as exc:
        raise CommandError(f"{exc} (python app.py reviews lists the reviews)") from None
    if args.out:
        with open(args.out, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _add_reviews(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> Command:
    reviews = sub.add_parser(
        "reviews",
        help="list the reviews the bot knows: names, definition and instance ids, status, "
        "stage, due date, decided/total, reviewers with items left",
    )
    reviews.add_argument("--format", choices=["table", "json"], default="table")
    return _reviews


def _reviews(settings: Settings, args: argparse.Namespace) -> int:
    from bot.admin import review_summaries

    async def run() -> list[ReviewSummary]:
        store = await _open_cli_store(settings)
        try:
            return await review_summaries(store)
        finally:
            await store.close()

    summaries = asyncio.run(run())
    if args.format == "json":
        sys.stdout.write(json.dumps([s.as_json() for s in summaries], indent=2) + "\n")
        return 0
    sys.stdout.write(_reviews_table(summaries))
    return 0


def _reviews_table(summaries: Sequence[ReviewSummary]) -> str:
    header = (
        "REVIEW",
        "DEFINITION ID",
        "INSTANCE ID",
        "STATUS",
        "STAGE",
        "DUE (UTC)",
        "DECIDED",
        "REVIEWERS PENDING",
    )
    rows = [
        (
            s.name,
            s.definition_id,
            s.instance_id,
            s.status,
            s.stage or "-",
            s.due.strftime("%Y-%m-%d %H:%M") if s.due else "-",
            f"{s.decided}/{s.total}",
            str(s.reviewers_pending),
        )
        for s in summaries
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    if not rows:
        lines.append("(no review yet: the bot lists what its discovery found)")
    return "\n".join(lines) + "\n"


def _add_doctor(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> Command:
    sub.add_parser(
        "doctor", help="check the tenant's setup: tokens, permissions, consent, SSO, Teams app"
    )
    return _doctor


def _doctor(settings: Settings, _args: argparse.Namespace) -> int:
    from bot.doctor import run_doctor

    return asyncio.run(run_doctor(settings, out=sys.stdout))


def _add_manifest(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> Command:
    manifest = sub.add_parser(
        "manifest",
        help="build or validate the Teams app package (python app.py manifest build --out app.zip)",
        add_help=False,
    )
    manifest.add_argument("manifest_args", nargs=argparse.REMAINDER)
    manifest.set_defaults(passthrough=True)
    return _manifest


def _manifest(_settings: Settings, args: argparse.Namespace) -> int:
    from manifest import main as manifest_main

    return manifest_main(list(args.manifest_args), os.environ)


SUBCOMMANDS: tuple[AddCommand, ...] = (
    _add_serve,
    _add_reviews,
    _add_remind,
    _add_audit,
    _add_doctor,
    _add_manifest,
)


def _parser() -> tuple[argparse.ArgumentParser, dict[str, Command]]:
    parser = argparse.ArgumentParser(
        prog="app.py",
        description="Access Review Bot: Microsoft Entra ID access reviews done in Microsoft Teams.",
        epilog="Configuration comes from the environment and .env; see .env.example.",
    )
    # `python app.py --port 3979` serves, as `python app.py serve --port 3979` does.
    _serve_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands: dict[str, Command] = {}
    for add in SUBCOMMANDS:
        before = set(sub.choices)
        run = add(sub)
        for name in set(sub.choices) - before:
            commands[name] = run
    return parser, commands


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse the command line, load and validate settings, run the command."""
    parser, commands = _parser()
    args, unknown = parser.parse_known_args(argv)
    if getattr(args, "passthrough", False):
        # Subcommands with their own parser (manifest) get every argument after their name.
        args.manifest_args = list(unknown) + list(args.manifest_args)
    elif unknown:
        parser.error("unrecognized arguments: " + " ".join(unknown))
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    command = commands[args.command or "serve"]
    try:
        return command(settings, args)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except StoreError as exc:
        print(f"store error: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        return 130


if __name__ == "__main__":
    sys.exit(main())
