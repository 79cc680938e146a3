"""The bot wired to the emulated Microsoft cloud: shared by end-to-end suites.

``BotOnEmulator`` starts an ``EmulatorCloud`` (Graph, Entra ID, Bot Connector on loopback, port 0)
and the real app (``create_app``) configured for it exactly as an operator would configure it for
Microsoft: app id, secret, tenant, Graph and authority URLs, the CA bundle, channel metadata.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
from aiohttp.test_utils import TestClient, TestServer

from app import create_app
from bot.clock import Clock
from bot.settings import Settings
from emulator.server import EmulatorCloud, EmulatorConfig
from emulator.teams_client import TeamsClient
from emulator.threaded import EmulatorThread


@dataclass
class BotOnEmulator:
    cloud: EmulatorCloud
    emulator: EmulatorThread
    settings: Settings
    client: TestClient
    teams: TeamsClient

    @property
    def app(self) -> Any:
        return self.client.app

    def teams_for(self, endpoint: str) -> TeamsClient:
        """A Teams client talking to another bot endpoint (a restarted process)."""
        return TeamsClient(
            self.cloud.identity,
            self.cloud.connector_url,
            endpoint,
            self.cloud.bot_app_id,
            self.cloud.tenant_id,
            self.teams.http,
            conversation_id_for=self.cloud.connector.conversation_id_for,
            client_languages=self.cloud.connector.client_languages,
        )

    async def eventually(
        self, predicate: Callable[[], bool], *, timeout_s: float = 10.0, what: str = "condition"
    ) -> None:
        """Wait until ``predicate()`` holds (the emulator runs on another thread), or fail."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
            await asyncio.sleep(0.01)  # re-check; the condition changes on the emulator's thread


def bot_settings(cloud: EmulatorCloud, data_dir: Path, **overrides: Any) -> Settings:
    settings = Settings(
        app_id=cloud.bot_app_id,
        app_password=cloud.bot_app_secret,
        app_type="SingleTenant",
        app_tenant_id=cloud.tenant_id,
        graph_base_url=cloud.graph_url,
        authority_host=cloud.login_url,
        ca_bundle=cloud.ca_pem_path,
        channel_openid_metadata_url=cloud.channel_openid_metadata_url,
        token_cache_key=base64.urlsafe_b64encode(os.urandom(32)).decode(),
        database_url=f"sqlite:///{data_dir / 'bot.db'}",
        teams_service_url=cloud.connector_url,
        port=0,
    )
    return replace(settings, **overrides)


def settings_environment(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of an ``app.py`` subprocess configured like ``settings``.

    Nothing of the caller's own bot configuration leaks in: every variable the settings read is
    dropped from the inherited environment first.
    """
    from bot.settings import documented_variables

    env = {k: v for k, v in os.environ.items() if k not in documented_variables()}
    env.update(
        {
            "MicrosoftAppId": settings.app_id,
            "MicrosoftAppPassword": settings.app_password,
            "MicrosoftAppType": settings.app_type,
            "MicrosoftAppTenantId": settings.app_tenant_id,
            "GRAPH_BASE_URL": settings.graph_base_url,
            "AUTHORITY_HOST": settings.authority_host,
            "CA_BUNDLE": settings.ca_bundle,
            "CHANNEL_OPENID_METADATA_URL": settings.channel_openid_metadata_url,
            "TOKEN_CACHE_KEY": settings.token_cache_key,
            "DATABASE_URL": settings.database_url,
            "TEAMS_SERVICE_URL": settings.teams_service_url,
            "HOST": "127.0.0.1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


@asynccontextmanager
async def bot_on_emulator(
    data_dir: Path,
    *,
    config: EmulatorConfig | None = None,
    workers: bool = False,
    clock: Clock | None = None,
    **overrides: Any,
) -> AsyncIterator[BotOnEmulator]:
    emulator = EmulatorThread(config)
    async with emulator as cloud:
        settings = bot_settings(cloud, data_dir, **overrides)
        server = TestServer(
            create_app(settings, workers=workers, clock=clock), host="127.0.0.1", port=0
        )
        async with TestClient(server) as client, httpx.AsyncClient() as http:
            endpoint = str(client.make_url("/api/messages"))
            cloud.connector.bot_endpoint = endpoint
            teams = TeamsClient(
                cloud.identity,
                cloud.connector_url,
                endpoint,
                cloud.bot_app_id,
                cloud.tenant_id,
                http,
                conversation_id_for=cloud.connector.conversation_id_for,
                client_languages=cloud.connector.client_languages,
            )
            yield BotOnEmulator(
                cloud=cloud, emulator=emulator, settings=settings, client=client, teams=teams
            )
