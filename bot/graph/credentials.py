"""The bot's one client credential: how it proves to Entra ID that it is its app registration.

Every token the bot gets — Graph app-only, Graph on-behalf-of a reviewer, the Bot Connector
token, botbuilder's replies inside a turn — goes through msal's ``client_credential``, and all of
them are built from the one :class:`ClientCredential` the configuration chose:

* :class:`SecretCredential` — a client secret (``MicrosoftAppPassword``); msal sends it as is.
* :class:`CertificateCredential` — a PEM file (key and certificate, the key optionally encrypted)
  or a PKCS#12 file. Each token request gets a freshly signed ``private_key_jwt`` assertion
  (PS256, ``x5t#S256`` and ``x5t`` headers, a new ``jti``): msal's own certificate support signs
  one assertion and reuses it for nine minutes, which an authority that refuses a replayed
  ``jti`` (RFC 7523 allows it) would reject. The file is looked at again whenever an assertion is
  signed, so a renewed certificate at the same path is used without a restart.
* :class:`FederatedTokenFileCredential` — a JWT that the platform keeps fresh in a file (Azure
  Workload Identity's ``AZURE_FEDERATED_TOKEN_FILE``, or any OIDC issuer), re-read when the file
  changes and sent as the ``client_assertion``.
* :class:`ManagedIdentityCredential` — a user-assigned managed identity's token for
  ``api://AzureADTokenExchange``, from the IMDS or App Service/Container Apps endpoint through
  msal's ``ManagedIdentityClient``, used as the ``client_assertion`` of the app registration
  that trusts the identity (a federated identity credential). No secret exists anywhere.

The assertion-based kinds give msal ``{"client_assertion": callable}``: msal calls it only when
it sends a request to the token endpoint (msal 1.39, ``oauth2cli/oauth2.py``), passing
``{"client_id", "token_endpoint"}`` to a callable that takes one positional argument.

Nothing here logs a secret, a key, a token or an assertion; :meth:`ClientCredential.status`
describes a credential with what an admin may see (kind, thumbprints, issuer, subject, expiry).
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import logging
import os
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import jwt
import msal
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from bot.graph.errors import InvalidClient, TokenServiceUnavailable

__all__ = [
    "CLIENT_ASSERTION_TYPE",
    "CREDENTIAL_TYPES",
    "EXPIRY_WARNING_DAYS",
    "CertificateCredential",
    "ClientCredential",
    "CredentialCollector",
    "CredentialError",
    "CredentialSourceUnreachable",
    "CredentialStatus",
    "CredentialUnavailable",
    "FederatedTokenFileCredential",
    "ManagedIdentityCredential",
    "SecretCredential",
    "token_exchange_audience",
    "unverified_claims",
]

log = logging.getLogger(__name__)

#: The credential kinds, as ``CREDENTIAL_TYPE`` names them.
CREDENTIAL_TYPES = ("secret", "certificate", "federated-token-file", "managed-identity")
#: RFC 7523's ``client_assertion_type`` for JWT assertions (what msal sends with a callable).
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: ``doctor`` and ``/readyz`` call a certificate "expiring" this many days before it ends.
EXPIRY_WARNING_DAYS = 30
#: Entra ID's documented upper end for an assertion's lifetime is 10 minutes after ``nbf``.
_ASSERTION_LIFETIME_S = 600

# The audience a managed identity's token must have to stand in as a federated credential, per
# cloud (Entra's "configure an app to trust a managed identity"); keyed by authority host.
_EXCHANGE_AUDIENCES = {
    "login.microsoftonline.us": "api://AzureADTokenExchangeUSGov",
    "login.chinacloudapi.cn": "api://AzureADTokenExchangeChina",
}
_PUBLIC_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"


def token_exchange_audience(authority_host: str) -> str:
    """``api://AzureADTokenExchange`` for the cloud of ``authority_host`` (public cloud, the
    emulator and unknown hosts get the public value)."""
    host = (urlsplit(authority_host).hostname or "").lower()
    return _EXCHANGE_AUDIENCES.get(host, _PUBLIC_EXCHANGE_AUDIENCE)


class CredentialError(ValueError):
    """The configured credential cannot be used. ``str(err)`` is one line naming the setting."""


class CredentialUnavailable(InvalidClient):
    """No assertion could be made at token time (file gone, certificate expired, the managed
    identity endpoint refused): a configuration problem, not worth retrying at once.

    When the managed identity endpoint refused, ``status`` is its HTTP status and ``error`` its
    error code (IMDS: ``bad_request_102`` for a request without its ``Metadata`` header); callers
    branch on those, never on the message. ``status`` is 0 when no endpoint answered.
    """

    def __init__(self, message: str, *, status: int = 0, **details: Any) -> None:
        super().__init__(message, **details)
        self.status = status


class CredentialSourceUnreachable(TokenServiceUnavailable):
    """The managed identity endpoint did not answer (or answered 5xx/429): transient, retried."""


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def unverified_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT without checking its signature (what the platform gave us; shown to
    the admin as issuer/subject/audience/expiry, never trusted for anything else).
    ``{}`` when it is not a JWT."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error, UnicodeDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _fmt_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class CredentialStatus:
    """What ``/readyz``, ``/metrics`` and ``doctor`` show about the credential: nothing secret.

    ``usable`` is False when no token can be had with it as it is (an expired certificate, a
    token file that cannot be read); ``expires_at`` is the certificate's end, or the current
    federated token's ``exp``.
    """

    kind: str
    usable: bool
    detail: str
    expires_at: datetime | None = None
    thumbprint_sha256: str | None = None
    thumbprint_sha1: str | None = None
    facts: Mapping[str, str] = field(default_factory=dict)

    def expires_in_s(self, now: datetime) -> float | None:
        return None if self.expires_at is None else (self.expires_at - now).total_seconds()

    def expiring(self, now: datetime, *, days: int = EXPIRY_WARNING_DAYS) -> bool:
        """True within ``days`` of the end of a certificate (only certificates are renewed by
        an admin; federated tokens are renewed by the platform every hour)."""
        remaining = self.expires_in_s(now)
        return (
            self.kind == "certificate" and remaining is not None and 0 < remaining <= days * 86400
        )

    def as_dict(self, now: datetime | None = None) -> dict[str, Any]:
        """The ``/readyz`` entry (``now``: the wall clock by default)."""
        now = now or datetime.now(UTC)
        body: dict[str, Any] = {"kind": self.kind, "usable": self.usable, "detail": self.detail}
        if self.expires_at is not None:
            remaining = self.expires_in_s(now) or 0.0
            body["expires_at"] = self.expires_at.astimezone(UTC).isoformat()
            body["expires_in_s"] = round(remaining)
            if self.expiring(now):
                body["warning"] = (
                    f"the certificate expires in {int(remaining // 86400)} day(s): renew it"
                )
        if self.thumbprint_sha256:
            body["thumbprint_sha256"] = self.thumbprint_sha256
        if self.thumbprint_sha1:
            body["thumbprint_sha1"] = self.thumbprint_sha1
        body.update(self.facts)
        return body


class ClientCredential(ABC):
    """One way of authenticating the app registration to Entra ID (see the module docstring)."""

    kind: str = ""

    @abstractmethod
    def msal_credential(self) -> str | dict[str, Any]:
        """What msal's ``client_credential`` gets: a secret string or
        ``{"client_assertion": callable}``."""

    @abstractmethod
    def check(self) -> CredentialStatus:
        """Validate at start (reads files; no network). Raises :class:`CredentialError`."""

    @abstractmethod
    def status(self) -> CredentialStatus:
        """The current state, for ``/readyz`` and ``/metrics``; never raises, no network."""

    def close(self) -> None:  # noqa: B027 - most credentials own nothing
        """Release what the credential owns (HTTP sessions)."""


class SecretCredential(ClientCredential):
    """A client secret (``MicrosoftAppPassword``). Kept last in docs/deploy.md for a reason."""

    kind = "secret"

    def __init__(self, secret: str) -> None:
        if not secret:
            raise CredentialError("MicrosoftAppPassword is empty")
        self._secret = secret

    def __repr__(self) -> str:
        return "SecretCredential(***)"

    def msal_credential(self) -> str:
        return self._secret

    def check(self) -> CredentialStatus:
        return self.status()

    def status(self) -> CredentialStatus:
        # Entra does not tell a client when its secret ends; doctor's token request is the check.
        return CredentialStatus(kind=self.kind, usable=True, detail="client secret")


# -- certificates --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedCertificate:
    """A private key and the certificate registered for it on the app."""

    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    file_version: tuple[int, int, int, int]

    @property
    def sha256(self) -> bytes:
        return self.certificate.fingerprint(hashes.SHA256())

    @property
    def sha1(self) -> bytes:
        # SHA-1 is what the Entra admin center lists as a certificate's "Thumbprint", and the
        # x5t header older endpoints (AD FS, v1) look for; x5t#S256 is the primary one.
        return self.certificate.fingerprint(hashes.SHA1())  # noqa: S303 - an identifier, not a signature

    @property
    def not_before(self) -> datetime:
        return self.certificate.not_valid_before_utc

    @property
    def not_after(self) -> datetime:
        return self.certificate.not_valid_after_utc

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string() or "(no subject)"


def _file_version(path: str) -> tuple[int, int, int, int]:
    # os.stat follows symbolic links: a Kubernetes secret volume swaps its "..data" link on
    # update, so the version changes with the content.
    stat = os.stat(path)
    return (stat.st_ino, stat.st_dev, stat.st_size, stat.st_mtime_ns)


def _read_file(path: str, variable: str) -> tuple[bytes, tuple[int, int, int, int]]:
    try:
        version = _file_version(path)
        with open(path, "rb") as handle:
            return handle.read(), version
    except FileNotFoundError:
        raise CredentialError(f"{variable} names a file that does not exist: {path}") from None
    except PermissionError:
        raise CredentialError(
            f"{variable} names a file this process may not read: {path} (check its owner and mode)"
        ) from None
    except IsADirectoryError:
        raise CredentialError(f"{variable} names a directory, not a file: {path}") from None
    except OSError as exc:
        raise CredentialError(
            f"{variable} cannot be read: {path} ({exc.strerror or exc.__class__.__name__})"
        ) from None


def _password_bytes(password: str | None) -> bytes | None:
    return password.encode("utf-8") if password else None


def _load_pem(data: bytes, password: str | None, path: str) -> tuple[Any, list[x509.Certificate]]:
    if b"PRIVATE KEY-----" not in data:
        raise CredentialError(
            f"CERTIFICATE_PATH holds no private key: {path} (it needs the private key and the "
            "certificate, PEM, in one file; or give a PKCS#12 file)"
        )
    try:
        key = serialization.load_pem_private_key(data, _password_bytes(password))
    except TypeError:
        # cryptography: "Password was not given but private key is encrypted" (or the reverse).
        if password:
            raise CredentialError(
                "CERTIFICATE_PASSWORD is set but the private key in CERTIFICATE_PATH is not "
                "encrypted: remove CERTIFICATE_PASSWORD"
            ) from None
        raise CredentialError(
            "the private key in CERTIFICATE_PATH is encrypted: set CERTIFICATE_PASSWORD"
        ) from None
    except ValueError:
        if password:
            raise CredentialError(
                "CERTIFICATE_PASSWORD does not decrypt the private key in CERTIFICATE_PATH"
            ) from None
        raise CredentialError(
            f"CERTIFICATE_PATH holds a private key that cannot be read: {path}"
        ) from None
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        certificates = []
    if not certificates:
        raise CredentialError(
            f"CERTIFICATE_PATH holds a private key but no certificate: {path} (append the "
            "certificate, PEM, that is registered on the app)"
        )
    return key, certificates


def _load_pkcs12(
    data: bytes, password: str | None, path: str
) -> tuple[Any, list[x509.Certificate]]:
    try:
        key, certificate, extra = pkcs12.load_key_and_certificates(data, _password_bytes(password))
    except ValueError:
        if password:
            raise CredentialError(
                f"CERTIFICATE_PASSWORD does not open the PKCS#12 file in CERTIFICATE_PATH: {path}"
            ) from None
        raise CredentialError(
            f"CERTIFICATE_PATH is neither PEM nor a PKCS#12 file this process can open: {path} "
            "(a passphrase-protected PKCS#12 file needs CERTIFICATE_PASSWORD)"
        ) from None
    if key is None or certificate is None:
        raise CredentialError(
            f"the PKCS#12 file in CERTIFICATE_PATH must hold the private key and its certificate: "
            f"{path}"
        )
    return key, [certificate, *extra]


def _same_key(private_key: Any, certificate: x509.Certificate) -> bool:
    der = serialization.Encoding.DER
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(
        private_key.public_key().public_bytes(der, spki)
        == certificate.public_key().public_bytes(der, spki)
    )


def load_certificate(path: str, password: str | None) -> LoadedCertificate:
    """Read ``path`` (PEM with key and certificate, or PKCS#12) and check that the key belongs
    to the certificate and is RSA. Raises :class:`CredentialError` with one readable line."""
    data, version = _read_file(path, "CERTIFICATE_PATH")
    if b"-----BEGIN" in data:
        key, certificates = _load_pem(data, password, path)
    else:
        key, certificates = _load_pkcs12(data, password, path)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CredentialError(
            f"the private key in CERTIFICATE_PATH is {type(key).__name__.removeprefix('_')}, not "
            "RSA: the bot signs its assertions with PS256, which needs an RSA key"
        )
    matching = [c for c in certificates if _same_key(key, c)]
    if not matching:
        subjects = ", ".join(c.subject.rfc4514_string() for c in certificates)
        raise CredentialError(
            f"the private key in CERTIFICATE_PATH does not belong to its certificate ({subjects}): "
            "put the key that was made with this certificate in the file"
        )
    return LoadedCertificate(private_key=key, certificate=matching[0], file_version=version)


class CertificateCredential(ClientCredential):
    """A certificate whose private key signs a fresh client assertion for every token request.

    ``clock`` gives the current time (``datetime``, aware) for validity checks; ``wall_time`` the
    epoch seconds written into assertions (Entra judges them by its own clock).
    """

    kind = "certificate"

    def __init__(
        self,
        path: str,
        *,
        password: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        wall_time: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self._password = password
        self._clock = clock
        self._wall_time = wall_time
        self._lock = threading.Lock()
        self._loaded: LoadedCertificate | None = None
        # The version of a changed file that could not be used (warned about once).
        self._refused_version: tuple[int, int, int, int] | None = None
        self.assertions_signed = 0  # for tests and diagnostics

    def __repr__(self) -> str:
        return f"CertificateCredential({self.path!r})"

    def msal_credential(self) -> dict[str, Any]:
        return {"client_assertion": self._assertion}

    def current(self) -> LoadedCertificate:
        """The certificate in use, re-read if the file changed since it was loaded.

        A changed file that cannot be used (half written, wrong passphrase) is reported once and
        the previous certificate stays in use, so a bad rotation never stops a running bot
        while its old certificate is still valid.
        """
        with self._lock:
            loaded = self._loaded
            try:
                version = _file_version(self.path)
            except OSError:
                version = None
            if loaded is not None and (version is None or version == loaded.file_version):
                return loaded
            if loaded is not None and version == self._refused_version:
                return loaded
            try:
                fresh = load_certificate(self.path, self._password)
            except CredentialError as exc:
                if loaded is None:
                    raise
                self._refused_version = version
                log.warning(
                    "the certificate file changed but cannot be used (%s); still signing with "
                    "thumbprint %s",
                    exc,
                    loaded.sha256.hex(),
                )
                return loaded
            if loaded is not None:
                log.info(
                    "certificate file changed: now signing with thumbprint %s (SHA-1 %s), valid "
                    "until %s",
                    fresh.sha256.hex(),
                    fresh.sha1.hex(),
                    _fmt_time(fresh.not_after),
                )
            self._loaded = fresh
            self._refused_version = None
            return fresh

    def _validity_problem(self, loaded: LoadedCertificate) -> str | None:
        now = self._clock()
        if now >= loaded.not_after:
            return (
                f"the certificate in CERTIFICATE_PATH (SHA-256 thumbprint {loaded.sha256.hex()}) "
                f"expired on {_fmt_time(loaded.not_after)}: put its renewal in the file and "
                "register it on the app"
            )
        if now < loaded.not_before:
            return (
                f"the certificate in CERTIFICATE_PATH (SHA-256 thumbprint {loaded.sha256.hex()}) "
                f"is not valid before {_fmt_time(loaded.not_before)}"
            )
        return None

    def _assertion(self, context: Mapping[str, Any]) -> str:
        """A new private_key_jwt assertion for the token endpoint msal is about to call."""
        try:
            loaded = self.current()
        except CredentialError as exc:
            raise CredentialUnavailable(str(exc)) from None
        problem = self._validity_problem(loaded)
        if problem is not None:
            raise CredentialUnavailable(problem)
        client_id = str(context.get("client_id") or "")
        now_s = int(self._wall_time())
        claims = {
            "aud": str(context.get("token_endpoint") or ""),
            "iss": client_id,
            "sub": client_id,
            "jti": str(uuid.uuid4()),
            "nbf": now_s,
            "iat": now_s,
            "exp": now_s + _ASSERTION_LIFETIME_S,
        }
        headers = {"typ": "JWT", "x5t#S256": _b64url(loaded.sha256), "x5t": _b64url(loaded.sha1)}
        with self._lock:
            self.assertions_signed += 1
        return jwt.encode(claims, loaded.private_key, algorithm="PS256", headers=headers)

    def check(self) -> CredentialStatus:
        loaded = self.current()
        problem = self._validity_problem(loaded)
        if problem is not None:
            raise CredentialError(problem)
        return self._describe(loaded)

    def _describe(self, loaded: LoadedCertificate) -> CredentialStatus:
        problem = self._validity_problem(loaded)
        return CredentialStatus(
            kind=self.kind,
            usable=problem is None,
            detail=problem or f"certificate {loaded.subject}",
            expires_at=loaded.not_after,
            thumbprint_sha256=loaded.sha256.hex(),
            thumbprint_sha1=loaded.sha1.hex(),
            facts={"not_before": loaded.not_before.isoformat(), "subject": loaded.subject},
        )

    def status(self) -> CredentialStatus:
        try:
            return self._describe(self.current())
        except CredentialError as exc:
            return CredentialStatus(kind=self.kind, usable=False, detail=str(exc))


# -- federated token file ------------------------------------------------------------------------


class FederatedTokenFileCredential(ClientCredential):
    """A JWT from another issuer, kept fresh in a file by the platform (Kubernetes projects the
    service account token and swaps it about every hour), sent as the client assertion."""

    kind = "federated-token-file"

    def __init__(
        self, path: str, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._token = ""
        self._version: tuple[int, int, int, int] | None = None
        self.reads = 0  # how often the file was read (tests check it is not read per request)

    def __repr__(self) -> str:
        return f"FederatedTokenFileCredential({self.path!r})"

    def msal_credential(self) -> dict[str, Any]:
        return {"client_assertion": self._assertion}

    def current(self) -> str:
        """The token in the file, re-read when the file changed."""
        with self._lock:
            try:
                version = _file_version(self.path)
            except FileNotFoundError:
                raise CredentialError(
                    f"AZURE_FEDERATED_TOKEN_FILE names a file that does not exist: {self.path}"
                ) from None
            except OSError as exc:
                raise CredentialError(
                    f"AZURE_FEDERATED_TOKEN_FILE cannot be read: {self.path} "
                    f"({exc.strerror or exc.__class__.__name__})"
                ) from None
            if version != self._version or not self._token:
                data, version = _read_file(self.path, "AZURE_FEDERATED_TOKEN_FILE")
                token = data.decode("utf-8", errors="replace").strip()
                if token.count(".") != 2 or not unverified_claims(token):
                    raise CredentialError(
                        f"AZURE_FEDERATED_TOKEN_FILE does not hold a JWT: {self.path}"
                    )
                self._token, self._version = token, version
                self.reads += 1
            return self._token

    def _assertion(self) -> str:
        try:
            return self.current()
        except CredentialError as exc:
            raise CredentialUnavailable(str(exc)) from None

    def _describe(self, token: str) -> CredentialStatus:
        claims = unverified_claims(token)
        exp = claims.get("exp")
        expires_at = datetime.fromtimestamp(exp, tz=UTC) if isinstance(exp, int | float) else None
        audience = claims.get("aud")
        if isinstance(audience, list):
            audience = " ".join(str(a) for a in audience)
        facts = {
            "issuer": str(claims.get("iss") or ""),
            "subject": str(claims.get("sub") or ""),
            "audience": str(audience or ""),
            "file": self.path,
        }
        usable = expires_at is None or expires_at > self._clock()
        detail = (
            f"federated token from {facts['issuer']} for {facts['subject']}"
            if usable
            else (
                f"the token in AZURE_FEDERATED_TOKEN_FILE expired at "
                f"{_fmt_time(expires_at or self._clock())}: the platform is not renewing it"
            )
        )
        return CredentialStatus(
            kind=self.kind, usable=usable, detail=detail, expires_at=expires_at, facts=facts
        )

    def check(self) -> CredentialStatus:
        status = self._describe(self.current())
        if not status.usable:
            raise CredentialError(status.detail)
        return status

    def status(self) -> CredentialStatus:
        try:
            return self._describe(self.current())
        except CredentialError as exc:
            return CredentialStatus(kind=self.kind, usable=False, detail=str(exc))


# -- managed identity ----------------------------------------------------------------------------


def managed_identity_source() -> str:
    """Which endpoint msal will ask, decided from the environment the platform sets (msal 1.39
    ``managed_identity._obtain_token``): App Service/Container Apps when ``IDENTITY_ENDPOINT`` and
    ``IDENTITY_HEADER`` are set, else IMDS (``AZURE_POD_IDENTITY_AUTHORITY_HOST`` or
    ``http://169.254.169.254``)."""
    environ = os.environ
    if "IDENTITY_ENDPOINT" in environ and "IDENTITY_HEADER" in environ:
        if "IDENTITY_SERVER_THUMBPRINT" in environ:
            return f"Service Fabric endpoint {environ['IDENTITY_ENDPOINT']}"
        return f"App Service/Container Apps endpoint {environ['IDENTITY_ENDPOINT']}"
    if "MSI_ENDPOINT" in environ and "MSI_SECRET" in environ:
        return f"Azure Machine Learning endpoint {environ['MSI_ENDPOINT']}"
    host = environ.get("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://169.254.169.254").rstrip("/")
    return f"IMDS {host}/metadata/identity/oauth2/token"


class ManagedIdentityCredential(ClientCredential):
    """A user-assigned managed identity's token as the client assertion of the app registration.

    The app registration has a federated identity credential with issuer
    ``https://login.microsoftonline.com/{tenant}/v2.0``, subject the identity's object (principal)
    id and audience ``api://AzureADTokenExchange``. msal's ``ManagedIdentityClient`` caches the
    identity's token and renews it five minutes before it ends.
    """

    kind = "managed-identity"

    def __init__(
        self,
        client_id: str,
        *,
        audience: str = _PUBLIC_EXCHANGE_AUDIENCE,
        timeout_s: float = 10.0,
        http_client: Any | None = None,
    ) -> None:
        if not client_id:
            raise CredentialError("MANAGED_IDENTITY_CLIENT_ID is empty")
        self.client_id = client_id
        self.audience = audience
        # IMDS and the App Service endpoint are local, plain http, and not meant to be reached
        # through a proxy (IMDS documents it as unsupported): the environment's proxies and CA
        # bundle do not apply.
        self._owns_session = http_client is None
        self._session = http_client or _NoEnvSession(timeout_s)
        self._client = msal.ManagedIdentityClient(
            msal.UserAssignedManagedIdentity(client_id=client_id),
            http_client=self._session,
            token_cache=msal.TokenCache(),
        )
        # Guards the fields below, never held during a request.
        self._lock = threading.Lock()
        self._flight: _Flight | None = None
        # A thread joining another's request waits at most this long (msal may retry it).
        self._wait_s = 6 * timeout_s
        self.tokens_fetched = 0

    def __repr__(self) -> str:
        return f"ManagedIdentityCredential(client_id={self.client_id!r})"

    def msal_credential(self) -> dict[str, Any]:
        return {"client_assertion": self._assertion}

    def token(self) -> str:
        """The identity's token for the exchange audience (msal's cache first).

        Blocking (msal's HTTP call, up to the timeout): call it from a worker thread. Threads
        asking at the same moment share one request; no lock is held while it runs.

        Raises :class:`CredentialSourceUnreachable` (retry later) or
        :class:`CredentialUnavailable` (the endpoint refused: configuration).
        """
        with self._lock:
            flight = self._flight
            leading = flight is None
            if flight is None:
                flight = self._flight = _Flight()
        if not leading:
            return flight.result(wait_s=self._wait_s)
        try:
            flight.token = self._fetch()
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                self._flight = None
            flight.done.set()
        return flight.token

    def _fetch(self) -> str:
        try:
            result = self._client.acquire_token_for_client(resource=self.audience)
        except requests.RequestException as exc:
            raise CredentialSourceUnreachable(
                f"the managed identity endpoint did not answer ({managed_identity_source()}, "
                f"{exc.__class__.__name__})"
            ) from None
        except ValueError as exc:
            # msal re-raises a JSON decoding error for an answer that is not JSON, and
            # ManagedIdentityError (a ValueError) for an unusable configuration.
            raise CredentialUnavailable(
                f"the managed identity endpoint gave an unusable answer "
                f"({managed_identity_source()}, {exc.__class__.__name__})"
            ) from None
        if result and "access_token" in result:
            if result.get("token_source") == "identity_provider":
                with self._lock:
                    self.tokens_fetched += 1
            return str(result["access_token"])
        result = result or {}
        error = str(result.get("error") or "no token")
        description = str(result.get("error_description") or "")[:200]
        if error in ("server_error", "temporarily_unavailable"):
            raise CredentialSourceUnreachable(
                f"the managed identity endpoint failed ({managed_identity_source()}: {error})"
            )
        raise CredentialUnavailable(
            f"the managed identity endpoint refused a token for {self.client_id} "
            f"({managed_identity_source()}: {error}"
            + (f": {description}" if description else "")
            + ")",
            error=error,
            description=description,
            status=self._session.last_status() if isinstance(self._session, _NoEnvSession) else 0,
        )

    def _assertion(self) -> str:
        return self.token()

    def check(self) -> CredentialStatus:
        return self.status()

    def status(self) -> CredentialStatus:
        return CredentialStatus(
            kind=self.kind,
            usable=True,
            detail=f"user-assigned managed identity {self.client_id} via {managed_identity_source()}",
            facts={"managed_identity_client_id": self.client_id, "audience": self.audience},
        )

    def close(self) -> None:
        if self._owns_session:
            self._session.close()


class _Flight:
    """One managed identity token request, shared by the threads that asked meanwhile."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.token = ""
        self.error: BaseException | None = None

    def result(self, *, wait_s: float) -> str:
        if not self.done.wait(wait_s):
            raise CredentialSourceUnreachable(
                f"the managed identity endpoint did not answer within {wait_s:.0f} s "
                f"({managed_identity_source()})"
            )
        if self.error is not None:
            # Each waiting thread raises its own copy (a traceback is per raise).
            try:
                error = copy.copy(self.error)
            except Exception:  # an error that cannot be copied is re-worded
                error = CredentialSourceUnreachable(str(self.error))
            raise error
        return self.token


class _NoEnvSession(requests.Session):
    """``requests`` without the environment's proxies and CA bundle, with a default timeout.

    It remembers, per thread, the HTTP status of its last answer: msal hands back only the
    endpoint's JSON, and a refusal is reported with its status.
    """

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self.trust_env = False
        self._timeout_s = timeout_s
        self._last = threading.local()

    def request(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self._timeout_s)
        response = super().request(*args, **kwargs)
        self._last.status = int(response.status_code)
        return response

    def last_status(self) -> int:
        """The HTTP status of this thread's last answer (0 before any)."""
        return int(getattr(self._last, "status", 0))


# -- metrics ---------------------------------------------------------------------------------------


class CredentialCollector(Collector):
    """``bot_credential_expiry_seconds`` and ``bot_credential_usable`` for ``/metrics``.

    Read at scrape time from :meth:`ClientCredential.status` (a ``stat`` of the file; the
    certificate is parsed again only when it changed).
    """

    def __init__(
        self,
        credential: ClientCredential,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._credential = credential
        self._clock = clock

    def collect(self) -> Iterable[GaugeMetricFamily]:
        status = self._credential.status()
        usable = GaugeMetricFamily(
            "bot_credential_usable",
            "1 when the bot's credential can get tokens as configured (0: see /readyz).",
            labels=["kind"],
        )
        usable.add_metric([status.kind], 1.0 if status.usable else 0.0)
        yield usable
        expiry = GaugeMetricFamily(
            "bot_credential_expiry_seconds",
            "Seconds until the bot's certificate (or current federated token) expires; negative "
            "once it has.",
            labels=["kind"],
        )
        remaining = status.expires_in_s(self._clock())
        if remaining is not None:
            expiry.add_metric([status.kind], remaining)
        yield expiry

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []
