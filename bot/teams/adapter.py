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
import os
import traceback
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import aiohttp
import requests
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
from bot.store import is_unavailable
from bot.teams.bearer import BearerRefused, inspect_bearer
from cards.i18n import pick_locale
from cards.strings import S, Strings

__all__ = [
    "MAX_CACHED_CONNECTORS",
    "BotAdapter",
    "ChannelKeysUnavailable",
    "InboundAuthError",
    "MalformedActivity",
    "authenticate",
    "check_authorization",
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


def _is_channel_failure(error: BaseException) -> bool:
    """The turn failed because the channel (the activity's serviceUrl) could not be reached,
    refused a reply or answered something unreadable: the sender's doing or the network's, not
    a fault of the bot."""
    from msrest.exceptions import (  # type: ignore[attr-defined]
        ClientRequestError,
        DeserializationError,
        HttpOperationError,
    )

    if isinstance(error, ClientRequestError | HttpOperationError | aiohttp.ClientError):
        return True
    if isinstance(error, TimeoutError):
        return True
    # An answer msrest could not read (a 404 page in text/plain, say), raised in its pipeline.
    return isinstance(error, DeserializationError) and _raised_in_msrest_pipeline(error)


def _raised_in_msrest_pipeline(error: BaseException) -> bool:
    frames = traceback.extract_tb(error.__traceback__)
    return any(f"msrest{os.sep}pipeline" in frame.filename for frame in frames)


async def _on_turn_error(turn_context: TurnContext, error: Exception) -> None:
    if _is_channel_failure(error):
        # In anonymous mode anyone may name a serviceUrl that answers nothing; with an app id it
        # is the connector's outage. Neither is a bug to trace, and the user cannot be told.
        log.warning(
            "could not answer through the channel: %s",
            type(error).__name__,
            extra={"activity_type": turn_context.activity.type},
        )
        return
    if is_unavailable(error):
        # The database's moment, not a bug: one line, no stack trace; the user is still told.
        log.warning(
            "store unavailable, turn not handled: %s",
            type(error).__name__,
            extra={"activity_type": turn_context.activity.type},
        )
    else:
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


#: Connector clients kept for reuse. Teams uses a handful of service URLs (one per region); in
#: anonymous mode each activity names its own, so the cache must not grow with what strangers send.
MAX_CACHED_CONNECTORS = 32


class _CachedConnectorFactory(ConnectorFactory):  # type: ignore[misc]
    """One ConnectorClient per (service URL, audience) instead of one per request.

    botbuilder builds a new msrest ConnectorClient for every inbound activity — several
    milliseconds of CPU each, even for invokes that never send anything. The least recently
    used client goes when the cache is full (the garbage collector closes its session).
    """

    def __init__(
        self, inner: Any, cache: OrderedDict[tuple[str, str, str], Any], app_id: str
    ) -> None:
        self._inner = inner
        self._cache = cache
        self._app_id = app_id

    async def create(self, service_url: str, audience: str | None = None) -> Any:
        key = (self._app_id, service_url, audience or "")
        client = self._cache.get(key)
        if client is None:
            client = await self._inner.create(service_url, audience)
            self._cache[key] = client
            while len(self._cache) > MAX_CACHED_CONNECTORS:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return client


class _CachingAuthentication(BotFrameworkAuthentication):  # type: ignore[misc]
    """botbuilder's authentication, with the per-request clients it builds kept for reuse."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._connectors: OrderedDict[tuple[str, str, str], Any] = OrderedDict()
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


# Envelope fields botbuilder's handlers read as objects, or as lists of objects, without checking:
# msrest deserializes a wrong type into None or a half-built model, and a handler then fails.
_OBJECT_FIELDS = ("from", "recipient", "conversation", "channelData", "relatesTo")
_OBJECT_LIST_FIELDS = ("membersAdded", "membersRemoved", "entities", "attachments")


def parse_activity(body: dict[str, Any]) -> Any:
    """The SDK's ``Activity`` for ``body``; :class:`MalformedActivity` if it cannot read it.

    Parsed once per request: the route checks it and hands it to the adapter (botbuilder's own
    ``process`` would parse the body a second time).
    """
    from botbuilder.schema import Activity
    from botbuilder.schema.teams import TeamsChannelData
    from msrest.exceptions import DeserializationError  # type: ignore[attr-defined]

    for name in _OBJECT_FIELDS:
        if name in body and not isinstance(body[name], dict):
            raise MalformedActivity(f"malformed activity: {name} must be an object")
    for name in _OBJECT_LIST_FIELDS:
        value = body.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise MalformedActivity(f"malformed activity: {name} must be a list of objects")
    conversation = body.get("conversation")
    if not isinstance(conversation, dict) or not isinstance(conversation.get("id"), str):
        # Required by the Bot Framework schema; botbuilder keys replies and member look-ups on it.
        raise MalformedActivity("malformed activity: conversation.id missing")
    if body.get("channelId") == "msteams" and "channelData" not in body:
        # Teams always sends it; TeamsActivityHandler reads it (team, tenant, eventType).
        raise MalformedActivity("malformed activity: channelData missing")
    try:
        activity = Activity().deserialize(body)
        if "channelData" in body:
            TeamsChannelData().deserialize(body["channelData"])
    except (DeserializationError, TypeError, ValueError, AttributeError) as exc:
        raise MalformedActivity(f"malformed activity: {type(exc).__name__}") from exc
    return activity


class MalformedActivity(ValueError):
    """The body is JSON but not an activity the SDK can read."""


class InboundAuthError(Exception):
    """The request's bearer token is missing, malformed or not valid for this bot.

    ``str(exc)`` is a short reason, safe to show the caller (never the token)."""


class ChannelKeysUnavailable(Exception):
    """The channel's OpenID metadata or signing keys could not be fetched: nothing can be
    validated until they can (the caller should retry; it is not the caller's fault)."""


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
    activity: Any,
    bot: Any,
    *,
    auth_header: str,
) -> web.Response:
    """Authenticate one parsed activity, then run it through the adapter.

    What botbuilder's ``CloudAdapter.process`` does for a POST, given the parsed activity and
    the header :func:`check_authorization` returned, with authentication split off so that
    every way a token can be wrong is one error type (:class:`InboundAuthError`, a 401 for the
    caller) and only the bot's own turn can fail in other ways.
    """
    authenticated = await authenticate(adapter, activity, auth_header)
    invoke_response = await adapter.process_activity(authenticated, activity, bot.on_turn)
    if invoke_response is None:
        return web.Response(status=201)
    return web.json_response(data=_invoke_body(invoke_response.body), status=invoke_response.status)


def check_authorization(header: str, *, require_auth: bool) -> str:
    """The ``Authorization`` header to validate (``""``: anonymous), or :class:`InboundAuthError`.

    Shape only, before the body is read. With an app id every request must carry a channel
    token. Without one (the anonymous mode of the demo, Agents Playground and the Bot Framework
    Emulator, which send none) a token cannot be valid: botbuilder would still try, against the
    public cloud's keys and an empty app id, with a blocking fetch of those keys.
    """
    if not header.strip():
        if require_auth:
            # (botbuilder's parameterized mode crashes on a missing header instead of refusing.)
            raise InboundAuthError("no Authorization header")
        return ""
    if not require_auth:
        raise InboundAuthError("this bot runs without an app id: send no Authorization header")
    try:
        return inspect_bearer(header)
    except BearerRefused as exc:
        raise InboundAuthError(str(exc)) from None


async def authenticate(adapter: CloudAdapter, activity: Any, auth_header: str) -> Any:
    """botbuilder's ``AuthenticateRequestResult`` for the request, or :class:`InboundAuthError`.

    botbuilder raises ``PermissionError`` for a refused token, but lets PyJWT's errors,
    ``IndexError`` (an unknown ``kid``) and bare ``Exception`` (an ``alg`` or an endorsement it
    refuses) escape; all of them are a token this bot does not accept.
    """
    try:
        return await adapter.bot_framework_authentication.authenticate_request(
            activity, auth_header
        )
    except PermissionError as exc:  # botbuilder's refusal (an OSError, unlike the rest)
        raise InboundAuthError(f"token refused ({type(exc).__name__})") from None
    except (requests.RequestException, OSError) as exc:
        # botbuilder fetches the channel's keys lazily, inside validation.
        raise ChannelKeysUnavailable(type(exc).__name__) from exc
    except Exception as exc:
        raise InboundAuthError(f"token refused ({type(exc).__name__})") from None
