"""Helpers for the credential tests: certificates and key files made on the spot, and the bot
wired to the emulator with one credential kind (what an operator would configure on Azure)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiohttp.test_utils import TestClient, TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from app import create_app
from emulator.server import EmulatorCloud, EmulatorConfig
from emulator.teams_client import TeamsClient
from emulator.threaded import EmulatorThread
from tests.bot_harness import BotOnEmulator, bot_settings

#: The tenant that trusts the bot's service account in the workload identity tests.
SERVICE_ACCOUNT = "system:serviceaccount:access-review-bot:access-review-bot"
MANAGED_IDENTITY_CLIENT_ID = "5e29463d-71da-4fe0-8e69-999b57db23b0"
MANAGED_IDENTITY_PRINCIPAL_ID = "a7d388c3-5e3f-4959-ac7d-786b3383006a"
#: Variables msal reads to find the managed identity endpoint (msal 1.39 managed_identity.py).
MI_ENVIRONMENT = (
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "IMDS_ENDPOINT",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
)


@dataclass(frozen=True)
class Certificate:
    key: Any
    certificate: x509.Certificate

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def sha256_hex(self) -> str:
        return self.certificate.fingerprint(hashes.SHA256()).hex()

    @property
    def sha1_hex(self) -> str:
        return self.certificate.fingerprint(hashes.SHA1()).hex()

    def key_pem(self, password: str | None = None) -> bytes:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password.encode())
            if password
            else serialization.NoEncryption()
        )
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )

    def write_pem(self, path: Path, *, password: str | None = None, key_first: bool = True) -> Path:
        parts = [self.key_pem(password), self.pem]
        path.write_bytes(b"".join(parts if key_first else reversed(parts)))
        return path

    def write_pkcs12(self, path: Path, *, password: str | None) -> Path:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password.encode())
            if password
            else serialization.NoEncryption()
        )
        path.write_bytes(
            pkcs12.serialize_key_and_certificates(
                b"access-review-bot", self.key, self.certificate, None, encryption
            )
        )
        return path


def make_certificate(
    *,
    common_name: str = "access-review-bot",
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    key: Any | None = None,
    elliptic: bool = False,
) -> Certificate:
    """A self-signed certificate, as ``New-SelfSignedCertificate`` or openssl would make one."""
    if key is None:
        key = (
            ec.generate_private_key(ec.SECP256R1())
            if elliptic
            else rsa.generate_private_key(public_exponent=65537, key_size=2048)
        )
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(days=1))
        .not_valid_after(not_after or now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return Certificate(key=key, certificate=certificate)


def clear_managed_identity_environment(monkeypatch: Any) -> None:
    for name in MI_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


def set_imds_environment(monkeypatch: Any, cloud: EmulatorCloud) -> None:
    """What an AKS pod (or a VM) gives msal: IMDS, here at the emulator's endpoint."""
    clear_managed_identity_environment(monkeypatch)
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", cloud.managed_identity_url)


def set_app_service_environment(monkeypatch: Any, cloud: EmulatorCloud) -> None:
    """What App Service and Container Apps set in the container."""
    clear_managed_identity_environment(monkeypatch)
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{cloud.managed_identity_url}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", cloud.identity.managed_identity_endpoint.identity_header)


@asynccontextmanager
async def credential_bot(
    data_dir: Path,
    *,
    config: EmulatorConfig,
    prepare: Callable[[EmulatorCloud], Awaitable[dict[str, Any]]] | None = None,
    **overrides: Any,
) -> AsyncIterator[BotOnEmulator]:
    """The bot (real ``create_app``, no background workers) against an emulator started with
    ``config``. ``prepare(cloud)`` runs once the emulator serves and before the bot is built (to
    register federated credentials, write token files, set the managed identity environment);
    what it returns overrides the settings, after ``overrides``."""
    emulator = EmulatorThread(config)
    async with emulator as cloud:
        extra = dict(overrides)
        if prepare is not None:
            extra.update(await prepare(cloud))
        settings = bot_settings(cloud, data_dir, **extra)
        server = TestServer(create_app(settings, workers=False), host="127.0.0.1", port=0)
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
            )
            yield BotOnEmulator(
                cloud=cloud, emulator=emulator, settings=settings, client=client, teams=teams
            )


def no_secret_config(**kwargs: Any) -> EmulatorConfig:
    """An emulator whose bot app has no client secret at all (what the issue is about)."""
    return EmulatorConfig(bot_app_secret="", **kwargs)


def environment_without_bot_settings() -> dict[str, str]:
    from bot.settings import documented_variables

    env = {k: v for k, v in os.environ.items() if k not in documented_variables()}
    for name in MI_ENVIRONMENT:
        env.pop(name, None)
    return env


# -- the emulated login site on its own (emulator-level tests) -------------------------------------


@dataclass
class LoginSite:
    """The emulated Entra ID login site and managed identity endpoint, served on loopback."""

    identity: Any
    url: str
    managed_identity_url: str
    http: httpx.AsyncClient

    def token_url(self, tenant: str | None = None) -> str:
        return f"{self.url}/{tenant or self.identity.tenant_id}/oauth2/v2.0/token"

    async def token(self, data: dict[str, str]) -> httpx.Response:
        return await self.http.post(self.token_url(), data=data)


@asynccontextmanager
async def login_site(identity: Any) -> AsyncIterator[LoginSite]:
    """Serve ``identity``'s login app (https) and managed identity app (http) on port 0."""
    from aiohttp import web

    from emulator.faults import Faults

    faults = Faults(clock=identity.clock)
    runners: list[web.AppRunner] = []
    try:
        login = web.AppRunner(identity.make_app(faults))
        await login.setup()
        runners.append(login)
        site = web.TCPSite(login, "127.0.0.1", 0, ssl_context=identity.server_ssl_context())
        await site.start()
        login_port = login.addresses[0][1]
        managed = web.AppRunner(identity.make_managed_identity_app(faults))
        await managed.setup()
        runners.append(managed)
        await web.TCPSite(managed, "127.0.0.1", 0).start()
        mi_port = managed.addresses[0][1]
        identity.login_origin = f"https://127.0.0.1:{login_port}"
        async with httpx.AsyncClient(verify=identity.client_ssl_context(), timeout=30) as http:
            yield LoginSite(
                identity=identity,
                url=identity.login_origin,
                managed_identity_url=f"http://127.0.0.1:{mi_port}",
                http=http,
            )
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
