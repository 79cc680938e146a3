"""Client authentication at the token endpoint: a secret, a certificate assertion
(``private_key_jwt``) or a federated assertion (a token from a trusted issuer).

A ``client_assertion`` whose ``iss`` is the client id is the app's own, signed with one of its
registered certificates (Entra's "certificate credentials"); any other ``iss`` makes it a
federated assertion, accepted only when a federated identity credential of the app names its
issuer, subject and audience (Entra's "workload identity federation").

The answers are Entra's (``invalid_client``, HTTP 401, with the AADSTS codes it documents or is
seen to return):

==========  ==============================================================================
700027      certificate assertion: key not found (thumbprint), key expired, bad signature
700024      assertion not within its valid time range (``exp``/``nbf``, 5 minutes of skew)
700021      assertion ``iss`` is not the ``client_id``
50048       assertion ``sub`` differs from its ``iss``
50027       assertion malformed: wrong ``aud``, no ``jti``, or a ``jti`` seen before (*)
70021       the app has no federated identity credential at all
700211      no federated identity credential with the assertion's issuer
700212      none with its audience
700213      none with its subject (compared case-sensitively)
700222      an Entra-issued token that is not a managed identity's used as a federated assertion
==========  ==============================================================================

(*) Entra documents no code for a replayed ``jti``; RFC 7523 §3 lets the server refuse one, so
the emulator does (the harsher choice) under ``InvalidJwtToken``. Federated assertions are not
subject to it: Kubernetes hands the same projected token to every request for an hour and msal
reuses a managed identity's token for hours, and Entra accepts both.
"""

from __future__ import annotations

import base64
import collections
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from emulator.identity.apps import AppRegistration
from emulator.identity.common import (
    CLIENT_ASSERTION_TYPE,
    CLOCK_SKEW_S,
    OAuthError,
    b64url,
    unverified_parts,
)
from emulator.identity.keys import decode_signed

if TYPE_CHECKING:
    from emulator.identity.service import Identity

__all__ = ["Client", "ClientAuthenticator"]


@dataclass(frozen=True)
class Client:
    """The authenticated client of a token request and how it proved itself."""

    app: AppRegistration
    method: str  # "secret" | "certificate" | "federated"

    @property
    def used_certificate(self) -> bool:
        """``appidacr`` 2: authenticated by an assertion rather than a shared secret."""
        return self.method != "secret"


def _invalid_client(aadsts: int, description: str) -> OAuthError:
    return OAuthError("invalid_client", aadsts, description, status=401)


