"""Where the Microsoft side is, and who the bot is there — for real tenants and for the demo.

With real credentials everything comes from the settings. In demo mode (no ``MicrosoftAppId``)
``app.py`` starts the emulator and builds a :class:`MicrosoftSide` pointing at it, including the
demo's shortcut: *simulated Teams SSO* (the bot mints the clicking user's SSO token from the
emulator, because chat clients such as Agents Playground do no SSO). That shortcut is refused in
code whenever real credentials are configured (:func:`check_demo_shortcuts`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.graph import (
    CertificateCredential,
    ClientCredential,
    CredentialError,
    CredentialStatus,
    FederatedTokenFileCredential,
    GraphSettings,
    ManagedIdentityCredential,
    SecretCredential,
)
from bot.graph.credentials import token_exchange_audience
from bot.settings import Settings, SettingsError

__all__ = [
    "DemoShortcutRefused",
    "MicrosoftSide",
    "build_credential",
    "check_credential",
    "check_demo_shortcuts",
    "microsoft_side",
]


class DemoShortcutRefused(RuntimeError):
    """A demo-only shortcut was asked for while real credentials are set."""


@dataclass(frozen=True)
class MicrosoftSide:
    graph: GraphSettings
    tenant_id: str
    bot_app_id: str
    # Bot Connector URL for chats the bot starts itself.
    service_url: str
    # False only in the demo, whose emulated connector runs without authentication.
    connector_auth: bool = True
    # Demo only: user oid → a Teams SSO token for that user (minted by the emulator).
    simulated_sso: Callable[[str], str] | None = None
    ca_bundle: str | None = None
    sso_app_id_uri: str = ""
    # Tenant whose authority issues Bot Connector tokens: "botframework.com" for multi-tenant bots.
    connector_tenant: str = ""

    @property
    def credential(self) -> ClientCredential:
        """The process's one credential, used for every token (Graph, OBO, connector, replies)."""
        return self.graph.client_credential()


def build_credential(settings: Settings) -> ClientCredential:
    """The credential the settings describe (no I/O: :func:`check_credential` reads files).

    ``load_settings`` has already made sure exactly one kind is configured.
    """
    kind = settings.effective_credential_type
    if kind == "certificate":
        return CertificateCredential(
            settings.certificate_path, password=settings.certificate_password or None
        )
    if kind == "federated-token-file":
        return FederatedTokenFileCredential(settings.federated_token_file)
    if kind == "managed-identity":
        return ManagedIdentityCredential(
            settings.managed_identity_client_id,
            audience=token_exchange_audience(settings.authority_host),
        )
    return SecretCredential(settings.app_password)


def check_credential(side: MicrosoftSide) -> CredentialStatus:
    """Validate the credential at start; a problem becomes one :class:`SettingsError` line."""
    try:
        return side.credential.check()
    except CredentialError as exc:
        raise SettingsError(str(exc)) from None


def microsoft_side(settings: Settings) -> MicrosoftSide | None:
    """The real Microsoft side described by the settings; None without credentials."""
    if not settings.app_id:
        return None
    return MicrosoftSide(
        graph=GraphSettings(
            tenant_id=settings.app_tenant_id,
            client_id=settings.app_id,
            credential=build_credential(settings),
            graph_base_url=settings.graph_base_url,
            authority_host=settings.authority_host,
            ca_bundle_path=settings.ca_bundle or None,
            token_cache_keys=(settings.token_cache_key,) if settings.token_cache_key else (),
        ),
        tenant_id=settings.app_tenant_id,
        bot_app_id=settings.app_id,
        service_url=settings.teams_service_url,
        ca_bundle=settings.ca_bundle or None,
        sso_app_id_uri=settings.effective_sso_app_id_uri,
        # Multi-tenant bots get connector tokens from the botframework.com tenant; single-tenant
        # and managed-identity (UserAssignedMSI) bots from their own (teams-platform §4.4).
        connector_tenant="botframework.com"
        if settings.app_type == "MultiTenant"
        else settings.app_tenant_id,
    )


def check_demo_shortcuts(settings: Settings, side: MicrosoftSide | None) -> None:
    """Refuse every demo shortcut unless the process runs without real credentials."""
    if side is None:
        return
    shortcuts = side.simulated_sso is not None or not side.connector_auth
    if shortcuts and not settings.demo_mode:
        raise DemoShortcutRefused(
            "demo shortcuts (simulated SSO, unauthenticated connector) cannot be used while "
            "MicrosoftAppId is set"
        )
