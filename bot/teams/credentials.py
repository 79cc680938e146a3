"""Outbound Bot Connector credentials for botbuilder, on msal with our CA handling.

botbuilder builds its own msal application with default ``requests`` settings, which (a) ignores
a configured CA bundle whenever ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` is set and (b) cannot
reach an authority that is not Microsoft's public one without instance discovery. This factory
gives botbuilder credentials whose msal application uses :class:`bot.graph.MsalHttpClient`
(the CA bundle on every request) and the configured authority host.

msal is synchronous and botbuilder asks for the token synchronously; the token is cached by msal
for its lifetime (about an hour), so the blocking call happens rarely.
"""

from __future__ import annotations

from typing import Any

import msal
from botframework.connector.auth import (
    MicrosoftAppCredentials,
    ServiceClientCredentialsFactory,
)

from bot.graph import MsalHttpClient

__all__ = ["MsalCredentialsFactory"]

_PUBLIC_AUTHORITY = "https://login.microsoftonline.com"


class _MsalAppCredentials(MicrosoftAppCredentials):  # type: ignore[misc]
    def __init__(
        self, *, app_id: str, password: str, authority: str, oauth_scope: str, http: MsalHttpClient
    ) -> None:
        super().__init__(app_id, password, oauth_scope=oauth_scope)
        self.oauth_endpoint = authority
        self._msal = msal.ConfidentialClientApplication(
            client_id=app_id,
            client_credential=password,
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
        if not force_refresh:
            result = self._msal.acquire_token_silent([scope], account=None)
        if not result:
            result = self._msal.acquire_token_for_client(scopes=[scope])
        if result and "access_token" in result:
            return str(result["access_token"])
        error = (result or {}).get("error", "unknown_error")
        raise PermissionError(f"could not get a Bot Connector token: {error}")


class MsalCredentialsFactory(ServiceClientCredentialsFactory):  # type: ignore[misc]
    """Credentials for one bot app id (secret) against one authority."""

    def __init__(
        self,
        *,
        app_id: str,
        password: str,
        authority: str,
        ca_bundle: str | None,
        timeout_s: float = 30,
    ) -> None:
        self._app_id = app_id
        self._password = password
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
                password=self._password,
                authority=self._authority,
                oauth_scope=scope,
                http=self._http,
            )
            self._credentials[scope] = credentials
        return credentials
