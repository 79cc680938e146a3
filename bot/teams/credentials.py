"""Outbound Bot Connector credentials for botbuilder, on msal with our CA handling.

botbuilder builds its own msal application with default ``requests`` settings, which (a) ignores
a configured CA bundle whenever ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` is set, (b) cannot
reach an authority that is not Microsoft's public one without instance discovery, and (c) knows
only a secret or its own certificate class. This factory gives botbuilder credentials whose msal
application uses :class:`bot.graph.MsalHttpClient` (the CA bundle on every request), the
configured authority host and the process's one :class:`bot.graph.ClientCredential` — the same
certificate, federated token or managed identity that the Graph token providers use.

botbuilder asks for the token synchronously (``get_access_token``, from msrest's request
pipeline on the event loop), and msal is blocking: a token request there — a slow token endpoint,
a managed identity endpoint that takes seconds — would stop every other request of the process.
So the token is always fetched in a worker thread, never on the loop: ``create_credentials``
(awaited by botbuilder before each turn's connector client) makes sure a token with time left is
held, and :meth:`MsalCredentialsFactory.run_refresher` renews each one in a thread ahead of its
expiry. ``get_access_token`` then only returns the held token; on the loop it never waits.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import msal
from botframework.connector.auth import (
    MicrosoftAppCredentials,
    ServiceClientCredentialsFactory,
)

from bot.graph import ClientCredential, MsalHttpClient, TokenAcquisitionError

__all__ = ["MsalCredentialsFactory"]

log = logging.getLogger(__name__)

_PUBLIC_AUTHORITY = "https://login.microsoftonline.com"
# A token handed to botbuilder has at least this long left (its calls take seconds).
_USE_MARGIN_S = 30.0
# Before a turn, a token with less than this left is replaced first (in a thread)...
_TURN_MARGIN_S = 120.0
# ...waiting at most this long: a card click must be answered within seconds, and most turns
# send nothing through botbuilder (a reply then fails, as it would without a token).
_TURN_WAIT_S = 5.0
# The refresher renews a token this long before it expires (half its lifetime if that is less).
_REFRESH_AHEAD_S = 600.0
# After a failed renewal, the refresher tries again after this long, doubling up to the cap.
_RETRY_FIRST_S = 2.0
_RETRY_MAX_S = 60.0


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _MsalAppCredentials(MicrosoftAppCredentials):  # type: ignore[misc]
    def __init__(
        self,
        *,
        app_id: str,
        credential: ClientCredential,
        authority: str,
        oauth_scope: str,
        http: MsalHttpClient,
        now: Callable[[], float] = time.time,
    ) -> None:
        # botbuilder keeps a "password" attribute; ours lives in the credential, never here.
        super().__init__(app_id, "", oauth_scope=oauth_scope)
        self.oauth_endpoint = authority
        self._msal = msal.ConfidentialClientApplication(
            client_id=app_id,
            client_credential=credential.msal_credential(),
            authority=authority,
            http_client=http,
            instance_discovery=authority.lower().startswith(_PUBLIC_AUTHORITY),
        )
        self._now = now
        self._held = threading.Lock()  # guards the three fields below; never held during I/O
        self._token = ""
        self._expires_at = 0.0
        self._lifetime_s = 0.0
        # The fetch in flight for this scope (one at a time), awaited by whoever needs it.
        self.fetching: asyncio.Task[None] | None = None

    @property
    def _scope(self) -> str:
        scope = str(self.oauth_scope)
        return scope if scope.endswith("/.default") else scope + "/.default"

    def remaining_s(self) -> float:
        """How long the held token has left (0 without one)."""
        with self._held:
            return max(self._expires_at - self._now(), 0.0) if self._token else 0.0

    def refresh_in_s(self) -> float:
        """How long until the refresher should renew the held token (0: now)."""
        with self._held:
            if not self._token:
                return 0.0
            ahead_s = min(_REFRESH_AHEAD_S, self._lifetime_s / 2)
            return max(self._expires_at - ahead_s - self._now(), 0.0)

    def fetch(self, *, renew: bool = False) -> None:
        """Get a token from msal (its cache, else the token endpoint) and hold it. Blocking:
        runs in a worker thread. ``renew`` skips msal's cache, which keeps handing out a token
        until five minutes before it ends."""
        result: dict[str, Any] | None = None
        try:
            if renew:
                self._msal.remove_tokens_for_client()
            else:
                result = self._msal.acquire_token_silent([self._scope], account=None)
            if not result:
                result = self._msal.acquire_token_for_client(scopes=[self._scope])
        except TokenAcquisitionError as exc:
            # The credential could not make an assertion (file gone, endpoint refused): one line.
            log.warning("Bot Connector token failed: %s", exc)
            raise PermissionError(f"could not get a Bot Connector token: {exc}") from None
        if not result or "access_token" not in result:
            error = (result or {}).get("error", "unknown_error")
            codes = (result or {}).get("error_codes") or []
            log.warning("Bot Connector token refused: %s %s", error, codes)
            raise PermissionError(f"could not get a Bot Connector token: {error}")
        lifetime_s = float(result.get("expires_in") or 0)
        with self._held:
            self._token = str(result["access_token"])
            self._expires_at = self._now() + lifetime_s
            self._lifetime_s = lifetime_s

    def get_access_token(self, force_refresh: bool = False) -> str:
        with self._held:
            token = self._token
            left_s = self._expires_at - self._now()
        if token and left_s > _USE_MARGIN_S and not force_refresh:
            return token
        if _on_event_loop():
            # Never wait for a token endpoint on the loop: the factory fetches one in a thread
            # before every turn, so this happens only when the token service is failing.
            raise PermissionError(
                "no Bot Connector token is ready (the token service is slow or failing; "
                "it is asked again in the background)"
            )
        self.fetch(renew=force_refresh)
        with self._held:
            return self._token


class MsalCredentialsFactory(ServiceClientCredentialsFactory):  # type: ignore[misc]
    """Credentials for one bot app id (with the process's credential) against one authority.

    Run :meth:`run_refresher` as a background task while the app serves (``app.py`` does).
    """

    def __init__(
        self,
        *,
        app_id: str,
        credential: ClientCredential,
        authority: str,
        ca_bundle: str | None,
        timeout_s: float = 30,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._app_id = app_id
        self._now = now
        self._credential = credential
        self._authority = authority.rstrip("/")
        self._http = MsalHttpClient(
            ca_bundle_path=ca_bundle, timeout_s=timeout_s, user_agent="AccessReviewBot/0.1"
        )
        self._credentials: dict[str, _MsalAppCredentials] = {}
        self._added = asyncio.Event()

    def close(self) -> None:
        """Close the HTTP session (keep-alive connections to the authority)."""
        self._http.close()

    def wake(self) -> None:
        """Make :meth:`run_refresher` look at every token now (a new scope, a clock that moved)."""
        self._added.set()

    async def is_valid_app_id(self, app_id: str) -> bool:
        return bool(app_id) and app_id == self._app_id

    async def is_authentication_disabled(self) -> bool:
        return not self._app_id

    async def create_credentials(
        self, app_id: str, oauth_scope: str, login_endpoint: str, validate_authority: bool
    ) -> Any:
        if not self._app_id:
            return MicrosoftAppCredentials.empty()
        if app_id != self._app_id:
            raise PermissionError("credentials asked for another app id")
        scope = oauth_scope or "https://api.botframework.com"
        credentials = self._credentials.get(scope)
        if credentials is None:
            credentials = _MsalAppCredentials(
                app_id=app_id,
                credential=self._credential,
                authority=self._authority,
                oauth_scope=scope,
                http=self._http,
                now=self._now,
            )
            self._credentials[scope] = credentials
            self.wake()
        # The turn's synchronous get_access_token must find a token: fetch one now if needed,
        # in a thread, so that only this turn waits (and not for long).
        if credentials.remaining_s() <= _TURN_MARGIN_S:
            try:
                await asyncio.wait_for(asyncio.shield(self._fetch(credentials)), _TURN_WAIT_S)
            except Exception as exc:  # the turn goes on; the refresher retries
                log.warning(
                    "no Bot Connector token yet for this turn (%s); the fetch goes on",
                    type(exc).__name__,
                )
        return credentials

    def _fetch(
        self, credentials: _MsalAppCredentials, *, renew: bool = False
    ) -> asyncio.Task[None]:
        """The fetch in flight for ``credentials``, started (in a worker thread) if none is."""
        task = credentials.fetching
        if task is None or task.done():
            task = asyncio.create_task(
                asyncio.to_thread(credentials.fetch, renew=renew), name="bot-connector-token"
            )
            # Its failure is reported by whoever awaits it; never as "never retrieved".
            task.add_done_callback(lambda done: done.cancelled() or done.exception())
            credentials.fetching = task
        return task

    async def run_refresher(self, stop: asyncio.Event) -> None:
        """Renew each held token in a thread ahead of its expiry until ``stop`` is set; a failed
        renewal is retried with growing pauses while the old token still serves."""
        retry_s: dict[str, float] = {}
        try:
            while not stop.is_set():
                self._added.clear()
                wait_s = _RETRY_MAX_S
                for scope, credentials in list(self._credentials.items()):
                    due_s = credentials.refresh_in_s()
                    if due_s <= 0:
                        try:
                            await self._fetch(credentials, renew=True)
                        except Exception as exc:  # the old token still serves
                            pause_s = min(retry_s.get(scope, _RETRY_FIRST_S / 2) * 2, _RETRY_MAX_S)
                            retry_s[scope] = pause_s
                            log.warning(
                                "Bot Connector token renewal failed (%s); again in %.0f s",
                                type(exc).__name__,
                                pause_s,
                            )
                            wait_s = min(wait_s, pause_s)
                            continue
                        retry_s.pop(scope, None)
                        due_s = credentials.refresh_in_s()
                    wait_s = min(wait_s, max(due_s, 1.0))
                waiters = {
                    asyncio.ensure_future(stop.wait()),
                    asyncio.ensure_future(self._added.wait()),
                }
                try:
                    await asyncio.wait(waiters, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waiters:
                        waiter.cancel()
        finally:
            for credentials in self._credentials.values():
                if credentials.fetching is not None:
                    credentials.fetching.cancel()
