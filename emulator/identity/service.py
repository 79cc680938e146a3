"""The emulated Entra ID tenant: registrations, keys, the tokens it mints and how a resource
validates them, the Bot Framework channel's signer, and the login site that serves it all.

Token formats follow what Entra issues for these resources (v1.0 access tokens: Graph and the
Bot Framework do not opt into v2 tokens): ``iss`` ``https://sts.windows.net/{tid}/``, ``aud`` the
resource, ``tid``, ``oid``, ``upn``, ``scp`` (delegated) or ``roles`` (app-only), ``appid``,
``idtyp``, ``iat``/``nbf``/``exp``. ID tokens and managed identity tokens are v2.0 tokens.

Clocks: tokens that this module both mints and validates (Graph/Connector access tokens, Teams SSO
tokens, refresh tokens) use the injected emulator clock, so tests can expire them by moving a
``ManualClock``. Tokens judged by the wall clock instead, because the other side uses its own real
clock: client assertions (minted by the bot from ``time.time()``), managed identity tokens (msal
compares their ``expires_on`` with ``time.time()``), external issuers' tokens and channel tokens
(validated by the botbuilder SDK against ``time.time()``).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import ssl
import tempfile
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any

import jwt
import trustme
from aiohttp import web

from emulator.clock import Clock, SystemClock
from emulator.faults import Faults
from emulator.identity.apps import AppRegistration
from emulator.identity.client_auth import ClientAuthenticator
from emulator.identity.common import (
    ACCESS_TOKEN_LIFETIME_S,
    BOT_FRAMEWORK_AUDIENCE,
    BOT_FRAMEWORK_TENANT_ID,
    CHANNEL_TOKEN_ISSUER,
    CLOCK_SKEW_S,
    GRAPH_APP_ID,
    GRAPH_AUDIENCE,
    MANAGED_IDENTITY_TOKEN_LIFETIME_S,
    TEAMS_DESKTOP_CLIENT_ID,
    TOKEN_EXCHANGE_AUDIENCE,
    AccessToken,
    OAuthError,
    TokenError,
    b64url,
    epoch,
)
from emulator.identity.federation import ExternalIssuer, add_external_issuer_routes
from emulator.identity.grants import RefreshGrant, TokenEndpoint, origin_of
from emulator.identity.keys import SigningKey, decode_signed, new_key, sign
from emulator.identity.managed_identity import ManagedIdentity, ManagedIdentityEndpoint
from emulator.identity.metadata import StaticJsonServer, tenant_openid_configuration

__all__ = ["Identity"]


class Identity:
    """The emulated Entra ID tenant's token service, keys and Bot Framework channel signer.

    ``user_lookup(oid_or_upn)`` returns the directory user (``id``, ``userPrincipalName``,
    ``displayName`` and optionally ``accountEnabled``) or ``None``; the tenant provides it.
    Call :meth:`close` (or let the object be collected) to delete the CA file.
    """

    graph_audience: str = GRAPH_AUDIENCE
    #: Route of the Bot Framework channel OpenID metadata. Served by the login app and the
    #: connector app; the query string makes the URL unique per Identity because botbuilder
    #: caches signing keys per metadata URL for the whole process (ports get reused).
    #: For a botbuilder bot prefer :meth:`serve_channel_metadata_in_thread`: botbuilder fetches
    #: this URL with a blocking ``requests.get`` that ignores our CA (https) and blocks the loop.
    channel_openid_metadata_path: str

    def __init__(
        self,
        *,
        clock: Clock,
        tenant_id: str,
        user_lookup: Callable[[str], Mapping[str, Any] | None],
        wall_clock: Clock | None = None,
    ) -> None:
        self.clock = clock
        self.wall_clock: Clock = wall_clock or SystemClock()
        self.tenant_id = tenant_id
        self._lookup = user_lookup
        self.apps: dict[str, AppRegistration] = {}
        self.signing_key = new_key()
        self.channel_key = new_key()
        self.refresh_grants: dict[str, RefreshGrant] = {}
        self.mfa_required: set[str] = set()
        self.session_generation: dict[str, int] = {}
        self._instance = uuid.uuid4().hex[:12]
        self.channel_openid_metadata_path = (
            f"/v1/.well-known/openidconfiguration?emulator={self._instance}"
        )
        self._ca = trustme.CA(organization_name="Access Review Bot emulator")
        self._server_cert = self._ca.issue_cert("127.0.0.1", "localhost", "::1")
        self._tmpdir = tempfile.mkdtemp(prefix="arb-emulator-ca-")
        self.ca_pem_path: str = os.path.join(self._tmpdir, "ca.pem")
        self._ca.cert_pem.write_to_path(self.ca_pem_path)
        self._finalizer = weakref.finalize(self, shutil.rmtree, self._tmpdir, True)
        self._metadata_server: StaticJsonServer | None = None
        self._finalizer_server: weakref.finalize[Any, Any] | None = None
        #: Lifetime of the access tokens the token endpoint issues (tests shorten it).
        self.access_token_lifetime_s = ACCESS_TOKEN_LIFETIME_S
        #: ``https://host:port`` of the login site once it serves (the issuer of v2 tokens, of
        #: managed identity tokens and the base of the external issuers' URLs).
        self.login_origin: str | None = None
        self.external_issuers: dict[str, ExternalIssuer] = {}
        self.managed_identities: dict[str, ManagedIdentity] = {}
        self.managed_identity_endpoint = ManagedIdentityEndpoint(
            mint=self.issue_managed_identity_token,
            resources={TOKEN_EXCHANGE_AUDIENCE, GRAPH_AUDIENCE},
        )
        self.token_endpoint = TokenEndpoint(self)

    # ------------------------------------------------------------------ lifecycle and TLS
    def close(self) -> None:
        """Delete the CA file written at construction and stop the metadata thread, if any."""
        if self._finalizer_server is not None:
            self._finalizer_server()
        self._finalizer()

    def server_ssl_context(self) -> ssl.SSLContext:
        """TLS context for the emulator's https sites (certificate for 127.0.0.1 / localhost)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._server_cert.configure_cert(context)
        return context

    def client_ssl_context(self) -> ssl.SSLContext:
        """TLS context for clients that trust only the emulator's CA (e.g. ``httpx`` ``verify=``)."""
        return ssl.create_default_context(cafile=self.ca_pem_path)

    # ------------------------------------------------------------------ directory
    def register_app(self, app: AppRegistration) -> None:
        """Add (or replace) an application registration."""
        self.apps[app.client_id] = app

    def app(self, client_id: str) -> AppRegistration:
        """The registration of ``client_id`` (``KeyError`` if unknown)."""
        return self.apps[client_id]

    def lookup_user(self, oid_or_upn: str) -> Mapping[str, Any] | None:
        """The tenant's user for an object id or UPN, or ``None``."""
        return self._lookup(oid_or_upn)

    def set_mfa_required(self, user_oid: str, required: bool = True) -> None:
        """Make on-behalf-of for this user answer ``interaction_required`` (AADSTS50076).

        Like a Conditional Access policy demanding MFA: an SSO token minted with ``mfa=True``
        (the user did MFA in Teams) satisfies it.
        """
        if required:
            self.mfa_required.add(user_oid)
        else:
            self.mfa_required.discard(user_oid)

    @property
    def client_auth(self) -> ClientAuthenticator:
        """How token requests authenticated (counts, thumbprints, recent assertions)."""
        return self.token_endpoint.client_auth

    def _origin_or_fail(self) -> str:
        if self.login_origin is None:
            raise RuntimeError("Identity.login_origin is not set: start the login site first")
        return self.login_origin

    def v2_issuer(self, tenant_id: str | None = None) -> str:
        """``{login origin}/{tenant}/v2.0``: the issuer of v2 tokens (and managed identities')."""
        return f"{self._origin_or_fail()}/{tenant_id or self.tenant_id}/v2.0"

    def add_external_issuer(self, name: str) -> ExternalIssuer:
        """An external OIDC issuer served at ``{login origin}/external/{name}``."""
        issuer = ExternalIssuer(name, self._origin_or_fail)
        self.external_issuers[name] = issuer
        return issuer

    def add_managed_identity(
        self, *, client_id: str, principal_id: str, name: str = "bot-identity", attach: bool = True
    ) -> ManagedIdentity:
        """A user-assigned managed identity (and, with ``attach``, assigned to the emulated host
        whose endpoint :meth:`make_managed_identity_app` serves)."""
        identity = ManagedIdentity(client_id=client_id, principal_id=principal_id, name=name)
        self.managed_identities[client_id] = identity
        if attach:
            self.managed_identity_endpoint.attach(identity)
        return identity

    def issue_managed_identity_token(
        self, identity: ManagedIdentity, resource: str
    ) -> tuple[str, int]:
        """What the managed identity endpoint hands out: a token of the identity's service
        principal, issued by this tenant (v2 issuer), dated by the wall clock (msal compares
        ``expires_on`` with ``time.time()``). Returns the token and its ``exp``."""
        now = epoch(self.wall_clock.now())
        exp = now + MANAGED_IDENTITY_TOKEN_LIFETIME_S
        claims: dict[str, Any] = {
            "aud": resource,
            "iss": self.v2_issuer(),
            "iat": now - 300,
            "nbf": now - 300,
            "exp": exp,
            "azp": identity.client_id,
            "appid": identity.client_id,
            "idtyp": "app",
            "oid": identity.principal_id,
            "sub": identity.principal_id,
            "tid": self.tenant_id,
            "uti": b64url(secrets.token_bytes(16)),
            "ver": "2.0",
            "xms_mirid": identity.resource_id,
        }
        if resource == GRAPH_AUDIENCE:
            claims["iss"] = self.v1_issuer(self.tenant_id)
            claims["ver"] = "1.0"
        return self._sign(claims), exp

    def is_tenant_issuer(self, request: web.Request, issuer: str) -> bool:
        """Whether ``issuer`` is this tenant's v2 issuer on the login site ``request`` came to."""
        return issuer == f"{origin_of(request)}/{self.tenant_id}/v2.0"

    def federation_keys(self, request: web.Request, issuer: str) -> list[SigningKey] | None:
        """The signing keys of a federated assertion's issuer, as Entra would fetch them from
        the issuer's OpenID configuration; ``None`` when it has none to give."""
        if self.is_tenant_issuer(request, issuer):
            return [self.signing_key]
        for external in self.external_issuers.values():
            if external.url == issuer:
                return [external.key]
        return None

    def revoke_sessions(self, user_oid: str) -> None:
        """Invalidate every refresh token of a user (``revokeSignInSessions``)."""
        self.session_generation[user_oid] = self.session_generation.get(user_oid, 0) + 1

    # ------------------------------------------------------------------ minting
    def _sign(self, claims: Mapping[str, Any], key: SigningKey | None = None) -> str:
        return sign(claims, key or self.signing_key)

    def v1_issuer(self, tenant_id: str) -> str:
        return f"https://sts.windows.net/{tenant_id}/"

    def _time_claims(self, lifetime_s: int) -> dict[str, int]:
        now = self.clock.now()
        # Entra back-dates nbf/iat by five minutes to absorb clock skew.
        start = epoch(now - timedelta(minutes=5))
        return {"iat": start, "nbf": start, "exp": epoch(now) + lifetime_s}

    def _user(self, oid_or_upn: str) -> Mapping[str, Any]:
        user = self._lookup(oid_or_upn)
        if user is None:
            raise ValueError(f"no such user in the tenant: {oid_or_upn}")
        return user

    def _service_principal_oid(self, client_id: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{self.tenant_id}:{client_id}"))

    def _user_claims(self, user: Mapping[str, Any], *, mfa: bool) -> dict[str, Any]:
        upn = str(user.get("userPrincipalName") or "")
        name = str(user.get("displayName") or upn)
        return {
            "oid": str(user["id"]),
            "sub": b64url(hashlib.sha256(f"{user['id']}".encode()).digest())[:43],
            "upn": upn,
            "unique_name": upn,
            "name": name,
            "amr": ["pwd", "mfa"] if mfa else ["pwd"],
            "idtyp": "user",
        }

    def issue_app_token(
        self,
        *,
        client_id: str,
        audience: str = GRAPH_AUDIENCE,
        roles: Iterable[str] | None = None,
        tenant_id: str | None = None,
        expires_in_s: int | None = None,
        used_certificate: bool = False,
    ) -> str:
        """Mint an app-only access token (what client credentials returns).

        ``roles`` defaults to the app's granted Graph application permissions for the Graph
        audience and to none otherwise.
        """
        app = self.app(client_id)
        tid = tenant_id or self.tenant_id
        if roles is None:
            roles = app.application_permissions if audience == GRAPH_AUDIENCE else ()
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": self.v1_issuer(tid),
            **self._time_claims(expires_in_s or self.access_token_lifetime_s),
            "app_displayname": app.display_name,
            "appid": app.client_id,
            "appidacr": "2" if used_certificate else "1",
            "idp": self.v1_issuer(tid),
            "idtyp": "app",
            "oid": self._service_principal_oid(app.client_id),
            "sub": self._service_principal_oid(app.client_id),
            "tid": tid,
            "uti": b64url(secrets.token_bytes(16)),
            "ver": "1.0",
        }
        role_list = sorted(roles)
        if role_list:
            claims["roles"] = role_list  # Entra omits the claim when nothing is granted
        return self._sign(claims)

    def issue_user_token(
        self,
        *,
        user_oid: str,
        client_id: str,
        scopes: Iterable[str],
        audience: str = GRAPH_AUDIENCE,
        expires_in_s: int | None = None,
        mfa: bool = False,
        used_certificate: bool = False,
    ) -> str:
        """Mint a delegated access token for ``user_oid`` (what OBO returns for Graph).

        Test helper too: lets resource tests get a reviewer's token without running msal.
        """
        app = self.app(client_id)
        user = self._user(user_oid)
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": self.v1_issuer(self.tenant_id),
            **self._time_claims(expires_in_s or self.access_token_lifetime_s),
            "acr": "1",
            "app_displayname": app.display_name,
            "appid": app.client_id,
            "appidacr": "2" if used_certificate else "1",
            **self._user_claims(user, mfa=mfa),
            "scp": " ".join(sorted(scopes)),
            "tid": self.tenant_id,
            "uti": b64url(secrets.token_bytes(16)),
            "ver": "1.0",
        }
        return self._sign(claims)

    def issue_sso_token(
        self, *, user_oid: str, app_id: str, expires_in_s: int = 3600, mfa: bool = False
    ) -> str:
        """The token Teams hands the bot for a user (SSO): ``aud`` = the app's Application ID
        URI (``api://botid-{appId}``), ``scp`` ``access_as_user``, issued to the Teams client.

        ``mfa=True`` marks the sign-in as multi-factor (``amr`` contains ``mfa``).
        Raises ``ValueError`` when the app has no identifier URI (SSO not set up) or the user is
        unknown.
        """
        app = self.app(app_id)
        if app.identifier_uri is None:
            raise ValueError(f"app {app_id} exposes no API (identifier_uri); SSO is not set up")
        user = self._user(user_oid)
        claims: dict[str, Any] = {
            "aud": app.identifier_uri,
            "iss": self.v1_issuer(self.tenant_id),
            **self._time_claims(expires_in_s or self.access_token_lifetime_s),
            "acr": "1",
            "appid": TEAMS_DESKTOP_CLIENT_ID,
            "appidacr": "0",
            **self._user_claims(user, mfa=mfa),
            "scp": "access_as_user",
            "tid": self.tenant_id,
            "uti": b64url(secrets.token_bytes(16)),
            "ver": "1.0",
        }
        return self._sign(claims)

    def id_token(self, *, issuer: str, client_id: str, user: Mapping[str, Any]) -> str:
        now = self.clock.now()
        oid = str(user["id"])
        claims = {
            "aud": client_id,
            "iss": issuer,
            "iat": epoch(now - timedelta(minutes=5)),
            "nbf": epoch(now - timedelta(minutes=5)),
            "exp": epoch(now) + self.access_token_lifetime_s,
            "name": str(user.get("displayName") or ""),
            "oid": oid,
            "preferred_username": str(user.get("userPrincipalName") or ""),
            "sub": b64url(hashlib.sha256(f"{client_id}:{oid}".encode()).digest())[:43],
            "tid": self.tenant_id,
            "ver": "2.0",
        }
        return self._sign(claims)

    # ------------------------------------------------------------------ validation
    def validate_access_token(self, token: str, *, audience: str) -> AccessToken:
        """Validate a bearer token presented to a resource whose audience is ``audience``.

        Checks the signature, ``iss`` (this tenant, or the botframework.com tenant for the Bot
        Framework audience), ``aud``, ``nbf`` and ``exp`` (with the usual 5 minute skew, on the
        emulator clock). Raises :class:`TokenError` with Graph's codes and messages.
        """
        if not token:
            raise TokenError(401, "InvalidAuthenticationToken", "Access token is empty.")
        try:
            claims = decode_signed(token, [self.signing_key])
        except jwt.InvalidSignatureError as exc:  # a DecodeError subclass: test it first
            raise TokenError(
                401,
                "InvalidAuthenticationToken",
                "Access token validation failure. Invalid signature.",
            ) from exc
        except jwt.DecodeError as exc:
            raise TokenError(
                401, "InvalidAuthenticationToken", "IDX14100: JWT is not well formed."
            ) from exc
        except jwt.InvalidTokenError as exc:
            raise TokenError(
                401,
                "InvalidAuthenticationToken",
                "Access token validation failure. Invalid signature.",
            ) from exc
        allowed_issuers = {self.v1_issuer(self.tenant_id)}
        if audience == BOT_FRAMEWORK_AUDIENCE:
            allowed_issuers.add(self.v1_issuer(BOT_FRAMEWORK_TENANT_ID))
        if claims.get("iss") not in allowed_issuers:
            raise TokenError(
                401,
                "InvalidAuthenticationToken",
                "Access token validation failure. Invalid issuer.",
            )
        token_audience = claims.get("aud")
        accepted_audiences = {audience}
        if audience == GRAPH_AUDIENCE:
            accepted_audiences |= {GRAPH_AUDIENCE + "/", GRAPH_APP_ID}
        if token_audience not in accepted_audiences:
            raise TokenError(
                401,
                "InvalidAuthenticationToken",
                "Access token validation failure. Invalid audience.",
            )
        now_s = self.clock.now().timestamp()
        exp = claims.get("exp")
        nbf = claims.get("nbf")
        if not isinstance(exp, int) or now_s > exp + CLOCK_SKEW_S:
            raise TokenError(
                401,
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is expired.",
            )
        if isinstance(nbf, int) and now_s < nbf - CLOCK_SKEW_S:
            raise TokenError(
                401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid."
            )
        scp = str(claims.get("scp") or "")
        roles = claims.get("roles") or []
        is_delegated = "scp" in claims
        return AccessToken(
            tenant_id=str(claims.get("tid") or ""),
            app_id=str(claims.get("appid") or claims.get("azp") or ""),
            oid=str(claims["oid"]) if is_delegated and "oid" in claims else None,
            upn=str(claims["upn"]) if is_delegated and "upn" in claims else None,
            scopes=frozenset(scp.split()),
            roles=frozenset(str(role) for role in roles),
            is_delegated=is_delegated,
            raw_claims=claims,
        )

    # ------------------------------------------------------------------ channel tokens
    def sign_channel_token(
        self, *, app_id: str, service_url: str, expires_in_s: int = 3600, **overrides: Any
    ) -> str:
        """Sign a Bot Framework channel → bot JWT, as Teams' channel does for each activity.

        Claims: ``iss`` https://api.botframework.com, ``aud`` the bot's app id, ``serviceurl``,
        ``nbf``/``iat``/``exp`` on the wall clock (the bot's SDK judges them by ``time.time()``);
        no ``ver``/``appid`` (those would classify it as a skill token). ``overrides`` replace or
        add claims (a value of ``None`` removes the claim), for forging bad tokens in tests.
        """
        now = self.wall_clock.now()
        claims: dict[str, Any] = {
            "serviceurl": service_url,
            "nbf": epoch(now) - 5,
            "iat": epoch(now) - 5,
            "exp": epoch(now) + expires_in_s,
            "iss": CHANNEL_TOKEN_ISSUER,
            "aud": app_id,
        }
        for name, value in overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return self._sign(claims, self.channel_key)

    # ------------------------------------------------------------------ aiohttp app
    def make_app(self, faults: Faults) -> web.Application:
        """The login service: OpenID metadata, keys, the token endpoint, the emulated external
        issuers' metadata and keys, and the channel metadata."""
        app = web.Application()
        faults.install(app, "login")
        app.router.add_get(
            "/{tenant}/v2.0/.well-known/openid-configuration", self._openid_configuration_v2
        )
        app.router.add_get(
            "/{tenant}/.well-known/openid-configuration", self._openid_configuration_v1
        )
        app.router.add_get("/{tenant}/discovery/v2.0/keys", self._tenant_keys)
        app.router.add_get("/{tenant}/discovery/keys", self._tenant_keys)
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self.token_endpoint.handle)
        add_external_issuer_routes(app, lambda: self.external_issuers)
        self.add_channel_metadata_routes(app)
        return app

    def make_managed_identity_app(self, faults: Faults) -> web.Application:
        """The host's managed identity endpoint (IMDS and App Service shapes), plain http.

        Tagged as part of the login service for fault rules (``service="login"``, a
        ``path_regex`` on ``/metadata/identity`` or ``/msi/token``).
        """
        app = self.managed_identity_endpoint.make_app()
        faults.install(app, "login")
        return app

    def serve_channel_metadata_in_thread(self) -> str:
        """Serve the channel OpenID metadata and JWKS from a small server on its own thread and
        return its metadata URL (``http://127.0.0.1:PORT/v1/.well-known/openidconfiguration?...``;
        the query keeps the URL unique per Identity for botbuilder's process-wide key cache).

        Use this URL for the bot's ``TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL`` whenever the bot
        and the emulator share an event loop (tests, the in-process demo): botbuilder fetches
        the metadata with a *blocking* ``requests.get`` on the loop, so a route served by that
        same loop could never answer. Idempotent; stopped by :meth:`close`.
        """
        if self._metadata_server is None:
            self._metadata_server = StaticJsonServer()
            origin = self._metadata_server.origin
            keys_path = "/v1/.well-known/keys"
            self._metadata_server.documents = {
                "/v1/.well-known/openidconfiguration": self._channel_metadata_document(origin),
                keys_path: self._channel_keys_document(),
            }
            self._finalizer_server = weakref.finalize(self, self._metadata_server.stop)
        return (
            f"{self._metadata_server.origin}/v1/.well-known/openidconfiguration"
            f"?emulator={self._instance}"
        )

    def add_channel_metadata_routes(self, app: web.Application) -> None:
        """Serve the channel OpenID metadata and JWKS on ``app``.

        The connector app (plain http) serves them too: botbuilder fetches the metadata with a
        bare ``requests.get``, which trusts only ``REQUESTS_CA_BUNDLE``/the system store, not
        the emulator's CA.
        """
        app.router.add_get("/v1/.well-known/openidconfiguration", self._channel_metadata)
        app.router.add_get("/v1/.well-known/keys", self._channel_keys)

    def resolve_tenant(self, segment: str) -> str | None:
        """The tenant id an authority path segment names (``None`` = not a tenant here)."""
        if segment.lower() in {self.tenant_id.lower()}:
            return self.tenant_id
        if segment.lower() in {"botframework.com", BOT_FRAMEWORK_TENANT_ID}:
            return BOT_FRAMEWORK_TENANT_ID
        return None

    def _metadata(self, request: web.Request, *, v2: bool) -> web.Response:
        segment = request.match_info["tenant"]
        tenant = self.resolve_tenant(segment)
        if tenant is None:
            return self.token_endpoint.error_response(
                request,
                OAuthError(
                    "invalid_tenant",
                    90002,
                    f"Tenant '{segment}' not found. Check to make sure you "
                    "have the correct tenant ID and are signing into the "
                    "correct cloud.",
                ),
            )
        return web.json_response(
            tenant_openid_configuration(
                origin=origin_of(request), tenant=tenant, v2=v2, v1_issuer=self.v1_issuer(tenant)
            )
        )

    async def _openid_configuration_v2(self, request: web.Request) -> web.Response:
        return self._metadata(request, v2=True)

    async def _openid_configuration_v1(self, request: web.Request) -> web.Response:
        return self._metadata(request, v2=False)

    async def _tenant_keys(self, request: web.Request) -> web.Response:
        return web.json_response({"keys": [self.signing_key.jwk()]})

    def _channel_metadata_document(self, origin: str) -> dict[str, Any]:
        return {
            "issuer": CHANNEL_TOKEN_ISSUER,
            "authorization_endpoint": "https://invalid.botframework.com",
            "jwks_uri": f"{origin}/v1/.well-known/keys?emulator={self._instance}",
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        }

    def _channel_keys_document(self) -> dict[str, Any]:
        key = self.channel_key.jwk()
        key["endorsements"] = ["msteams"]
        return {"keys": [key]}

    async def _channel_metadata(self, request: web.Request) -> web.Response:
        return web.json_response(self._channel_metadata_document(origin_of(request)))

    async def _channel_keys(self, request: web.Request) -> web.Response:
        return web.json_response(self._channel_keys_document())

    # ------------------------------------------------------------------ token endpoint
