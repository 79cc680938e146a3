"""The emulated managed identity endpoint, IMDS-shaped and App Service/Container Apps-shaped, and
its tokens standing in as federated credentials of the app that trusts the identity. Requests are
raw where the wire shape is the point, and go through msal's ManagedIdentityClient (found from the
environment a real platform sets) where the client's behaviour is."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
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
    IMDS_PATH,
    MSI_PATH,
    TOKEN_EXCHANGE_AUDIENCE,
    AppRegistration,
    FederatedIdentityCredential,
    Identity,
    ManagedIdentity,
)
from tests.credentials.support import (
    MANAGED_IDENTITY_CLIENT_ID,
    MANAGED_IDENTITY_PRINCIPAL_ID,
    LoginSite,
    clear_managed_identity_environment,
    login_site,
)

TENANT_ID = "7d5c2a3e-4f1b-4c55-9a11-2b8e6f0d9c01"
BOT_ID = "0f4b6a52-1c2d-4e3f-8a9b-0c1d2e3f4a5b"


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
            served.identity.add_managed_identity(
                client_id=MANAGED_IDENTITY_CLIENT_ID, principal_id=MANAGED_IDENTITY_PRINCIPAL_ID
            )
            yield served
    finally:
        identity.close()


async def imds(site: LoginSite, *, headers: dict[str, str] | None = None, **params: str) -> Any:
    query = {
        "api-version": "2018-02-01",
        "resource": TOKEN_EXCHANGE_AUDIENCE,
        "client_id": MANAGED_IDENTITY_CLIENT_ID,
        **params,
    }
    query = {k: v for k, v in query.items() if v}
    return await site.http.get(
        f"{site.managed_identity_url}{IMDS_PATH}",
        params=query,
        headers={"Metadata": "true"} if headers is None else headers,
    )


async def app_service(
    site: LoginSite, *, header: str | None = "use-the-real-one", **params: str
) -> Any:
    query = {
        "api-version": "2019-08-01",
        "resource": TOKEN_EXCHANGE_AUDIENCE,
        "client_id": MANAGED_IDENTITY_CLIENT_ID,
        **params,
    }
    headers = {}
    if header == "use-the-real-one":
        headers["X-IDENTITY-HEADER"] = site.identity.managed_identity_endpoint.identity_header
    elif header is not None:
        headers["X-IDENTITY-HEADER"] = header
    return await site.http.get(
        f"{site.managed_identity_url}{MSI_PATH}", params=query, headers=headers
    )


async def test_imds_gives_the_identity_a_token_for_the_exchange_audience(site: LoginSite) -> None:
    response = await imds(site)
    assert response.status_code == 200, response.text
    body = response.json()
    # The documented sample's shape: times as strings.
    assert set(body) >= {"access_token", "expires_in", "expires_on", "not_before", "resource"}
    assert isinstance(body["expires_in"], str) and int(body["expires_in"]) > 3600
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["iss"] == site.identity.v2_issuer()
    assert claims["sub"] == claims["oid"] == MANAGED_IDENTITY_PRINCIPAL_ID
    assert claims["aud"] == TOKEN_EXCHANGE_AUDIENCE and claims["azp"] == MANAGED_IDENTITY_CLIENT_ID
    # The same identity can be named by its object id or its resource id.
    assert (
        await imds(site, client_id="", object_id=MANAGED_IDENTITY_PRINCIPAL_ID)
    ).status_code == 200
    resource_id = ManagedIdentity(
        MANAGED_IDENTITY_CLIENT_ID, MANAGED_IDENTITY_PRINCIPAL_ID
    ).resource_id
    assert (await imds(site, client_id="", msi_res_id=resource_id)).status_code == 200


@pytest.mark.parametrize(
    ("case", "error", "description"),
    [
        ("no_metadata", "bad_request_102", "Required metadata header not specified"),
        ("metadata_not_lowercase", "bad_request_102", "Required metadata header not specified"),
        ("through_a_proxy", "invalid_request", "proxy"),
        ("no_api_version", "invalid_request", "api-version"),
        ("old_api_version", "invalid_request", "api-version"),
        ("no_resource", "invalid_request", "'resource' is missing"),
        ("system_assigned", "invalid_request", "Identity not found"),
        ("unknown_identity", "invalid_request", "Identity not found"),
        ("two_selectors", "invalid_request", "only one of"),
        ("unknown_resource", "invalid_resource", "was not found"),
    ],
)
async def test_imds_refusals(site: LoginSite, case: str, error: str, description: str) -> None:
    kwargs: dict[str, Any] = {
        "no_metadata": {"headers": {}},
        "metadata_not_lowercase": {"headers": {"Metadata": "True"}},
        "through_a_proxy": {"headers": {"Metadata": "true", "X-Forwarded-For": "10.0.0.1"}},
        "no_api_version": {"api-version": ""},
        "old_api_version": {"api-version": "2017-09-01"},
        "no_resource": {"resource": ""},
        "system_assigned": {"client_id": ""},
        "unknown_identity": {"client_id": "00000000-0000-0000-0000-000000000001"},
        "two_selectors": {"object_id": MANAGED_IDENTITY_PRINCIPAL_ID},
        "unknown_resource": {"resource": "https://vault.azure.net"},
    }[case]
    response = await imds(site, **kwargs)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == error and description in body["error_description"]
    assert "access_token" not in body


async def test_app_service_shape(site: LoginSite) -> None:
    response = await app_service(site)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["client_id"] == MANAGED_IDENTITY_CLIENT_ID and isinstance(body["expires_on"], str)
    assert "expires_in" not in body
    missing = await app_service(site, header=None)
    assert missing.status_code == 400 and "X-IDENTITY-HEADER" in missing.json()["message"]
    wrong = await app_service(site, header="guessed")
    assert wrong.status_code == 401 and wrong.json()["statusCode"] == 401
    old = await app_service(site, **{"api-version": "2017-09-01"})
    assert old.status_code == 400
    site.identity.managed_identity_endpoint.detach(
        site.identity.managed_identities[MANAGED_IDENTITY_CLIENT_ID]
    )
    gone = await app_service(site)
    assert gone.status_code == 400 and gone.json()["message"] == "Identity not found"


def _msal_managed_identity_token(resource: str) -> dict[str, Any]:
    session = requests.Session()
    session.trust_env = False
    try:
        client = msal.ManagedIdentityClient(
            msal.UserAssignedManagedIdentity(client_id=MANAGED_IDENTITY_CLIENT_ID),
            http_client=session,
        )
        result: dict[str, Any] = client.acquire_token_for_client(resource=resource)
        return result
    finally:
        session.close()


@pytest.mark.parametrize("shape", ["imds", "app_service"])
async def test_msal_finds_the_endpoint_from_the_platforms_environment(
    site: LoginSite, monkeypatch: pytest.MonkeyPatch, shape: str
) -> None:
    clear_managed_identity_environment(monkeypatch)
    if shape == "imds":
        monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", site.managed_identity_url)
    else:
        monkeypatch.setenv("IDENTITY_ENDPOINT", f"{site.managed_identity_url}{MSI_PATH}")
        monkeypatch.setenv(
            "IDENTITY_HEADER", site.identity.managed_identity_endpoint.identity_header
        )
    result = await asyncio.to_thread(_msal_managed_identity_token, TOKEN_EXCHANGE_AUDIENCE)
    assert "access_token" in result, result
    assert result["expires_in"] > 23 * 3600
    [last] = site.identity.managed_identity_endpoint.requests[-1:]
    assert last["shape"] == shape and last["status"] == 200 and last["metadata"] == "true"


async def test_the_identitys_token_is_a_federated_credential_of_the_app(site: LoginSite) -> None:
    token = (await imds(site)).json()["access_token"]
    app = site.identity.app(BOT_ID)
    form = {
        "grant_type": "client_credentials",
        "client_id": BOT_ID,
        "scope": "https://graph.microsoft.com/.default",
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": token,
    }
    untrusted = await site.token(form)
    assert untrusted.status_code == 401 and untrusted.json()["error_codes"] == [70021]
    app.federated_credentials.append(
        FederatedIdentityCredential(
            name="bot-identity",
            issuer=site.identity.v2_issuer(),
            subject=MANAGED_IDENTITY_PRINCIPAL_ID,
        )
    )
    trusted = await site.token(form)
    assert trusted.status_code == 200, trusted.text
    claims = site.identity.validate_access_token(
        trusted.json()["access_token"], audience=GRAPH_AUDIENCE
    )
    assert claims.app_id == BOT_ID
