"""A renewed certificate is picked up without a restart, and the certificate's state shows on
``/readyz`` and ``/metrics`` (seconds until expiry), with the bot running on the emulator."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography.hazmat.primitives import hashes
from jwt.utils import base64url_encode

from bot.graph import CredentialUnavailable
from bot.web.keys import APP_TOKENS, DISCOVERY
from tests.bot_harness import BotOnEmulator
from tests.credentials.support import (
    Certificate,
    credential_bot,
    make_certificate,
    no_secret_config,
)

EXPIRY = re.compile(r'^bot_credential_expiry_seconds\{kind="certificate"\} (\S+)$', re.MULTILINE)
USABLE = re.compile(r'^bot_credential_usable\{kind="certificate"\} (\S+)$', re.MULTILINE)


@pytest.fixture(autouse=True)
def hostile_ca_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    path = tmp_path / "unrelated-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(path))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(path))
    yield


def thumbprint(certificate: Certificate) -> str:
    return base64url_encode(certificate.certificate.fingerprint(hashes.SHA256())).decode()


def replace_atomically(path: Path, data: bytes) -> None:
    staging = path.with_suffix(".new")
    staging.write_bytes(data)
    os.replace(staging, path)


async def readyz(harness: BotOnEmulator) -> tuple[int, dict[str, Any]]:
    response = await harness.client.get("/readyz")
    body: dict[str, Any] = await response.json()
    return response.status, body


async def metric(harness: BotOnEmulator, pattern: re.Pattern[str]) -> float:
    text = await (await harness.client.get("/metrics")).text()
    found = pattern.search(text)
    assert found, text
    return float(found.group(1))


async def test_a_renewed_certificate_is_used_without_a_restart(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    old = make_certificate(common_name="old", not_after=now + timedelta(days=20))
    new = make_certificate(common_name="new", not_after=now + timedelta(days=400))
    path = old.write_pem(tmp_path / "tls.pem")
    config = no_secret_config(bot_app_certificates=[old.pem, new.pem])
    async with credential_bot(
        tmp_path, config=config, app_password="", certificate_path=str(path)
    ) as harness:
        auth = harness.cloud.identity.client_auth
        token = await harness.app[APP_TOKENS].get_token()
        assert auth.certificate_thumbprints == [thumbprint(old)]
        status, body = await readyz(harness)
        credential = body["checks"]["credential"]
        assert status == 200 and credential["thumbprint_sha256"] == old.sha256_hex
        assert credential["expires_at"].startswith(
            f"{old.certificate.not_valid_after_utc:%Y-%m-%d}"
        )
        assert "expires in 19 day" in credential["warning"]
        assert 19 * 86400 < await metric(harness, EXPIRY) <= 20 * 86400

        # The renewal lands at the same path (a Kubernetes secret update, a cron job).
        replace_atomically(path, new.key_pem() + new.pem)
        assert auth.certificate_thumbprints == [thumbprint(old)]  # nothing asked for a token yet
        renewed = await harness.app[APP_TOKENS].refresh_token(token)
        assert renewed != token and auth.certificate_thumbprints[-1] == thumbprint(new)
        status, body = await readyz(harness)
        credential = body["checks"]["credential"]
        assert status == 200 and credential["thumbprint_sha256"] == new.sha256_hex
        assert "warning" not in credential
        assert await metric(harness, EXPIRY) > 399 * 86400

        # The admin removes the old certificate from the app: discovery (new tokens) still works.
        def remove_old() -> None:
            harness.cloud.identity.app(harness.cloud.bot_app_id).certificates.remove(old.pem)

        await harness.emulator.arun(remove_old)
        await harness.app[APP_TOKENS].refresh_token(renewed)
        await harness.app[DISCOVERY].run_once()
        assert set(auth.certificate_thumbprints[1:]) == {thumbprint(new)}


async def test_an_expired_certificate_makes_the_bot_unready_and_says_why_in_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    now = datetime.now(UTC)
    good = make_certificate(common_name="good")
    expired = make_certificate(
        common_name="expired",
        key=good.key,
        not_after=now - timedelta(hours=1),
        not_before=now - timedelta(days=365),
    )
    path = good.write_pem(tmp_path / "tls.pem")
    config = no_secret_config(bot_app_certificates=[good.pem])
    async with credential_bot(
        tmp_path, config=config, app_password="", certificate_path=str(path)
    ) as harness:
        token = await harness.app[APP_TOKENS].get_token()
        assert await metric(harness, USABLE) == 1.0
        # Someone copies the expired certificate over the good one.
        replace_atomically(path, expired.key_pem() + expired.pem)
        status, body = await readyz(harness)
        assert status == 503 and body["status"] == "not ready"
        assert "expired on" in body["checks"]["credential"]["detail"]
        assert body["checks"]["credential"]["usable"] is False
        assert await metric(harness, USABLE) == 0.0
        assert await metric(harness, EXPIRY) < 0
        with caplog.at_level(logging.WARNING):
            with pytest.raises(CredentialUnavailable, match="expired on"):
                await harness.app[APP_TOKENS].refresh_token(token)
        ours = [r for r in caplog.records if r.name.startswith(("bot", "app"))]
        assert [r.getMessage() for r in ours if "expired on" in r.getMessage()]
        assert not any(r.exc_info for r in ours), "a traceback was logged"
