"""Configuration of the Graph client and the token providers.

The application maps its own :class:`bot.settings.Settings` onto :class:`GraphSettings`; this
package never reads the environment itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.graph.credentials import ClientCredential, SecretCredential

__all__ = ["GraphSettings"]


@dataclass(frozen=True)
class GraphSettings:
    """Where Graph and Entra ID are, who we are, and how patient to be.

    Token acquisition needs ``credential`` (the process's one :class:`ClientCredential`, shared by
    every token provider and by botbuilder) or, as a shorthand, ``client_secret``.
    ``ca_bundle_path`` is the CA file to trust for https to Graph and the authority (the
    emulator's local CA); ``None`` means the system store.
    """

    tenant_id: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    # The one credential of the process (certificate, federated token, managed identity, secret).
    credential: ClientCredential | None = field(default=None, repr=False, compare=False)
    # Base URL without version; national clouds: https://graph.microsoft.us, ...; the emulator's URL.
    graph_base_url: str = "https://graph.microsoft.com"
    # The resource identifier used in scopes. Differs from graph_base_url for the emulator, whose
    # tokens still name https://graph.microsoft.com as audience.
    graph_resource: str = "https://graph.microsoft.com"
    authority_host: str = "https://login.microsoftonline.com"
    ca_bundle_path: str | None = None
    # Fernet key(s) (urlsafe base64 of 32 bytes) for the persisted token caches. The first one
    # encrypts; all of them are tried when decrypting, so a key can be rotated.
    token_cache_keys: tuple[str, ...] = field(default=(), repr=False)
    # Delegated permissions requested on-behalf-of a reviewer.
    delegated_scopes: tuple[str, ...] = ("AccessReview.ReadWrite.All",)
    # Per HTTP request.
    connect_timeout_s: float = 10.0
    request_timeout_s: float = 30.0
    token_timeout_s: float = 30.0
    # Per logical call (all its retries together).
    max_attempts: int = 6
    deadline_s: float = 120.0
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    # Parallel $batch HTTP calls one batch() call may have in flight.
    batch_concurrency: int = 4
    user_agent: str = "AccessReviewBot/0.1"

    def client_credential(self) -> ClientCredential:
        """The credential every token request uses. Raises ``ValueError`` when none is set."""
        if self.credential is not None:
            return self.credential
        if self.client_secret:
            return SecretCredential(self.client_secret)
        raise ValueError(
            "no credential configured (a certificate, a federated credential or a secret)"
        )

    @property
    def authority(self) -> str:
        """The msal authority for our tenant."""
        return f"{self.authority_host.rstrip('/')}/{self.tenant_id}"

    @property
    def app_scopes(self) -> list[str]:
        """Scopes for an app-only (client credentials) token."""
        return [f"{self.graph_resource.rstrip('/')}/.default"]

    @property
    def user_scopes(self) -> list[str]:
        """Fully qualified delegated scopes for on-behalf-of."""
        resource = self.graph_resource.rstrip("/")
        return [s if "://" in s else f"{resource}/{s}" for s in self.delegated_scopes]
