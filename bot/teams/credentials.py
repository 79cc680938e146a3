"""Outbound Bot Connector credentials for botbuilder, on msal with our CA handling.

botbuilder builds its own msal application with default ``requests`` settings, which (a) ignores
a configured CA bundle whenever ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` is set, (b) cannot
reach an authority that is not Microsoft's public one without instance discovery, and (c) knows
only a secret or its own certificate class. This factory gives botbuilder credentials whose msal
application uses :class:`bot.graph.MsalHttpClient` (the CA bundle on every request), the
configured authority host and the process's one :class:`bot.graph.ClientCredential` — the same
certificate, federated token or managed identity that the Graph token providers use.

msal is synchronous and botbuilder asks for the token synchronously; the token is cached by msal
for its lifetime (about an hour), so the blocking call happens rarely.
"""

from __future__ import annotations

import logging
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


class _MsalAppCredentials(MicrosoftAppCredentials):  # type: ignore[misc]
    def __init__(
        self,
        *,
        app_id: str,
        credential: ClientCredential,
        authority: str,
        oauth_scope: str,
        http: MsalHttpClient,
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

    def get_access_token(self, force_refresh: bool = False) -> str:
        scope = (
            self.oauth_scope
            if self.oauth_scope.endswith("/.default")
            else self.oauth_scope + "/.default"
        )
        result: dict[str, Any] | None = None
        try:
            if not force_refresh:
                result = self._msal.acquire_token_silent([scope], account=None)
            if not result:
                result = self._msal.acquire_token_for_client(scopes=[scope])
        except TokenAcquisitionError as exc:
            # The credential could not make an assertion (file gone, endpoint refused): one line.
            log.warning("Bot Connector token failed: %s", exc)
            raise PermissionError(f"could not get a Bot Connector token: {exc}") from None
        if result and "access_token" in result:
            return str(result["access_token"])
        error = (result or {}).get("error", "unknown_error")
        codes = (result or {}).get("error_codes") or []
        log.warning("Bot Connector token refused: %s %s", error, codes)
        raise PermissionError(f"could not get a Bot Connector token: {error}")


class MsalCredentialsFactory(ServiceClientCredentialsFactory):  # type: ignore[misc]
    """Credentials for one bot app id (with the process's credential) against one authority."""

    def __init__(
        self,
        *,
        app_id: str,
        credential: ClientCredential,
        authority: str,
        ca_bundle: str | None,
        timeout_s: float = 30,
    ) -> None:
        self._app_id = app_id
        self._credential = credential
        self._authority = authority.rstrip("/")
        self._http = MsalHttpClient(
            ca_bundle_path=ca_bundle, timeout_s=timeout_s, user_agent="AccessReviewBot/0.1"
        )
        self._credentials: dict[str, _MsalAppCredentials] = {}

    def close(self) -> None:
        """Close the HTTP session (keep-alive connections to the authority)."""
        self._http.close()

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
            )
            self._credentials[scope] = credentials
        return credentials
