"""Application registrations: credentials (secret, certificates, federated identity credentials)
and what the tenant granted them."""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography import x509

__all__ = ["AppRegistration", "FederatedIdentityCredential"]


@dataclass(frozen=True)
class FederatedIdentityCredential:
    """A trust on an app registration (Graph ``federatedIdentityCredential``): a token from
    ``issuer`` whose ``sub`` is ``subject`` and whose ``aud`` is one of ``audiences`` may stand
    in for the app's secret. Entra compares all three case-sensitively (Entra's breaking-change
    notice of 2025: "federated identity credentials now use case-sensitive matching")."""

    name: str
    issuer: str
    subject: str
    audiences: tuple[str, ...] = ("api://AzureADTokenExchange",)


@dataclass
class AppRegistration:
    """An application registered in the emulated tenant (and its service principal's grants)."""

    client_id: str
    display_name: str
    secret: str | None = None
    #: PEM of a public certificate accepted for client assertions (private_key_jwt).
    certificate_pem: bytes | None = None
    #: More certificates (PEM), e.g. the renewal uploaded before the old one is removed.
    certificates: list[bytes] = field(default_factory=list)
    #: Federated identity credentials (at most 20 per app in Entra).
    federated_credentials: list[FederatedIdentityCredential] = field(default_factory=list)
    #: Granted Graph app roles, e.g. ``{"AccessReview.Read.All", "User.Read.All"}``.
    application_permissions: set[str] = field(default_factory=set)
    #: Admin-consented delegated Graph scopes, e.g. ``{"AccessReview.ReadWrite.All"}``.
    delegated_permissions: set[str] = field(default_factory=set)
    #: Application ID URI (``api://botid-{client_id}``), the audience of Teams SSO tokens.
    #: ``None`` means SSO is not set up for the app.
    identifier_uri: str | None = None

    def key_credentials(self) -> list[x509.Certificate]:
        """Every certificate registered for client assertions."""
        pems = ([self.certificate_pem] if self.certificate_pem else []) + list(self.certificates)
        return [x509.load_pem_x509_certificate(pem) for pem in pems]
