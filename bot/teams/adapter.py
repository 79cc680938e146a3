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
from botframework.connector.auth import (
    BotFrameworkAuthentication,
    ConnectorFactory,
    ServiceClientCredentialsFactory,
)

from bot.notify.language import activity_language
from bot.settings import Settings
from cards.i18n import pick_locale
from cards.strings import S, Strings

__all__ = [
    "BotAdapter",
    "InboundAuthError",
    "MalformedActivity",
    "create_adapter",
    "parse_activity",
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
            # In the language the user wrote in (this handler has no store to look further).
            locale, _ = activity_language(turn_context.activity)
            words = Strings(pick_locale([locale]))
            await turn_context.send_activity(words.text(S.CHAT_TURN_ERROR))
        except Exception:  # the connector may be the thing that failed
            log.warning("could not tell the user about the error")


class _CachedConnectorFactory(ConnectorFactory):  # type: ignore[misc]
    """One ConnectorClient per (service URL, audience) instead of one per request.

    botbuilder builds a new msrest ConnectorClient for every inbound activity — several
    milliseconds of CPU each, even for invokes that never send anything.
    """

    def __init__(self, inner: Any, cache: dict[tuple[str, str, str], Any], app_id: str) -> None:
        self._inner = inner
        self._cache = cache
        self._app_id = app_id

    async def create(self, service_url: str, audience: str | None = None) -> Any:
        key = (self._app_id, service_url, audience or "")
        client = self._cache.get(key)
        if client is None:
            client = await self._inner.create(service_url, audience)
            self._cache[key] = client
        return client


class _CachingAuthentication(BotFrameworkAuthentication):  # type: ignore[misc]
    """botbuilder's authentication, with the per-request clients it builds kept for reuse."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._connectors: dict[tuple[str, str, str], Any] = {}
        self._token_clients: dict[str, Any] = {}

    @staticmethod
    def _app_id(claims_identity: Any) -> str:
        claims = getattr(claims_identity, "claims", None) or {}
        return str(claims.get("aud") or claims.get("appid") or "")

    async def authenticate_request(self, activity: Any, auth_header: str) -> Any:
        result = await self._inner.authenticate_request(activity, auth_header)
        if result.connector_factory is not None:
            result.connector_factory = _CachedConnectorFactory(
                result.connector_factory, self._connectors, self._app_id(result.claims_identity)
            )
        return result

    async def authenticate_streaming_request(self, auth_header: str, channel_id_header: str) -> Any:
        return await self._inner.authenticate_streaming_request(auth_header, channel_id_header)

    def create_connector_factory(self, claims_identity: Any) -> Any:
        return _CachedConnectorFactory(
            self._inner.create_connector_factory(claims_identity),
            self._connectors,
            self._app_id(claims_identity),
        )

    async def create_user_token_client(self, claims_identity: Any) -> Any:
        key = self._app_id(claims_identity)
        client = self._token_clients.get(key)
        if client is None:
            client = await self._inner.create_user_token_client(claims_identity)
            self._token_clients[key] = client
        return client

    def create_bot_framework_client(self) -> Any:
        return self._inner.create_bot_framework_client()

    def get_originating_audience(self) -> str:
        return str(self._inner.get_originating_audience())

    async def authenticate_channel_request(self, auth_header: str) -> Any:
        return await self._inner.authenticate_channel_request(auth_header)


def create_adapter(
    settings: Settings, *, credentials_factory: ServiceClientCredentialsFactory | None = None
) -> CloudAdapter:
    """A ``CloudAdapter`` for the settings. ``credentials_factory`` overrides outbound auth."""
    auth = ConfigurationBotFrameworkAuthentication(
        bot_framework_config(settings), credentials_factory=credentials_factory
    )
    adapter = CloudAdapter(_CachingAuthentication(auth))
    adapter.on_turn_error = _on_turn_error
    return adapter


def parse_activity(body: dict[str, Any]) -> Any:
    """The SDK's ``Activity`` for ``body``; :class:`MalformedActivity` if it cannot read it.

    Parsed once per request: the route checks it and hands it to the adapter (botbuilder's own
    ``process`` would parse the body a second time).
    """
    from botbuilder.schema import Activity
    from msrest.exceptions import DeserializationError  # type: ignore[attr-defined]

    try:
        return Activity().deserialize(body)
    except (DeserializationError, TypeError, ValueError, AttributeError) as exc:
        raise MalformedActivity(f"malformed activity: {type(exc).__name__}") from exc


class MalformedActivity(ValueError):
    """The body is JSON but not an activity the SDK can read."""


class InboundAuthError(Exception):
    """The request's bearer token is missing, malformed or not valid for this bot."""


def _invoke_body(body: Any) -> Any:
    """The JSON of an invoke response body.

    Our adaptive-card answers are an ``AdaptiveCardInvokeResponse`` whose ``value`` is already
    plain JSON (a card, a message): written as is. msrest's serializer would walk every node of
    the card (about 1.5 ms per answer). Plain JSON bodies (the token-exchange answers) are written
    as they are: msrest cannot serialize a dict (``'dict' object has no attribute
    'is_xml_model'``, a 500). Other SDK models still go through it.
    """
    from botbuilder.core import serializer_helper
    from botbuilder.schema import AdaptiveCardInvokeResponse

    if type(body) is AdaptiveCardInvokeResponse:
        return {"statusCode": body.status_code, "type": body.type, "value": body.value}
    if body is None or isinstance(body, dict | list | str | int | float | bool):
        return body
    return serializer_helper(body)


async def process_request(
    adapter: CloudAdapter,
    request: web.Request,
    activity: Any,
    bot: Any,
    *,
    require_auth: bool = True,
) -> web.Response:
    """Run one parsed activity through the adapter; map auth failures to one error type.

    What botbuilder's ``CloudAdapter.process`` does for a POST, given the parsed activity.
    botbuilder raises ``PermissionError`` for a refused token but lets PyJWT's ``DecodeError``
    escape for a bearer that is not a JWT at all; both mean 401 to the caller.
    """
    auth_header = request.headers.get("Authorization", "")
    if require_auth and not auth_header.strip():
        # With an app id every request must carry a channel token. (botbuilder's parameterized
        # mode crashes on a missing header instead of refusing it.)
        raise InboundAuthError("no Authorization header")
    try:
        invoke_response = await adapter.process_activity(auth_header, activity, bot.on_turn)
    except (PermissionError, jwt.PyJWTError, web.HTTPUnauthorized) as exc:
        raise InboundAuthError(type(exc).__name__) from exc
    if invoke_response is None:
        return web.Response(status=201)
    return web.json_response(data=_invoke_body(invoke_response.body), status=invoke_response.status)
