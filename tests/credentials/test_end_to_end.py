"""End to end on the emulator, one test per credential kind: the bot discovers the reviews
(app-only Graph), sends a card (Bot Connector token), records a decision on-behalf-of the
reviewer (OBO, ``reviewedBy`` is the reviewer) and answers a chat message through botbuilder's
own connector — every token from the one configured credential, through the real msal.

The bot's app registration in these emulators has no client secret at all, except in the test of
the secret itself; the emulator counts how each token request authenticated. Every test also
captures every log record, at DEBUG, from every logger, and looks for the secret, the key, the
passphrase, the tokens and every client assertion the emulator received.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from bot.web.keys import DISCOVERY, OUTBOX, REVIEWS_API
from emulator.identity import TOKEN_EXCHANGE_AUDIENCE, FederatedIdentityCredential
from emulator.seeds import demo_id
from emulator.server import EmulatorCloud, EmulatorConfig
from tests.bot_harness import BotOnEmulator
from tests.credentials.support import (
    MANAGED_IDENTITY_CLIENT_ID,
    MANAGED_IDENTITY_PRINCIPAL_ID,
    SERVICE_ACCOUNT,
    credential_bot,
    make_certificate,
    no_secret_config,
    set_app_service_environment,
    set_imds_environment,
)

JOHANNA = demo_id("user", "johanna")
ROLE_REVIEW = demo_id("review", "user_admin_role")
MEGAN_ITEM = demo_id("decision", f"user_admin_role:{demo_id('user', 'megan')}")
PASSPHRASE = "correct horse battery staple"
# Any JWT (three base64url parts, the first two JSON objects): no log line may carry one.
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")


@pytest.fixture(autouse=True)
def hostile_ca_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """CI sets REQUESTS_CA_BUNDLE: point it at a CA that does not know the emulator."""
    path = tmp_path / "unrelated-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(path))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(path))
    yield


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def assert_logs_hold_nothing_secret(
    caplog: pytest.LogCaptureFixture, cloud: EmulatorCloud, secrets: list[str]
) -> None:
    lines = []
    for record in caplog.records:
        lines.append(record.getMessage())
        if record.exc_text:
            lines.append(record.exc_text)
        lines.extend(str(v) for k, v in vars(record).items() if k not in ("msg", "args"))
    text = "\n".join(lines)
    assertions = list(cloud.identity.client_auth.recent_assertions)
    for value in [*secrets, *assertions]:
        assert value and value not in text, "a secret, key or assertion reached the logs"
    assert not JWT.search(text), JWT.search(text)
    assert "PRIVATE KEY" not in text


async def review_flow(harness: BotOnEmulator) -> None:
    """Discover, send the card, decide as Johanna through SSO + OBO, chat through botbuilder."""
    app = harness.app
    await app[DISCOVERY].run_once()
    await app[OUTBOX].run_once()
    cards = [
        m for m in harness.cloud.connector.messages_to(JOHANNA) if m.activity.get("attachments")
    ]
    assert cards, "no card reached the reviewer"
    answer = await harness.teams.card_action(
        JOHANNA,
        "decide",
        {
            "instanceId": ROLE_REVIEW,
            "itemId": MEGAN_ITEM,
            "decision": "Deny",
            "page": 0,
            "justification": "left the team",
        },
        sso=True,
    )
    assert answer.status == 200 and answer.body["statusCode"] == 200, answer.body
    decision = await app[REVIEWS_API].get_decision(ROLE_REVIEW, ROLE_REVIEW, MEGAN_ITEM)
    assert decision.raw["decision"] == "Deny"
    assert decision.raw["reviewedBy"]["id"] == JOHANNA
    # A reply inside a turn goes through botbuilder's connector client and its credentials.
    before = len(harness.cloud.connector.messages_to(JOHANNA))
    response = await harness.teams.message(JOHANNA, "help")
    assert response.status in (200, 201)
    await harness.eventually(
        lambda: len(harness.cloud.connector.messages_to(JOHANNA)) > before,
        what="the help reply",
    )
    counts = harness.cloud.identity.client_auth.counts
    # discovery + OBO for Graph (tenant) and the connector token (botframework or tenant).
    assert sum(counts.values()) >= 3, counts


def only(cloud: EmulatorCloud, method: str) -> None:
    counts = dict(cloud.identity.client_auth.counts)
    assert set(counts) == {method}, counts


async def test_client_secret(tmp_path: Path, logs: pytest.LogCaptureFixture) -> None:
    config = EmulatorConfig()
    async with credential_bot(tmp_path, config=config) as harness:
        await review_flow(harness)
        only(harness.cloud, "secret")
        assert_logs_hold_nothing_secret(logs, harness.cloud, [config.bot_app_secret])


async def test_certificate_pem(tmp_path: Path, logs: pytest.LogCaptureFixture) -> None:
    certificate = make_certificate()
    path = certificate.write_pem(tmp_path / "bot.pem")
    config = no_secret_config(bot_app_certificates=[certificate.pem])
    async with credential_bot(
        tmp_path, config=config, app_password="", certificate_path=str(path)
    ) as harness:
        await review_flow(harness)
        only(harness.cloud, "certificate")
        expected = certificate.certificate.fingerprint
        assert set(harness.cloud.identity.client_auth.certificate_thumbprints) == {_b64(expected)}
        key_lines = certificate.key_pem().decode().splitlines()[1:-1]
        assert_logs_hold_nothing_secret(logs, harness.cloud, key_lines)


async def test_certificate_pkcs12_with_passphrase_multi_tenant(
    tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    certificate = make_certificate()
    path = certificate.write_pkcs12(tmp_path / "bot.pfx", password=PASSPHRASE)
    config = no_secret_config(bot_app_certificates=[certificate.pem])
    async with credential_bot(
        tmp_path,
        config=config,
        app_password="",
        app_type="MultiTenant",  # the connector token comes from the botframework.com tenant
        certificate_path=str(path),
        certificate_password=PASSPHRASE,
    ) as harness:
        await review_flow(harness)
        only(harness.cloud, "certificate")
        key_lines = certificate.key_pem().decode().splitlines()[1:-1]
        assert_logs_hold_nothing_secret(logs, harness.cloud, [PASSPHRASE, *key_lines])


async def test_federated_token_file(tmp_path: Path, logs: pytest.LogCaptureFixture) -> None:
    token_file = tmp_path / "azure-identity-token"
    minted: list[str] = []

    async def prepare(cloud: EmulatorCloud) -> dict[str, Any]:
        # What Azure Workload Identity sets up: the cluster's issuer, trusted by a federated
        # credential on the app for the bot's service account, and the token the kubelet mounts.
        issuer = cloud.identity.add_external_issuer("aks-cluster")
        cloud.identity.app(cloud.bot_app_id).federated_credentials.append(
            FederatedIdentityCredential(
                name="access-review-bot", issuer=issuer.url, subject=SERVICE_ACCOUNT
            )
        )
        minted.append(issuer.mint(subject=SERVICE_ACCOUNT))
        token_file.write_text(minted[-1])
        return {"app_password": "", "federated_token_file": str(token_file)}

    async with credential_bot(tmp_path, config=no_secret_config(), prepare=prepare) as harness:
        await review_flow(harness)
        only(harness.cloud, "federated")
        assert_logs_hold_nothing_secret(logs, harness.cloud, minted)


async def _trust_the_managed_identity(cloud: EmulatorCloud) -> None:
    cloud.identity.add_managed_identity(
        client_id=MANAGED_IDENTITY_CLIENT_ID, principal_id=MANAGED_IDENTITY_PRINCIPAL_ID
    )
    cloud.identity.app(cloud.bot_app_id).federated_credentials.append(
        FederatedIdentityCredential(
            name="bot-identity",
            issuer=cloud.identity.v2_issuer(),
            subject=MANAGED_IDENTITY_PRINCIPAL_ID,
            audiences=(TOKEN_EXCHANGE_AUDIENCE,),
        )
    )


async def test_managed_identity_through_imds(
    tmp_path: Path, logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def prepare(cloud: EmulatorCloud) -> dict[str, Any]:
        await _trust_the_managed_identity(cloud)
        set_imds_environment(monkeypatch, cloud)
        # Bot Framework's name for a bot whose identity is a user-assigned managed identity.
        return {
            "app_password": "",
            "app_type": "UserAssignedMSI",
            "managed_identity_client_id": MANAGED_IDENTITY_CLIENT_ID,
        }

    async with credential_bot(tmp_path, config=no_secret_config(), prepare=prepare) as harness:
        await review_flow(harness)
        only(harness.cloud, "federated")
        requests_seen = harness.cloud.identity.managed_identity_endpoint.requests
        assert requests_seen and {r["shape"] for r in requests_seen} == {"imds"}
        # msal caches the identity's token: one IMDS request for all the bot's token requests.
        assert len(requests_seen) == 1, requests_seen
        assert_logs_hold_nothing_secret(logs, harness.cloud, [])


async def test_managed_identity_through_the_app_service_endpoint(
    tmp_path: Path, logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def prepare(cloud: EmulatorCloud) -> dict[str, Any]:
        await _trust_the_managed_identity(cloud)
        set_app_service_environment(monkeypatch, cloud)
        return {"app_password": "", "managed_identity_client_id": MANAGED_IDENTITY_CLIENT_ID}

    async with credential_bot(tmp_path, config=no_secret_config(), prepare=prepare) as harness:
        await review_flow(harness)
        only(harness.cloud, "federated")
        endpoint = harness.cloud.identity.managed_identity_endpoint
        assert {r["shape"] for r in endpoint.requests} == {"app_service"}
        assert_logs_hold_nothing_secret(logs, harness.cloud, [endpoint.identity_header])


def _b64(fingerprint: Any) -> str:
    from cryptography.hazmat.primitives import hashes
    from jwt.utils import base64url_encode

    return base64url_encode(fingerprint(hashes.SHA256())).decode()
