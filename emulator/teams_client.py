"""A Teams client stand-in: sends correctly signed Bot Framework activities to a bot.

It builds the activities Teams sends to a bot in a personal (1:1) chat (install events, text
messages, ``Action.Submit`` messages, ``adaptiveCard/action`` invokes with or without an SSO
token, ``signin/tokenExchange``), signs each with the emulated channel key
(:meth:`emulator.identity.Identity.sign_channel_token`) and POSTs it to the bot's
``/api/messages``. Knobs produce unsigned requests and forged tokens for negative tests.

The module also holds the Teams identifiers of a personal chat (user MRI ``29:...``,
conversation id ``a:...``, Graph chat id ``19:..._...@unq.gbl.spaces``), shared with
:mod:`emulator.connector` so both sides name things the same way.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from emulator.clock import Clock, SystemClock
from emulator.identity import Identity

__all__ = [
    "BotResponse",
    "Forgery",
    "TeamsClient",
    "bot_mri",
    "personal_chat_id",
    "personal_conversation_id",
    "user_mri",
]

log = logging.getLogger(__name__)

# What the Bot Framework sends as the OAuth connection name when the bot has none configured
# for the SSO exchange; the bot only needs it to be echoed.
DEFAULT_CONNECTION_NAME = "graph-sso"


def _digest(*parts: str, length: int = 43) -> str:
    raw = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")[:length]


def user_mri(bot_app_id: str, user_oid: str) -> str:
    """The user's Teams id as this bot sees it (``29:...``; opaque and unique per bot)."""
    return f"29:1{_digest('mri', bot_app_id, user_oid.lower())}"


def bot_mri(bot_app_id: str) -> str:
    """The bot's Teams id (``28:{appId}``)."""
    return f"28:{bot_app_id}"


def personal_conversation_id(
    bot_app_id: str, tenant_id: str, user_oid: str, generation: int = 0
) -> str:
    """The 1:1 conversation id in activities (``a:...``).

    ``generation`` changes when the emulator drops a conversation (user cleared the chat), so a
    stored id then answers 404 ``ConversationNotFound`` and CreateConversation gives a new one.
    """
    return (
        f"a:1{_digest('conv', bot_app_id, tenant_id, user_oid.lower(), str(generation), length=64)}"
    )


def personal_chat_id(bot_app_id: str, user_oid: str) -> str:
    """The Graph chat id of the 1:1 chat between the user and the bot."""
    return f"19:{user_oid.lower()}_{bot_app_id.lower()}@unq.gbl.spaces"


class Forgery(enum.Enum):
    """Ways to spoil the channel token, for tests that the bot rejects them."""

    WRONG_AUDIENCE = "wrong_audience"  # aud is another app id
    WRONG_SERVICE_URL = "wrong_service_url"  # serviceurl claim differs from activity.serviceUrl
    NO_SERVICE_URL = "no_service_url"  # serviceurl claim missing
    EXPIRED = "expired"  # exp an hour ago (beyond the SDK's 5 minute tolerance)
    BAD_SIGNATURE = "bad_signature"  # signature bytes altered
    WRONG_ISSUER = "wrong_issuer"  # iss not https://api.botframework.com


@dataclass(frozen=True)
class BotResponse:
    """The bot's answer: HTTP status and JSON body (``None`` when empty or not JSON)."""

    status: int
    body: Any
    headers: Mapping[str, str]
    activity: Mapping[str, Any]


