"""What goes wrong with a credential says so in one clear line — when ``python app.py`` starts, or
in ``python app.py doctor`` for what only Entra ID or the platform can tell — never a traceback.

At start (no network needed): an expired certificate, a key that is not the certificate's, a
protected key without its passphrase, a token file missing or unreadable. In the doctor: a
federated token whose subject no federated credential names (AADSTS700213), a managed identity
endpoint reached without its ``Metadata`` header, the same file problems, and a certificate
close to its end (a warning, exit code 0).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import ClientSession, web

from bot.doctor import Status, diagnose, render, run_doctor
from bot.graph import CredentialUnavailable
from bot.graph.credentials import ManagedIdentityCredential
from emulator.identity import FederatedIdentityCredential
from emulator.server import EmulatorCloud
from emulator.threaded import EmulatorThread
from tests.bot_harness import bot_settings, settings_environment
from tests.credentials.support import (
    MANAGED_IDENTITY_CLIENT_ID,
    MANAGED_IDENTITY_PRINCIPAL_ID,
    SERVICE_ACCOUNT,
    clear_managed_identity_environment,
    environment_without_bot_settings,
    make_certificate,
    no_secret_config,
)

ROOT = Path(__file__).resolve().parents[2]
APP_ID = "0f4b6a52-1c2d-4e3f-8a9b-0c1d2e3f4a5b"
TENANT = "7d5c2a3e-4f1b-4c55-9a11-2b8e6f0d9c01"
PASSPHRASE = "correct horse battery staple"


@pytest.fixture(autouse=True)
def hostile_ca_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    path = tmp_path / "unrelated-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(path))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(path))
    yield


# -- at start -----------------------------------------------------------------------------------


def _start_environment(tmp_path: Path, **credential: str) -> dict[str, str]:
    env = environment_without_bot_settings()
    env.update(
        {
            "MicrosoftAppId": APP_ID,
            "MicrosoftAppType": "SingleTenant",
            "MicrosoftAppTenantId": TENANT,
            "TOKEN_CACHE_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
            "HOST": "127.0.0.1",
            "PORT": "0",
            "PYTHONUNBUFFERED": "1",
            **credential,
        }
    )
    return env


def _prepare(case: str, tmp_path: Path) -> dict[str, str]:
    now = datetime.now(UTC)
    certificate = make_certificate()
    pem = tmp_path / "tls.pem"
    if case == "expired certificate":
        make_certificate(
            not_before=now - timedelta(days=400), not_after=now - timedelta(days=2)
        ).write_pem(pem)
        return {"CERTIFICATE_PATH": str(pem)}
    if case == "wrong key":
        pem.write_bytes(make_certificate().key_pem() + certificate.pem)
        return {"CERTIFICATE_PATH": str(pem)}
    if case == "encrypted key without passphrase":
        certificate.write_pem(pem, password=PASSPHRASE)
        return {"CERTIFICATE_PATH": str(pem)}
    if case == "wrong PKCS#12 passphrase":
        pfx = certificate.write_pkcs12(tmp_path / "tls.pfx", password=PASSPHRASE)
        return {"CERTIFICATE_PATH": str(pfx), "CERTIFICATE_PASSWORD": "not " + PASSPHRASE}
    if case == "token file missing":
        return {"AZURE_FEDERATED_TOKEN_FILE": str(tmp_path / "nowhere" / "token")}
    if case == "token file unreadable":
        folder = tmp_path / "token-is-a-folder"
        folder.mkdir()
        return {"AZURE_FEDERATED_TOKEN_FILE": str(folder)}
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("expired certificate", "expired on"),
        ("wrong key", "does not belong to its certificate"),
        ("encrypted key without passphrase", "is encrypted: set CERTIFICATE_PASSWORD"),
        ("wrong PKCS#12 passphrase", "CERTIFICATE_PASSWORD does not open the PKCS#12 file"),
        ("token file missing", "AZURE_FEDERATED_TOKEN_FILE names a file that does not exist"),
        ("token file unreadable", "AZURE_FEDERATED_TOKEN_FILE names a directory, not a file"),
    ],
)
def test_the_bot_refuses_to_start_with_one_line(tmp_path: Path, case: str, expected: str) -> None:
    import subprocess

    env = _start_environment(tmp_path, **_prepare(case, tmp_path))
    result = subprocess.run(
        [sys.executable, str(ROOT / "app.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("configuration error: ") and expected in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert PASSPHRASE not in result.stderr + result.stdout


# -- in the doctor ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorThread]:
    thread = EmulatorThread(no_secret_config())
    with thread as cloud:
        cloud.graph.app_registrations = cloud.identity
        cloud.identity.add_managed_identity(
            client_id=MANAGED_IDENTITY_CLIENT_ID, principal_id=MANAGED_IDENTITY_PRINCIPAL_ID
        )
        cloud.identity.add_external_issuer("aks-cluster")
        app = cloud.identity.app(cloud.bot_app_id)
        app.application_permissions.add("Directory.Read.All")
        app.federated_credentials.extend(
            [
                FederatedIdentityCredential(
                    name="aks",
                    issuer=cloud.identity.external_issuers["aks-cluster"].url,
                    subject=SERVICE_ACCOUNT,
                ),
                FederatedIdentityCredential(
                    name="bot-identity",
                    issuer=cloud.identity.v2_issuer(),
                    subject=MANAGED_IDENTITY_PRINCIPAL_ID,
                ),
            ]
        )
        yield thread


@pytest.fixture
def cloud(emulator: EmulatorThread) -> EmulatorCloud:
    return emulator.cloud


def workload_identity_settings(cloud: EmulatorCloud, tmp_path: Path, subject: str) -> Any:
    token = cloud.identity.external_issuers["aks-cluster"].mint(subject=subject)
    path = tmp_path / "azure-identity-token"
    path.write_text(token)
    return bot_settings(cloud, tmp_path, app_password="", federated_token_file=str(path)), token


async def test_workload_identity_passes_every_check(cloud: EmulatorCloud, tmp_path: Path) -> None:
    settings, _ = workload_identity_settings(cloud, tmp_path, SERVICE_ACCOUNT)
    report = await diagnose(settings)
    assert all(r.status is Status.PASSED for r in report.results), render(report)
    detail = report.result("credential").detail
    assert SERVICE_ACCOUNT in detail and "api://AzureADTokenExchange" in detail


async def test_a_wrong_federated_subject_is_one_failure_with_the_fix(
    cloud: EmulatorCloud, tmp_path: Path
) -> None:
    wrong = "system:serviceaccount:default:default"
    settings, token = workload_identity_settings(cloud, tmp_path, wrong)
    report = await diagnose(settings)
    text = render(report)
    assert report.result("credential").status is Status.PASSED, text
    app_token = report.result("app_token")
    assert app_token.status is Status.FAILED and "AADSTS700213" in app_token.detail
    issuer = cloud.identity.external_issuers["aks-cluster"].url
    assert f"issuer {issuer}, subject {wrong}" in app_token.fix
    assert report.result("teams_catalog").status is Status.SKIPPED
    assert token not in text and "Traceback" not in text


@asynccontextmanager
async def _stripping_proxy(cloud: EmulatorCloud, *, reword: str = "") -> AsyncIterator[str]:
    """An HTTP proxy in front of IMDS that drops the ``Metadata`` header (a misconfigured
    egress proxy or sidecar): the request reaches IMDS without it. With ``reword``, the answer's
    ``error_description`` is replaced (another wording of the same refusal)."""

    async def forward(request: web.Request) -> web.Response:
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in ("metadata", "host")
        }
        async with (
            ClientSession() as session,
            session.get(
                f"{cloud.managed_identity_url}{request.path_qs}", headers=headers
            ) as answer,
        ):
            body = await answer.read()
            if reword:
                body = json.dumps({**json.loads(body), "error_description": reword}).encode()
            return web.Response(status=answer.status, body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", forward)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def header_stripping_proxy(cloud: EmulatorCloud) -> AsyncIterator[str]:
    async with _stripping_proxy(cloud) as url:
        yield url


async def test_a_missing_metadata_header_is_one_failure_with_the_fix(
    cloud: EmulatorCloud,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    header_stripping_proxy: str,
) -> None:
    clear_managed_identity_environment(monkeypatch)
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", header_stripping_proxy)
    settings = bot_settings(
        cloud, tmp_path, app_password="", managed_identity_client_id=MANAGED_IDENTITY_CLIENT_ID
    )
    report = await diagnose(settings)
    credential = report.result("credential")
    assert credential.status is Status.FAILED, render(report)
    assert "Required metadata header not specified" in credential.detail
    assert "Metadata: true" in credential.fix and "proxy" in credential.fix
    assert report.result("app_token").status is Status.SKIPPED
    assert report.result("connector_token").status is Status.SKIPPED
    # Straight to IMDS, the same identity passes.
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", cloud.managed_identity_url)
    direct = await diagnose(settings)
    assert all(r.status is Status.PASSED for r in direct.results), render(direct)
    assert MANAGED_IDENTITY_PRINCIPAL_ID in direct.result("credential").detail


async def test_the_missing_metadata_header_is_known_by_its_code_not_its_wording(
    cloud: EmulatorCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_managed_identity_environment(monkeypatch)
    async with _stripping_proxy(cloud, reword="Erforderlicher Metadaten-Header fehlt") as proxy:
        monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", proxy)
        identity = ManagedIdentityCredential(MANAGED_IDENTITY_CLIENT_ID)
        try:
            with pytest.raises(CredentialUnavailable) as refused:
                await asyncio.to_thread(identity.token)
        finally:
            identity.close()
        assert (refused.value.status, refused.value.error) == (400, "bad_request_102")
        settings = bot_settings(
            cloud, tmp_path, app_password="", managed_identity_client_id=MANAGED_IDENTITY_CLIENT_ID
        )
        credential = (await diagnose(settings)).result("credential")
    assert credential.status is Status.FAILED
    assert "Metadata: true" in credential.fix and "proxy" in credential.fix


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("expired certificate", "expired on"),
        ("wrong key", "does not belong to its certificate"),
        ("token file missing", "does not exist"),
        ("token file unreadable", "names a directory"),
    ],
)
async def test_file_problems_fail_the_credential_check_and_skip_the_token_checks(
    cloud: EmulatorCloud, tmp_path: Path, case: str, expected: str
) -> None:
    variables = _prepare(case, tmp_path)
    settings = bot_settings(
        cloud,
        tmp_path,
        app_password="",
        certificate_path=variables.get("CERTIFICATE_PATH", ""),
        federated_token_file=variables.get("AZURE_FEDERATED_TOKEN_FILE", ""),
    )
    out = io.StringIO()
    code = await run_doctor(settings, out=out)
    report = await diagnose(settings)
    assert code == 1
    assert report.result("credential").status is Status.FAILED
    assert expected in report.result("credential").detail
    assert report.result("app_token").status is Status.SKIPPED
    assert "Traceback" not in out.getvalue()


async def test_a_certificate_close_to_its_end_is_a_warning_not_a_failure(
    emulator: EmulatorThread, cloud: EmulatorCloud, tmp_path: Path
) -> None:
    certificate = make_certificate(not_after=datetime.now(UTC) + timedelta(days=12))

    def register() -> None:
        cloud.identity.app(cloud.bot_app_id).certificates.append(certificate.pem)

    await emulator.arun(register)
    settings = bot_settings(
        cloud,
        tmp_path,
        app_password="",
        certificate_path=str(certificate.write_pem(tmp_path / "tls.pem")),
    )
    out = io.StringIO()
    code = await run_doctor(settings, out=out)
    text = out.getvalue()
    assert code == 0, text
    assert (
        f"! Credential: certificate: certificate CN=access-review-bot, SHA-256 thumbprint {certificate.sha256_hex}"
        in text
    )
    assert certificate.sha1_hex.upper() in text and "(11 days)" in text
    assert "within 30 days" in text and "1 warning(s)" in text


async def test_doctor_as_a_process_says_it_in_one_line_and_no_traceback(
    cloud: EmulatorCloud, tmp_path: Path
) -> None:
    settings, token = workload_identity_settings(
        cloud, tmp_path, "system:serviceaccount:default:default"
    )
    env = settings_environment(
        settings,
        AZURE_FEDERATED_TOKEN_FILE=settings.federated_token_file,
        PYTHONIOENCODING="utf-8",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "app.py"),
        "doctor",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=90)
    output = stdout.decode() + stderr.decode()
    assert process.returncode == 1, output
    [line] = [x for x in output.splitlines() if x.startswith("✗ App token")]
    assert "AADSTS700213" in line
    assert "Traceback" not in output and token not in output
