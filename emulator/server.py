"""``EmulatorCloud``: the whole emulated Microsoft side, composed from one config.

Graph and login run https with a certificate from the identity's local CA (trust
``ca_pem_path``; never disable verification); the Bot Connector runs plain http like the Bot
Framework Emulator's serviceUrl. Everything binds 127.0.0.1 on port 0 unless told otherwise.

    async with EmulatorCloud(EmulatorConfig(seed="demo")) as cloud:
        ...  # cloud.graph_url, cloud.login_url, cloud.connector_url, cloud.tenant, ...
"""

from __future__ import annotations

import logging
import secrets
import socket
import ssl
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

from emulator.clock import Clock, SystemClock
from emulator.connector import Connector, TeamsLimits
from emulator.faults import Faults
from emulator.graph import DECISIONS_MAX_TOP, GraphApi, GraphThrottle, ThrottleSettings
from emulator.identity import AccessToken, AppRegistration, Identity
from emulator.profiles import profile_fault_rules
from emulator.seeds import DEFAULT_BOT_APP_ID, build_seed
from emulator.tenant import Tenant

__all__ = [
    "BOT_APPLICATION_PERMISSIONS",
    "BOT_DELEGATED_PERMISSIONS",
    "EmulatorCloud",
    "EmulatorConfig",
]

log = logging.getLogger(__name__)

#: Graph application permissions the product needs (granted to the bot app at start).
BOT_APPLICATION_PERMISSIONS = frozenset(
    {
        "AccessReview.Read.All",
        "User.Read.All",
        "GroupMember.Read.All",
        "Application.Read.All",
        "TeamsAppInstallation.ReadWriteSelfForUser.All",
        "MailboxSettings.Read",
        "AppCatalog.Read.All",
    }
)
#: Admin-consented delegated Graph permissions (for OBO writes as the reviewer).
BOT_DELEGATED_PERMISSIONS = frozenset({"AccessReview.ReadWrite.All"})


@dataclass
class EmulatorConfig:
    """Everything needed to start an :class:`EmulatorCloud`."""

    seed: str = "demo"
    seed_params: dict[str, Any] = field(default_factory=dict)
    tenant_id: str | None = None  # None → the seed's own tenant id
    clock: Clock | None = None  # None → the system clock
    bot_app_id: str = DEFAULT_BOT_APP_ID
    bot_app_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    # Certificates (PEM) registered on the bot app for private_key_jwt; with an empty
    # bot_app_secret the app has no secret at all.
    bot_app_certificates: list[bytes] = field(default_factory=list)
    bot_endpoint: str | None = None  # the bot's /api/messages, for installationUpdate delivery
    anonymous_connector: bool = False  # accept unauthenticated connector calls (demo mode)
    teams_limits: TeamsLimits | None = None
    graph_latency_s: float = 0.0  # added to every Graph HTTP request (benchmarks use 0.05)
    #: "deterministic" (no random faults) or "realistic" (occasional transient Graph 503/504
    #: and connector 412/502/504): see :mod:`emulator.profiles`.
    profile: str = "deterministic"
    profile_seed: int = 19
    #: Graph throttles by the documented identity and access limits. Turn it off only in a test
    #: that must count exact calls, and say why there.
    graph_throttling: bool = True
    #: "small" | "medium" | "large" for the Graph limits; None: from the tenant's user count.
    graph_tenant_size: str | None = None
    #: Seeds the choice of which Graph 429s leave ``Retry-After`` out.
    graph_throttle_seed: int = 19
    #: Bot Connector 429s carry ``Retry-After`` (Teams documents none; for tests that need it).
    connector_retry_after: bool = False
    #: The largest ``$top`` for access review decisions (Graph's page size, 100). A test may
    #: raise it only while waiting for a client to stop asking for more, saying so.
    graph_decisions_max_top: int = DECISIONS_MAX_TOP
    host: str = "127.0.0.1"
    graph_port: int = 0
    login_port: int = 0
    connector_port: int = 0


def _bind(host: str, port: int) -> socket.socket:
    # Binding ourselves (rather than letting aiohttp do it) gives us the real port of port 0.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.setblocking(False)
    return sock


