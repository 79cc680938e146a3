"""The token endpoint: ``POST /{tenant}/oauth2/v2.0/token`` with the client credentials,
on-behalf-of (``urn:ietf:params:oauth:grant-type:jwt-bearer``) and ``refresh_token`` grants,
answering Entra's success and error shapes (``error``, ``error_description`` with the AADSTS code,
``error_codes``, ``suberror``, ``claims``, ...). Client authentication is
:class:`emulator.identity.client_auth.ClientAuthenticator`'s."""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import jwt
from aiohttp import web

from emulator.identity.client_auth import Client, ClientAuthenticator
from emulator.identity.common import (
    BOT_FRAMEWORK_AUDIENCE,
    BOT_FRAMEWORK_TENANT_ID,
    CLOCK_SKEW_S,
    GRAPH_APP_ID,
    GRAPH_AUDIENCE,
    REFRESH_TOKEN_LIFETIME_S,
    OAuthError,
    b64url,
)
from emulator.identity.keys import decode_signed

if TYPE_CHECKING:
    from emulator.identity.service import Identity

__all__ = ["RefreshGrant", "TokenEndpoint", "origin_of"]

log = logging.getLogger(__name__)

_OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
_GRANT_CLIENT_CREDENTIALS = "client_credentials"
_GRANT_JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_GRANT_REFRESH_TOKEN = "refresh_token"  # noqa: S105 - a grant type name


def origin_of(request: web.Request) -> str:
    """``scheme://host[:port]`` the request came to."""
    return f"{request.scheme}://{request.host}"


@dataclass
class RefreshGrant:
    client_id: str
    user_oid: str
    resource: str
    scopes: frozenset[str]
    expires_at: datetime
    session_generation: int
    mfa: bool


@dataclass(frozen=True)
class _ScopeRequest:
    resource: str  # an audience: GRAPH_AUDIENCE, BOT_FRAMEWORK_AUDIENCE or an identifier URI
    names: frozenset[str]  # scope names without the resource prefix (".default" possible)
    prefixed: bool  # the caller wrote "https://graph.microsoft.com/X" rather than "X"


