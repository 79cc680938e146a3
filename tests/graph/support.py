"""Helpers shared by the Graph client tests (constants, the emulated login, the wired stack)."""

from __future__ import annotations

import collections
import ssl
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.fernet import Fernet
from prometheus_client import CollectorRegistry

from bot.graph import AppTokenProvider, GraphClient, GraphSettings, OboTokenProvider, RetryPolicy
from emulator.clock import ManualClock
from emulator.faults import Faults
from emulator.identity import Identity

TENANT_ID = "5b0f1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d"
BOT_ID = "6c1d2e3f-4a5b-4c6d-9e7f-8a9b0c1d2e3f"
BOT_SECRET = "graph-client-test-secret"
USER_IDS = [str(uuid.UUID(int=(0x1000 << 64) + n, version=4)) for n in range(1, 241)]
USERS = {
    oid: {"id": oid, "userPrincipalName": f"user{n}@contoso.test", "displayName": f"User {n}"}
    for n, oid in enumerate(USER_IDS, start=1)
}


def lookup(key: str) -> Mapping[str, Any] | None:
    if key in USERS:
        return USERS[key]
    for user in USERS.values():
        if user["userPrincipalName"] == key:
            return user
    return None


CACHE_KEY = Fernet.generate_key().decode()


@dataclass
class Login:
    """The emulated Entra ID token service, with a server-side count of token grants."""

    identity: Identity
    clock: ManualClock
    faults: Faults
    url: str
    grants: collections.Counter[str] = field(default_factory=collections.Counter)
    cert_key_pem: str = ""
    cert_thumbprint: str = ""

    def settings(self, **overrides: Any) -> GraphSettings:
        values: dict[str, Any] = {
            "tenant_id": TENANT_ID,
            "client_id": BOT_ID,
            "client_secret": BOT_SECRET,
            "authority_host": self.url,
            "ca_bundle_path": self.identity.ca_pem_path,
            "token_cache_keys": (CACHE_KEY,),
        }
        values.update(overrides)
        return GraphSettings(**values)

    def sso(self, user_oid: str, **kwargs: Any) -> str:
        return self.identity.issue_sso_token(user_oid=user_oid, app_id=BOT_ID, **kwargs)


@dataclass
class GraphStack:
    """The bot's Graph side wired to an EmulatorCloud, as app.py would wire it."""

    cloud: Any
    settings: GraphSettings
    http: Any
    app_tokens: Any
    obo: Any
    graph: Any
    registry: Any

    def as_user(self, user_oid: str) -> Any:
        """A GraphClient acting as the user (Teams SSO token → OBO)."""
        sso = self.cloud.identity.issue_sso_token(user_oid=user_oid, app_id=self.cloud.bot_app_id)
        return self.graph.with_tokens(self.obo.for_user(user_oid=user_oid, sso_token=sso))


@asynccontextmanager
async def graph_stack(
    cloud: Any,
    store: Any,
    *,
    retry: RetryPolicy | None = None,
    transport: Callable[[ssl.SSLContext], httpx.AsyncBaseTransport] | None = None,
) -> AsyncIterator[GraphStack]:
    """The bot's Graph side wired to an EmulatorCloud (app-only + OBO providers, one pool)."""
    settings = GraphSettings(
        tenant_id=cloud.tenant_id,
        client_id=cloud.bot_app_id,
        client_secret=cloud.bot_app_secret,
        graph_base_url=cloud.graph_url,
        authority_host=cloud.login_url,
        ca_bundle_path=cloud.ca_pem_path,
        token_cache_keys=(CACHE_KEY,),
    )
    verify = ssl.create_default_context(cafile=cloud.ca_pem_path)
    http = httpx.AsyncClient(
        verify=verify,
        transport=transport(verify) if transport else None,
        limits=httpx.Limits(max_connections=20),
    )
    registry = CollectorRegistry()
    app_tokens = AppTokenProvider(settings, store=store)
    obo = OboTokenProvider(settings, store=store)
    graph = GraphClient(
        http,
        tokens=app_tokens,
        base_url=settings.graph_base_url,
        retry=retry or RetryPolicy(max_attempts=6, deadline_s=60, backoff_base_s=0.1),
        registry=registry,
    )
    try:
        yield GraphStack(cloud, settings, http, app_tokens, obo, graph, registry)
    finally:
        await http.aclose()
        await app_tokens.close()
        await obo.close()
