"""Building the botbuilder ``CloudAdapter`` from our settings.

Three modes, chosen from the settings alone:
- **anonymous** (no ``MicrosoftAppId``): the SDK's local mode; requests without an Authorization
  header are accepted and outbound calls carry none (Bot Framework Emulator, Agents Playground).
- **public cloud** (an app id): inbound JWTs validated against the Bot Framework's OpenID metadata.
- **parameterized** (``CHANNEL_OPENID_METADATA_URL`` set): the same checks against another
  metadata endpoint and issuer — how the bot is pointed at the local emulator.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import jwt
from aiohttp import web
from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
)
from botframework.connector.auth import ServiceClientCredentialsFactory

from bot.settings import Settings

__all__ = [
    "BotAdapter",
    "InboundAuthError",
    "activity_problem",
    "create_adapter",
    "process_request",
]

# The adapter type callers hold; named here so nothing outside bot/teams imports botbuilder.
BotAdapter = CloudAdapter

log = logging.getLogger(__name__)

PUBLIC_CHANNEL_ISSUER = "https://api.botframework.com"


@dataclass(frozen=True)
class _BotFrameworkConfig:
    """The attribute names botbuilder's configuration readers look for."""

    APP_ID: str
    APP_PASSWORD: str
    APP_TYPE: str
    APP_TENANTID: str


@dataclass(frozen=True)
class _ParameterizedConfig(_BotFrameworkConfig):
    # Setting any of these switches botbuilder to its parameterized authentication; all are set.
    TO_CHANNEL_FROM_BOT_LOGIN_URL: str
    TO_CHANNEL_FROM_BOT_OAUTH_SCOPE: str
    TO_BOT_FROM_CHANNEL_TOKEN_ISSUER: str
    OAUTH_URL: str
    TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL: str
    TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL: str
    CALLER_ID: str
    VALIDATE_AUTHORITY: bool = False


def bot_framework_config(settings: Settings) -> Any:
    """The configuration object botbuilder reads, for the mode the settings describe."""
    base: dict[str, Any] = {
        "APP_ID": settings.app_id,
        "APP_PASSWORD": settings.app_password,
        "APP_TYPE": settings.app_type,
        "APP_TENANTID": settings.app_tenant_id,
    }
    if not settings.channel_openid_metadata_url:
        return _BotFrameworkConfig(**base)
    tenant = settings.app_tenant_id or "botframework.com"
    return _ParameterizedConfig(
        **base,
        TO_CHANNEL_FROM_BOT_LOGIN_URL=f"{settings.authority_host}/{tenant}",
        TO_CHANNEL_FROM_BOT_OAUTH_SCOPE=PUBLIC_CHANNEL_ISSUER,
        TO_BOT_FROM_CHANNEL_TOKEN_ISSUER=settings.channel_token_issuer or PUBLIC_CHANNEL_ISSUER,
        OAUTH_URL=PUBLIC_CHANNEL_ISSUER,
        TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL=settings.channel_openid_metadata_url,
        TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL=settings.channel_openid_metadata_url,
        CALLER_ID="urn:botframework:azure",
    )


async def _on_turn_error(turn_context: TurnContext, error: Exception) -> None:
    # The user sees a short apology; the log has the error (never the activity's tokens).
    log.error(
        "unhandled error in bot turn",
        exc_info=error,
        extra={"activity_type": turn_context.activity.type},
    )
    if turn_context.activity.type == "message":
        try:
            await turn_context.send_activity(
                "Sorry, something went wrong on my side. Please try again."
            )
        except Exception:  # the connector may be the thing that failed
            log.warning("could not tell the user about the error")


def create_adapter(
    settings: Settings, *, credentials_factory: ServiceClientCredentialsFactory | None = None
) -> CloudAdapter:
    """A ``CloudAdapter`` for the settings. ``credentials_factory`` overrides outbound auth."""
    auth = ConfigurationBotFrameworkAuthentication(
        bot_framework_config(settings), credentials_factory=credentials_factory
    )
    adapter = CloudAdapter(auth)
    adapter.on_turn_error = _on_turn_error
    return adapter


def activity_problem(body: dict[str, Any]) -> str | None:
    """Why ``body`` cannot be processed as an activity, or None if the SDK can read it."""
    from botbuilder.schema import Activity
    from msrest.exceptions import DeserializationError  # type: ignore[attr-defined]

    try:
        Activity().deserialize(body)
    except (DeserializationError, TypeError, ValueError, AttributeError) as exc:
        return f"malformed activity: {type(exc).__name__}"
    return None


class InboundAuthError(Exception):
    """The request's bearer token is missing, malformed or not valid for this bot."""


async def process_request(
    adapter: CloudAdapter, request: web.Request, bot: Any, *, require_auth: bool = True
) -> web.Response:
    """Hand one validated-envelope request to the adapter; map auth failures to one error type.

    botbuilder raises ``PermissionError`` for a refused token but lets PyJWT's ``DecodeError``
    escape for a bearer that is not a JWT at all; both mean 401 to the caller.
    """
    if require_auth and not request.headers.get("Authorization", "").strip():
        # With an app id every request must carry a channel token. (botbuilder's parameterized
        # mode crashes on a missing header instead of refusing it.)
        raise InboundAuthError("no Authorization header")
    try:
        response = await adapter.process(request, bot)
    except (PermissionError, jwt.PyJWTError, web.HTTPUnauthorized) as exc:
        raise InboundAuthError(type(exc).__name__) from exc
    return response if response is not None else web.Response(status=201)
