"""Token providers for Microsoft Graph, on msal: app-only and on-behalf-of a Teams user.

msal is blocking, so every msal call runs in a small thread pool owned by the provider, behind one
async method guarded by a per-key :class:`asyncio.Lock`: concurrent requests for the same user
wait for one exchange instead of each starting their own.

Both authenticate with the process's one :class:`bot.graph.credentials.ClientCredential` (from
``GraphSettings.credential``): a secret, or a client assertion signed from a certificate, read from
a federated token file or fetched from the managed identity endpoint when msal needs one.

msal's token cache is kept per key (``"app:{client_id}"``, ``"obo:{tenant}:{oid}"``), serialized,
encrypted with Fernet (:class:`TokenCacheCipher`) and persisted through a
:class:`TokenCacheStore`, so another replica, or this one after a restart, can act for a user
without a new sign-in (the cache holds the user's refresh token).
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import msal
import requests
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from prometheus_client import CollectorRegistry, Counter

from bot.graph.config import GraphSettings
from bot.graph.credentials import (
    ClientCredential,
    CredentialSourceUnreachable,
    CredentialUnavailable,
)
from bot.graph.errors import (
    ConsentRequired,
    InteractionRequired,
    InvalidClient,
    NoCachedToken,
    SsoTokenExpired,
    SsoTokenInvalid,
    TokenAcquisitionError,
    TokenServiceUnavailable,
)

__all__ = [
    "AccessToken",
    "AppTokenProvider",
    "MsalHttpClient",
    "OboTokenProvider",
    "TokenCacheCipher",
    "TokenCacheStore",
    "TokenCacheUnreadable",
    "TokenMetrics",
    "TokenSource",
    "UserTokenSource",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

# Entra error codes (AADSTS numbers) that decide which typed error a failure becomes.
_INVALID_CLIENT_CODES = frozenset({7000215, 7000222, 700027, 700016, 7000218, 700023, 50012})
_CONSENT_CODES = frozenset({65001, 65004})
_INTERACTION_CODES = frozenset({50076, 50079, 50158, 53003, 50074, 50173, 700082, 50078})
_EXPIRED_ASSERTION_CODES = frozenset({500133})
# Refresh a cached token this long before it expires (msal uses 5 minutes for its own cache).
_REFRESH_MARGIN_S = 300.0


class TokenCacheStore(Protocol):
    """Where encrypted msal caches live (the bot's Store implements exactly this)."""

    async def get_token_cache(self, *, key: str) -> bytes | None: ...

    async def put_token_cache(self, *, key: str, blob: bytes) -> None: ...


class TokenSource(Protocol):
    """Something that hands the Graph client a bearer token, and a fresh one after a 401."""

    async def get_token(self) -> str:
        """A valid access token for Graph."""
        ...

    async def refresh_token(self, stale: str) -> str:
        """A new token, replacing ``stale`` that Graph refused as expired/invalid."""
        ...


class TokenCacheUnreadable(Exception):
    """A persisted token cache cannot be decrypted with the configured keys (or was moved)."""


class TokenCacheCipher:
    """Fernet encryption of persisted token caches.

    The store key is sealed inside the ciphertext and checked on decryption, so a blob copied
    from one user's row to another's is refused. ``keys`` are Fernet keys; the first encrypts,
    all decrypt (key rotation).
    """

    _MAGIC = b"arb-token-cache-v1\n"

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        if not keys:
            raise ValueError("TokenCacheCipher needs at least one Fernet key")
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    def encrypt(self, *, key: str, plaintext: bytes) -> bytes:
        """Seal ``plaintext`` (a serialized msal cache) for store key ``key``."""
        return self._fernet.encrypt(self._MAGIC + key.encode() + b"\n" + plaintext)

    def decrypt(self, *, key: str, blob: bytes) -> bytes:
        """Open a blob written by :meth:`encrypt` for the same ``key``.

        Raises :class:`TokenCacheUnreadable` for a wrong key, tampering or a blob of another key.
        """
        try:
            sealed = self._fernet.decrypt(blob)
        except InvalidToken as exc:
            raise TokenCacheUnreadable(
                "token cache cannot be decrypted with the configured keys"
            ) from exc
        header = self._MAGIC + key.encode() + b"\n"
        if not sealed.startswith(header):
            raise TokenCacheUnreadable("token cache was written for another key")
        return sealed[len(header) :]


class MsalHttpClient:
    """The ``http_client`` handed to msal: ``requests`` with our CA bundle on every request.

    ``requests`` replaces a session's ``verify`` with ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``
    when those are set (they are on CI), so ``verify`` is passed per request, where the
    environment cannot override it. Proxies from the environment still apply.
    """

    def __init__(self, *, ca_bundle_path: str | None, timeout_s: float, user_agent: str) -> None:
        self._verify: str | bool = ca_bundle_path or True
        self._timeout_s = timeout_s
        self._session = requests.Session()
        self._session.headers["User-Agent"] = user_agent
        self._lock = threading.Lock()
        self.token_posts = 0  # calls to a token endpoint, for tests and diagnostics

    def post(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        with self._lock:
            self.token_posts += 1
        kwargs.pop("verify", None)
        kwargs.setdefault("timeout", self._timeout_s)
        return self._session.post(
            url, params=params, data=data, headers=headers, verify=self._verify, **kwargs
        )

    def get(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        kwargs.pop("verify", None)
        kwargs.setdefault("timeout", self._timeout_s)
        return self._session.get(url, params=params, headers=headers, verify=self._verify, **kwargs)

    def close(self) -> None:
        self._session.close()


class TokenMetrics:
    """Prometheus counters of token acquisitions, on a registry of the caller's choice."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.acquisitions = Counter(
            "graph_token_acquisitions",
            "Access tokens handed out, by flow and where they came from.",
            ["flow", "source"],
            registry=self.registry,
        )
        self.retries = Counter(
            "graph_token_retries",
            "Token service calls repeated after a transport failure, by flow.",
            ["flow"],
            registry=self.registry,
        )
        self.failures = Counter(
            "graph_token_failures",
            "Token acquisitions that failed, by flow and error class.",
            ["flow", "error"],
            registry=self.registry,
        )


@dataclass(frozen=True)
class AccessToken:
    """A bearer token and when (``time.time()`` seconds) it stops being valid."""

    token: str = ""
    expires_at: float = 0.0
    lifetime_s: float = 0.0

    def fresh(self, now: float) -> bool:
        """Usable without asking msal: not within the refresh margin of its expiry (5 minutes,
        or half the lifetime for short-lived tokens)."""
        margin_s = min(_REFRESH_MARGIN_S, self.lifetime_s / 2)
        return bool(self.token) and now < self.expires_at - margin_s


@dataclass
class _CacheEntry:
    """One msal app and its cache for one key, plus what we last persisted for it."""

    app: msal.ConfidentialClientApplication
    cache: msal.SerializableTokenCache
    persisted_blob: bytes | None


def _raise_for_msal_result(result: Mapping[str, Any] | None, *, flow: str) -> None:
    """Turn msal's error dict into a typed error; return quietly on success."""
    if result and "access_token" in result:
        return
    result = result or {}
    raw_error = result.get("error")
    if raw_error is not None and not isinstance(raw_error, str):
        # Not an OAuth error: a gateway/throttling answer in another format (e.g. Graph-style).
        raise TokenServiceUnavailable(f"{flow}: the token service answered without a token")
    error = raw_error or ""
    codes = tuple(int(c) for c in result.get("error_codes") or () if str(c).isdigit())
    suberror = str(result.get("suberror") or "")
    description = str(result.get("error_description") or "")
    details: dict[str, Any] = {
        "error": error,
        "error_codes": codes,
        "suberror": suberror,
        "description": description,
        "claims": result.get("claims"),
        "correlation_id": result.get("correlation_id"),
    }
    code_set = set(codes)
    if error in ("invalid_client", "unauthorized_client") or code_set & _INVALID_CLIENT_CODES:
        raise InvalidClient(f"{flow}: the bot's credentials were refused ({error})", **details)
    if code_set & _EXPIRED_ASSERTION_CODES:
        raise SsoTokenExpired(f"{flow}: the SSO token has expired", **details)
    if suberror == "consent_required" or error == "consent_required" or code_set & _CONSENT_CODES:
        raise ConsentRequired(f"{flow}: consent is required for the Graph permission", **details)
    if error == "interaction_required" or code_set & _INTERACTION_CODES:
        raise InteractionRequired(f"{flow}: the user must sign in interactively", **details)
    if flow == "obo" and error in ("invalid_grant", "invalid_request"):
        raise SsoTokenInvalid(
            f"{flow}: the SSO token was refused as an assertion ({error})", **details
        )
    if error in ("temporarily_unavailable", "server_error"):
        raise TokenServiceUnavailable(f"{flow}: the token service failed ({error})", **details)
    raise TokenAcquisitionError(f"{flow}: token request failed ({error or 'no token'})", **details)


class _MsalBase:
    """What both providers share: settings, msal HTTP, thread pool, encryption, persistence."""

    _flow = ""

    def __init__(
        self,
        settings: GraphSettings,
        *,
        store: TokenCacheStore,
        cipher: TokenCacheCipher | None = None,
        http_client: MsalHttpClient | None = None,
        metrics: TokenMetrics | None = None,
        max_threads: int = 8,
        max_attempts: int = 3,
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        # ValueError without one: callers (doctor) report it as "credentials unusable".
        self._credential_source = settings.client_credential()
        if cipher is None:
            if not settings.token_cache_keys:
                raise ValueError(
                    "GraphSettings.token_cache_keys is empty: token caches are always encrypted"
                )
            cipher = TokenCacheCipher(settings.token_cache_keys)
        self._settings = settings
        self._store = store
        self._cipher = cipher
        self._owns_http = http_client is None
        self._http = http_client or MsalHttpClient(
            ca_bundle_path=settings.ca_bundle_path,
            timeout_s=settings.token_timeout_s,
            user_agent=settings.user_agent,
        )
        self._metrics = metrics or TokenMetrics()
        self._executor = ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="msal")
        self._max_attempts = max_attempts
        self._now = now
        self._sleep = sleep
        # msal caches authority discovery documents here; shared so a new app per user does not
        # fetch the tenant's OpenID configuration again.
        self._http_cache: dict[Any, Any] = {}
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @property
    def http_client(self) -> MsalHttpClient:
        return self._http

    async def close(self) -> None:
        """Stop the thread pool (waiting for running msal calls) and close owned HTTP sessions."""
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)
        if self._owns_http:
            self._http.close()

    def _lock_for(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        return lock

    async def _in_thread(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    @property
    def credential(self) -> ClientCredential:
        """The credential this provider authenticates with (shared across the process)."""
        return self._credential_source

    def _build_app(
        self, tenant_id: str, cache: msal.SerializableTokenCache
    ) -> msal.ConfidentialClientApplication:
        authority = f"{self._settings.authority_host.rstrip('/')}/{tenant_id}"
        return msal.ConfidentialClientApplication(
            self._settings.client_id,
            client_credential=self._credential_source.msal_credential(),
            authority=authority,
            token_cache=cache,
            http_client=self._http,
            http_cache=self._http_cache,
            # The authority host is configured (national cloud, emulator); do not ask
            # login.microsoftonline.com whether it is a known instance.
            instance_discovery=False,
        )

    async def _load_entry(self, key: str, tenant_id: str) -> _CacheEntry:
        """Read and decrypt the persisted cache for ``key`` and build its msal app."""
        blob = await self._store.get_token_cache(key=key)
        cache = msal.SerializableTokenCache()
        if blob:
            try:
                cache.deserialize(self._cipher.decrypt(key=key, blob=blob).decode())
            except (TokenCacheUnreadable, ValueError, UnicodeDecodeError) as exc:
                # A key rotated away or a damaged row: start empty; the next sign-in rewrites it.
                log.warning(
                    "token cache %s unreadable, starting empty: %s", key, exc.__class__.__name__
                )
        app = await self._msal_call(lambda: self._build_app(tenant_id, cache))
        return _CacheEntry(app=app, cache=cache, persisted_blob=blob)

    async def _persist(self, key: str, entry: _CacheEntry) -> None:
        if not entry.cache.has_state_changed:
            return
        plaintext = entry.cache.serialize().encode()  # resets has_state_changed
        blob = self._cipher.encrypt(key=key, plaintext=plaintext)
        await self._store.put_token_cache(key=key, blob=blob)
        entry.persisted_blob = blob

    async def _msal_call(self, fn: Callable[[], T]) -> T:
        """Run one blocking msal call, retrying transport failures of the token service (and of
        the managed identity endpoint that makes the client assertion)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._in_thread(fn)
            except (requests.RequestException, OSError, CredentialSourceUnreachable) as exc:
                if attempt >= self._max_attempts:
                    self._metrics.failures.labels(self._flow, "TokenServiceUnavailable").inc()
                    if isinstance(exc, CredentialSourceUnreachable):
                        log.warning("token %s failed: %s", self._flow, exc)
                        raise
                    raise TokenServiceUnavailable(
                        f"{self._flow}: token service unreachable ({exc.__class__.__name__})"
                    ) from exc
                delay_s = random.uniform(0, 0.25 * 2**attempt)  # noqa: S311 - jitter, not crypto
                self._metrics.retries.labels(self._flow).inc()
                log.info(
                    "token service call failed (%s), retry %d in %.2fs",
                    exc.__class__.__name__,
                    attempt,
                    delay_s,
                )
                await self._sleep(delay_s)
            except ValueError as exc:
                # msal raises ValueError when authority discovery is refused (bad tenant/host).
                self._metrics.failures.labels(self._flow, "TokenAcquisitionError").inc()
                raise TokenAcquisitionError(f"{self._flow}: {exc}") from exc
            except CredentialUnavailable as exc:
                # Raised by the credential while msal asked it for an assertion: one line that
                # says what to fix (no secret in it), not a traceback.
                self._metrics.failures.labels(self._flow, "InvalidClient").inc()
                log.warning("token %s failed: %s", self._flow, exc)
                raise
            except TokenAcquisitionError:
                raise
            except Exception as exc:
                # e.g. a certificate whose key type msal cannot sign with: our configuration.
                self._metrics.failures.labels(self._flow, "InvalidClient").inc()
                log.exception("msal failed in %s", self._flow)
                raise InvalidClient(
                    f"{self._flow}: msal failed ({exc.__class__.__name__}); check the credentials"
                ) from exc

    def _checked(self, result: Mapping[str, Any] | None, flow: str) -> AccessToken:
        try:
            _raise_for_msal_result(result, flow=flow)
        except TokenAcquisitionError as exc:
            self._metrics.failures.labels(flow, exc.__class__.__name__).inc()
            log.info(
                "token %s failed: %s codes=%s correlation_id=%s",
                flow,
                exc.__class__.__name__,
                exc.error_codes,
                exc.correlation_id,
            )
            raise
        assert result is not None
        source = str(result.get("token_source") or "identity_provider")
        self._metrics.acquisitions.labels(flow, source).inc()
        expires_in_s = float(result.get("expires_in") or 0)
        return AccessToken(
            token=str(result["access_token"]),
            expires_at=self._now() + expires_in_s,
            lifetime_s=expires_in_s,
        )


class AppTokenProvider(_MsalBase):
    """App-only tokens (client credentials) for discovery and directory look-ups.

    Implements :class:`TokenSource`. Tokens are reused until close to expiry; the msal cache is
    persisted under ``"app:{client_id}"``.
    """

    _flow = "app"

    def __init__(self, settings: GraphSettings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self._key = f"app:{settings.client_id}"
        self._entry: _CacheEntry | None = None
        self._current = AccessToken()

    async def get_token(self) -> str:
        if self._current.fresh(self._now()):
            return self._current.token
        async with self._lock_for(self._key):
            if self._current.fresh(self._now()):
                return self._current.token
            self._current = await self._acquire(force=False)
            return self._current.token

    async def refresh_token(self, stale: str) -> str:
        async with self._lock_for(self._key):
            if self._current.token and self._current.token != stale:
                return self._current.token  # someone else already replaced it
            self._current = await self._acquire(force=True)
            return self._current.token

    async def _acquire(self, *, force: bool) -> AccessToken:
        if self._entry is None:
            self._entry = await self._load_entry(self._key, self._settings.tenant_id)
        entry = self._entry
        scopes = self._settings.app_scopes

        def acquire() -> dict[str, Any] | None:
            if force:
                entry.app.remove_tokens_for_client()
            result: dict[str, Any] | None = entry.app.acquire_token_for_client(scopes)
            return result

        token = self._checked(await self._msal_call(acquire), "app")
        await self._persist(self._key, entry)
        return token


class UserTokenSource:
    """A :class:`TokenSource` for one user, on top of :class:`OboTokenProvider`."""

    def __init__(
        self, provider: OboTokenProvider, *, tenant_id: str, user_oid: str, sso_token: str | None
    ) -> None:
        self._provider = provider
        self.tenant_id = tenant_id
        self.user_oid = user_oid
        self._sso_token = sso_token

    async def get_token(self) -> str:
        return await self._provider.acquire(
            tenant_id=self.tenant_id, user_oid=self.user_oid, sso_token=self._sso_token
        )

    async def refresh_token(self, stale: str) -> str:
        return await self._provider.acquire(
            tenant_id=self.tenant_id,
            user_oid=self.user_oid,
            sso_token=self._sso_token,
            stale=stale,
        )


class OboTokenProvider(_MsalBase):
    """Delegated Graph tokens for reviewers, exchanged on-behalf-of their Teams SSO token.

    Keyed by (tenant, user oid). A token is reused until near expiry, then refreshed silently
    with the cached refresh token; the exchange happens only when nothing usable is cached and an
    SSO token was given. Without either, :class:`NoCachedToken` (answer with a Teams
    ``loginRequest``).
    """

    _flow = "obo"

    def __init__(
        self, settings: GraphSettings, *, max_users_in_memory: int = 1000, **kwargs: Any
    ) -> None:
        super().__init__(settings, **kwargs)
        self._max_users = max_users_in_memory
        # LRU of msal apps/caches and of current tokens; the store keeps the rest.
        self._entries: OrderedDict[str, _CacheEntry] = OrderedDict()
        self._current: OrderedDict[str, AccessToken] = OrderedDict()

    def for_user(
        self, *, user_oid: str, tenant_id: str | None = None, sso_token: str | None = None
    ) -> UserTokenSource:
        """A token source acting as ``user_oid`` (optionally able to exchange ``sso_token``)."""
        return UserTokenSource(
            self,
            tenant_id=tenant_id or self._settings.tenant_id,
            user_oid=user_oid,
            sso_token=sso_token,
        )

    @staticmethod
    def cache_key(tenant_id: str, user_oid: str) -> str:
        return f"obo:{tenant_id.lower()}:{user_oid.lower()}"

    async def acquire(
        self,
        *,
        user_oid: str,
        tenant_id: str | None = None,
        sso_token: str | None = None,
        stale: str | None = None,
    ) -> str:
        """A delegated Graph access token for the user.

        ``stale`` is a token Graph just refused: it is not handed out again (refresh instead).
        Raises :class:`NoCachedToken`, :class:`ConsentRequired`, :class:`InteractionRequired`,
        :class:`SsoTokenExpired`, :class:`SsoTokenInvalid`, :class:`InvalidClient`,
        :class:`TokenServiceUnavailable`.
        """
        tenant_id = tenant_id or self._settings.tenant_id
        key = self.cache_key(tenant_id, user_oid)
        current = self._current.get(key)
        if stale is None and current is not None and current.fresh(self._now()):
            return current.token
        async with self._lock_for(key):
            current = self._current.get(key)
            if current is not None and current.fresh(self._now()) and current.token != stale:
                return current.token
            token = await self._acquire_locked(key, tenant_id, user_oid, sso_token, stale)
            self._remember(self._current, key, token)
            return token.token

    def _remember(self, lru: OrderedDict[str, Any], key: str, value: Any) -> None:
        lru[key] = value
        lru.move_to_end(key)
        while len(lru) > self._max_users:
            lru.popitem(last=False)

    async def _acquire_locked(
        self, key: str, tenant_id: str, user_oid: str, sso_token: str | None, stale: str | None
    ) -> AccessToken:
        entry = self._entries.get(key)
        fresh_load = entry is None
        if entry is None:
            entry = await self._load_entry(key, tenant_id)
            self._remember(self._entries, key, entry)
        token = await self._silent(entry, user_oid, force=stale is not None)
        if token is None and not fresh_load:
            # Another replica may have refreshed (and rotated) the refresh token since we loaded.
            blob = await self._store.get_token_cache(key=key)
            if blob and blob != entry.persisted_blob:
                entry = await self._load_entry(key, tenant_id)
                self._remember(self._entries, key, entry)
                token = await self._silent(entry, user_oid, force=stale is not None)
        if token is None:
            if not sso_token:
                self._metrics.failures.labels("obo", "NoCachedToken").inc()
                raise NoCachedToken("no cached delegated token for this user and no SSO token")
            token = await self._exchange(key, entry, user_oid, sso_token)
        await self._persist(key, entry)
        return token

    async def _silent(
        self, entry: _CacheEntry, user_oid: str, *, force: bool
    ) -> AccessToken | None:
        """From the cache (or its refresh token); ``None`` when that cannot give a token."""
        scopes = self._settings.user_scopes

        def silent() -> dict[str, Any] | None:
            accounts = [
                a
                for a in entry.app.get_accounts()
                if str(a.get("local_account_id", "")).lower() == user_oid.lower()
                or str(a.get("home_account_id", "")).lower().startswith(user_oid.lower() + ".")
            ]
            if not accounts:
                return None
            result: dict[str, Any] | None = entry.app.acquire_token_silent_with_error(
                scopes, account=accounts[0], force_refresh=force
            )
            return result

        result = await self._msal_call(silent)
        if not result or "access_token" not in result:
            if result:
                # A refused refresh token (revoked, password changed): fall back to the exchange.
                log.info(
                    "silent token refresh failed for a user: %s %s",
                    result.get("error"),
                    result.get("error_codes"),
                )
            return None
        return self._checked(result, "obo")

    async def _exchange(
        self, key: str, entry: _CacheEntry, user_oid: str, sso_token: str
    ) -> AccessToken:
        scopes = self._settings.user_scopes

        def exchange() -> dict[str, Any] | None:
            result: dict[str, Any] | None = entry.app.acquire_token_on_behalf_of(sso_token, scopes)
            return result

        result = await self._msal_call(exchange)
        token = self._checked(result, "obo")
        assert result is not None
        claims = result.get("id_token_claims") or {}
        oid = str(claims.get("oid") or "")
        if oid and oid.lower() != user_oid.lower():
            # The SSO token belongs to someone else: never file their token under this user.
            # Forget the polluted in-memory cache unpersisted; the next call reloads the store's.
            self._entries.pop(key, None)
            self._metrics.failures.labels("obo", "SsoTokenInvalid").inc()
            raise SsoTokenInvalid("the SSO token was issued to a different user")
        return token
