"""Profiles: ``deterministic`` (tests) adds no random failure; ``realistic`` (``python -m
emulator``, the demo, the benchmarks) adds seeded transient Graph 503/504 and Bot Connector
412/502/504 (the statuses the Teams rate-limit page lists as retryable), on top of the
deterministic behaviours every profile has."""

from __future__ import annotations

import ssl
from collections import Counter
from datetime import UTC, datetime

import httpx
import pytest

from emulator.__main__ import parse_args
from emulator.clock import ManualClock
from emulator.connector import TeamsLimits
from emulator.profiles import PROFILES, profile_fault_rules
from emulator.seeds import demo_id
from emulator.server import EmulatorCloud, EmulatorConfig

START = datetime(2026, 11, 29, 13, 0, tzinfo=UTC)


def test_defaults_are_the_harder_services_without_random_faults() -> None:
    config = EmulatorConfig()
    assert config.profile == "deterministic"
    assert config.graph_throttling is True
    assert config.connector_retry_after is False
    assert profile_fault_rules("deterministic", seed=1) == []
    assert set(PROFILES) == {"deterministic", "realistic"}
    with pytest.raises(ValueError):
        profile_fault_rules("chaos", seed=1)
    # python -m emulator defaults to the realistic profile; the flag chooses.
    assert parse_args([]).profile == "realistic"
    assert parse_args(["--profile", "deterministic"]).profile == "deterministic"
    with pytest.raises(SystemExit):
        parse_args(["--profile", "chaos"])


def test_realistic_rules_are_small_seeded_and_retryable() -> None:
    rules = profile_fault_rules("realistic", seed=5)
    by_service = Counter((r.service, r.status) for r in rules)
    assert by_service == Counter(
        {
            ("graph", 503): 1,
            ("graph", 504): 1,
            ("connector", 412): 1,
            ("connector", 502): 1,
            ("connector", 504): 1,
        }
    )
    assert all(0 < r.probability <= 0.003 and r.seed is not None for r in rules)
    assert sum(r.probability for r in rules if r.service == "graph") == pytest.approx(0.005)
    assert profile_fault_rules("realistic", seed=5) == rules  # reproducible
    assert profile_fault_rules("realistic", seed=6) != rules


async def test_realistic_cloud_meets_clients_with_occasional_transient_failures() -> None:
    config = EmulatorConfig(
        seed="demo",
        clock=ManualClock(START),
        bot_app_secret="test-secret",
        profile="realistic",
        anonymous_connector=True,
        teams_limits=TeamsLimits.unlimited(),
        # 1,000 reads on purpose: the Graph budget is not what this test is about.
        graph_throttling=False,
    )
    async with EmulatorCloud(config) as cloud:
        assert len(cloud.faults.rules()) == 5
        user = demo_id("user", "adele")
        cloud.connector.note_app_installed(user_oid=user, user_name="Adele", installation_id="i")
        conversation = cloud.connector.conversation_id_for(user)
        verify = ssl.create_default_context(cafile=cloud.ca_pem_path)
        async with httpx.AsyncClient(verify=verify, timeout=10.0) as client:
            token = cloud.identity.issue_app_token(
                client_id=cloud.bot_app_id, roles=["User.Read.All"]
            )
            graph = Counter()
            for _ in range(1_000):
                response = await client.get(
                    f"{cloud.graph_url}/v1.0/users/{user}",
                    headers={"Authorization": f"Bearer {token}"},
                )
                graph[response.status_code] += 1
                if response.status_code in (503, 504):
                    assert "Retry-After" not in response.headers
                    assert response.json()["error"]["code"] in {
                        "ServiceUnavailable",
                        "GatewayTimeout",
                    }
            connector = Counter()
            for _ in range(1_000):
                response = await client.get(
                    f"{cloud.connector_url}v3/conversations/{conversation}/members"
                )
                connector[response.status_code] += 1
            metadata = await client.get(cloud.channel_openid_metadata_url)
            assert metadata.status_code == 200
    # A few in a thousand, never more than a small share.
    assert set(graph) <= {200, 503, 504} and 1 <= graph[503] + graph[504] <= 20, graph
    assert set(connector) <= {200, 412, 502, 504}, connector
    assert 1 <= connector[412] + connector[502] + connector[504] <= 25, connector