class EmulatorCloud:
    """Graph + Entra ID + Bot Connector for one seeded tenant (an async context manager)."""

    tenant: Tenant
    identity: Identity
    connector: Connector
    graph: GraphApi
    faults: Faults
    clock: Clock
    graph_url: str
    login_url: str
    connector_url: str
    #: The emulated host's managed identity endpoint (IMDS and App Service shapes), plain http.
    managed_identity_url: str
    channel_openid_metadata_url: str
    ca_pem_path: str

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self._runners: list[web.AppRunner] = []
        self._sockets: list[socket.socket] = []
        self._started = False

    async def __aenter__(self) -> EmulatorCloud:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def tenant_id(self) -> str:
        """The seeded tenant's id."""
        return self.tenant.tenant_id

    @property
    def bot_app_id(self) -> str:
        """The bot's Entra app id (registered in Identity, in the Teams catalog)."""
        return self.config.bot_app_id

    @property
    def bot_app_secret(self) -> str:
        """The bot app's client secret."""
        return self.config.bot_app_secret

    async def start(self) -> None:
        """Seed the tenant, build the services and start the three sites."""
        if self._started:
            raise RuntimeError("EmulatorCloud already started")
        self._started = True
        config = self.config
        self.clock = config.clock or SystemClock()
        self.faults = Faults(clock=self.clock)
        for rule in profile_fault_rules(config.profile, seed=config.profile_seed):
            self.faults.add(rule)
        params = dict(config.seed_params)
        if config.tenant_id is not None:
            params["tenant_id"] = config.tenant_id
        self.tenant = build_seed(
            config.seed, self.clock, bot_app_id=config.bot_app_id, params=params
        )
        self.identity = Identity(
            clock=self.clock, tenant_id=self.tenant.tenant_id, user_lookup=self.tenant.user_summary
        )
        self.ca_pem_path = self.identity.ca_pem_path
        self.identity.register_app(
            AppRegistration(
                client_id=config.bot_app_id,
                display_name="Access Review Bot",
                secret=config.bot_app_secret or None,
                certificates=list(config.bot_app_certificates),
                application_permissions=set(BOT_APPLICATION_PERMISSIONS),
                delegated_permissions=set(BOT_DELEGATED_PERMISSIONS),
                identifier_uri=f"api://botid-{config.bot_app_id}",
            )
        )
        self.connector = Connector(
            clock=self.clock,
            identity=self.identity,
            tenant_id=self.tenant.tenant_id,
            bot_app_id=config.bot_app_id,
            limits=config.teams_limits,
            anonymous=config.anonymous_connector,
            retry_after_header=config.connector_retry_after,
        )
        self.connector.bot_endpoint = config.bot_endpoint
        connector = self.connector
        identity = self.identity

        def validate(raw: str) -> AccessToken:
            return identity.validate_access_token(raw, audience=identity.graph_audience)

        def on_bot_installed(user_oid: str, user_name: str, installation_id: str) -> None:
            connector.note_app_installed(
                user_oid=user_oid, user_name=user_name, installation_id=installation_id
            )

        tenant = self.tenant
        throttle = GraphThrottle(
            tenant_id=tenant.tenant_id,
            user_count=lambda: len(tenant.users),
            settings=ThrottleSettings(
                enabled=config.graph_throttling,
                tenant_size=config.graph_tenant_size,
                seed=config.graph_throttle_seed,
            ),
        )
        self.graph = GraphApi(
            tenant=self.tenant,
            throttle=throttle,
            decisions_max_top=config.graph_decisions_max_top,
            validate_token=validate,
            faults=self.faults,
            latency_s=config.graph_latency_s,
            bot_app_id=config.bot_app_id,
            on_bot_installed=on_bot_installed,
            chat_id_for=connector.chat_id_for,
            app_registrations=self.identity,
        )
        tls = self.identity.server_ssl_context()
        try:
            graph_port = await self._serve(self.graph.make_app(), config.graph_port, tls)
            login_port = await self._serve(
                self.identity.make_app(self.faults), config.login_port, tls
            )
            connector_app = self.connector.make_app(self.faults)
            # The channel's OpenID metadata and keys are also served here, over plain http.
            # botbuilder fetches them with `requests`, which trusts only REQUESTS_CA_BUNDLE when
            # that is set (as on CI); the real ones sit on a public-CA host. Serving them beside
            # the connector keeps the bot's token checks real without trusting our CA globally.
            connector_app.router.add_get(
                "/v1/.well-known/openidconfiguration", self.identity._channel_metadata
            )
            connector_app.router.add_get("/v1/.well-known/keys", self.identity._channel_keys)
            connector_port = await self._serve(connector_app, config.connector_port, None)
            mi_port = await self._serve(
                self.identity.make_managed_identity_app(self.faults), 0, None
            )
        except BaseException:
            await self.close()
            raise
        host = config.host
        self.graph_url = f"https://{host}:{graph_port}"
        self.login_url = f"https://{host}:{login_port}"
        # Issuer of managed identity tokens and base of the external issuers' URLs.
        self.identity.login_origin = self.login_url
        self.managed_identity_url = f"http://{host}:{mi_port}"
        self.connector_url = f"http://{host}:{connector_port}/"
        # The serviceUrl the connector puts into activities it delivers to the bot.
        self.connector.service_url = self.connector_url
        self.channel_openid_metadata_url = (
            f"{self.connector_url.rstrip('/')}{self.identity.channel_openid_metadata_path}"
        )
        log.info(
            "emulator started: graph %s, login %s, connector %s, tenant %s",
            self.graph_url,
            self.login_url,
            self.connector_url,
            self.tenant.tenant_id,
        )

    async def _serve(self, app: web.Application, port: int, tls: ssl.SSLContext | None) -> int:
        # No access log: benchmarks push many thousands of requests through here.
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        self._runners.append(runner)
        sock = _bind(self.config.host, port)
        self._sockets.append(sock)
        site = web.SockSite(runner, sock, ssl_context=tls)
        await site.start()
        bound_port: int = sock.getsockname()[1]
        return bound_port

    async def close(self) -> None:
        """Stop the sites (idempotent) and remove the CA file."""
        runners, self._runners = self._runners, []
        for runner in reversed(runners):
            await runner.cleanup()
        sockets, self._sockets = self._sockets, []
        for sock in sockets:
            sock.close()  # SockSite does not own the sockets we bound
        identity = getattr(self, "identity", None)
        if identity is not None:
            identity.close()

    def describe(self) -> dict[str, Any]:
        """The JSON line ``python -m emulator`` prints: URLs, ids, secret and CA path."""
        return {
            "graph_url": self.graph_url,
            "login_url": self.login_url,
            "authority": f"{self.login_url}/{self.tenant_id}",
            "connector_url": self.connector_url,
            "managed_identity_url": self.managed_identity_url,
            "channel_openid_metadata_url": self.channel_openid_metadata_url,
            "tenant_id": self.tenant_id,
            "bot_app_id": self.bot_app_id,
            "bot_app_secret": self.bot_app_secret,
            "ca_pem_path": self.ca_pem_path,
            "seed": self.config.seed,
            "profile": self.config.profile,
        }
