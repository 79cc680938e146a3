"""The emulated Microsoft Entra ID (login service) and Bot Framework channel authentication.

What the login site serves (https, certificate from a local CA made at start with ``trustme``):

* ``GET /{tenant}/v2.0/.well-known/openid-configuration`` (and the v1 form) with endpoints that
  point back at this server, so the real ``msal`` library can use it as its authority
  (``instance_discovery=False``, authority ``https://127.0.0.1:PORT/{tenant}``).
* ``GET /{tenant}/discovery/v2.0/keys``: the JWKS of the tenant's token-signing key.
* ``POST /{tenant}/oauth2/v2.0/token``: client credentials, on-behalf-of and ``refresh_token``
  grants (:mod:`~emulator.identity.grants`), with clients authenticated by a secret, a
  certificate assertion or a federated assertion (:mod:`~emulator.identity.client_auth`).
* ``GET /external/{name}/.well-known/openid-configuration`` and ``/keys``: emulated external OIDC
  issuers (a Kubernetes cluster's service account issuer, say) whose tokens an app can trust
  through federated identity credentials (:mod:`~emulator.identity.federation`).
* The Bot Framework channel OpenID metadata and its JWKS, whose key signs the activities the
  emulator sends to the bot (:meth:`Identity.sign_channel_token`).

Beside it, :meth:`Identity.make_managed_identity_app` is an Azure host's managed identity endpoint
in its IMDS and App Service/Container Apps shapes (:mod:`~emulator.identity.managed_identity`).

The package is split along those seams; everything callers use is importable from here.
"""

from emulator.identity.apps import AppRegistration, FederatedIdentityCredential
from emulator.identity.client_auth import Client, ClientAuthenticator
from emulator.identity.common import (
    ACCESS_TOKEN_LIFETIME_S,
    BOT_FRAMEWORK_AUDIENCE,
    BOT_FRAMEWORK_TENANT_ID,
    CHANNEL_TOKEN_ISSUER,
    CLIENT_ASSERTION_TYPE,
    CLOCK_SKEW_S,
    GRAPH_APP_ID,
    GRAPH_AUDIENCE,
    MANAGED_IDENTITY_TOKEN_LIFETIME_S,
    REFRESH_TOKEN_LIFETIME_S,
    TEAMS_DESKTOP_CLIENT_ID,
    TOKEN_EXCHANGE_AUDIENCE,
    AccessToken,
    OAuthError,
    TokenError,
)
from emulator.identity.federation import ExternalIssuer
from emulator.identity.managed_identity import (
    IMDS_PATH,
    MSI_PATH,
    ManagedIdentity,
    ManagedIdentityEndpoint,
)
from emulator.identity.service import Identity

__all__ = [
    "ACCESS_TOKEN_LIFETIME_S",
    "BOT_FRAMEWORK_AUDIENCE",
    "BOT_FRAMEWORK_TENANT_ID",
    "CHANNEL_TOKEN_ISSUER",
    "CLIENT_ASSERTION_TYPE",
    "CLOCK_SKEW_S",
    "GRAPH_APP_ID",
    "GRAPH_AUDIENCE",
    "IMDS_PATH",
    "MANAGED_IDENTITY_TOKEN_LIFETIME_S",
    "MSI_PATH",
    "REFRESH_TOKEN_LIFETIME_S",
    "TEAMS_DESKTOP_CLIENT_ID",
    "TOKEN_EXCHANGE_AUDIENCE",
    "AccessToken",
    "AppRegistration",
    "Client",
    "ClientAuthenticator",
    "ExternalIssuer",
    "FederatedIdentityCredential",
    "Identity",
    "ManagedIdentity",
    "ManagedIdentityEndpoint",
    "OAuthError",
    "TokenError",
]
