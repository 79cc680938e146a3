"""The emulated token endpoint checks certificate assertions (private_key_jwt) as Entra does:
thumbprint headers, signature, ``iss``/``sub``, ``aud``, ``exp``/``nbf``, and ``jti`` replay."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import msal
import pytest
import requests
from cryptography.hazmat.primitives import hashes

from emulator.clock import ManualClock
from emulator.identity import (
    CLIENT_ASSERTION_TYPE,
    GRAPH_AUDIENCE,
    AppRegistration,
    Identity,
)
from tests.credentials.support import Certificate, LoginSite, login_site, make_certificate

TENANT_ID = "7d5c2a3e-4f1b-4c55-9a11-2b8e6f0d9c01"
BOT_ID = "0f4b6a52-1c2d-4e3f-8a9b-0c1d2e3f4a5b"
SCOPE = "https://graph.microsoft.com/.default"


def b64(raw: bytes) -> str:
    return jwt.utils.base64url_encode(raw).decode()


def assertion(
    site: LoginSite,
    certificate: Certificate,
    *,
    signing_key: Any = None,
    headers: Mapping[str, Any] | None = None,
    algorithm: str = "PS256",
    **claim_overrides: Any,
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "aud": site.token_url(),
        "iss": BOT_ID,
        "sub": BOT_ID,
        "jti": str(uuid.uuid4()),
        "nbf": now,
        "iat": now,
        "exp": now + 600,
    }
    for name, value in claim_overrides.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    header = {
        "typ": "JWT",
        "x5t#S256": b64(certificate.certificate.fingerprint(hashes.SHA256())),
        "x5t": b64(certificate.certificate.fingerprint(hashes.SHA1())),
    }
    header.update(headers or {})
    header = {k: v for k, v in header.items() if v is not None}
    return jwt.encode(claims, signing_key or certificate.key, algorithm=algorithm, headers=header)


def form(client_assertion: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": BOT_ID,
        "scope": SCOPE,
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": client_assertion,
    }


@pytest.fixture
def certificate() -> Certificate:
    return make_certificate(common_name="bot")


@pytest.fixture
async def site(certificate: Certificate) -> AsyncIterator[LoginSite]:
    identity = Identity(
        clock=ManualClock(datetime.now(UTC)), tenant_id=TENANT_ID, user_lookup=lambda _: None
    )
    identity.register_app(
        AppRegistration(
            client_id=BOT_ID,
            display_name="Access Review Bot",
            certificates=[certificate.pem],
            application_permissions={"AccessReview.Read.All"},
        )
    )
    try:
        async with login_site(identity) as served:
            yield served
    finally:
        identity.close()


async def refused(site: LoginSite, client_assertion: str) -> tuple[int, dict[str, Any]]:
    response = await site.token(form(client_assertion))
    body = response.json()
    assert "access_token" not in body, body
    return response.status_code, body


async def test_a_good_assertion_gets_an_app_token_marked_certificate(
    site: LoginSite, certificate: Certificate
) -> None:
    response = await site.token(form(assertion(site, certificate)))
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    claims = site.identity.validate_access_token(token, audience=GRAPH_AUDIENCE)
    assert claims.raw_claims["appidacr"] == "2" and claims.app_id == BOT_ID
    assert site.identity.client_auth.counts == {"certificate": 1}
    # RS256 with the SHA-1 thumbprint only (x5t, what AD FS-era clients send) is accepted too.
    legacy = assertion(site, certificate, algorithm="RS256", headers={"x5t#S256": None})
    assert (await site.token(form(legacy))).status_code == 200


@pytest.mark.parametrize(
    ("spoil", "code", "text"),
    [
        ("other_key", 700027, "failed signature validation"),
        ("unknown_thumbprint", 700027, "The key was not found"),
        ("no_thumbprint", 700027, "names no x5t"),
        ("mixed_thumbprints", 700027, "The key was not found"),
        ("wrong_aud", 50027, "audience is invalid"),
        ("sub_not_iss", 50048, "Subject mismatches Issuer"),
        ("expired", 700024, "not within its valid time range"),
        ("not_yet_valid", 700024, "not within its valid time range"),
        ("no_jti", 50027, "no 'jti'"),
        ("hs256", 700027, "failed signature validation"),
    ],
)
async def test_spoiled_assertions_get_entras_codes(
    site: LoginSite, certificate: Certificate, spoil: str, code: int, text: str
) -> None:
    now = int(time.time())
    other = make_certificate(common_name="someone else")
    spoiled = {
        "other_key": lambda: assertion(site, certificate, signing_key=other.key),
        "unknown_thumbprint": lambda: assertion(site, other),
        "no_thumbprint": lambda: assertion(
            site, certificate, headers={"x5t": None, "x5t#S256": None}
        ),
        "mixed_thumbprints": lambda: assertion(
            site, certificate, headers={"x5t": b64(other.certificate.fingerprint(hashes.SHA1()))}
        ),
        "wrong_aud": lambda: assertion(site, certificate, aud="https://login.example.test/token"),
        "sub_not_iss": lambda: assertion(site, certificate, sub="someone-else"),
        "expired": lambda: assertion(
            site, certificate, nbf=now - 4000, iat=now - 4000, exp=now - 3000
        ),
        "not_yet_valid": lambda: assertion(site, certificate, nbf=now + 3600, exp=now + 4000),
        "no_jti": lambda: assertion(site, certificate, jti=None),
        "hs256": lambda: jwt.encode(
            {"iss": BOT_ID, "sub": BOT_ID, "aud": site.token_url(), "exp": now + 600},
            "a-shared-secret-of-enough-length",
            algorithm="HS256",
            headers={"x5t#S256": b64(certificate.certificate.fingerprint(hashes.SHA256()))},
        ),
    }[spoil]()
    status, body = await refused(site, spoiled)
    assert status == 401 and body["error"] == "invalid_client"
    assert body["error_codes"] == [code] and text in body["error_description"]
    assert body["error_description"].startswith(f"AADSTS{code}:")


async def test_a_replayed_jti_is_refused(site: LoginSite, certificate: Certificate) -> None:
    once = assertion(site, certificate)
    assert (await site.token(form(once))).status_code == 200
    status, body = await refused(site, once)
    assert status == 401 and body["error_codes"] == [50027]
    assert "used before" in body["error_description"]
    # A new assertion (new jti) from the same certificate is fine.
    assert (await site.token(form(assertion(site, certificate)))).status_code == 200


async def test_an_expired_registered_certificate_is_refused_as_entra_says(site: LoginSite) -> None:
    now = datetime.now(UTC)
    old = make_certificate(not_before=now - timedelta(days=400), not_after=now - timedelta(days=1))
    site.identity.app(BOT_ID).certificates.append(old.pem)
    status, body = await refused(site, assertion(site, old))
    assert status == 401 and body["error_codes"] == [700027]
    assert "The key used is expired" in body["error_description"]


async def test_a_second_registered_certificate_works_and_removing_one_stops_it(
    site: LoginSite, certificate: Certificate
) -> None:
    renewal = make_certificate(common_name="renewal")
    site.identity.app(BOT_ID).certificates.append(renewal.pem)
    assert (await site.token(form(assertion(site, renewal)))).status_code == 200
    site.identity.app(BOT_ID).certificates.remove(certificate.pem)
    status, body = await refused(site, assertion(site, certificate))
    assert status == 401 and body["error_codes"] == [700027]
    assert "The key was not found" in body["error_description"]


async def test_msal_own_certificate_support_replays_its_assertion(
    site: LoginSite, certificate: Certificate
) -> None:
    """Why the bot signs every assertion itself: msal signs one and reuses it for nine minutes
    (``AutoRefresher``), which an authority refusing replayed ``jti`` values turns down."""
    session = requests.Session()
    session.trust_env = False
    session.verify = site.identity.ca_pem_path
    key_pem = certificate.key_pem().decode()
    app = await asyncio.to_thread(
        msal.ConfidentialClientApplication,
        BOT_ID,
        client_credential={"private_key": key_pem, "public_certificate": certificate.pem.decode()},
        authority=f"{site.url}/{TENANT_ID}",
        instance_discovery=False,
        http_client=session,
    )
    try:
        first = await asyncio.to_thread(app.acquire_token_for_client, [SCOPE])
        assert "access_token" in first, first
        app.remove_tokens_for_client()
        second = await asyncio.to_thread(app.acquire_token_for_client, [SCOPE])
        assert second.get("error_codes") == [50027], second
    finally:
        session.close()
