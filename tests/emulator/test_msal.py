"""The real msal ConfidentialClientApplication against the emulated Entra ID, over https."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import msal
import pytest
import requests
import trustme
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from emulator.clock import ManualClock
from emulator.faults import Faults
from emulator.identity import (
    BOT_FRAMEWORK_AUDIENCE,
    GRAPH_AUDIENCE,
    AppRegistration,
    Identity,
    TokenError,
)

TENANT_ID = "7d5c2a3e-4f1b-4c55-9a11-2b8e6f0d9c01"
BOT_ID = "0f4b6a52-1c2d-4e3f-8a9b-0c1d2e3f4a5b"
BOT_SECRET = "bot-secret-value"
ALICE = "11111111-1111-4111-8111-111111111111"
BOB = "22222222-2222-4222-8222-222222222222"
USERS = {
    ALICE: {"id": ALICE, "userPrincipalName": "alice@contoso.test", "displayName": "Alice"},
    BOB: {
        "id": BOB,
        "userPrincipalName": "bob@contoso.test",
        "displayName": "Bob",
        "accountEnabled": True,
    },
}
RW = "https://graph.microsoft.com/AccessReview.ReadWrite.All"


def lookup(key: str) -> Mapping[str, Any] | None:
    for user in USERS.values():
        if key in (user["id"], user["userPrincipalName"]):
            return user
    return None


class CaPinnedSession(requests.Session):
    """What the bot must hand msal: a session that trusts exactly the emulator CA.

    ``trust_env = False`` stops requests from swapping ``verify`` for REQUESTS_CA_BUNDLE.
    """

    def __init__(self, ca_path: str) -> None:
        super().__init__()
        self.trust_env = False
        self.verify = ca_path


@dataclass
class Login:
    identity: Identity
    clock: ManualClock
    url: str
    cert_key_pem: str
    cert_pem: str
    sessions: list[requests.Session]

    async def app(
        self, *, credential: Any = BOT_SECRET, client_id: str = BOT_ID, tenant: str = TENANT_ID
    ) -> msal.ConfidentialClientApplication:
        """Build the msal app in a thread: its constructor fetches the OpenID metadata."""
        session = CaPinnedSession(self.identity.ca_pem_path)
        self.sessions.append(session)
        return await call(
            msal.ConfidentialClientApplication,
            client_id,
            client_credential=credential,
            authority=f"{self.url}/{tenant}",
            instance_discovery=False,
            http_client=session,
        )


@pytest.fixture(autouse=True)
def hostile_ca_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[None]:
    """CI sets these; point them at a CA that does not know the emulator."""
    other = trustme.CA()
    path = tmp_path / "other-ca.pem"
    other.cert_pem.write_to_path(str(path))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(path))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(path))
    yield


@pytest.fixture
async def login() -> AsyncIterator[Login]:
    clock = ManualClock(datetime.now(UTC))
    identity = Identity(clock=clock, tenant_id=TENANT_ID, user_lookup=lookup)
    cert_ca = trustme.CA()
    client_cert = cert_ca.issue_cert("bot.contoso.test", key_type=trustme.KeyType.RSA)
    identity.register_app(
        AppRegistration(
            client_id=BOT_ID,
            display_name="Access Review Bot",
            secret=BOT_SECRET,
            certificate_pem=client_cert.cert_chain_pems[0].bytes(),
            application_permissions={"AccessReview.Read.All", "User.Read.All"},
            delegated_permissions={"AccessReview.ReadWrite.All"},
            identifier_uri=f"api://botid-{BOT_ID}",
        )
    )
    runner = web.AppRunner(identity.make_app(Faults(clock=clock)))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=identity.server_ssl_context())
    await site.start()
    port = runner.addresses[0][1]
    state = Login(
        identity=identity,
        clock=clock,
        url=f"https://127.0.0.1:{port}",
        cert_key_pem=client_cert.private_key_pem.bytes().decode(),
        cert_pem=client_cert.cert_chain_pems[0].bytes().decode(),
        sessions=[],
    )
    try:
        yield state
    finally:
        for session in state.sessions:
            session.close()
        await runner.cleanup()
        identity.close()


async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """msal blocks; run it in a thread like the bot does."""
    return await asyncio.to_thread(fn, *args, **kwargs)


async def test_env_ca_bundle_really_is_hostile(login: Login) -> None:
    """Guard for the other tests: with the CI variables set, requests ignores a session's
    ``verify`` (the pitfall), so only the pinned session reaches the emulator."""
    url = f"{login.url}/{TENANT_ID}/v2.0/.well-known/openid-configuration"
    with requests.Session() as plain:
        plain.verify = login.identity.ca_pem_path
        with pytest.raises(requests.exceptions.SSLError):
            await call(plain.get, url)
    with CaPinnedSession(login.identity.ca_pem_path) as pinned:
        response = await call(pinned.get, url)
    assert response.status_code == 200
    assert response.json()["token_endpoint"] == f"{login.url}/{TENANT_ID}/oauth2/v2.0/token"


async def test_client_credentials_with_secret(login: Login) -> None:
    app = await login.app()
    result = await call(app.acquire_token_for_client, ["https://graph.microsoft.com/.default"])
    assert "access_token" in result, result
    token = login.identity.validate_access_token(result["access_token"], audience=GRAPH_AUDIENCE)
    assert not token.is_delegated
    assert token.roles == {"AccessReview.Read.All", "User.Read.All"}
    assert token.oid is None and token.upn is None
    assert token.app_id == BOT_ID and token.tenant_id == TENANT_ID
    assert token.raw_claims["appidacr"] == "1"
    # msal caches app tokens: a second call does not hit the endpoint again.
    again = await call(app.acquire_token_for_client, ["https://graph.microsoft.com/.default"])
    assert again["access_token"] == result["access_token"]
    assert again["token_source"] == "cache"


async def test_client_credentials_with_certificate(login: Login) -> None:
    app = await login.app(
        credential={"private_key": login.cert_key_pem, "public_certificate": login.cert_pem}
    )
    result = await call(app.acquire_token_for_client, ["https://graph.microsoft.com/.default"])
    assert "access_token" in result, result
    token = login.identity.validate_access_token(result["access_token"], audience=GRAPH_AUDIENCE)
    assert token.raw_claims["appidacr"] == "2"
    assert "AccessReview.Read.All" in token.roles


async def test_certificate_with_wrong_key_is_invalid_client(login: Login) -> None:
    # The registered certificate's thumbprint, but the assertion is signed with another key.
    rogue = trustme.CA().issue_cert("bot.contoso.test", key_type=trustme.KeyType.RSA)
    cert = x509.load_pem_x509_certificate(login.cert_pem.encode())
    app = await login.app(
        credential={
            "private_key": rogue.private_key_pem.bytes().decode(),
            "thumbprint": cert.fingerprint(hashes.SHA1()).hex(),
        }
    )
    result = await call(app.acquire_token_for_client, ["https://graph.microsoft.com/.default"])
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [700027]


async def test_bad_secret_is_invalid_client(login: Login) -> None:
    app = await login.app(credential="not-the-secret")
    result = await call(app.acquire_token_for_client, ["https://graph.microsoft.com/.default"])
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000215]
    assert result["error_description"].startswith("AADSTS7000215:")


async def test_unknown_client_and_unknown_tenant(login: Login) -> None:
    app = await login.app(client_id="99999999-9999-4999-8999-999999999999")
    result = await call(app.acquire_token_for_client, ["https://graph.microsoft.com/.default"])
    assert result["error"] == "unauthorized_client"
    with pytest.raises(ValueError, match="Unable to get authority configuration"):
        await login.app(tenant="00000000-0000-4000-8000-00000000dead")


async def test_client_credentials_requires_dot_default(login: Login) -> None:
    app = await login.app()
    result = await call(app.acquire_token_for_client, [RW])
    assert result["error"] == "invalid_scope"
    assert result["error_codes"] == [1002012]


async def test_bot_framework_token_for_the_connector(login: Login) -> None:
    # SingleTenant bot: authority = our tenant; multi-tenant bot: authority = botframework.com.
    for tenant in (TENANT_ID, "botframework.com"):
        app = await login.app(tenant=tenant)
        result = await call(app.acquire_token_for_client, [f"{BOT_FRAMEWORK_AUDIENCE}/.default"])
        assert "access_token" in result, result
        token = login.identity.validate_access_token(
            result["access_token"], audience=BOT_FRAMEWORK_AUDIENCE
        )
        assert token.app_id == BOT_ID
        assert not token.roles
        with pytest.raises(TokenError) as info:
            login.identity.validate_access_token(result["access_token"], audience=GRAPH_AUDIENCE)
        assert info.value.status == 401 and info.value.code == "InvalidAuthenticationToken"


async def test_on_behalf_of_then_silent_then_refresh(login: Login) -> None:
    app = await login.app()
    sso = login.identity.issue_sso_token(user_oid=ALICE, app_id=BOT_ID)
    assert jwt.decode(sso, options={"verify_signature": False})["aud"] == f"api://botid-{BOT_ID}"
    result = await call(app.acquire_token_on_behalf_of, sso, [RW])
    assert "access_token" in result, result
    assert "refresh_token" in result
    token = login.identity.validate_access_token(result["access_token"], audience=GRAPH_AUDIENCE)
    assert token.is_delegated
    assert token.oid == ALICE and token.upn == "alice@contoso.test"
    assert token.tenant_id == TENANT_ID
    assert token.scopes == {"AccessReview.ReadWrite.All"}
    assert not token.roles

    accounts = await call(app.get_accounts)
    assert [a["home_account_id"] for a in accounts] == [f"{ALICE}.{TENANT_ID}"]
    cached = await call(app.acquire_token_silent, [RW], account=accounts[0])
    assert cached["access_token"] == result["access_token"]

    # An hour later msal's cache is stale (msal measures expiry with time.time(): fake it by
    # dropping the cached access token) and the refresh token must work.
    for entry in list(app.token_cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
        app.token_cache.remove_at(entry)
    login.clock.advance(timedelta(hours=2))
    refreshed = await call(app.acquire_token_silent, [RW], account=accounts[0])
    assert refreshed and "access_token" in refreshed, refreshed
    assert refreshed["access_token"] != result["access_token"]
    token = login.identity.validate_access_token(refreshed["access_token"], audience=GRAPH_AUDIENCE)
    assert token.oid == ALICE and token.scopes == {"AccessReview.ReadWrite.All"}


async def test_refresh_fails_after_sessions_revoked(login: Login) -> None:
    app = await login.app()
    sso = login.identity.issue_sso_token(user_oid=ALICE, app_id=BOT_ID)
    assert "access_token" in await call(app.acquire_token_on_behalf_of, sso, [RW])
    account = (await call(app.get_accounts))[0]
    for entry in list(app.token_cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
        app.token_cache.remove_at(entry)
    login.identity.revoke_sessions(ALICE)
    result = await call(app.acquire_token_silent_with_error, [RW], account=account)
    assert result is not None and result["error"] == "invalid_grant"
    assert 50173 in result["error_codes"]


async def test_graph_rejects_expired_obo_token(login: Login) -> None:
    app = await login.app()
    sso = login.identity.issue_sso_token(user_oid=ALICE, app_id=BOT_ID)
    result = await call(app.acquire_token_on_behalf_of, sso, [RW])
    login.clock.advance(timedelta(seconds=3599 + 301))
    with pytest.raises(TokenError) as info:
        login.identity.validate_access_token(result["access_token"], audience=GRAPH_AUDIENCE)
    assert info.value.code == "InvalidAuthenticationToken"
    assert "expired" in info.value.message


async def test_obo_unconsented_scope_is_consent_required(login: Login) -> None:
    app = await login.app()
    sso = login.identity.issue_sso_token(user_oid=ALICE, app_id=BOT_ID)
    result = await call(
        app.acquire_token_on_behalf_of, sso, ["https://graph.microsoft.com/Directory.ReadWrite.All"]
    )
    assert result["error"] == "invalid_grant"
    assert result["suberror"] == "consent_required"
    assert result["error_codes"] == [65001]
    # After admin consent it works (with a fresh SSO token: msal replays the cached error for
    # an identical request for a while, as it should).
    login.identity.app(BOT_ID).delegated_permissions.add("Directory.ReadWrite.All")
    sso = login.identity.issue_sso_token(user_oid=ALICE, app_id=BOT_ID)
    result = await call(
        app.acquire_token_on_behalf_of, sso, ["https://graph.microsoft.com/Directory.ReadWrite.All"]
    )
    assert "access_token" in result, result


async def test_obo_dot_default_gives_all_consented_scopes(login: Login) -> None:
    login.identity.app(BOT_ID).delegated_permissions.add("User.Read")
    app = await login.app()
    sso = login.identity.issue_sso_token(user_oid=BOB, app_id=BOT_ID)
    result = await call(
        app.acquire_token_on_behalf_of, sso, ["https://graph.microsoft.com/.default"]
    )
    token = login.identity.validate_access_token(result["access_token"], audience=GRAPH_AUDIENCE)
    assert token.scopes == {"AccessReview.ReadWrite.All", "User.Read"}


async def test_obo_mfa_required_is_interaction_required_with_claims(login: Login) -> None:
    login.identity.set_mfa_required(ALICE)
    app = await login.app()
    sso = login.identity.issue_sso_token(user_oid=ALICE, app_id=BOT_ID)
    result = await call(app.acquire_token_on_behalf_of, sso, [RW])
    assert result["error"] == "interaction_required"
    assert result["error_codes"] == [50076]
    assert "capolids" in result["claims"]
    # An SSO token from an MFA sign-in satisfies the policy.
    sso_mfa = login.identity.issue_sso_token(user_oid=ALICE, app_id=BOT_ID, mfa=True)
    result = await call(app.acquire_token_on_behalf_of, sso_mfa, [RW])
    assert "access_token" in result, result
    # Other users are not affected.
    sso_bob = login.identity.issue_sso_token(user_oid=BOB, app_id=BOT_ID)
    assert "access_token" in await call(app.acquire_token_on_behalf_of, sso_bob, [RW])


async def test_obo_expired_assertion(login: Login) -> None:
    app = await login.app()
    sso = login.identity.issue_sso_token(user_oid=ALICE, app_id=BOT_ID, expires_in_s=600)
    login.clock.advance(timedelta(seconds=600 + 301))
    result = await call(app.acquire_token_on_behalf_of, sso, [RW])
    assert result["error"] == "invalid_grant"
    assert result["error_codes"] == [500133]


async def test_obo_rejects_foreign_audience_and_forged_signature(login: Login) -> None:
    app = await login.app()
    graph_token = login.identity.issue_user_token(
        user_oid=ALICE, client_id=BOT_ID, scopes=["User.Read"]
    )
    result = await call(app.acquire_token_on_behalf_of, graph_token, [RW])
    assert result["error"] == "invalid_grant" and result["error_codes"] == [50013]
    assert "audience" in result["error_description"]

    sso = login.identity.issue_sso_token(user_oid=ALICE, app_id=BOT_ID)
    header, payload, signature = sso.split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    result = await call(app.acquire_token_on_behalf_of, f"{header}.{payload}.{flipped}", [RW])
    assert result["error"] == "invalid_grant" and result["error_codes"] == [50013]


async def test_obo_disabled_user(login: Login) -> None:
    USERS[BOB]["accountEnabled"] = False
    try:
        app = await login.app()
        sso = login.identity.issue_sso_token(user_oid=BOB, app_id=BOT_ID)
        result = await call(app.acquire_token_on_behalf_of, sso, [RW])
        assert result["error"] == "invalid_grant" and result["error_codes"] == [50057]
    finally:
        USERS[BOB]["accountEnabled"] = True


async def test_sso_needs_identifier_uri(login: Login) -> None:
    login.identity.register_app(
        AppRegistration(
            client_id="33333333-3333-4333-8333-333333333333", display_name="No SSO", secret="x"
        )
    )
    with pytest.raises(ValueError, match="identifier_uri"):
        login.identity.issue_sso_token(
            user_oid=ALICE, app_id="33333333-3333-4333-8333-333333333333"
        )


def test_ca_file_is_removed_on_close() -> None:
    identity = Identity(
        clock=ManualClock(datetime.now(UTC)), tenant_id=TENANT_ID, user_lookup=lookup
    )
    assert os.path.exists(identity.ca_pem_path)
    identity.close()
    assert not os.path.exists(identity.ca_pem_path)
