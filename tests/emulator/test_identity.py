"""The emulated Entra ID: token validation for resources, channel tokens, metadata and the token
endpoint's raw protocol (what msal does not exercise), in-process and over loopback https."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
import requests
from aiohttp import web
from jwt.algorithms import RSAAlgorithm

from emulator.clock import ManualClock
from emulator.faults import FaultRule, Faults
from emulator.identity import (
    BOT_FRAMEWORK_AUDIENCE,
    CHANNEL_TOKEN_ISSUER,
    GRAPH_AUDIENCE,
    AppRegistration,
    Identity,
    TokenError,
)

TENANT_ID = "7d5c2a3e-4f1b-4c55-9a11-2b8e6f0d9c01"
OTHER_TENANT = "9a9a9a9a-0000-4000-8000-000000000001"
BOT_ID = "0f4b6a52-1c2d-4e3f-8a9b-0c1d2e3f4a5b"
SECRET = "s3cret"
ALICE = "11111111-1111-4111-8111-111111111111"
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def lookup(key: str) -> Mapping[str, Any] | None:
    if key in (ALICE, "alice@contoso.test"):
        return {"id": ALICE, "userPrincipalName": "alice@contoso.test", "displayName": "Alice"}
    return None


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def identity(clock: ManualClock) -> Any:
    value = Identity(clock=clock, tenant_id=TENANT_ID, user_lookup=lookup)
    value.register_app(
        AppRegistration(
            client_id=BOT_ID,
            display_name="Bot",
            secret=SECRET,
            application_permissions={"User.Read.All"},
            delegated_permissions={"AccessReview.ReadWrite.All"},
            identifier_uri=f"api://botid-{BOT_ID}",
        )
    )
    yield value
    value.close()


# ---------------------------------------------------------------------- validation
def test_delegated_token_fields(identity: Identity) -> None:
    token = identity.issue_user_token(
        user_oid=ALICE, client_id=BOT_ID, scopes=["AccessReview.ReadWrite.All", "User.Read"]
    )
    access = identity.validate_access_token(token, audience=GRAPH_AUDIENCE)
    assert access.is_delegated
    assert (access.oid, access.upn, access.tenant_id, access.app_id) == (
        ALICE,
        "alice@contoso.test",
        TENANT_ID,
        BOT_ID,
    )
    assert access.scopes == {"AccessReview.ReadWrite.All", "User.Read"}
    assert access.roles == frozenset()
    claims = access.raw_claims
    assert claims["iss"] == f"https://sts.windows.net/{TENANT_ID}/"
    assert claims["ver"] == "1.0" and claims["idtyp"] == "user"


def test_app_token_fields(identity: Identity) -> None:
    access = identity.validate_access_token(
        identity.issue_app_token(client_id=BOT_ID), audience=GRAPH_AUDIENCE
    )
    assert not access.is_delegated
    assert access.roles == {"User.Read.All"} and access.scopes == frozenset()
    assert access.oid is None and access.upn is None
    assert access.raw_claims["oid"]  # the service principal's object id
    assert access.raw_claims["idtyp"] == "app"


def expect_rejected(
    identity: Identity, token: str, message: str, audience: str = GRAPH_AUDIENCE
) -> None:
    with pytest.raises(TokenError) as info:
        identity.validate_access_token(token, audience=audience)
    assert info.value.status == 401
    assert info.value.code == "InvalidAuthenticationToken"
    assert message in info.value.message


def test_validation_rejects(identity: Identity, clock: ManualClock) -> None:
    good = identity.issue_app_token(client_id=BOT_ID)
    expect_rejected(identity, "", "empty")
    expect_rejected(identity, "garbage", "not well formed")
    expect_rejected(identity, good, "Invalid audience", audience=BOT_FRAMEWORK_AUDIENCE)
    header, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["roles"] = ["Directory.ReadWrite.All"]  # privilege escalation attempt
    tampered = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    expect_rejected(identity, f"{header}.{tampered}.{signature}", "Invalid signature")
    # Another tenant's issuer.
    foreign = identity.issue_app_token(client_id=BOT_ID, tenant_id=OTHER_TENANT)
    expect_rejected(identity, foreign, "Invalid issuer")
    # A channel token is signed by the channel key, which is not an Entra signing key.
    channel = identity.sign_channel_token(app_id=BOT_ID, service_url="http://x/")
    expect_rejected(identity, channel, "Invalid signature")
    # Expiry on the emulator clock, with the 5 minute skew.
    clock.advance(timedelta(seconds=3599 + 300))
    identity.validate_access_token(good, audience=GRAPH_AUDIENCE)
    clock.advance(timedelta(seconds=2))
    expect_rejected(identity, good, "expired")
    # Not yet valid.
    clock.set(START - timedelta(hours=1))
    expect_rejected(identity, good, "not yet valid")


def test_graph_app_id_audience_is_accepted(identity: Identity) -> None:
    token = identity.issue_app_token(
        client_id=BOT_ID, audience="00000003-0000-0000-c000-000000000000"
    )
    assert identity.validate_access_token(token, audience=GRAPH_AUDIENCE).app_id == BOT_ID


def test_bot_framework_tokens_from_botframework_tenant(identity: Identity) -> None:
    token = identity.issue_app_token(
        client_id=BOT_ID,
        audience=BOT_FRAMEWORK_AUDIENCE,
        tenant_id="d6d49420-f39b-4df7-a1dc-d59a935871db",
    )
    assert identity.validate_access_token(token, audience=BOT_FRAMEWORK_AUDIENCE)
    # ... but Graph does not take the botframework.com issuer.
    token = identity.issue_app_token(
        client_id=BOT_ID, audience=GRAPH_AUDIENCE, tenant_id="d6d49420-f39b-4df7-a1dc-d59a935871db"
    )
    expect_rejected(identity, token, "Invalid issuer")


def test_sso_token(identity: Identity, clock: ManualClock) -> None:
    token = identity.issue_sso_token(user_oid=ALICE, app_id=BOT_ID)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["aud"] == f"api://botid-{BOT_ID}"
    assert claims["scp"] == "access_as_user"
    assert claims["oid"] == ALICE and claims["tid"] == TENANT_ID
    assert claims["exp"] == int(START.timestamp()) + 3600
    with pytest.raises(ValueError, match="no such user"):
        identity.issue_sso_token(user_oid="nobody", app_id=BOT_ID)


def test_channel_token_claims(identity: Identity) -> None:
    token = identity.sign_channel_token(app_id=BOT_ID, service_url="http://127.0.0.1:1/")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == CHANNEL_TOKEN_ISSUER
    assert claims["aud"] == BOT_ID
    assert claims["serviceurl"] == "http://127.0.0.1:1/"
    assert {"nbf", "iat", "exp"} <= set(claims)
    assert "ver" not in claims and "appid" not in claims
    # Channel tokens live on the wall clock (the bot's SDK checks them with time.time()).
    now_s = datetime.now(UTC).timestamp()
    assert abs(claims["exp"] - (now_s + 3600)) < 60
    forged = identity.sign_channel_token(
        app_id=BOT_ID, service_url="x", serviceurl=None, aud="other"
    )
    forged_claims = jwt.decode(forged, options={"verify_signature": False})
    assert "serviceurl" not in forged_claims and forged_claims["aud"] == "other"


# ---------------------------------------------------------------------- over https
@pytest.fixture
async def login(identity: Identity, clock: ManualClock) -> AsyncIterator[tuple[str, Faults]]:
    faults = Faults(clock=clock)
    runner = web.AppRunner(identity.make_app(faults))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=identity.server_ssl_context())
    await site.start()
    try:
        yield f"https://127.0.0.1:{runner.addresses[0][1]}", faults
    finally:
        await runner.cleanup()


@pytest.fixture
async def http(identity: Identity) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(verify=identity.client_ssl_context()) as client:
        yield client


async def test_openid_configuration_and_keys(
    identity: Identity, login: tuple[str, Faults], http: httpx.AsyncClient
) -> None:
    url, _ = login
    config = (await http.get(f"{url}/{TENANT_ID}/v2.0/.well-known/openid-configuration")).json()
    assert config["token_endpoint"] == f"{url}/{TENANT_ID}/oauth2/v2.0/token"
    assert config["jwks_uri"] == f"{url}/{TENANT_ID}/discovery/v2.0/keys"
    assert config["authorization_endpoint"].startswith(url)
    keys = (await http.get(config["jwks_uri"])).json()["keys"]
    token = identity.issue_app_token(client_id=BOT_ID)
    [key] = [k for k in keys if k["kid"] == jwt.get_unverified_header(token)["kid"]]
    claims = jwt.decode(
        token,
        RSAAlgorithm.from_jwk(json.dumps(key)),
        algorithms=["RS256"],
        audience=GRAPH_AUDIENCE,
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    assert claims["appid"] == BOT_ID
    missing = await http.get(f"{url}/{OTHER_TENANT}/v2.0/.well-known/openid-configuration")
    assert missing.status_code == 400
    assert missing.json()["error_codes"] == [90002]


async def test_https_is_verified_against_the_ca_only(login: tuple[str, Faults]) -> None:
    url, _ = login
    async with httpx.AsyncClient(verify=True) as system_trust:
        with pytest.raises(httpx.ConnectError):
            await system_trust.get(f"{url}/{TENANT_ID}/v2.0/.well-known/openid-configuration")


async def post_token(
    http: httpx.AsyncClient, url: str, data: dict[str, str], **kwargs: Any
) -> httpx.Response:
    return await http.post(f"{url}/{TENANT_ID}/oauth2/v2.0/token", data=data, **kwargs)


async def test_token_endpoint_protocol_errors(
    login: tuple[str, Faults], http: httpx.AsyncClient
) -> None:
    url, _ = login
    base = {"client_id": BOT_ID, "client_secret": SECRET}
    response = await post_token(http, url, {**base, "grant_type": "password"})
    assert response.status_code == 400 and response.json()["error"] == "unsupported_grant_type"
    response = await post_token(
        http,
        url,
        {
            **base,
            "grant_type": "client_credentials",
            "scope": f"{GRAPH_AUDIENCE}/.default {BOT_FRAMEWORK_AUDIENCE}/.default",
        },
    )
    assert response.json()["error"] == "invalid_scope"
    assert response.json()["error_codes"] == [28000]
    response = await post_token(
        http,
        url,
        {**base, "grant_type": "client_credentials", "scope": "https://unknown.example/.default"},
    )
    assert response.json()["error"] == "invalid_resource"
    response = await post_token(
        http,
        url,
        {
            **base,
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "requested_token_use": "on_behalf_of",
            "scope": "User.Read",
        },
    )
    assert response.json()["error_codes"] == [900144]
    response = await post_token(
        http,
        url,
        {
            "client_id": BOT_ID,
            "grant_type": "client_credentials",
            "scope": f"{GRAPH_AUDIENCE}/.default",
        },
    )
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    response = await post_token(
        http, url, {**base, "grant_type": "refresh_token", "refresh_token": "made-up"}
    )
    assert response.json()["error"] == "invalid_grant"


async def test_client_secret_basic(
    identity: Identity, login: tuple[str, Faults], http: httpx.AsyncClient
) -> None:
    url, _ = login
    response = await post_token(
        http,
        url,
        {"grant_type": "client_credentials", "scope": f"{GRAPH_AUDIENCE}/.default"},
        auth=(BOT_ID, SECRET),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3599
    assert (
        identity.validate_access_token(body["access_token"], audience=GRAPH_AUDIENCE).app_id
        == BOT_ID
    )


async def test_raw_obo_response_shape(
    identity: Identity, login: tuple[str, Faults], http: httpx.AsyncClient
) -> None:
    url, _ = login
    response = await post_token(
        http,
        url,
        {
            "client_id": BOT_ID,
            "client_secret": SECRET,
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "requested_token_use": "on_behalf_of",
            "assertion": identity.issue_sso_token(user_oid=ALICE, app_id=BOT_ID),
            "scope": "https://graph.microsoft.com/AccessReview.ReadWrite.All openid profile "
            "offline_access",
            "client_info": "1",
        },
    )
    body = response.json()
    assert response.status_code == 200, body
    assert body["scope"] == "https://graph.microsoft.com/AccessReview.ReadWrite.All"
    assert body["refresh_token"] and body["id_token"]
    info = json.loads(base64.urlsafe_b64decode(body["client_info"] + "=="))
    assert info == {"uid": ALICE, "utid": TENANT_ID}
    id_claims = jwt.decode(body["id_token"], options={"verify_signature": False})
    assert id_claims["aud"] == BOT_ID and id_claims["oid"] == ALICE
    assert id_claims["preferred_username"] == "alice@contoso.test"


async def test_login_faults(login: tuple[str, Faults], http: httpx.AsyncClient) -> None:
    url, faults = login
    faults.add(FaultRule(kind="status", service="login", status=503, remaining=1))
    config_url = f"{url}/{TENANT_ID}/v2.0/.well-known/openid-configuration"
    assert (await http.get(config_url)).status_code == 503
    assert (await http.get(config_url)).status_code == 200
    faults.add(FaultRule(kind="status", service="graph", status=503))
    assert (await http.get(config_url)).status_code == 200


async def test_channel_metadata_thread_server(identity: Identity) -> None:
    metadata_url = identity.serve_channel_metadata_in_thread()
    assert identity.serve_channel_metadata_in_thread() == metadata_url
    # Fetched the way botbuilder does: a blocking requests.get (here in a worker thread).
    metadata = (await asyncio.to_thread(requests.get, metadata_url, timeout=5)).json()
    assert metadata["issuer"] == CHANNEL_TOKEN_ISSUER
    keys = (await asyncio.to_thread(requests.get, metadata["jwks_uri"], timeout=5)).json()
    token = identity.sign_channel_token(app_id=BOT_ID, service_url="http://x/")
    [key] = keys["keys"]
    assert key["kid"] == jwt.get_unverified_header(token)["kid"]
    assert key["endorsements"] == ["msteams"]
    jwt.decode(token, RSAAlgorithm.from_jwk(json.dumps(key)), algorithms=["RS256"], audience=BOT_ID)
    identity.close()
    with pytest.raises(requests.exceptions.ConnectionError):
        await asyncio.to_thread(requests.get, metadata_url, timeout=5)
