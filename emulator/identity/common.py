"""What every part of the emulated Entra ID shares: constants, the resource-side token view and
error types, the token endpoint's error, and small encoding helpers."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "ACCESS_TOKEN_LIFETIME_S",
    "BOT_FRAMEWORK_AUDIENCE",
    "BOT_FRAMEWORK_TENANT_ID",
    "CHANNEL_TOKEN_ISSUER",
    "CLIENT_ASSERTION_TYPE",
    "CLOCK_SKEW_S",
    "GRAPH_APP_ID",
    "GRAPH_AUDIENCE",
    "MANAGED_IDENTITY_TOKEN_LIFETIME_S",
    "REFRESH_TOKEN_LIFETIME_S",
    "TEAMS_DESKTOP_CLIENT_ID",
    "TOKEN_EXCHANGE_AUDIENCE",
    "AccessToken",
    "OAuthError",
    "TokenError",
    "b64url",
    "epoch",
    "unverified_parts",
]

GRAPH_AUDIENCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
BOT_FRAMEWORK_AUDIENCE = "https://api.botframework.com"
#: The botframework.com tenant (multi-tenant bots get connector tokens from it).
BOT_FRAMEWORK_TENANT_ID = "d6d49420-f39b-4df7-a1dc-d59a935871db"
#: ``iss`` of the tokens the Bot Framework channel signs for activities sent to a bot.
CHANNEL_TOKEN_ISSUER = "https://api.botframework.com"  # noqa: S105 - an issuer URL
#: Teams desktop/mobile client, the pre-authorized client that requests SSO tokens.
TEAMS_DESKTOP_CLIENT_ID = "1fec8e78-bce4-4aaf-ab1b-5451cc387264"
#: The audience of tokens that stand in as federated credentials (public cloud; Entra's
#: "workload identity federation" and "configure an app to trust a managed identity").
TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"  # noqa: S105 - an audience URI
#: RFC 7523 client assertion type.
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

# Entra issues access tokens for 60-90 minutes at random; a fixed 3599 s keeps tests deterministic.
ACCESS_TOKEN_LIFETIME_S = 3599
# Refresh tokens for confidential clients are valid for 90 days (inactivity window).
REFRESH_TOKEN_LIFETIME_S = 90 * 24 * 3600
# Managed identity tokens live about 24 hours (the managed identities FAQ).
MANAGED_IDENTITY_TOKEN_LIFETIME_S = 24 * 3600
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


class OAuthError(Exception):
    """An Entra token-endpoint error (``status`` 400 or 401), answered in Entra's shape."""

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


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def unverified_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) of a JWT without any check; ``ValueError`` when it is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT")
    decoded = []
    for part in parts[:2]:
        try:
            value = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError("not a JWT") from exc
        if not isinstance(value, dict):
            raise ValueError("not a JWT")
        decoded.append(value)
    return decoded[0], decoded[1]