class ClientAuthenticator:
    """Authenticates the client of each token request for an :class:`Identity`."""

    def __init__(self, identity: Identity) -> None:
        self._identity = identity
        # (client id, jti) -> the assertion's exp: certificate assertions are single-use.
        self._seen_jti: dict[tuple[str, str], float] = {}
        #: Raw client assertions received lately (tests look for them in the bot's logs).
        self.recent_assertions: collections.deque[str] = collections.deque(maxlen=500)
        #: How clients authenticated, by method.
        self.counts: collections.Counter[str] = collections.Counter()
        #: The thumbprints (x5t#S256, base64url) of accepted certificate assertions, in order.
        self.certificate_thumbprints: list[str] = []

    # -- entry point ------------------------------------------------------------------------

    def authenticate(self, request: web.Request, data: Mapping[str, str]) -> Client:
        client_id = data.get("client_id", "")
        secret = data.get("client_secret")
        basic = request.headers.get("Authorization", "")
        if basic.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(basic[6:]).decode()
            except (ValueError, UnicodeDecodeError) as exc:
                raise _invalid_client(7000216, "Malformed basic credentials.") from exc
            client_id, _, secret = decoded.partition(":")
        assertion = data.get("client_assertion")
        header: dict[str, Any] = {}
        claims: dict[str, Any] = {}
        if assertion:
            self.recent_assertions.append(assertion)
            try:
                header, claims = unverified_parts(assertion)
            except ValueError as exc:
                raise _invalid_client(50027, "Invalid JWT token. The token is malformed.") from exc
            if not client_id:
                client_id = str(claims.get("iss") or "")
        app = self._identity.apps.get(client_id)
        if app is None:
            raise OAuthError(
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self._identity.tenant_id}'. This can happen if the application has not been "
                "installed by the administrator of the tenant or consented to by any user in the "
                "tenant.",
            )
        if assertion:
            if data.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
                raise OAuthError("invalid_request", 50027, "Invalid client_assertion_type.")
            if secret is not None:
                raise OAuthError(
                    "invalid_request",
                    90014,
                    "Only one client credential may be presented: 'client_assertion' or "
                    "'client_secret'.",
                )
            if claims.get("iss") == app.client_id:
                self._certificate(request, app, assertion, header, claims)
                return self._accepted(app, "certificate")
            self._federated(request, app, assertion, claims)
            return self._accepted(app, "federated")
        if secret is None:
            raise _invalid_client(
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or "
                "'client_secret'.",
            )
        if app.secret is None or not secrets.compare_digest(secret.encode(), app.secret.encode()):
            raise _invalid_client(
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request "
                "is the client secret value, not the client secret ID, for a secret added to "
                f"app '{app.client_id}'.",
            )
        return self._accepted(app, "secret")

    def _accepted(self, app: AppRegistration, method: str) -> Client:
        self.counts[method] += 1
        return Client(app=app, method=method)

    # -- shared checks ------------------------------------------------------------------------

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        now_s = self._identity.wall_clock.now().timestamp()
        exp = claims.get("exp")
        nbf = claims.get("nbf", claims.get("iat"))
        if (
            not isinstance(exp, int | float)
            or now_s > exp + CLOCK_SKEW_S
            or (isinstance(nbf, int | float) and now_s < nbf - CLOCK_SKEW_S)
        ):
            raise _invalid_client(700024, "Client assertion is not within its valid time range.")

    # -- certificates (private_key_jwt) -------------------------------------------------------

    def _certificate(
        self,
        request: web.Request,
        app: AppRegistration,
        assertion: str,
        header: Mapping[str, Any],
        claims: Mapping[str, Any],
    ) -> None:
        certificates = app.key_credentials()
        if not certificates:
            raise _invalid_client(
                700027,
                "Client assertion contains an invalid signature. [Reason - The key was not "
                f"found: no certificate is registered for app '{app.client_id}'.]",
            )
        # msal pads its base64url thumbprints; Entra compares the bytes, so padding is ignored.
        presented = {
            name: str(header[name]).rstrip("=") for name in ("x5t", "x5t#S256") if header.get(name)
        }
        shown = presented.get("x5t#S256") or presented.get("x5t") or "none"
        if not presented:
            raise _invalid_client(
                700027,
                "Client assertion contains an invalid signature. [Reason - The key was not "
                "found: the assertion names no x5t or x5t#S256 thumbprint.]",
            )
        match = None
        for certificate in certificates:
            prints = {
                "x5t": b64url(certificate.fingerprint(hashes.SHA1())),  # noqa: S303 - x5t is SHA-1
                "x5t#S256": b64url(certificate.fingerprint(hashes.SHA256())),
            }
            # Every thumbprint the assertion names must be this certificate's.
            if all(prints[name] == value for name, value in presented.items()):
                match = certificate
                break
        if match is None:
            raise _invalid_client(
                700027,
                "Client assertion contains an invalid signature. [Reason - The key was not "
                f"found., Thumbprint of key used by client: '{shown}']",
            )
        now = self._identity.wall_clock.now()
        if now > match.not_valid_after_utc:
            raise _invalid_client(
                700027,
                "Client assertion contains an invalid signature. [Reason - The key used is "
                f"expired., Thumbprint of key used by client: '{shown}']",
            )
        if now < match.not_valid_before_utc:
            raise _invalid_client(
                700027,
                "Client assertion contains an invalid signature. [Reason - The key used is not "
                f"yet valid., Thumbprint of key used by client: '{shown}']",
            )
        public_key = match.public_key()
        algorithm = header.get("alg")
        if not isinstance(public_key, rsa.RSAPublicKey) or algorithm not in {"RS256", "PS256"}:
            raise _invalid_client(
                700027, "Client assertion failed signature validation (RS256 or PS256 with RSA)."
            )
        try:
            jwt.decode(
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
            raise _invalid_client(700027, "Client assertion failed signature validation.") from exc
        if claims.get("sub") != claims.get("iss"):
            raise _invalid_client(50048, "Subject mismatches Issuer claim in the client assertion.")
        if claims.get("iss") != app.client_id:
            raise _invalid_client(
                700021,
                "Client assertion application identifier doesn't match 'client_id' parameter.",
            )
        origin = f"{request.scheme}://{request.host}"
        if claims.get("aud") not in {
            f"{origin}{request.path}",
            f"{origin}/{self._identity.tenant_id}/v2.0",
        }:
            raise _invalid_client(
                50027,
                "Invalid JWT token. Token audience is invalid: it must be the token endpoint "
                f"{origin}{request.path}.",
            )
        self._check_times(claims)
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise _invalid_client(50027, "Invalid JWT token. The assertion has no 'jti' claim.")
        self._remember_jti(app.client_id, jti, float(claims["exp"]))
        self.certificate_thumbprints.append(b64url(match.fingerprint(hashes.SHA256())))

    def _remember_jti(self, client_id: str, jti: str, exp: float) -> None:
        now_s = self._identity.wall_clock.now().timestamp()
        for key in [k for k, until in self._seen_jti.items() if until + CLOCK_SKEW_S < now_s]:
            del self._seen_jti[key]
        if (client_id, jti) in self._seen_jti:
            raise _invalid_client(
                50027,
                "Invalid JWT token. The client assertion has been used before (its 'jti' was "
                "seen already): sign a new assertion for every request.",
            )
        self._seen_jti[(client_id, jti)] = exp

    # -- federated identity credentials ------------------------------------------------------

    def _federated(
        self,
        request: web.Request,
        app: AppRegistration,
        assertion: str,
        claims: Mapping[str, Any],
    ) -> None:
        issuer = str(claims.get("iss") or "")
        subject = str(claims.get("sub") or "")
        raw_audience = claims.get("aud")
        audiences = (
            [str(a) for a in raw_audience]
            if isinstance(raw_audience, list)
            else [str(raw_audience or "")]
        )
        check = (
            " Check your federated identity credential Subject, Audience and Issuer against the "
            "presented assertion. https://learn.microsoft.com/entra/workload-id/"
            "workload-identity-federation"
        )
        credentials = app.federated_credentials
        if not credentials:
            raise _invalid_client(
                70021,
                "No matching federated identity record found for presented assertion. Assertion "
                f"Issuer: '{issuer}'. Assertion Subject: '{subject}'. Assertion Audience: "
                f"'{','.join(audiences)}'.",
            )
        by_issuer = [c for c in credentials if c.issuer == issuer]
        if not by_issuer:
            raise _invalid_client(
                700211,
                f"No matching federated identity record found for presented assertion issuer "
                f"'{issuer}'.{check}",
            )
        keys = self._identity.federation_keys(request, issuer)
        if keys is None:
            raise _invalid_client(
                700027,
                "Client assertion failed signature validation: the signing keys of issuer "
                f"'{issuer}' could not be retrieved from its OpenID configuration.",
            )
        try:
            verified = decode_signed(assertion, keys)
        except jwt.InvalidTokenError as exc:
            raise _invalid_client(700027, "Client assertion failed signature validation.") from exc
        if self._identity.is_tenant_issuer(request, issuer) and "xms_mirid" not in verified:
            raise _invalid_client(
                700222, "AAD-issued tokens may not be used for federated identity flows."
            )
        self._check_times(verified)
        by_subject = [c for c in by_issuer if c.subject == subject]
        if not by_subject:
            raise _invalid_client(
                700213,
                f"No matching federated identity record found for presented assertion subject "
                f"'{subject}'. Please note that the matching is done using a case-sensitive "
                f"comparison.{check}",
            )
        if not any(set(c.audiences) & set(audiences) for c in by_subject):
            raise _invalid_client(
                700212,
                f"No matching federated identity record found for presented assertion audience "
                f"'{','.join(audiences)}'.{check}",
            )
