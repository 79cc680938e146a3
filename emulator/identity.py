"""The emulated Microsoft Entra ID (login service) and Bot Framework channel authentication.

What it serves (https, certificate from a local CA made at start with ``trustme``):

* ``GET /{tenant}/v2.0/.well-known/openid-configuration`` (and the v1 form) with endpoints that
  point back at this server, so the real ``msal`` library can use it as its authority
  (``instance_discovery=False``, authority ``https://127.0.0.1:PORT/{tenant}``).
* ``GET /{tenant}/discovery/v2.0/keys``: the JWKS of the tenant's token-signing key.
* ``POST /{tenant}/oauth2/v2.0/token``: client credentials (secret or certificate assertion),
  on-behalf-of (``urn:ietf:params:oauth:grant-type:jwt-bearer``) and ``refresh_token`` grants,
  answering Entra's success and error shapes (``error``, ``error_description`` with the AADSTS
  code, ``error_codes``, ``suberror``, ``claims``, ...).
* The Bot Framework channel OpenID metadata (:attr:`Identity.channel_openid_metadata_path`) and
  its JWKS (keys endorsed for ``msteams``), whose key signs the activities the emulator sends to
  the bot (:meth:`Identity.sign_channel_token`).

Token formats follow what Entra issues for these resources (v1.0 access tokens: Graph and the
Bot Framework do not opt into v2 tokens): ``iss`` ``https://sts.windows.net/{tid}/``, ``aud`` the
resource, ``tid``, ``oid``, ``upn``, ``scp`` (delegated) or ``roles`` (app-only), ``appid``,
``idtyp``, ``iat``/``nbf``/``exp``. ID tokens are v2.0 tokens.

Clocks: tokens that this module both mints and validates (Graph/Connector access tokens, Teams SSO
tokens, refresh tokens) use the injected emulator clock, so tests can expire them by moving a
``ManualClock``. Two kinds of token are judged by the wall clock instead, because the other side
uses its own real clock: client assertions (minted by msal from ``time.time()``) and channel
tokens (validated by the botbuilder SDK against ``time.time()``).
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import logging
import os
import secrets
import shutil
import ssl
import tempfile
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import jwt
import trustme
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from emulator.clock import Clock, SystemClock
from emulator.faults import Faults

__all__ = [
    "BOT_FRAMEWORK_AUDIENCE",
    "BOT_FRAMEWORK_TENANT_ID",
    "CHANNEL_TOKEN_ISSUER",
    "GRAPH_AUDIENCE",
    "TEAMS_DESKTOP_CLIENT_ID",
    "AccessToken",
    "AppRegistration",
    "Identity",
    "TokenError",
]

log = logging.getLogger(__name__)

GRAPH_AUDIENCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
BOT_FRAMEWORK_AUDIENCE = "https://api.botframework.com"
#: The botframework.com tenant (multi-tenant bots get connector tokens from it).
BOT_FRAMEWORK_TENANT_ID = "d6d49420-f39b-4df7-a1dc-d59a935871db"
#: ``iss`` of the tokens the Bot Framework channel signs for activities sent to a bot.
CHANNEL_TOKEN_ISSUER = "https://api.botframework.com"  # noqa: S105 - an issuer URL
#: Teams desktop/mobile client, the pre-authorized client that requests SSO tokens.
TEAMS_DESKTOP_CLIENT_ID = "1fec8e78-bce4-4aaf-ab1b-5451cc387264"

_OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
_GRANT_CLIENT_CREDENTIALS = "client_credentials"
_GRANT_JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_GRANT_REFRESH_TOKEN = "refresh_token"  # noqa: S105 - a grant type name
_CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

# Entra issues access tokens for 60-90 minutes at random; a fixed 3599 s keeps tests deterministic.
ACCESS_TOKEN_LIFETIME_S = 3599
# Refresh tokens for confidential clients are valid for 90 days (inactivity window).
REFRESH_TOKEN_LIFETIME_S = 90 * 24 * 3600
# Microsoft.IdentityModel's default clock skew, used by Graph and the Bot Framework alike.
CLOCK_SKEW_S = 300


class TokenError(Exception):
    """A bearer token a resource was shown is not acceptable.

    ``status`` is the HTTP status the resource should answer (401, or 403 for a valid token that
    is not good for this resource), ``code`` the Graph-style error code
    (``InvalidAuthenticationToken``), ``message`` the text Graph would put in ``error.message``.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class AccessToken:
    """A validated access token, as seen by a resource (Graph or the Bot Connector).

    ``oid`` and ``upn`` are the signed-in user's for delegated tokens and ``None`` for app-only
    tokens (the raw ``oid`` claim of an app-only token is the service principal's object id; it
    stays available in ``raw_claims``).
    """

    tenant_id: str
    app_id: str
    oid: str | None
    upn: str | None
    scopes: frozenset[str]
    roles: frozenset[str]
    is_delegated: bool
    raw_claims: Mapping[str, Any]