class TokenEndpoint:
    """The token endpoint of an :class:`Identity`."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        self.client_auth = ClientAuthenticator(identity)

    # ------------------------------------------------------------------ responses
    def error_response(self, request: web.Request, error: OAuthError) -> web.Response:
        now = self.identity.clock.now()
        trace_id = str(uuid.uuid4())
        correlation_id = request.headers.get("client-request-id") or str(uuid.uuid4())
        stamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
        body: dict[str, Any] = {
            "error": error.error,
            "error_description": (
                f"AADSTS{error.aadsts}: {error.description} Trace ID: {trace_id} "
                f"Correlation ID: {correlation_id} Timestamp: {stamp}"
            ),
            "error_codes": [error.aadsts],
            "timestamp": stamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"{origin_of(request)}/error?code={error.aadsts}",
        }
        if error.suberror:
            body["suberror"] = error.suberror
        if error.claims:
            body["claims"] = error.claims
        log.info(
            "token endpoint error %s AADSTS%d (%s)",
            error.error,
            error.aadsts,
            error.suberror or "-",
        )
        return web.json_response(body, status=error.status)

    async def handle(self, request: web.Request) -> web.Response:
        """The aiohttp handler of the token route."""
        try:
            return await self._token_or_raise(request)
        except OAuthError as error:
            return self.error_response(request, error)

    async def _token_or_raise(self, request: web.Request) -> web.Response:
        segment = request.match_info["tenant"]
        tenant = self.identity.resolve_tenant(segment)
        if tenant is None:
            raise OAuthError("invalid_request", 90002, f"Tenant '{segment}' not found.")
        form = await request.post()
        data = {key: str(value) for key, value in form.items() if isinstance(value, str)}
        client = self.client_auth.authenticate(request, data)
        grant_type = data.get("grant_type", "")
        if grant_type == _GRANT_CLIENT_CREDENTIALS:
            body = self._grant_client_credentials(client, tenant, data)
        elif grant_type == _GRANT_JWT_BEARER and data.get("requested_token_use") == "on_behalf_of":
            self._require_home_tenant(tenant)
            body = self._grant_on_behalf_of(request, client, data)
        elif grant_type == _GRANT_REFRESH_TOKEN:
            self._require_home_tenant(tenant)
            body = self._grant_refresh_token(request, client, data)
        else:
            raise OAuthError(
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant_type}'.",
            )
        return web.json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _require_home_tenant(self, tenant: str) -> None:
        if tenant != self.identity.tenant_id:
            raise OAuthError(
                "invalid_request", 50059, "No tenant-identifying information found in the request."
            )

    # -- client authentication

    def _resource_for(self, prefix: str) -> str | None:
        lowered = prefix.rstrip("/").lower()
        if lowered in {GRAPH_AUDIENCE, GRAPH_APP_ID}:
            return GRAPH_AUDIENCE
        if lowered == BOT_FRAMEWORK_AUDIENCE:
            return BOT_FRAMEWORK_AUDIENCE
        for app in self.identity.apps.values():
            if app.identifier_uri and app.identifier_uri.rstrip("/").lower() == lowered:
                return app.identifier_uri
            if app.client_id.lower() == lowered:
                return app.identifier_uri or app.client_id
        return None

    def _parse_scopes(self, raw: str) -> tuple[_ScopeRequest, frozenset[str]]:
        """Split ``scope`` into the one resource's scope names and the OIDC scopes."""
        resources: dict[str, set[str]] = {}
        prefixed = False
        oidc: set[str] = set()
        for item in raw.split():
            if item in _OIDC_SCOPES:
                oidc.add(item)
                continue
            if "/" in item:
                prefix, _, name = item.rpartition("/")
                resource = self._resource_for(prefix)
                if resource is None:
                    raise OAuthError(
                        "invalid_resource",
                        500011,
                        f"The resource principal named {prefix} was not found in the tenant "
                        f"named {self.identity.tenant_id}. This can happen if the application has not "
                        "been installed by the administrator of the tenant or consented to by "
                        "any user in the tenant.",
                    )
                prefixed = True
            else:
                # A bare scope name means Microsoft Graph, as in Entra.
                resource, name = GRAPH_AUDIENCE, item
            resources.setdefault(resource, set()).add(name)
        if len(resources) > 1:
            raise OAuthError(
                "invalid_scope",
                28000,
                "Provided value for the input parameter scope is not valid because it contains "
                "more than one resource. Scope "
                f"{raw} is not valid.",
            )
        if not resources:
            raise OAuthError(
                "invalid_scope",
                70011,
                f"The provided value for the input parameter 'scope' ({raw}) "
                "is not valid: it names no resource.",
            )
        resource, names = next(iter(resources.items()))
        return _ScopeRequest(
            resource=resource, names=frozenset(names), prefixed=prefixed
        ), frozenset(oidc)

    def _render_scopes(self, request: _ScopeRequest, granted: Iterable[str]) -> str:
        """The ``scope`` of a token response, written in the form the caller used.

        Echoing the caller's form lets msal's cache find the token again by the same scopes.
        """
        if request.prefixed:
            return " ".join(f"{request.resource}/{name}" for name in sorted(granted))
        return " ".join(sorted(granted))

    # -- grants
    def _token_body(self, access_token: str, *, scope: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "expires_in": self.identity.access_token_lifetime_s,
            "ext_expires_in": self.identity.access_token_lifetime_s,
            "access_token": access_token,
        }
        if scope is not None:
            body["scope"] = scope
        return body

    def _grant_client_credentials(
        self, client: Client, tenant: str, data: Mapping[str, str]
    ) -> dict[str, Any]:
        raw = data.get("scope", "")
        request, _ = self._parse_scopes(raw)
        if request.names != {".default"}:
            raise OAuthError(
                "invalid_scope",
                1002012,
                f"The provided value for scope {raw} is not valid. Client credential flows "
                "must have a scope value with /.default suffixed to the resource identifier "
                "(application ID URI).",
            )
        if tenant == BOT_FRAMEWORK_TENANT_ID and request.resource != BOT_FRAMEWORK_AUDIENCE:
            raise OAuthError(
                "invalid_resource",
                500011,
                f"The resource principal named {request.resource} was not found "
                "in the tenant named botframework.com.",
            )
        token = self.identity.issue_app_token(
            client_id=client.app.client_id,
            audience=request.resource,
            tenant_id=tenant,
            used_certificate=client.used_certificate,
        )
        log.info(
            "client credentials token for app %s, resource %s",
            client.app.client_id,
            request.resource,
        )
        return self._token_body(token)

    def _validate_assertion(self, client: Client, assertion: str) -> dict[str, Any]:
        """Validate the user assertion of an OBO request (a token whose audience is the app)."""
        try:
            claims = decode_signed(assertion, [self.identity.signing_key])
        except jwt.InvalidTokenError as exc:
            raise OAuthError(
                "invalid_grant", 50013, "Assertion failed signature validation."
            ) from exc
        app = client.app
        audiences = {app.client_id, f"api://{app.client_id}"}
        if app.identifier_uri:
            audiences.add(app.identifier_uri)
        if claims.get("aud") not in audiences:
            raise OAuthError(
                "invalid_grant",
                50013,
                "Assertion audience does not match the Client app presenting "
                "the assertion. The audience in the assertion was "
                f"'{claims.get('aud')}' and the expected audience is "
                f"'{app.identifier_uri or app.client_id}'.",
            )
        if claims.get("tid") != self.identity.tenant_id or claims.get(
            "iss"
        ) != self.identity.v1_issuer(self.identity.tenant_id):
            raise OAuthError("invalid_grant", 50013, "Assertion is not issued by this tenant.")
        now = self.identity.clock.now()
        exp = claims.get("exp")
        if not isinstance(exp, int) or now.timestamp() > exp + CLOCK_SKEW_S:
            expiry = (
                datetime.fromtimestamp(exp, tz=now.tzinfo).strftime("%m/%d/%Y %H:%M:%S")
                if isinstance(exp, int)
                else "unknown"
            )
            raise OAuthError(
                "invalid_grant",
                500133,
                "Assertion is not within its valid time range. Ensure that the access token is "
                "not expired before using it for user assertion, or request a new token. "
                f"Current time: {now.strftime('%m/%d/%Y %H:%M:%S')}, expiry time of assertion "
                f"{expiry}.",
            )
        if "scp" not in claims or "oid" not in claims:
            raise OAuthError("invalid_grant", 50013, "The assertion is not a delegated user token.")
        return claims

    def _check_user_can_sign_in(
        self, user_oid: str, *, mfa_done: bool, resource: str
    ) -> Mapping[str, Any]:
        user = self.identity.lookup_user(user_oid)
        if user is None:
            raise OAuthError(
                "invalid_grant", 50034, "The user account does not exist in the directory."
            )
        if user.get("accountEnabled") is False:
            raise OAuthError(
                "invalid_grant", 50057, "The user account is disabled.", suberror="user_disabled"
            )
        if user_oid in self.identity.mfa_required and not mfa_done:
            # The claims challenge a Conditional Access policy sends back (capolids = the policy).
            policy_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"ca-mfa:{self.identity.tenant_id}"))
            challenge = json.dumps(
                {"access_token": {"capolids": {"essential": True, "values": [policy_id]}}},
                separators=(",", ":"),
            )
            raise OAuthError(
                "interaction_required",
                50076,
                "Due to a configuration change made by your administrator, or because you "
                f"moved to a new location, you must use multi-factor authentication to access "
                f"'{resource}'.",
                suberror="basic_action",
                claims=challenge,
            )
        return user

    def _consented_scopes(self, client: Client, request: _ScopeRequest) -> frozenset[str]:
        app = client.app
        if request.resource != GRAPH_AUDIENCE:
            consented: set[str] = set()
        else:
            consented = set(app.delegated_permissions)
        if request.names == {".default"}:
            wanted = frozenset(consented)
        else:
            wanted = request.names
        if not wanted or not wanted <= consented:
            raise OAuthError(
                "invalid_grant",
                65001,
                f"The user or administrator has not consented to use the application with ID "
                f"'{app.client_id}' named '{app.display_name}'. Send an interactive "
                "authorization request for this user and resource.",
                suberror="consent_required",
            )
        return wanted

    def _user_token_response(
        self,
        request: web.Request,
        client: Client,
        scope_request: _ScopeRequest,
        granted: frozenset[str],
        user: Mapping[str, Any],
        *,
        mfa: bool,
        oidc: frozenset[str],
    ) -> dict[str, Any]:
        user_oid = str(user["id"])
        access_token = self.identity.issue_user_token(
            user_oid=user_oid,
            client_id=client.app.client_id,
            scopes=granted,
            audience=scope_request.resource,
            mfa=mfa,
            used_certificate=client.used_certificate,
        )
        body = self._token_body(access_token, scope=self._render_scopes(scope_request, granted))
        if "offline_access" in oidc:
            refresh_token = "0.emu." + secrets.token_urlsafe(48)
            self.identity.refresh_grants[refresh_token] = RefreshGrant(
                client_id=client.app.client_id,
                user_oid=user_oid,
                resource=scope_request.resource,
                scopes=granted,
                expires_at=self.identity.clock.now() + timedelta(seconds=REFRESH_TOKEN_LIFETIME_S),
                session_generation=self.identity.session_generation.get(user_oid, 0),
                mfa=mfa,
            )
            body["refresh_token"] = refresh_token
        if "openid" in oidc:
            body["id_token"] = self.identity.id_token(
                issuer=f"{origin_of(request)}/{self.identity.tenant_id}/v2.0",
                client_id=client.app.client_id,
                user=user,
            )
        # client_info lets msal key its cached account as "{oid}.{tid}".
        body["client_info"] = b64url(
            json.dumps({"uid": user_oid, "utid": self.identity.tenant_id}).encode()
        )
        return body

    def _grant_on_behalf_of(
        self, request: web.Request, client: Client, data: Mapping[str, str]
    ) -> dict[str, Any]:
        assertion = data.get("assertion", "")
        if not assertion:
            raise OAuthError(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'assertion'.",
            )
        claims = self._validate_assertion(client, assertion)
        scope_request, oidc = self._parse_scopes(data.get("scope", ""))
        mfa_done = "mfa" in (claims.get("amr") or [])
        user = self._check_user_can_sign_in(
            str(claims["oid"]), mfa_done=mfa_done, resource=scope_request.resource
        )
        granted = self._consented_scopes(client, scope_request)
        log.info(
            "on-behalf-of token for app %s, user %s, scopes %s",
            client.app.client_id,
            claims["oid"],
            " ".join(sorted(granted)),
        )
        return self._user_token_response(
            request, client, scope_request, granted, user, mfa=mfa_done, oidc=oidc
        )

    def _grant_refresh_token(
        self, request: web.Request, client: Client, data: Mapping[str, str]
    ) -> dict[str, Any]:
        grant = self.identity.refresh_grants.get(data.get("refresh_token", ""))
        if grant is None or grant.client_id != client.app.client_id:
            raise OAuthError(
                "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid."
            )
        if self.identity.clock.now() >= grant.expires_at:
            raise OAuthError(
                "invalid_grant", 700082, "The refresh token has expired due to inactivity."
            )
        if grant.session_generation != self.identity.session_generation.get(grant.user_oid, 0):
            raise OAuthError(
                "invalid_grant",
                50173,
                "The provided grant has expired due to it being revoked, a fresh "
                "auth token is needed. The user might have changed or reset "
                "their password.",
            )
        raw = data.get("scope", "")
        if raw.strip() and set(raw.split()) - _OIDC_SCOPES:
            scope_request, oidc = self._parse_scopes(raw)
        else:
            scope_request = _ScopeRequest(
                resource=grant.resource, names=grant.scopes, prefixed=True
            )
            oidc = frozenset(raw.split()) or _OIDC_SCOPES
        user = self._check_user_can_sign_in(
            grant.user_oid, mfa_done=grant.mfa, resource=scope_request.resource
        )
        # Consent may have been withdrawn since the refresh token was issued.
        granted = self._consented_scopes(client, scope_request)
        return self._user_token_response(
            request,
            client,
            scope_request,
            granted,
            user,
            mfa=grant.mfa,
            oidc=oidc | {"offline_access"},
        )
