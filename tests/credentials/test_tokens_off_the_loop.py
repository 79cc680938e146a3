"""A slow token service never stalls the bot: tokens are fetched in threads, never on the loop.

botbuilder asks for its Bot Connector token synchronously, from the event loop, when a turn
replies. If that call reached the token endpoint (or, for a managed identity, IMDS), a slow
answer would stop every other request of the process for as long. Here the emulator holds the
token request (a latency fault) while a chat message waits for its reply; ``/healthz`` must be
answered meanwhile — before the held request is answered — and the reply still arrives.

The token botbuilder reads is renewed in a thread ahead of its expiry (and retried when the token
service fails, the old token serving meanwhile); threads asking the managed identity endpoint at
the same moment share one request, with no lock held across it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.graph.credentials import ManagedIdentityCredential
from bot.teams.credentials import MsalCredentialsFactory
from bot.web.keys import MICROSOFT
from emulator.faults import FaultRule
from emulator.seeds import demo_id
from emulator.server import EmulatorCloud, EmulatorConfig
from tests.bot_harness import BotOnEmulator
from tests.credentials.support import (
    MANAGED_IDENTITY_CLIENT_ID,
    credential_bot,
    no_secret_config,
    set_imds_environment,
)
from tests.credentials.test_end_to_end import _trust_the_managed_identity

JOHANNA = demo_id("user", "johanna")
# Long against what /healthz takes (milliseconds), so the order below cannot be a coincidence.
HELD_S = 4.0


async def _healthz_while_the_token_request_is_held(
    harness: BotOnEmulator, *, path_regex: str, answered: Callable[[], int]
) -> None:
    # Johanna's chat with the bot exists (the app was installed for her), and the bot has asked
    # for no token yet: the reply's connector token is the first, and the held request is it.
    connector = harness.cloud.connector
    endpoint, connector.bot_endpoint = connector.bot_endpoint, None  # no install activities
    connector.note_app_installed(user_oid=JOHANNA, user_name="Johanna", installation_id="i-1")
    connector.bot_endpoint = endpoint
    rule = harness.cloud.faults.add(
        FaultRule(kind="latency", service="login", path_regex=path_regex, latency_s=HELD_S)
    )
    before = answered()
    replies = len(harness.cloud.connector.messages_to(JOHANNA))
    # A chat message: its reply goes through botbuilder, which needs the Bot Connector token.
    message = asyncio.create_task(harness.teams.message(JOHANNA, "help"))
    await harness.eventually(
        lambda: harness.cloud.faults.fired(rule) >= 1, what="the held token request"
    )
    health = await harness.client.get("/healthz")
    assert health.status == 200
    # Answered while the token request was still held: the loop was not waiting for it.
    assert answered() == before, "the loop waited for the token service"
    response = await message
    assert response.status in (200, 201)
    await harness.eventually(
        lambda: len(harness.cloud.connector.messages_to(JOHANNA)) > replies,
        timeout_s=30,
        what="the help reply",
    )
    assert answered() > before


async def test_a_slow_token_endpoint_does_not_stall_other_requests(tmp_path: Path) -> None:
    async with credential_bot(tmp_path, config=EmulatorConfig()) as bot:
        counts = bot.cloud.identity.client_auth.counts
        await _healthz_while_the_token_request_is_held(
            bot, path_regex=r"/oauth2/v2\.0/token$", answered=lambda: sum(counts.values())
        )


async def test_a_slow_managed_identity_endpoint_does_not_stall_other_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def prepare(cloud: EmulatorCloud) -> dict[str, Any]:
        await _trust_the_managed_identity(cloud)
        set_imds_environment(monkeypatch, cloud)
        return {"app_password": "", "managed_identity_client_id": MANAGED_IDENTITY_CLIENT_ID}

    async with credential_bot(tmp_path, config=no_secret_config(), prepare=prepare) as bot:
        imds = bot.cloud.identity.managed_identity_endpoint
        # Nothing asked the identity's token yet: the reply's connector token needs it from IMDS
        # (the request that is held).
        assert imds.requests == []
        await _healthz_while_the_token_request_is_held(
            bot,
            path_regex=r"^/metadata/identity/oauth2/token$",
            answered=lambda: len(imds.requests),
        )


async def test_the_connector_token_is_renewed_ahead_of_expiry_and_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with credential_bot(tmp_path, config=EmulatorConfig()) as bot:
        counts = bot.cloud.identity.client_auth.counts
        wall = [time.time()]
        factory = MsalCredentialsFactory(
            app_id=bot.settings.app_id,
            credential=bot.app[MICROSOFT].credential,
            authority=f"{bot.settings.authority_host}/{bot.settings.app_tenant_id}",
            ca_bundle=bot.settings.ca_bundle,
            now=lambda: wall[0],
        )
        stop = asyncio.Event()
        refresher = asyncio.create_task(factory.run_refresher(stop))
        try:
            credentials = await factory.create_credentials(
                bot.settings.app_id, "https://api.botframework.com", "", True
            )
            first = credentials.get_access_token()  # on the loop: the token fetched meanwhile
            assert sum(counts.values()) == 1
            lifetime_s = credentials.remaining_s()
            # Five minutes before it ends, with the token service failing (once: msal itself
            # holds back a retry of a 5xx for its Retry-After, 0 here).
            rule = bot.cloud.faults.add(
                FaultRule(
                    kind="status",
                    service="login",
                    path_regex=r"/oauth2/v2\.0/token$",
                    status=503,
                    retry_after_s=(0.0, 0.0),
                    remaining=1,
                )
            )
            wall[0] += lifetime_s - 300
            factory.wake()
            await bot.eventually(
                lambda: bot.cloud.faults.fired(rule) >= 1, what="a renewal that fails"
            )
            # The old token still serves meanwhile, from the loop, without a request.
            assert credentials.get_access_token() == first
            await bot.eventually(
                lambda: credentials.remaining_s() > lifetime_s - 60,
                timeout_s=30,
                what="the renewal, retried",
            )
            renewed = credentials.get_access_token()
            assert renewed != first and sum(counts.values()) == 2
            assert "Bot Connector token renewal failed" in caplog.text
        finally:
            stop.set()
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
            factory.close()


async def test_threads_asking_the_managed_identity_at_once_share_one_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def prepare(cloud: EmulatorCloud) -> dict[str, Any]:
        await _trust_the_managed_identity(cloud)
        set_imds_environment(monkeypatch, cloud)
        return {"app_password": "", "managed_identity_client_id": MANAGED_IDENTITY_CLIENT_ID}

    async with credential_bot(tmp_path, config=no_secret_config(), prepare=prepare) as bot:
        imds = bot.cloud.identity.managed_identity_endpoint
        rule = bot.cloud.faults.add(
            FaultRule(
                kind="latency",
                service="login",
                path_regex=r"^/metadata/identity/oauth2/token$",
                latency_s=1.0,
            )
        )
        identity = ManagedIdentityCredential(MANAGED_IDENTITY_CLIENT_ID)
        try:
            tokens = await asyncio.gather(*(asyncio.to_thread(identity.token) for _ in range(4)))
        finally:
            identity.close()
        assert bot.cloud.faults.fired(rule) == 1 and len(imds.requests) == 1
        assert len(set(tokens)) == 1 and identity.tokens_fetched == 1