@dataclass
class AppRegistration:
    """An application registered in the emulated tenant (and its service principal's grants)."""

    client_id: str
    display_name: str
    secret: str | None = None
    #: PEM of the public certificate accepted for client assertions (private_key_jwt).
    certificate_pem: bytes | None = None
    #: Granted Graph app roles, e.g. ``{"AccessReview.Read.All", "User.Read.All"}``.
    application_permissions: set[str] = field(default_factory=set)
    #: Admin-consented delegated Graph scopes, e.g. ``{"AccessReview.ReadWrite.All"}``.
    delegated_permissions: set[str] = field(default_factory=set)
    #: Application ID URI (``api://botid-{client_id}``), the audience of Teams SSO tokens.
    #: ``None`` means SSO is not set up for the app.
    identifier_uri: str | None = None


@dataclass
class _RefreshGrant:
    client_id: str
    user_oid: str
    resource: str
    scopes: frozenset[str]
    expires_at: datetime
    session_generation: int
    mfa: bool


@dataclass(frozen=True)
class _Key:
    kid: str
    private_key: rsa.RSAPrivateKey

    def jwk(self) -> dict[str, Any]:
        public = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": public["n"],
            "e": public["e"],
        }


def _new_key() -> _Key:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # Entra's kid is the base64url SHA-1 thumbprint of the signing certificate; a hash of the
    # public key gives ids of the same look.
    kid = _b64url(hashlib.sha1(der, usedforsecurity=False).digest())
    return _Key(kid=kid, private_key=private_key)


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


class _OAuthError(Exception):
    """An Entra token-endpoint error (``status`` 400 or 401)."""

    def __init__(
        self,
        error: str,
        aadsts: int,
        description: str,
        *,
        status: int = 400,
        suberror: str | None = None,
        claims: str | None = None,
    ) -> None:
        super().__init__(f"{error} AADSTS{aadsts}: {description}")
        self.error = error
        self.aadsts = aadsts
        self.description = description
        self.status = status
        self.suberror = suberror
        self.claims = claims


@dataclass(frozen=True)
class _Client:
    app: AppRegistration
    used_certificate: bool


@dataclass(frozen=True)
class _ScopeRequest:
    resource: str  # an audience: GRAPH_AUDIENCE, BOT_FRAMEWORK_AUDIENCE or an identifier URI
    names: frozenset[str]  # scope names without the resource prefix (".default" possible)
    prefixed: bool  # the caller wrote "https://graph.microsoft.com/X" rather than "X"


