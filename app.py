"""Access Review Bot: the application factory.

``python app.py`` serves the bot on ``PORT`` (default 3978); ``python app.py --help`` lists the
subcommands, which live in :mod:`bot.cli`. Nothing is built at import time: ``create_app(settings)``
wires everything with one aiohttp cleanup context per long-lived resource, in dependency order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

import httpx
from aiohttp import web
from prometheus_client import CollectorRegistry

from bot.clock import Clock, SystemClock
from bot.graph import (
    AccessReviewsApi,
    AppTokenProvider,
    DirectoryApi,
    GraphClient,
    OboTokenProvider,
    Priority,
    TeamsAppsApi,
)
from bot.graph.credentials import CredentialCollector
from bot.http import AiohttpTransport
from bot.notify.delivery import DeliveryMetrics, OutboxWorker
from bot.notify.language import LanguageDefaults, MailboxLanguages
from bot.notify.notifier import GraphProvisioner, ReviewNotifier
from bot.notify.ratelimit import RateLimiter
from bot.notify.reminders import ReminderScheduler
from bot.reviews import Discovery, DiscoveryMetrics, Poller, PollerConfig
from bot.reviews.decisions import DecisionService, DecisionWorker
from bot.settings import Settings
from bot.store import open_store
from bot.teams.actions import ActionRouter, SsoConfig
from bot.teams.adapter import create_adapter
from bot.teams.bot import ReviewBot
from bot.teams.connector import ConnectorClient
from bot.teams.credentials import MsalCredentialsFactory
from bot.web.demo_routes import check_demo_clock, demo_routes
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
from bot.web.middleware import protocol_handler_args, request_middleware
from bot.web.notifications import notifications_routes
from bot.web.routes import fallback_routes, routes
from bot.web.status import add_status_page
from bot.wiring import MicrosoftSide, check_credential, check_demo_shortcuts, microsoft_side
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

    Raises :class:`SettingsError` (one line) when the credential cannot be used as configured: a
    certificate that has expired or does not match its key, a token file that cannot be read.
    """
    side = microsoft if microsoft is not None else microsoft_side(settings)
    check_demo_shortcuts(settings, side)
    if side is not None:
        status = check_credential(side)
        if settings.demo_mode:
            # The emulated tenant's own app and secret, made up for this run: nothing to act on.
            log.debug("credential: the emulated tenant's app secret (demo mode)")
        else:
            log.info("credential: %s (%s)", status.kind, status.detail)
    if clock is not None:
        check_demo_clock(settings, clock)
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[request_middleware],
        handler_args=protocol_handler_args(),
    )
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
    app.add_routes(demo_routes)
    app.add_routes(fallback_routes)  # last: it matches every path
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
    # The app's own reads and writes are background work (x-ms-throttle-priority: low, paced by
    # the Graph budget); what a reviewer waits on is high (the decision service below, and every
    # call made inside a card action: bot.teams.actions wraps them in graph_priority(HIGH)).
    graph = GraphClient.from_settings(
        app[HTTP],
        tokens=app_tokens,
        settings=config,
        registry=app[REGISTRY],
        priority=Priority.LOW,
    )
    app[APP_TOKENS] = app_tokens
    app[OBO_TOKENS] = obo_tokens
    app[GRAPH] = graph
    # Certificate (or federated token) expiry on /metrics, read from the credential at scrape time.
    app[REGISTRY].register(CredentialCollector(side.credential))
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
        graph=graph.with_priority(Priority.HIGH),
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
    side.credential.close()


async def _workers_ctx(app: web.Application) -> AsyncIterator[None]:
    """The background loops: discovery under its lease, and the outbox."""
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(app[POLLER].run_forever(stop), name="poller"),
        asyncio.create_task(app[OUTBOX].run_forever(stop), name="outbox"),
        asyncio.create_task(app[DECISION_WORKER].run_forever(stop), name="decisions"),
        asyncio.create_task(app[REMINDERS].run_forever(stop), name="reminders"),
    ]
    yield
    stop.set()
    await asyncio.gather(*tasks)


async def _bot_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    side = app.get(MICROSOFT)
    credentials = None
    if settings.app_id and side is not None:
        # Replies inside a turn (botbuilder's own connector) with the same credential as
        # everything else, from the same tenant as the proactive sends.
        credentials = MsalCredentialsFactory(
            app_id=settings.app_id,
            credential=side.credential,
            authority=f"{settings.authority_host}/{side.connector_tenant or side.tenant_id}",
            ca_bundle=settings.ca_bundle or None,
        )
    app[ADAPTER] = create_adapter(settings, credentials_factory=credentials)
    obo = app.get(OBO_TOKENS)
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
    stop = asyncio.Event()
    # botbuilder reads its connector token synchronously on the loop: it is renewed in a thread
    # ahead of expiry, so that call never waits for the token service.
    refresher = (
        asyncio.create_task(credentials.run_refresher(stop), name="bot-connector-tokens")
        if credentials is not None
        else None
    )
    yield
    stop.set()
    if refresher is not None:
        refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresher
    if credentials is not None:
        credentials.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: the command line (:mod:`bot.cli`), serving with :func:`create_app`."""
    from bot.cli import main as cli_main

    return cli_main(argv, create_app=create_app)


if __name__ == "__main__":
    sys.exit(main())
