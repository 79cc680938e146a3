"""Fixtures for the Graph emulator tests: a real GraphApi over https on 127.0.0.1 port 0,
tokens minted by the real Identity, and a manual clock."""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiohttp import web

from emulator.clock import ManualClock
from emulator.faults import Faults
from emulator.graph import GraphApi, GraphThrottle
from emulator.identity import AppRegistration, Identity
from emulator.seeds import (
    DEFAULT_BOT_APP_ID,
    demo,
    demo_decision_id,
    demo_id,
    demo_instance_id,
)
from emulator.tenant import Tenant

START = datetime(2026, 11, 29, 13, 0, tzinfo=UTC)
BOT_ROLES = frozenset(
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
AR = "/v1.0/identityGovernance/accessReviews"


@dataclass
class GraphHarness:
    """A served GraphApi plus helpers to mint tokens and call it."""

    clock: ManualClock
    tenant: Tenant
    identity: Identity
    graph: GraphApi
    faults: Faults
    base_url: str
    client: httpx.AsyncClient
    installs: list[tuple[str, str, str]] = field(default_factory=list)
    ar: str = AR

    # ---- demo ids
    @staticmethod
    def uid(name: str) -> str:
        """Demo user id by key (e.g. "patti")."""
        return demo_id("user", name)

    @staticmethod
    def rid(name: str) -> str:
        """Demo review (definition) id by key."""
        return demo_id("review", name)

    @staticmethod
    def iid(name: str) -> str:
        """The demo review's current instance id (= the definition id for a one-time review)."""
        return demo_instance_id(name)

    @staticmethod
    def did(review: str, principal: str) -> str:
        """Demo decision id (in the review's current instance) by review and principal key."""
        return demo_decision_id(review, principal)

    def instance_url(self, review: str, version: str = "v1.0") -> str:
        return (
            f"/{version}/identityGovernance/accessReviews/definitions/{self.rid(review)}"
            f"/instances/{self.iid(review)}"
        )

    def decisions_url(self, review: str, version: str = "v1.0") -> str:
        return self.instance_url(review, version) + "/decisions"

    def app_token(self, roles: Iterable[str] | None = None) -> str:
        return self.identity.issue_app_token(
            client_id=DEFAULT_BOT_APP_ID, roles=BOT_ROLES if roles is None else roles
        )

    def user_token(self, user: str, scopes: Iterable[str] = ("AccessReview.ReadWrite.All",)) -> str:
        return self.identity.issue_user_token(
            user_oid=self.uid(user), client_id=DEFAULT_BOT_APP_ID, scopes=scopes
        )

    async def call(
        self,
        method: str,
        path: str,
        token: str | None,
        *,
        json: Any = None,
        params: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        headers = {**(headers or {}), **({"Authorization": f"Bearer {token}"} if token else {})}
        return await self.client.request(
            method, self.base_url + path, headers=headers, json=json, params=params
        )

    async def get_all(self, path: str, token: str, params: Any = None) -> list[dict[str, Any]]:
        """Follow @odata.nextLink to the end; returns every item."""
        items: list[dict[str, Any]] = []
        response = await self.call("GET", path, token, params=params)
        while True:
            assert response.status_code == 200, response.text
            body = response.json()
            items.extend(body["value"])
            next_link = body.get("@odata.nextLink")
            if not next_link:
                return items
            assert next_link.startswith(self.base_url + "/"), next_link  # absolute
            response = await self.client.get(
                next_link, headers={"Authorization": f"Bearer {token}"}
            )


def _bind() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


async def serve_graph(
    tenant: Tenant,
    clock: ManualClock,
    *,
    latency_s: float = 0.0,
    throttle: GraphThrottle | None = None,
) -> AsyncIterator[GraphHarness]:
    identity = Identity(clock=clock, tenant_id=tenant.tenant_id, user_lookup=tenant.user_summary)
    identity.register_app(
        AppRegistration(
            client_id=DEFAULT_BOT_APP_ID,
            display_name="Access Review Bot",
            secret="s3cret-for-tests",
            application_permissions=set(BOT_ROLES),
            delegated_permissions={"AccessReview.ReadWrite.All"},
            identifier_uri=f"api://botid-{DEFAULT_BOT_APP_ID}",
        )
    )
    faults = Faults(clock=clock)
    installs: list[tuple[str, str, str]] = []
    graph = GraphApi(
        tenant=tenant,
        validate_token=lambda raw: identity.validate_access_token(
            raw, audience=identity.graph_audience
        ),
        faults=faults,
        latency_s=latency_s,
        bot_app_id=DEFAULT_BOT_APP_ID,
        on_bot_installed=lambda oid, name, iid: installs.append((oid, name, iid)),
        chat_id_for=lambda oid: (
            f"a:chat-with-{oid}" if any(i[0] == oid for i in installs) else None
        ),
        throttle=throttle,
    )
    runner = web.AppRunner(graph.make_app(), access_log=None)
    await runner.setup()
    sock = _bind()
    site = web.SockSite(runner, sock, ssl_context=identity.server_ssl_context())
    await site.start()
    port = sock.getsockname()[1]
    verify = ssl.create_default_context(cafile=identity.ca_pem_path)
    try:
        async with httpx.AsyncClient(verify=verify, timeout=30.0) as client:
            yield GraphHarness(
                clock=clock,
                tenant=tenant,
                identity=identity,
                graph=graph,
                faults=faults,
                base_url=f"https://127.0.0.1:{port}",
                client=client,
                installs=installs,
            )
    finally:
        await runner.cleanup()
        sock.close()  # the server does not own a socket passed in to SockSite
        identity.close()


@pytest.fixture
def emu_clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def demo_graph(emu_clock: ManualClock) -> AsyncIterator[GraphHarness]:
    async for harness in serve_graph(demo(emu_clock), emu_clock):
        yield harness


@pytest.fixture
async def graph_server() -> AsyncIterator[Any]:
    """Factory: ``harness = await graph_server(tenant, clock)`` serves any tenant (closed at the
    end of the test)."""
    generators: list[AsyncIterator[GraphHarness]] = []

    async def start(
        tenant: Tenant, clock: ManualClock, *, throttle: GraphThrottle | None = None
    ) -> GraphHarness:
        generator = serve_graph(tenant, clock, throttle=throttle)
        generators.append(generator)
        return await generator.__anext__()

    yield start
    for generator in generators:
        await generator.aclose()