class _StaticJsonServer:
    """A tiny threaded http server answering fixed JSON documents by path (query ignored)."""

    def __init__(self) -> None:
        self.documents: dict[str, Any] = {}
        documents = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                document = documents.documents.get(path)
                body = json.dumps(
                    document if document is not None else {"error": "not found"}
                ).encode()
                self.send_response(200 if document is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("channel metadata server: " + format, *args)  # noqa: G003

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="channel-metadata", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


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
        self._clock = clock
        self._wall_clock: Clock = wall_clock or SystemClock()
        self.tenant_id = tenant_id
        self._user_lookup = user_lookup
        self._apps: dict[str, AppRegistration] = {}
        self._signing_key = _new_key()
        self._channel_key = _new_key()
        self._refresh_grants: dict[str, _RefreshGrant] = {}
        self._mfa_required: set[str] = set()
        self._session_generation: dict[str, int] = {}
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
        self._metadata_server: _StaticJsonServer | None = None
        self._finalizer_server: weakref.finalize[Any, Any] | None = None

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
        self._apps[app.client_id] = app

    def app(self, client_id: str) -> AppRegistration:
        """The registration of ``client_id`` (``KeyError`` if unknown)."""
        return self._apps[client_id]

    def lookup_user(self, oid_or_upn: str) -> Mapping[str, Any] | None:
        """The tenant's user for an object id or UPN, or ``None``."""
        return self._user_lookup(oid_or_upn)

    def set_mfa_required(self, user_oid: str, required: bool = True) -> None:
        """Make on-behalf-of for this user answer ``interaction_required`` (AADSTS50076).

        Like a Conditional Access policy demanding MFA: an SSO token minted with ``mfa=True``
        (the user did MFA in Teams) satisfies it.
        """
        if required:
            self._mfa_required.add(user_oid)
        else:
            self._mfa_required.discard(user_oid)

    def revoke_sessions(self, user_oid: str) -> None:
        """Invalidate every refresh token of a user (``revokeSignInSessions``)."""
        self._session_generation[user_oid] = self._session_generation.get(user_oid, 0) + 1

    # ------------------------------------------------------------------ minting
    def _sign(self, claims: Mapping[str, Any], key: _Key | None = None) -> str:
        signer = key or self._signing_key
        return jwt.encode(
            dict(claims),
            signer.private_key,
            algorithm="RS256",
            headers={"kid": signer.kid, "x5t": signer.kid, "typ": "JWT"},
        )

    def _v1_issuer(self, tenant_id: str) -> str:
        return f"https://sts.windows.net/{tenant_id}/"

    def _time_claims(self, lifetime_s: int) -> dict[str, int]:
        now = self._clock.now()
        # Entra back-dates nbf/iat by five minutes to absorb clock skew.
        start = _epoch(now - timedelta(minutes=5))
        return {"iat": start, "nbf": start, "exp": _epoch(now) + lifetime_s}

    def _user(self, oid_or_upn: str) -> Mapping[str, Any]:
        user = self._user_lookup(oid_or_upn)
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
            "sub": _b64url(hashlib.sha256(f"{user['id']}".encode()).digest())[:43],
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
        expires_in_s: int = ACCESS_TOKEN_LIFETIME_S,
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
            "iss": self._v1_issuer(tid),
            **self._time_claims(expires_in_s),
            "app_displayname": app.display_name,
            "appid": app.client_id,
            "appidacr": "2" if used_certificate else "1",
            "idp": self._v1_issuer(tid),
            "idtyp": "app",
            "oid": self._service_principal_oid(app.client_id),
            "sub": self._service_principal_oid(app.client_id),
            "tid": tid,
            "uti": _b64url(secrets.token_bytes(16)),
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
        expires_in_s: int = ACCESS_TOKEN_LIFETIME_S,
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
            "iss": self._v1_issuer(self.tenant_id),
            **self._time_claims(expires_in_s),
            "acr": "1",
            "app_displayname": app.display_name,
            "appid": app.client_id,
            "appidacr": "2" if used_certificate else "1",
            **self._user_claims(user, mfa=mfa),
            "scp": " ".join(sorted(scopes)),
            "tid": self.tenant_id,
            "uti": _b64url(secrets.token_bytes(16)),
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
            "iss": self._v1_issuer(self.tenant_id),
            **self._time_claims(expires_in_s),
            "acr": "1",
            "appid": TEAMS_DESKTOP_CLIENT_ID,
            "appidacr": "0",
            **self._user_claims(user, mfa=mfa),
            "scp": "access_as_user",
            "tid": self.tenant_id,
            "uti": _b64url(secrets.token_bytes(16)),
            "ver": "1.0",
        }
        return self._sign(claims)

    def _id_token(self, *, issuer: str, client_id: str, user: Mapping[str, Any]) -> str:
        now = self._clock.now()
        oid = str(user["id"])
        claims = {
            "aud": client_id,
            "iss": issuer,
            "iat": _epoch(now - timedelta(minutes=5)),
            "nbf": _epoch(now - timedelta(minutes=5)),
            "exp": _epoch(now) + ACCESS_TOKEN_LIFETIME_S,
            "name": str(user.get("displayName") or ""),
            "oid": oid,
            "preferred_username": str(user.get("userPrincipalName") or ""),
            "sub": _b64url(hashlib.sha256(f"{client_id}:{oid}".encode()).digest())[:43],
            "tid": self.tenant_id,
            "ver": "2.0",
        }
        return self._sign(claims)

    # ------------------------------------------------------------------ validation
    def _decode_signed(self, token: str, keys: Iterable[_Key]) -> dict[str, Any]:
        """Check the signature (RS256, known kid); raises ``jwt.InvalidTokenError``."""
        header = jwt.get_unverified_header(token)
        if header.get("alg") != "RS256":
            raise jwt.InvalidAlgorithmError("only RS256 tokens are issued here")
        key = next((k for k in keys if k.kid == header.get("kid")), None)
        if key is None:
            raise jwt.InvalidSignatureError("unknown signing key")
        # Times and audience are checked by the callers against the right clock.
        return jwt.decode(
            token,
            key.private_key.public_key(),
            algorithms=["RS256"],
            options={
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "verify_iss": False,
            },
        )

    def validate_access_token(self, token: str, *, audience: str) -> AccessToken:
        """Validate a bearer token presented to a resource whose audience is ``audience``.

        Checks the signature, ``iss`` (this tenant, or the botframework.com tenant for the Bot
        Framework audience), ``aud``, ``nbf`` and ``exp`` (with the usual 5 minute skew, on the
        emulator clock). Raises :class:`TokenError` with Graph's codes and messages.
        """
        if not token:
            raise TokenError(401, "InvalidAuthenticationToken", "Access token is empty.")
        try:
            claims = self._decode_signed(token, [self._signing_key])
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
        allowed_issuers = {self._v1_issuer(self.tenant_id)}
        if audience == BOT_FRAMEWORK_AUDIENCE:
            allowed_issuers.add(self._v1_issuer(BOT_FRAMEWORK_TENANT_ID))
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
        now_s = self._clock.now().timestamp()
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
        now = self._wall_clock.now()
        claims: dict[str, Any] = {
            "serviceurl": service_url,
            "nbf": _epoch(now) - 5,
            "iat": _epoch(now) - 5,
            "exp": _epoch(now) + expires_in_s,
            "iss": CHANNEL_TOKEN_ISSUER,
            "aud": app_id,
        }
        for name, value in overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return self._sign(claims, self._channel_key)

    # ------------------------------------------------------------------ aiohttp app
    def make_app(self, faults: Faults) -> web.Application:
        """The login service: OpenID metadata, keys, the token endpoint, channel metadata."""
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
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        self.add_channel_metadata_routes(app)
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
            self._metadata_server = _StaticJsonServer()
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

    @staticmethod
    def _origin(request: web.Request) -> str:
        return f"{request.scheme}://{request.host}"

    def _resolve_tenant(self, segment: str) -> str | None:
        """The tenant id an authority path segment names (``None`` = not a tenant here)."""
        if segment.lower() in {self.tenant_id.lower()}:
            return self.tenant_id
        if segment.lower() in {"botframework.com", BOT_FRAMEWORK_TENANT_ID}:
            return BOT_FRAMEWORK_TENANT_ID
        return None

    def _metadata(self, request: web.Request, *, v2: bool) -> web.Response:
        segment = request.match_info["tenant"]
        tenant = self._resolve_tenant(segment)
        if tenant is None:
            return self._error_response(
                request,
                _OAuthError(
                    "invalid_tenant",
                    90002,
                    f"Tenant '{segment}' not found. Check to make sure you "
                    "have the correct tenant ID and are signing into the "
                    "correct cloud.",
                ),
            )
        base = f"{self._origin(request)}/{tenant}"
        suffix = "/v2.0" if v2 else ""
        body = {
            "token_endpoint": f"{base}/oauth2{suffix}/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{base}/discovery{suffix}/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/v2.0" if v2 else self._v1_issuer(tenant),
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{self._origin(request)}/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2{suffix}/authorize",
            "device_authorization_endpoint": f"{base}/oauth2{suffix}/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2{suffix}/logout",
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "acr",
                "nonce",
                "preferred_username",
                "name",
                "tid",
                "ver",
                "at_hash",
                "c_hash",
                "email",
            ],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
        }
        return web.json_response(body)

    async def _openid_configuration_v2(self, request: web.Request) -> web.Response:
        return self._metadata(request, v2=True)

    async def _openid_configuration_v1(self, request: web.Request) -> web.Response:
        return self._metadata(request, v2=False)

    async def _tenant_keys(self, request: web.Request) -> web.Response:
        return web.json_response({"keys": [self._signing_key.jwk()]})

    def _channel_metadata_document(self, origin: str) -> dict[str, Any]:
        return {
            "issuer": CHANNEL_TOKEN_ISSUER,
            "authorization_endpoint": "https://invalid.botframework.com",
            "jwks_uri": f"{origin}/v1/.well-known/keys?emulator={self._instance}",
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        }

    def _channel_keys_document(self) -> dict[str, Any]:
        key = self._channel_key.jwk()
        key["endorsements"] = ["msteams"]
        return {"keys": [key]}

    async def _channel_metadata(self, request: web.Request) -> web.Response:
        return web.json_response(self._channel_metadata_document(self._origin(request)))

    async def _channel_keys(self, request: web.Request) -> web.Response:
        return web.json_response(self._channel_keys_document())

    # ------------------------------------------------------------------ token endpoint
    def _error_response(self, request: web.Request, error: _OAuthError) -> web.Response:
        now = self._clock.now()
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
            "error_uri": f"{self._origin(request)}/error?code={error.aadsts}",
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

    async def _token(self, request: web.Request) -> web.Response:
        try:
            return await self._token_or_raise(request)
        except _OAuthError as error:
            return self._error_response(request, error)

    async def _token_or_raise(self, request: web.Request) -> web.Response:
        segment = request.match_info["tenant"]
        tenant = self._resolve_tenant(segment)
        if tenant is None:
            raise _OAuthError("invalid_request", 90002, f"Tenant '{segment}' not found.")
        form = await request.post()
        data = {key: str(value) for key, value in form.items() if isinstance(value, str)}
        client = self._authenticate_client(request, data)
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
            raise _OAuthError(
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant_type}'.",
            )
        return web.json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _require_home_tenant(self, tenant: str) -> None:
        if tenant != self.tenant_id:
            raise _OAuthError(
                "invalid_request", 50059, "No tenant-identifying information found in the request."
            )

    # -- client authentication
    def _authenticate_client(self, request: web.Request, data: Mapping[str, str]) -> _Client:
        client_id = data.get("client_id", "")
        secret = data.get("client_secret")
        basic = request.headers.get("Authorization", "")
        if basic.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(basic[6:]).decode()
            except (ValueError, UnicodeDecodeError) as exc:
                raise _OAuthError(
                    "invalid_client", 7000216, "Malformed basic credentials.", status=401
                ) from exc
            client_id, _, secret = decoded.partition(":")
        assertion = data.get("client_assertion")
        if assertion and not client_id:
            try:
                client_id = str(
                    jwt.decode(assertion, options={"verify_signature": False}).get("iss", "")
                )
            except jwt.InvalidTokenError:
                client_id = ""
        app = self._apps.get(client_id)
        if app is None:
            raise _OAuthError(
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.tenant_id}'. This can happen if the application has not been installed "
                "by the administrator of the tenant or consented to by any user in the tenant.",
            )
        if assertion:
            if data.get("client_assertion_type") != _CLIENT_ASSERTION_TYPE:
                raise _OAuthError("invalid_request", 50027, "Invalid client_assertion_type.")
            self._verify_client_assertion(request, app, assertion)
            return _Client(app=app, used_certificate=True)
        if secret is None:
            raise _OAuthError(
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or "
                "'client_secret'.",
                status=401,
            )
        if app.secret is None or not secrets.compare_digest(secret.encode(), app.secret.encode()):
            raise _OAuthError(
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request "
                "is the client secret value, not the client secret ID, for a secret added to "
                f"app '{app.client_id}'.",
                status=401,
            )
        return _Client(app=app, used_certificate=False)

    def _verify_client_assertion(
        self, request: web.Request, app: AppRegistration, assertion: str
    ) -> None:
        if app.certificate_pem is None:
            raise _OAuthError(
                "invalid_client",
                700027,
                "Client assertion contains an invalid signature. The key was not "
                f"found: no certificate is registered for app '{app.client_id}'.",
                status=401,
            )
        cert = x509.load_pem_x509_certificate(app.certificate_pem)
        public_key = cert.public_key()
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise _OAuthError(
                "invalid_client",
                700027,
                "Only RSA certificates are supported for client assertions.",
                status=401,
            )
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.InvalidTokenError as exc:
            raise _OAuthError(
                "invalid_client", 50027, "JWT token is invalid or malformed.", status=401
            ) from exc
        thumbprints = {
            _b64url(cert.fingerprint(hashes.SHA1())),  # noqa: S303 - x5t is defined as SHA-1
            _b64url(cert.fingerprint(hashes.SHA256())),
        }
        # msal pads its base64url thumbprints; Entra compares the bytes, so ignore padding.
        presented = {
            str(value).rstrip("=") for value in (header.get("x5t"), header.get("x5t#S256")) if value
        }
        algorithm = header.get("alg")
        if not presented & thumbprints or algorithm not in {"RS256", "PS256"}:
            raise _OAuthError(
                "invalid_client",
                700027,
                "Client assertion contains an invalid signature. The key was not found.",
                status=401,
            )
        token_endpoint = f"{self._origin(request)}{request.path}"
        try:
            claims = jwt.decode(
                assertion,
                public_key,
                algorithms=[str(algorithm)],
                options={
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                },
            )
        except jwt.InvalidTokenError as exc:
            raise _OAuthError(
                "invalid_client",
                700027,
                "Client assertion failed signature validation.",
                status=401,
            ) from exc
        if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
            raise _OAuthError(
                "invalid_client",
                700021,
                "Client assertion application identifier doesn't match 'client_id' parameter.",
                status=401,
            )
        if claims.get("aud") not in {
            token_endpoint,
            f"{self._origin(request)}/{self.tenant_id}/v2.0",
        }:
            raise _OAuthError(
                "invalid_client",
                700212,
                "No matching federated identity record found for presented assertion audience.",
                status=401,
            )
        now_s = self._wall_clock.now().timestamp()
        exp = claims.get("exp")
        nbf = claims.get("nbf", claims.get("iat"))
        if (
            not isinstance(exp, int | float)
            or now_s > exp + CLOCK_SKEW_S
            or (isinstance(nbf, int | float) and now_s < nbf - CLOCK_SKEW_S)
        ):
            raise _OAuthError(
                "invalid_client",
                700024,
                "Client assertion is not within its valid time range.",
                status=401,
            )

    # -- scopes
    def _resource_for(self, prefix: str) -> str | None:
        lowered = prefix.rstrip("/").lower()
        if lowered in {GRAPH_AUDIENCE, GRAPH_APP_ID}:
            return GRAPH_AUDIENCE
        if lowered == BOT_FRAMEWORK_AUDIENCE:
            return BOT_FRAMEWORK_AUDIENCE
        for app in self._apps.values():
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
                    raise _OAuthError(
                        "invalid_resource",
                        500011,
                        f"The resource principal named {prefix} was not found in the tenant "
                        f"named {self.tenant_id}. This can happen if the application has not "
                        "been installed by the administrator of the tenant or consented to by "
                        "any user in the tenant.",
                    )
                prefixed = True
            else:
                # A bare scope name means Microsoft Graph, as in Entra.
                resource, name = GRAPH_AUDIENCE, item
            resources.setdefault(resource, set()).add(name)
        if len(resources) > 1:
            raise _OAuthError(
                "invalid_scope",
                28000,
                "Provided value for the input parameter scope is not valid because it contains "
                "more than one resource. Scope "
                f"{raw} is not valid.",
            )
        if not resources:
            raise _OAuthError(
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
            "expires_in": ACCESS_TOKEN_LIFETIME_S,
            "ext_expires_in": ACCESS_TOKEN_LIFETIME_S,
            "access_token": access_token,
        }
        if scope is not None:
            body["scope"] = scope
        return body

    def _grant_client_credentials(
        self, client: _Client, tenant: str, data: Mapping[str, str]
    ) -> dict[str, Any]:
        raw = data.get("scope", "")
        request, _ = self._parse_scopes(raw)
        if request.names != {".default"}:
            raise _OAuthError(
                "invalid_scope",
                1002012,
                f"The provided value for scope {raw} is not valid. Client credential flows "
                "must have a scope value with /.default suffixed to the resource identifier "
                "(application ID URI).",
            )
        if tenant == BOT_FRAMEWORK_TENANT_ID and request.resource != BOT_FRAMEWORK_AUDIENCE:
            raise _OAuthError(
                "invalid_resource",
                500011,
                f"The resource principal named {request.resource} was not found "
                "in the tenant named botframework.com.",
            )
        token = self.issue_app_token(
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

    def _validate_assertion(self, client: _Client, assertion: str) -> dict[str, Any]:
        """Validate the user assertion of an OBO request (a token whose audience is the app)."""
        try:
            claims = self._decode_signed(assertion, [self._signing_key])
        except jwt.InvalidTokenError as exc:
            raise _OAuthError(
                "invalid_grant", 50013, "Assertion failed signature validation."
            ) from exc
        app = client.app
        audiences = {app.client_id, f"api://{app.client_id}"}
        if app.identifier_uri:
            audiences.add(app.identifier_uri)
        if claims.get("aud") not in audiences:
            raise _OAuthError(
                "invalid_grant",
                50013,
                "Assertion audience does not match the Client app presenting "
                "the assertion. The audience in the assertion was "
                f"'{claims.get('aud')}' and the expected audience is "
                f"'{app.identifier_uri or app.client_id}'.",
            )
        if claims.get("tid") != self.tenant_id or claims.get("iss") != self._v1_issuer(
            self.tenant_id
        ):
            raise _OAuthError("invalid_grant", 50013, "Assertion is not issued by this tenant.")
        now = self._clock.now()
        exp = claims.get("exp")
        if not isinstance(exp, int) or now.timestamp() > exp + CLOCK_SKEW_S:
            expiry = (
                datetime.fromtimestamp(exp, tz=now.tzinfo).strftime("%m/%d/%Y %H:%M:%S")
                if isinstance(exp, int)
                else "unknown"
            )
            raise _OAuthError(
                "invalid_grant",
                500133,
                "Assertion is not within its valid time range. Ensure that the access token is "
                "not expired before using it for user assertion, or request a new token. "
                f"Current time: {now.strftime('%m/%d/%Y %H:%M:%S')}, expiry time of assertion "
                f"{expiry}.",
            )
        if "scp" not in claims or "oid" not in claims:
            raise _OAuthError(
                "invalid_grant", 50013, "The assertion is not a delegated user token."
            )
        return claims

    def _check_user_can_sign_in(
        self, user_oid: str, *, mfa_done: bool, resource: str
    ) -> Mapping[str, Any]:
        user = self._user_lookup(user_oid)
        if user is None:
            raise _OAuthError(
                "invalid_grant", 50034, "The user account does not exist in the directory."
            )
        if user.get("accountEnabled") is False:
            raise _OAuthError(
                "invalid_grant", 50057, "The user account is disabled.", suberror="user_disabled"
            )
        if user_oid in self._mfa_required and not mfa_done:
            # The claims challenge a Conditional Access policy sends back (capolids = the policy).
            policy_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"ca-mfa:{self.tenant_id}"))
            challenge = json.dumps(
                {"access_token": {"capolids": {"essential": True, "values": [policy_id]}}},
                separators=(",", ":"),
            )
            raise _OAuthError(
                "interaction_required",
                50076,
                "Due to a configuration change made by your administrator, or because you "
                f"moved to a new location, you must use multi-factor authentication to access "
                f"'{resource}'.",
                suberror="basic_action",
                claims=challenge,
            )
        return user

    def _consented_scopes(self, client: _Client, request: _ScopeRequest) -> frozenset[str]:
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
            raise _OAuthError(
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
        client: _Client,
        scope_request: _ScopeRequest,
        granted: frozenset[str],
        user: Mapping[str, Any],
        *,
        mfa: bool,
        oidc: frozenset[str],
    ) -> dict[str, Any]:
        user_oid = str(user["id"])
        access_token = self.issue_user_token(
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
            self._refresh_grants[refresh_token] = _RefreshGrant(
                client_id=client.app.client_id,
                user_oid=user_oid,
                resource=scope_request.resource,
                scopes=granted,
                expires_at=self._clock.now() + timedelta(seconds=REFRESH_TOKEN_LIFETIME_S),
                session_generation=self._session_generation.get(user_oid, 0),
                mfa=mfa,
            )
            body["refresh_token"] = refresh_token
        if "openid" in oidc:
            body["id_token"] = self._id_token(
                issuer=f"{self._origin(request)}/{self.tenant_id}/v2.0",
                client_id=client.app.client_id,
                user=user,
            )
        # client_info lets msal key its cached account as "{oid}.{tid}".
        body["client_info"] = _b64url(
            json.dumps({"uid": user_oid, "utid": self.tenant_id}).encode()
        )
        return body

    def _grant_on_behalf_of(
        self, request: web.Request, client: _Client, data: Mapping[str, str]
    ) -> dict[str, Any]:
        assertion = data.get("assertion", "")
        if not assertion:
            raise _OAuthError(
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
        self, request: web.Request, client: _Client, data: Mapping[str, str]
    ) -> dict[str, Any]:
        grant = self._refresh_grants.get(data.get("refresh_token", ""))
        if grant is None or grant.client_id != client.app.client_id:
            raise _OAuthError(
                "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid."
            )
        if self._clock.now() >= grant.expires_at:
            raise _OAuthError(
                "invalid_grant", 700082, "The refresh token has expired due to inactivity."
            )
        if grant.session_generation != self._session_generation.get(grant.user_oid, 0):
            raise _OAuthError(
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
