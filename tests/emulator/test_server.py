"""EmulatorCloud composition over loopback, and ``python -m emulator`` as a process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import sys
from datetime import UTC, datetime

import httpx
import pytest

from emulator.clock import ManualClock
from emulator.seeds import DEMO_TENANT_ID, demo_id
from emulator.server import BOT_APPLICATION_PERMISSIONS, EmulatorCloud, EmulatorConfig

START = datetime(2026, 11, 29, 13, 0, tzinfo=UTC)


@pytest.fixture
async def cloud():
    config = EmulatorConfig(seed="demo", clock=ManualClock(START), bot_app_secret="test-secret")
    async with EmulatorCloud(config) as started:
        yield started


async def _app_token(client: httpx.AsyncClient, cloud: EmulatorCloud) -> str:
    response = await client.post(
        f"{cloud.login_url}/{cloud.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": cloud.bot_app_id,
            "client_secret": "test-secret",
            "scope": "https://graph.microsoft.com/.default",
        },
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def test_cloud_serves_graph_with_tokens_from_its_login(cloud: EmulatorCloud) -> None:
    assert cloud.tenant_id == DEMO_TENANT_ID
    assert cloud.graph_url.startswith("https://127.0.0.1:")
    assert cloud.login_url.startswith("https://127.0.0.1:")
    assert cloud.connector_url.startswith("http://127.0.0.1:") and cloud.connector_url[-1] == "/"
    verify = ssl.create_default_context(cafile=cloud.ca_pem_path)
    async with httpx.AsyncClient(verify=verify, timeout=10.0) as client:
        token = await _app_token(client, cloud)
        response = await client.get(
            f"{cloud.graph_url}/v1.0/identityGovernance/accessReviews/definitions",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200
        assert len(response.json()["value"]) == 9
        catalog = await client.get(
            f"{cloud.graph_url}/v1.0/appCatalogs/teamsApps",
            params={"$filter": f"externalId eq '{cloud.bot_app_id}'"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert len(catalog.json()["value"]) == 1
        metadata = await client.get(cloud.channel_openid_metadata_url)
        assert metadata.status_code == 200
    assert cloud.identity.app(cloud.bot_app_id).application_permissions == set(
        BOT_APPLICATION_PERMISSIONS
    )
    assert cloud.identity.app(cloud.bot_app_id).identifier_uri == f"api://botid-{cloud.bot_app_id}"


async def test_install_through_graph_reaches_the_connector(cloud: EmulatorCloud) -> None:
    user = demo_id("user", "adele")
    bot_teams_app = demo_id("teamsapp", "access-review-bot")
    assert not cloud.connector.is_installed(user)
    verify = ssl.create_default_context(cafile=cloud.ca_pem_path)
    async with httpx.AsyncClient(verify=verify, timeout=10.0) as client:
        token = await _app_token(client, cloud)
        headers = {"Authorization": f"Bearer {token}"}
        response = await client.post(
            f"{cloud.graph_url}/v1.0/users/{user}/teamwork/installedApps",
            headers=headers,
            json={
                "teamsApp@odata.bind": "https://graph.microsoft.com/v1.0/appCatalogs/"
                f"teamsApps/{bot_teams_app}"
            },
        )
        assert response.status_code == 201
        assert cloud.connector.is_installed(user)
        listed = await client.get(
            f"{cloud.graph_url}/v1.0/users/{user}/teamwork/installedApps",
            headers=headers,
            params={"$filter": f"teamsApp/id eq '{bot_teams_app}'"},
        )
        [installation] = listed.json()["value"]
        chat = await client.get(
            f"{cloud.graph_url}/v1.0/users/{user}/teamwork/installedApps/{installation['id']}/chat",
            headers=headers,
        )
        assert chat.json()["id"] == cloud.connector.chat_id_for(user)


async def test_faults_switch_over_http_on_every_service(cloud: EmulatorCloud) -> None:
    verify = ssl.create_default_context(cafile=cloud.ca_pem_path)
    async with httpx.AsyncClient(verify=verify, timeout=10.0) as client:
        token = await _app_token(client, cloud)
        added = await client.post(
            f"{cloud.graph_url}/_emulator/faults",
            json={"kind": "status", "status": 429, "service": "graph", "retry_after_s": [5, 5]},
        )
        assert added.status_code == 201
        throttled = await client.get(
            f"{cloud.graph_url}/v1.0/users/{demo_id('user', 'lee')}",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "5"
        # The login service is untouched by a graph-only rule; the rules are shared.
        await _app_token(client, cloud)
        assert (await client.delete(f"{cloud.login_url}/_emulator/faults")).status_code == 204
        ok = await client.get(
            f"{cloud.graph_url}/v1.0/users/{demo_id('user', 'lee')}",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert ok.status_code == 200


async def test_graph_latency_applies_per_request() -> None:
    config = EmulatorConfig(
        seed="generated",
        clock=ManualClock(START),
        seed_params={"decisions": 20, "reviewers": 3, "instances": 2},
        graph_latency_s=0.05,
        bot_app_secret="test-secret",
    )
    async with EmulatorCloud(config) as cloud:
        verify = ssl.create_default_context(cafile=cloud.ca_pem_path)
        async with httpx.AsyncClient(verify=verify, timeout=10.0) as client:
            token = await _app_token(client, cloud)
            loop = asyncio.get_running_loop()
            started = loop.time()
            response = await client.get(
                f"{cloud.graph_url}/v1.0/identityGovernance/accessReviews/definitions",
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 200
            assert loop.time() - started >= 0.05


async def test_python_dash_m_emulator_prints_json_and_stops_on_sigterm() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "emulator",
        "--seed",
        "demo",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
        info = json.loads(line)
        assert info["tenant_id"] == DEMO_TENANT_ID
        assert info["profile"] == "realistic"  # python -m emulator meets clients as real ones
        assert {
            "graph_url",
            "login_url",
            "connector_url",
            "bot_app_id",
            "bot_app_secret",
            "ca_pem_path",
            "channel_openid_metadata_url",
        } <= set(info)
        verify = ssl.create_default_context(cafile=info["ca_pem_path"])
        async with httpx.AsyncClient(verify=verify, timeout=10.0) as client:
            response = await client.get(f"{info['graph_url']}/v1.0/me")
            assert response.status_code == 401  # served, and tokens are required
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
