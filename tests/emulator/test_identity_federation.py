"""Workload identity federation in the emulated Entra ID: an external OIDC issuer (its own
metadata and keys), federated identity credentials on the app, and the AADSTS codes for an
assertion that matches none of them. Driven with the real msal (``client_assertion`` callable)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import jwt
import msal
import pytest
import requests

from emulator.clock import ManualClock
from emulator.identity import (
    CLIENT_ASSERTION_TYPE,
    GRAPH_AUDIENCE,
    TOKEN_EXCHANGE_AUDIENCE,
    AppRegistration,
    ExternalIssuer,
    FederatedIdentityCredential,
    Identity,
)
from tests.credentials.support import SERVICE_ACCOUNT, LoginSite, login_site

TENANT_ID = "7d5c2a3e-4f1b-4c55-9a11-2b8e6f0d9c01"
BOT_ID = "0f4b6a52-1c2d-4e3f-8a9b-0c1d2e3f4a5b"
SCOPE = "https://graph.microsoft.com/.default"


@pytest.fixture
async def site() -> AsyncIterator[LoginSite]:
    identity = Identity(
        clock=ManualClock(datetime.now(UTC)), tenant_id=TENANT_ID, user_lookup=lambda _: None
    )
    identity.register_app(
        AppRegistration(
            client_id=BOT_ID,
            display_name="Access Review Bot",
            application_permissions={"AccessReview.Read.All"},
        )
    )
    try:
        async with login_site(identity) as served:
            yield served
    finally:
        identity.close()


def trust(site: LoginSite, issuer: str, subject: str = SERVICE_ACCOUNT, **kwargs: Any) -> None:
    site.identity.app(BOT_ID).federated_credentials.append(
        FederatedIdentityCredential(name="aks", issuer=issuer, subject=subject, **kwargs)
    )


async def msal_token(site: LoginSite, assertion: Callable[[], str]) -> dict[str, Any]:
    """Client credentials through the real msal with ``{"client_assertion": callable}``."""
    session = requests.Session()
    session.trust_env = False
    session.verify = site.identity.ca_pem_path
    try:
        app = await asyncio.to_thread(
            msal.ConfidentialClientApplication,
            BOT_ID,
            client_credential={"client_assertion": assertion},
            authority=f"{site.url}/{TENANT_ID}",
            instance_discovery=False,
            http_client=session,
        )
        result: dict[str, Any] = await asyncio.to_thread(app.acquire_token_for_client, [SCOPE])
        return result
    finally:
        session.close()


async def test_the_external_issuer_publishes_its_metadata_and_keys(site: LoginSite) -> None:
    issuer = site.identity.add_external_issuer("aks")
    metadata = (await site.http.get(f"{issuer.url}/.well-known/openid-configuration")).json()
    assert metadata["issuer"] == issuer.url
    keys = (await site.http.get(metadata["jwks_uri"])).json()["keys"]
    token = issuer.mint(subject=SERVICE_ACCOUNT)
    header = jwt.get_unverified_header(token)
    [jwk] = [k for k in keys if k["kid"] == header["kid"]]
    claims = jwt.decode(
        token,
        jwt.PyJWK(jwk).key,
        algorithms=["RS256"],
        audience=TOKEN_EXCHANGE_AUDIENCE,
        issuer=issuer.url,
    )
    assert claims["sub"] == SERVICE_ACCOUNT
    assert (await site.http.get(f"{site.url}/external/nobody/keys")).status_code == 404


async def test_a_token_matching_a_federated_credential_gets_an_app_token(site: LoginSite) -> None:
    issuer = site.identity.add_external_issuer("aks")
    trust(site, issuer.url)
    token = issuer.mint(subject=SERVICE_ACCOUNT)
    calls: list[str] = []

    def from_file() -> str:
        calls.append(token)
        return token

    result = await msal_token(site, from_file)
    assert "access_token" in result, result
    claims = site.identity.validate_access_token(result["access_token"], audience=GRAPH_AUDIENCE)
    assert claims.app_id == BOT_ID and "AccessReview.Read.All" in claims.roles
    # The same federated token is accepted again: no jti replay rule for federated assertions
    # (Kubernetes hands out the same projected token for an hour).
    again = await msal_token(site, from_file)
    assert "access_token" in again and len(calls) == 2
    assert site.identity.client_auth.counts == {"federated": 2}


@pytest.mark.parametrize(
    ("case", "code", "text"),
    [
        (
            "no_credentials",
            70021,
            "No matching federated identity record found for presented assertion.",
        ),
        ("other_issuer", 700211, "assertion issuer"),
        ("other_subject", 700213, "assertion subject 'system:serviceaccount:other:bot'"),
        ("subject_case", 700213, "case-sensitive"),
        ("other_audience", 700212, "assertion audience 'api://something-else'"),
        ("expired", 700024, "not within its valid time range"),
        ("forged", 700027, "failed signature validation"),
        ("unknown_issuer_keys", 700027, "could not be retrieved"),
        ("entra_token", 700222, "AAD-issued tokens may not be used"),
    ],
)
async def test_assertions_that_match_no_federated_credential_are_refused(
    site: LoginSite, case: str, code: int, text: str
) -> None:
    issuer = site.identity.add_external_issuer("aks")
    impostor = ExternalIssuer("aks", lambda: site.url)  # same name and URL, another key
    now = int(time.time())
    if case != "no_credentials":
        trust(site, issuer.url)
    token = issuer.mint(subject=SERVICE_ACCOUNT)
    if case == "other_issuer":
        other = site.identity.add_external_issuer("github")
        token = other.mint(subject=SERVICE_ACCOUNT)
    elif case == "other_subject":
        token = issuer.mint(subject="system:serviceaccount:other:bot")
    elif case == "subject_case":
        token = issuer.mint(subject=SERVICE_ACCOUNT.upper())
    elif case == "other_audience":
        token = issuer.mint(subject=SERVICE_ACCOUNT, audience="api://something-else")
    elif case == "expired":
        token = issuer.mint(subject=SERVICE_ACCOUNT, now_s=now - 7200, lifetime_s=3600)
    elif case == "forged":
        token = impostor.mint(subject=SERVICE_ACCOUNT)
    elif case == "unknown_issuer_keys":
        # A trusted issuer whose OpenID configuration the emulated Entra cannot fetch.
        elsewhere = ExternalIssuer("cluster", lambda: "https://oidc.example.test")
        trust(site, elsewhere.url)
        token = elsewhere.mint(subject=SERVICE_ACCOUNT)
    elif case == "entra_token":
        # An ordinary Entra access token of another app, presented as if it were a managed
        # identity's: the tenant's issuer is trusted, but only managed identities may do this.
        site.identity.register_app(AppRegistration(client_id="other-app", display_name="Other"))
        trust(site, site.identity.v2_issuer(), subject="some-principal")
        claims = {
            "iss": site.identity.v2_issuer(),
            "sub": "some-principal",
            "aud": TOKEN_EXCHANGE_AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + 600,
        }
        from emulator.identity.keys import sign

        token = sign(claims, site.identity.signing_key)
    response = await site.token(
        {
            "grant_type": "client_credentials",
            "client_id": BOT_ID,
            "scope": SCOPE,
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": token,
        }
    )
    body = response.json()
    assert response.status_code == 401 and body["error"] == "invalid_client", body
    assert body["error_codes"] == [code], body
    assert text in body["error_description"]


async def test_a_wrong_subject_through_msal_is_an_error_result_not_an_exception(
    site: LoginSite,
) -> None:
    issuer = site.identity.add_external_issuer("aks")
    trust(site, issuer.url)
    result = await msal_token(site, lambda: issuer.mint(subject="system:serviceaccount:x:y"))
    assert result["error"] == "invalid_client" and result["error_codes"] == [700213]
