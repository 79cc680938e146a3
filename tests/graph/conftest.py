"""Fixtures for the Graph client tests: the emulated login service, a real store, hostile CA env."""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from bot.store import open_store
from emulator.clock import ManualClock
from emulator.faults import Faults
from emulator.identity import AppRegistration, Identity
from tests.graph.support import (
    BOT_ID,
    BOT_SECRET,
    TENANT_ID,
    GraphStack,
    Login,
    graph_stack,
    lookup,
)


@pytest.fixture(autouse=True)
def hostile_ca_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """CI sets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE: point them at a CA that does not know the
    emulator, so anything that lets the environment override our CA bundle fails."""
    other = trustme.CA()
    path = tmp_path / "unrelated-ca.pem"
    other.cert_pem.write_to_path(str(path))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(path))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(path))
    yield


@pytest.fixture
async def login(tmp_path: Path) -> AsyncIterator[Login]:
    clock = ManualClock(datetime.now(UTC))
    identity = Identity(clock=clock, tenant_id=TENANT_ID, user_lookup=lookup)
    cert = trustme.CA().issue_cert("bot.contoso.test", key_type=trustme.KeyType.RSA)
    parsed = x509.load_pem_x509_certificate(cert.cert_chain_pems[0].bytes())
    identity.register_app(
        AppRegistration(
            client_id=BOT_ID,
            display_name="Access Review Bot",
            secret=BOT_SECRET,
            certificate_pem=cert.cert_chain_pems[0].bytes(),
            application_permissions={"AccessReview.Read.All", "User.Read.All"},
            delegated_permissions={"AccessReview.ReadWrite.All"},
            identifier_uri=f"api://botid-{BOT_ID}",
        )
    )
    faults = Faults(clock=clock)
    app = identity.make_app(faults)
    grants: collections.Counter[str] = collections.Counter()

    @web.middleware
    async def count_grants(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.method == "POST" and request.path.endswith("/token"):
            form = await request.post()
            grant = str(form.get("grant_type", ""))
            if form.get("requested_token_use") == "on_behalf_of":
                grant = "on_behalf_of"
            grants[grant] += 1
        return await handler(request)

    app.middlewares.insert(0, count_grants)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=identity.server_ssl_context())
    await site.start()
    port = runner.addresses[0][1]
    key_path = tmp_path / "bot-cert.pem"
    key_path.write_bytes(cert.private_key_pem.bytes() + cert.cert_chain_pems[0].bytes())
    try:
        yield Login(
            identity=identity,
            clock=clock,
            faults=faults,
            url=f"https://127.0.0.1:{port}",
            grants=grants,
            cert_key_pem=str(key_path),
            cert_thumbprint=parsed.fingerprint(hashes.SHA1()).hex(),
        )
    finally:
        await runner.cleanup()
        identity.close()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Any]:
    """The bot's real store (SQLite), which implements TokenCacheStore."""
    opened = await open_store(f"sqlite:///{tmp_path / 'bot.db'}")
    try:
        yield opened
    finally:
        await opened.close()


# -- the whole emulator (Graph + login) --------------------------------------------------------


@pytest.fixture
async def demo_cloud() -> AsyncIterator[Any]:
    from emulator.server import EmulatorCloud, EmulatorConfig

    async with EmulatorCloud(EmulatorConfig(seed="demo")) as cloud:
        yield cloud


@pytest.fixture
async def demo(demo_cloud: Any, store: Any) -> AsyncIterator[GraphStack]:
    async with graph_stack(demo_cloud, store) as stack:
        yield stack