class TeamsClient:
    """Sends Teams-shaped, channel-signed activities to a bot endpoint.

    ``connector_url`` is the ``serviceUrl`` put into activities (the emulated connector),
    ``bot_endpoint`` the bot's ``/api/messages``. ``unsigned=True`` sends no Authorization header
    (the bot's anonymous mode); :meth:`forged` returns a copy that spoils every token.
    ``conversation_id_for`` lets the connector supply the current 1:1 conversation id of a user
    (its default is generation 0 of :func:`personal_conversation_id`).
    """

    def __init__(
        self,
        identity: Identity,
        connector_url: str,
        bot_endpoint: str,
        bot_app_id: str,
        tenant_id: str,
        http: httpx.AsyncClient,
        *,
        unsigned: bool = False,
        forgery: Forgery | None = None,
        clock: Clock | None = None,
        bot_name: str = "Access Review Bot",
        conversation_id_for: Callable[[str], str] | None = None,
        client_languages: dict[str, tuple[str, str]] | None = None,
    ) -> None:
        self.identity = identity
        self.connector_url = connector_url
        self.bot_endpoint = bot_endpoint
        self.bot_app_id = bot_app_id
        self.tenant_id = tenant_id
        self.http = http
        self.unsigned = unsigned
        self.forgery = forgery
        self.clock: Clock = clock or SystemClock()
        self.bot_name = bot_name
        self._conversation_id_for = conversation_id_for
        # Per user: the locale and IANA time zone their Teams client runs in (Teams puts both in
        # every activity: ``locale``, ``localTimezone`` and the ``clientInfo`` entity). Pass the
        # connector's ``client_languages`` to share them with the activities it delivers.
        self.client_languages = client_languages if client_languages is not None else {}

    # ------------------------------------------------------------------ variants
    def _copy(self, **changes: Any) -> TeamsClient:
        clone = TeamsClient.__new__(TeamsClient)
        clone.__dict__.update(self.__dict__)
        clone.__dict__.update(changes)
        return clone

    def forged(self, forgery: Forgery) -> TeamsClient:
        """A copy of this client whose tokens are spoiled in the given way."""
        return self._copy(forgery=forgery, unsigned=False)

    def without_auth(self) -> TeamsClient:
        """A copy of this client that sends no Authorization header."""
        return self._copy(unsigned=True, forgery=None)

    def set_client_language(self, user_oid: str, locale: str, time_zone: str = "Etc/UTC") -> None:
        """Make ``user_oid``'s Teams client send ``locale`` and ``time_zone`` from now on
        (by default ``en-US`` and ``Etc/UTC``)."""
        self.client_languages[user_oid] = (locale, time_zone)

    # ------------------------------------------------------------------ addressing
    def conversation_id(self, user_oid: str) -> str:
        """The 1:1 conversation id used for ``user_oid``."""
        if self._conversation_id_for is not None:
            return self._conversation_id_for(user_oid)
        return personal_conversation_id(self.bot_app_id, self.tenant_id, user_oid)

    def user_account(self, user_oid: str) -> dict[str, Any]:
        """The ``from`` account of a user (``29:`` id, ``aadObjectId``, name)."""
        user = self.identity.lookup_user(user_oid)
        name = str(user.get("displayName") or "") if user else ""
        return {"id": user_mri(self.bot_app_id, user_oid), "name": name, "aadObjectId": user_oid}

    def base_activity(self, user_oid: str, activity_type: str) -> dict[str, Any]:
        """The fields every activity from Teams in a personal chat carries."""
        now = self.clock.now()
        locale, time_zone = self.client_languages.get(user_oid, ("en-US", "Etc/UTC"))
        return {
            "type": activity_type,
            "id": f"f:{uuid.uuid4().int % 10**19}",
            "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
            "localTimestamp": now.isoformat(),
            "channelId": "msteams",
            "serviceUrl": self.connector_url,
            "from": self.user_account(user_oid),
            "conversation": {
                "conversationType": "personal",
                "tenantId": self.tenant_id,
                "id": self.conversation_id(user_oid),
            },
            "recipient": {"id": bot_mri(self.bot_app_id), "name": self.bot_name},
            "channelData": {"tenant": {"id": self.tenant_id}},
            "locale": locale,
            "localTimezone": time_zone,
            "entities": [
                {
                    "type": "clientInfo",
                    "locale": locale,
                    "country": locale.rpartition("-")[2] or "US",
                    "platform": "Web",
                    "timezone": time_zone,
                }
            ],
        }

    # ------------------------------------------------------------------ signing and sending
    def channel_token(self) -> str:
        """The Authorization token for one request (spoiled as configured)."""
        forgery = self.forgery
        overrides: dict[str, Any] = {}
        expires_in_s = 3600
        app_id = self.bot_app_id
        if forgery is Forgery.WRONG_AUDIENCE:
            app_id = str(uuid.uuid4())
        elif forgery is Forgery.WRONG_SERVICE_URL:
            overrides["serviceurl"] = "https://smba.trafficmanager.net/amer/"
        elif forgery is Forgery.NO_SERVICE_URL:
            overrides["serviceurl"] = None
        elif forgery is Forgery.WRONG_ISSUER:
            overrides["iss"] = "https://api.botframework.example"
        elif forgery is Forgery.EXPIRED:
            expires_in_s = -3600
            wall_now = int(SystemClock().now().timestamp())
            overrides["nbf"] = overrides["iat"] = wall_now - 7200
        token = self.identity.sign_channel_token(
            app_id=app_id, service_url=self.connector_url, expires_in_s=expires_in_s, **overrides
        )
        if forgery is Forgery.BAD_SIGNATURE:
            header, payload, signature = token.split(".")
            raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
            raw[len(raw) // 2] ^= 0xFF
            token = ".".join(
                [header, payload, base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()]
            )
        return token

    @property
    def channel_key_id(self) -> str:
        """The ``kid`` of the channel's signing key (the one its JWKS endorses for msteams)."""
        return self.identity.channel_key.kid

    def sign_with_channel_key(self, signing_input: bytes, *, hash_name: str = "SHA256") -> bytes:
        """An RSASSA-PKCS1-v1_5 signature of ``signing_input`` by the channel's key.

        For tests that hand-build tokens (odd headers, odd claims) whose signature is genuine,
        so that a refusal must come from the header or the claims, not from the signature.
        """
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        algorithm: hashes.HashAlgorithm = {
            "SHA256": hashes.SHA256(),
            "SHA384": hashes.SHA384(),
            "SHA512": hashes.SHA512(),
        }[hash_name]
        return self.identity.channel_key.private_key.sign(
            signing_input, padding.PKCS1v15(), algorithm
        )

    async def send_activity(self, activity: Mapping[str, Any]) -> BotResponse:
        """POST ``activity`` to the bot and return its answer."""
        headers = {"Content-Type": "application/json"}
        if not self.unsigned:
            headers["Authorization"] = f"Bearer {self.channel_token()}"
        response = await self.http.post(
            self.bot_endpoint, content=json.dumps(activity), headers=headers
        )
        body: Any = None
        if response.content:
            try:
                body = response.json()
            except ValueError:
                body = response.text
        log.debug(
            "activity %s/%s to bot: HTTP %d",
            activity.get("type"),
            activity.get("name"),
            response.status_code,
        )
        return BotResponse(
            status=response.status_code,
            body=body,
            headers=dict(response.headers),
            activity=dict(activity),
        )

    # ------------------------------------------------------------------ activities
    def installation_update_activity(self, user_oid: str, action: str = "add") -> dict[str, Any]:
        """``installationUpdate`` (``add`` or ``remove``) for a personal install."""
        activity = self.base_activity(user_oid, "installationUpdate")
        activity["action"] = action
        activity["channelData"]["source"] = {"name": "message"}
        return activity

    def conversation_update_activity(self, user_oid: str) -> dict[str, Any]:
        """``conversationUpdate`` with ``membersAdded`` = the bot (sent on personal install)."""
        activity = self.base_activity(user_oid, "conversationUpdate")
        activity["membersAdded"] = [{"id": bot_mri(self.bot_app_id)}]
        return activity

    async def install(self, user_oid: str) -> list[BotResponse]:
        """What Teams sends when the app is installed for a user: installationUpdate(add),
        then conversationUpdate(membersAdded)."""
        return [
            await self.send_activity(self.installation_update_activity(user_oid, "add")),
            await self.send_activity(self.conversation_update_activity(user_oid)),
        ]

    async def uninstall(self, user_oid: str) -> BotResponse:
        """``installationUpdate`` with action ``remove``."""
        return await self.send_activity(self.installation_update_activity(user_oid, "remove"))

    async def message(self, user_oid: str, text: str) -> BotResponse:
        """A text message typed by the user."""
        activity = self.base_activity(user_oid, "message")
        activity["text"] = text
        activity["textFormat"] = "plain"
        return await self.send_activity(activity)

    async def submit(
        self, user_oid: str, value: Mapping[str, Any], *, reply_to_id: str | None = None
    ) -> BotResponse:
        """An ``Action.Submit`` click: a message activity with ``value`` and no text."""
        activity = self.base_activity(user_oid, "message")
        activity["value"] = dict(value)
        activity["channelData"]["postBack"] = True
        if reply_to_id is not None:
            activity["replyToId"] = reply_to_id
        return await self.send_activity(activity)

    def card_action_activity(
        self,
        user_oid: str,
        verb: str,
        data: Mapping[str, Any] | None = None,
        *,
        reply_to_id: str | None = None,
        trigger: str = "manual",
        action_id: str = "",
        sso_token: str | None = None,
        connection_name: str = DEFAULT_CONNECTION_NAME,
        state: str | None = None,
    ) -> dict[str, Any]:
        """The ``adaptiveCard/action`` invoke of an ``Action.Execute`` click (or refresh)."""
        activity = self.base_activity(user_oid, "invoke")
        activity["name"] = "adaptiveCard/action"
        value: dict[str, Any] = {
            "action": {
                "type": "Action.Execute",
                "id": action_id,
                "verb": verb,
                "data": dict(data or {}),
            },
            "trigger": trigger,
        }
        if sso_token is not None:
            value["authentication"] = {
                "id": str(uuid.uuid4()),
                "connectionName": connection_name,
                "token": sso_token,
            }
        if state is not None:
            value["state"] = state
        activity["value"] = value
        if reply_to_id is not None:
            activity["replyToId"] = reply_to_id
        return activity

    async def card_action(
        self,
        user_oid: str,
        verb: str,
        data: Mapping[str, Any] | None = None,
        *,
        reply_to_id: str | None = None,
        trigger: str = "manual",
        action_id: str = "",
        sso: bool | str = False,
        connection_name: str = DEFAULT_CONNECTION_NAME,
        state: str | None = None,
    ) -> BotResponse:
        """Click an ``Action.Execute`` button.

        ``sso=True`` attaches a fresh Teams SSO token for the user in
        ``value.authentication.token`` (what Teams resends after a 401 loginRequest);
        a string attaches that token as is.
        """
        sso_token: str | None
        if sso is True:
            sso_token = self.identity.issue_sso_token(user_oid=user_oid, app_id=self.bot_app_id)
        elif isinstance(sso, str):
            sso_token = sso
        else:
            sso_token = None
        return await self.send_activity(
            self.card_action_activity(
                user_oid,
                verb,
                data,
                reply_to_id=reply_to_id,
                trigger=trigger,
                action_id=action_id,
                sso_token=sso_token,
                connection_name=connection_name,
                state=state,
            )
        )

    async def token_exchange(
        self,
        user_oid: str,
        *,
        token: str | None = None,
        connection_name: str = DEFAULT_CONNECTION_NAME,
        exchange_id: str | None = None,
    ) -> BotResponse:
        """``signin/tokenExchange`` with the user's SSO token (minted unless given)."""
        activity = self.base_activity(user_oid, "invoke")
        activity["name"] = "signin/tokenExchange"
        activity["value"] = {
            "id": exchange_id or str(uuid.uuid4()),
            "connectionName": connection_name,
            "token": token
            if token is not None
            else self.identity.issue_sso_token(user_oid=user_oid, app_id=self.bot_app_id),
        }
        return await self.send_activity(activity)

    async def verify_state(self, user_oid: str, state: str) -> BotResponse:
        """``signin/verifyState`` (the magic code of a non-SSO sign-in)."""
        activity = self.base_activity(user_oid, "invoke")
        activity["name"] = "signin/verifyState"
        activity["value"] = {"state": state}
        return await self.send_activity(activity)
