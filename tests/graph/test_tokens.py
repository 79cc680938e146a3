"""Token providers with the real msal against the emulated Entra ID over https, and a real store."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet

from bot.graph import (
    AppTokenProvider,
    CertificateCredential,
    ConsentRequired,
    InteractionRequired,
    InvalidClient,
    NoCachedToken,
    OboTokenProvider,
    SsoTokenExpired,
    SsoTokenInvalid,
    TokenCacheCipher,
    TokenCacheUnreadable,
    TokenMetrics,
    TokenServiceUnavailable,
)
from bot.graph.errors import TokenAcquisitionError
from bot.graph.tokens import _raise_for_msal_result
from emulator.faults import FaultRule
from emulator.identity import GRAPH_AUDIENCE
from tests.graph.support import BOT_ID, TENANT_ID, USER_IDS, Login

ALICE = USER_IDS[0]
BOB = USER_IDS[1]


async def no_wait(_: float) -> None:
    return None


# -- the cipher ------------------------------------------------------------------------------


def test_cipher_round_trip_and_binding_to_the_store_key() -> None:
    cipher = TokenCacheCipher([Fernet.generate_key()])
    blob = cipher.encrypt(key="obo:t:alice", plaintext=b'{"RefreshToken": {"secret": "rt-1"}}')
    assert b"rt-1" not in blob and b"RefreshToken" not in blob
    assert cipher.decrypt(key="obo:t:alice", blob=blob) == b'{"RefreshToken": {"secret": "rt-1"}}'
    # Copying Alice's row to Bob's key does not let Bob's requests use Alice's tokens.
    with pytest.raises(TokenCacheUnreadable):
        cipher.decrypt(key="obo:t:bob", blob=blob)


def test_cipher_without_the_key_cannot_read_and_rotation_keeps_old_blobs() -> None:
    old_key, new_key = Fernet.generate_key(), Fernet.generate_key()
    blob = TokenCacheCipher([old_key]).encrypt(key="k", plaintext=b"secret cache")
    with pytest.raises(TokenCacheUnreadable):
        TokenCacheCipher([new_key]).decrypt(key="k", blob=blob)
    with pytest.raises(TokenCacheUnreadable):
        TokenCacheCipher([new_key]).decrypt(key="k", blob=blob[:-3] + b"xyz")
    rotated = TokenCacheCipher([new_key, old_key])
    assert rotated.decrypt(key="k", blob=blob) == b"secret cache"
    assert (
        TokenCacheCipher([new_key]).decrypt(key="k", blob=rotated.encrypt(key="k", plaintext=b"x"))
        == b"x"
    )


# -- error mapping -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "flow", "error_class"),
    [
        ({"error": "invalid_client", "error_codes": [7000215]}, "app", InvalidClient),
        ({"error": "unauthorized_client", "error_codes": [700016]}, "app", InvalidClient),
        (
            {"error": "invalid_grant", "error_codes": [65001], "suberror": "consent_required"},
            "obo",
            ConsentRequired,
        ),
        (
            {"error": "interaction_required", "error_codes": [50076], "claims": "{}"},
            "obo",
            InteractionRequired,
        ),
        ({"error": "invalid_grant", "error_codes": [500133]}, "obo", SsoTokenExpired),
        ({"error": "invalid_grant", "error_codes": [50013]}, "obo", SsoTokenInvalid),
        ({"error": "temporarily_unavailable"}, "obo", TokenServiceUnavailable),
        ({"error": {"code": "TooManyRequests"}}, "app", TokenServiceUnavailable),
        ({"error": "invalid_scope", "error_codes": [1002012]}, "app", TokenAcquisitionError),
    ],
)
def test_msal_errors_become_typed_errors(
    result: dict[str, Any], flow: str, error_class: type[Exception]
) -> None:
    with pytest.raises(error_class) as caught:
        _raise_for_msal_result(result, flow=flow)
    assert type(caught.value) is error_class


# -- app-only ----------------------------------------------------------------------------------


async def test_app_token_is_cached_persisted_encrypted_and_reused_after_restart(
    login: Login, store: Any
) -> None:
    provider = AppTokenProvider(login.settings(), store=store)
    try:
        first = await asyncio.gather(*(provider.get_token() for _ in range(20)))
        assert len(set(first)) == 1
        claims = login.identity.validate_access_token(first[0], audience=GRAPH_AUDIENCE)
        assert not claims.is_delegated and "AccessReview.Read.All" in claims.roles
        assert login.grants["client_credentials"] == 1
        blob = await store.get_token_cache(key=f"app:{BOT_ID}")
        assert blob and first[0].encode() not in blob
    finally:
        await provider.close()

    restarted = AppTokenProvider(login.settings(), store=store)
    try:
        assert await restarted.get_token() == first[0]
        assert login.grants["client_credentials"] == 1
        # After Graph refused it (401), a new one is fetched exactly once.
        renewed = await asyncio.gather(*(restarted.refresh_token(first[0]) for _ in range(5)))
        assert len(set(renewed)) == 1 and renewed[0] != first[0]
        assert login.grants["client_credentials"] == 2
    finally:
        await restarted.close()


async def test_app_token_with_a_certificate(login: Login, store: Any) -> None:
    credential = CertificateCredential(login.cert_key_pem)
    settings = login.settings(client_secret=None, credential=credential)
    provider = AppTokenProvider(settings, store=store)
    try:
        token = await provider.get_token()
        # A forced renewal signs a second assertion (a new jti): the first is never replayed.
        renewed = await provider.refresh_token(token)
    finally:
        await provider.close()
    claims = login.identity.validate_access_token(token, audience=GRAPH_AUDIENCE)
    assert claims.raw_claims["appidacr"] == "2"
    assert renewed != token
    assert credential.assertions_signed == 2 and login.grants["client_credentials"] == 2


async def test_wrong_secret_is_invalid_client(login: Login, store: Any) -> None:
    provider = AppTokenProvider(login.settings(client_secret="nope"), store=store)
    try:
        with pytest.raises(InvalidClient) as caught:
            await provider.get_token()
    finally:
        await provider.close()
    assert 7000215 in caught.value.error_codes


async def test_token_service_down_is_unavailable_after_bounded_retries(
    login: Login, store: Any
) -> None:
    metrics = TokenMetrics()
    provider = AppTokenProvider(
        login.settings(), store=store, sleep=no_wait, max_attempts=3, metrics=metrics
    )
    # Let discovery through, then drop every token request.
    login.faults.add(FaultRule(service="login", path_regex=r"/token$", kind="drop"))
    try:
        with pytest.raises(TokenServiceUnavailable):
            await provider.get_token()
    finally:
        await provider.close()
    assert provider.http_client.token_posts == 3
    assert metrics.registry.get_sample_value("graph_token_retries_total", {"flow": "app"}) == 2


# -- on-behalf-of ------------------------------------------------------------------------------


async def test_two_hundred_concurrent_requests_for_one_user_make_one_exchange(
    login: Login, store: Any
) -> None:
    provider = OboTokenProvider(login.settings(), store=store)
    sso = login.sso(ALICE)
    try:
        tokens = await asyncio.gather(
            *(provider.acquire(user_oid=ALICE, sso_token=sso) for _ in range(200))
        )
    finally:
        await provider.close()
    assert len(set(tokens)) == 1
    assert login.grants["on_behalf_of"] == 1
    claims = login.identity.validate_access_token(tokens[0], audience=GRAPH_AUDIENCE)
    assert claims.is_delegated and claims.oid == ALICE
    assert "AccessReview.ReadWrite.All" in claims.scopes


async def test_two_hundred_users_make_two_hundred_exchanges_and_a_restart_makes_none(
    login: Login, store: Any
) -> None:
    users = USER_IDS[:200]
    provider = OboTokenProvider(login.settings(), store=store, max_threads=16)
    try:
        tokens = await asyncio.gather(
            *(provider.acquire(user_oid=u, sso_token=login.sso(u)) for u in users)
        )
    finally:
        await provider.close()
    assert login.grants["on_behalf_of"] == 200
    for user, token in zip(users, tokens, strict=True):
        assert login.identity.validate_access_token(token, audience=GRAPH_AUDIENCE).oid == user

    # A new process: new provider objects, the same store, no SSO tokens at hand.
    restarted = OboTokenProvider(login.settings(), store=store, max_threads=16)
    try:
        again = await asyncio.gather(*(restarted.acquire(user_oid=u) for u in users))
    finally:
        await restarted.close()
    assert login.grants["on_behalf_of"] == 200
    assert login.grants["refresh_token"] == 0
    assert again == tokens


async def test_refresh_after_401_uses_the_refresh_token_not_a_new_exchange(
    login: Login, store: Any
) -> None:
    provider = OboTokenProvider(login.settings(), store=store)
    try:
        source = provider.for_user(user_oid=ALICE, sso_token=login.sso(ALICE))
        first = await source.get_token()
        refreshed = await source.refresh_token(first)
        assert refreshed != first
        assert login.grants["on_behalf_of"] == 1
        assert login.grants["refresh_token"] == 1
        # The refreshed token is what later callers get.
        assert await provider.acquire(user_oid=ALICE) == refreshed
    finally:
        await provider.close()


async def test_another_replica_sees_the_refreshed_cache(login: Login, store: Any) -> None:
    a = OboTokenProvider(login.settings(), store=store)
    b = OboTokenProvider(login.settings(), store=store)
    try:
        token = await a.acquire(user_oid=ALICE, sso_token=login.sso(ALICE))
        assert await b.acquire(user_oid=ALICE) == token
        assert login.grants["on_behalf_of"] == 1
    finally:
        await a.close()
        await b.close()


async def test_no_cached_token_and_no_sso_token(login: Login, store: Any) -> None:
    provider = OboTokenProvider(login.settings(), store=store)
    try:
        with pytest.raises(NoCachedToken):
            await provider.acquire(user_oid=ALICE)
    finally:
        await provider.close()
    assert sum(login.grants.values()) == 0


async def test_the_cache_is_unreadable_without_the_key(login: Login, store: Any) -> None:
    provider = OboTokenProvider(login.settings(), store=store)
    try:
        token = await provider.acquire(user_oid=ALICE, sso_token=login.sso(ALICE))
    finally:
        await provider.close()
    blob = await store.get_token_cache(key=OboTokenProvider.cache_key(TENANT_ID, ALICE))
    assert blob
    assert token.encode() not in blob and b"refresh_token" not in blob.lower()
    assert b"RefreshToken" not in blob and b"0.emu." not in blob
    other_key = Fernet.generate_key().decode()
    with pytest.raises(TokenCacheUnreadable):
        TokenCacheCipher([other_key]).decrypt(
            key=OboTokenProvider.cache_key(TENANT_ID, ALICE), blob=blob
        )
    # A process with another key cannot act for Alice from that row.
    stranger = OboTokenProvider(login.settings(token_cache_keys=(other_key,)), store=store)
    try:
        with pytest.raises(NoCachedToken):
            await stranger.acquire(user_oid=ALICE)
    finally:
        await stranger.close()


async def test_consent_missing_is_consent_required(login: Login, store: Any) -> None:
    login.identity.app(BOT_ID).delegated_permissions.clear()
    provider = OboTokenProvider(login.settings(), store=store)
    try:
        with pytest.raises(ConsentRequired) as caught:
            await provider.acquire(user_oid=ALICE, sso_token=login.sso(ALICE))
    finally:
        await provider.close()
    assert 65001 in caught.value.error_codes


async def test_mfa_policy_is_interaction_required_with_claims(login: Login, store: Any) -> None:
    login.identity.set_mfa_required(ALICE)
    provider = OboTokenProvider(login.settings(), store=store)
    try:
        with pytest.raises(InteractionRequired) as caught:
            await provider.acquire(user_oid=ALICE, sso_token=login.sso(ALICE))
    finally:
        await provider.close()
    assert caught.value.claims


async def test_expired_sso_token(login: Login, store: Any) -> None:
    sso = login.sso(ALICE, expires_in_s=60)
    login.clock.advance(timedelta(minutes=30))
    provider = OboTokenProvider(login.settings(), store=store)
    try:
        with pytest.raises(SsoTokenExpired):
            await provider.acquire(user_oid=ALICE, sso_token=sso)
    finally:
        await provider.close()


async def test_an_sso_token_of_another_user_is_never_filed_under_this_user(
    login: Login, store: Any
) -> None:
    provider = OboTokenProvider(login.settings(), store=store)
    try:
        with pytest.raises(SsoTokenInvalid):
            await provider.acquire(user_oid=ALICE, sso_token=login.sso(BOB))
        with pytest.raises(NoCachedToken):
            await provider.acquire(user_oid=ALICE)
    finally:
        await provider.close()
    assert await store.get_token_cache(key=OboTokenProvider.cache_key(TENANT_ID, ALICE)) is None


async def test_a_token_is_reused_until_near_expiry_then_refreshed_silently(
    login: Login, store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Short-lived tokens: msal treats tokens with < 5 minutes left as due for refresh.
    monkeypatch.setattr(login.identity, "access_token_lifetime_s", 200)
    clock = {"now": 1_000_000.0}
    provider = OboTokenProvider(login.settings(), store=store, now=lambda: clock["now"])
    try:
        first = await provider.acquire(user_oid=ALICE, sso_token=login.sso(ALICE))
        clock["now"] += 90  # still comfortably valid: reused, nobody asked
        assert await provider.acquire(user_oid=ALICE) == first
        assert sum(login.grants.values()) == 1
        clock["now"] += 20  # within the refresh margin: renewed with the refresh token
        second = await provider.acquire(user_oid=ALICE)
        assert second != first
        assert login.grants == {"on_behalf_of": 1, "refresh_token": 1}
    finally:
        await provider.close()


async def test_the_environment_ca_bundle_really_is_hostile(login: Login) -> None:
    """Guard: without our per-request CA, requests would fail here (as it would on CI)."""
    import requests

    def fetch() -> None:
        requests.get(f"{login.url}/{TENANT_ID}/v2.0/.well-known/openid-configuration", timeout=10)

    with pytest.raises(requests.exceptions.SSLError):
        await asyncio.to_thread(fetch)
