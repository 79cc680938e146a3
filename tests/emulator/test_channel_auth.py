"""A real botbuilder CloudAdapter accepts the emulator's signed activities and rejects forged
ones, over loopback HTTP; its replies reach the emulated connector with a bearer token from the
emulated login service (msal)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import msal
import pytest
import requests
from aiohttp import web
from botbuilder.core import ActivityHandler, InvokeResponse, TurnContext
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
)
from botbuilder.schema import AdaptiveCardInvokeResponse
from botframework.connector.auth import (
    MicrosoftAppCredentials,
    PasswordServiceClientCredentialFactory,
)

from emulator.clock import ManualClock
from emulator.connector import Connector
from emulator.faults import Faults
from emulator.identity import BOT_FRAMEWORK_AUDIENCE, AppRegistration, Identity
from emulator.teams_client import Forgery, TeamsClient

TENANT_ID = "7d5c2a3e-4f1b-4c55-9a11-2b8e6f0d9c01"
BOT_ID = "0f4b6a52-1c2d-4e3f-8a9b-0c1d2e3f4a5b"
BOT_SECRET = "bot-secret-value"
ALICE = "11111111-1111-4111-8111-111111111111"
USERS = {
    ALICE: {"id": ALICE, "userPrincipalName": "alice@contoso.test", "displayName": "Alice Example"}
}


def lookup(key: str) -> Mapping[str, Any] | None:
    return next((u for u in USERS.values() if key in (u["id"], u["userPrincipalName"])), None)


class RecordingBot(ActivityHandler):
    """Trivial bot: echoes messages through the connector, answers invokes with their verb."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    async def on_turn(self, turn_context: TurnContext) -> None:
        self.seen.append(turn_context.activity.serialize())
        await super().on_turn(turn_context)

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        await turn_context.send_activity(f"echo: {turn_context.activity.text}")

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse:
        value = turn_context.activity.value or {}
        verb = (value.get("action") or {}).get("verb")
        has_token = bool((value.get("authentication") or {}).get("token"))
        # The body must be an msrest model: the adapter serializes it (see pitfalls.md).
        return InvokeResponse(
            status=200,
            body=AdaptiveCardInvokeResponse(
                status_code=200,
                type="application/vnd.microsoft.card.adaptive",
                value={
                    "type": "AdaptiveCard",
                    "version": "1.5",
                    "body": [
                        {
                            "type": "TextBlock",
                            "text": f"{turn_context.activity.name}:{verb}:{has_token}",
                        },
                    ],
                },
            ),
        )


class PinnedSession(requests.Session):
    def __init__(self, ca_path: str) -> None:
        super().__init__()
        self.trust_env = False
        self.verify = ca_path


class _TokenCredentials(MicrosoftAppCredentials):
    def __init__(self, app_id: str, token: str) -> None:
        super().__init__(app_id, "")
        self._token = token

    def get_access_token(self, force_refresh: bool = False) -> str:
        return self._token


class EmulatorCredentialFactory(PasswordServiceClientCredentialFactory):
    """Gets the connector token from the emulated login service with msal, *before* msrest
    asks for it: msrest calls ``get_access_token`` synchronously on the event loop, which would
    deadlock against a login service running on that same loop."""

    def __init__(self, login_url: str, ca_path: str) -> None:
        super().__init__(BOT_ID, BOT_SECRET, TENANT_ID)
        self._login_url = login_url
        self._session = PinnedSession(ca_path)
        self._app: msal.ConfidentialClientApplication | None = None
        self.tokens_fetched = 0

    def _token(self) -> str:
        if self._app is None:
            self._app = msal.ConfidentialClientApplication(
                BOT_ID,
                client_credential=BOT_SECRET,
                authority=f"{self._login_url}/{TENANT_ID}",
                instance_discovery=False,
                http_client=self._session,
            )
        result = self._app.acquire_token_for_client([f"{BOT_FRAMEWORK_AUDIENCE}/.default"])
        assert "access_token" in result, result
        self.tokens_fetched += 1
        return str(result["access_token"])

    async def create_credentials(
        self, app_id: str, oauth_scope: str, login_endpoint: str, validate_authority: bool
    ) -> MicrosoftAppCredentials:
        return _TokenCredentials(app_id, await asyncio.to_thread(self._token))

    def close(self) -> None:
        self._session.close()


@dataclass
class BotConfig:
    """The attributes ConfigurationBotFrameworkAuthentication reads (parameterized mode)."""

    APP_ID: str
    APP_PASSWORD: str
    APP_TYPE: str
    APP_TENANTID: str
    TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL: str
    TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL: str
    TO_CHANNEL_FROM_BOT_LOGIN_URL: str
    TO_BOT_FROM_CHANNEL_TOKEN_ISSUER: str = "https://api.botframework.com"
    TO_CHANNEL_FROM_BOT_OAUTH_SCOPE: str = "https://api.botframework.com"
    OAUTH_URL: str = "https://api.botframework.com"
    CALLER_ID: str | None = None
    VALIDATE_AUTHORITY: bool = False


@dataclass
class Stack:
    identity: Identity
    connector: Connector
    bot: RecordingBot
    teams: TeamsClient
    credentials: EmulatorCredentialFactory


async def start(app: web.Application, **site_args: Any) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, **site_args)
    await site.start()
    return runner, runner.addresses[0][1]


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    clock = ManualClock(datetime.now(UTC))
    identity = Identity(clock=clock, tenant_id=TENANT_ID, user_lookup=lookup)
    identity.register_app(
        AppRegistration(
            client_id=BOT_ID,
            display_name="Bot",
            secret=BOT_SECRET,
            identifier_uri=f"api://botid-{BOT_ID}",
        )
    )
    faults = Faults(clock=clock)
    login_runner, login_port = await start(
        identity.make_app(faults), ssl_context=identity.server_ssl_context()
    )
    connector = Connector(clock=clock, identity=identity, tenant_id=TENANT_ID, bot_app_id=BOT_ID)
    connector_runner, connector_port = await start(connector.make_app(faults))
    connector.service_url = f"http://127.0.0.1:{connector_port}/"

    metadata_url = identity.serve_channel_metadata_in_thread()
    config = BotConfig(
        APP_ID=BOT_ID,
        APP_PASSWORD=BOT_SECRET,
        APP_TYPE="SingleTenant",
        APP_TENANTID=TENANT_ID,
        TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL=metadata_url,
        TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL=metadata_url,
        TO_CHANNEL_FROM_BOT_LOGIN_URL=f"https://127.0.0.1:{login_port}/{TENANT_ID}",
    )
    credentials = EmulatorCredentialFactory(f"https://127.0.0.1:{login_port}", identity.ca_pem_path)
    adapter = CloudAdapter(
        ConfigurationBotFrameworkAuthentication(config, credentials_factory=credentials)
    )
    bot = RecordingBot()

    async def messages(request: web.Request) -> web.Response:
        response = await adapter.process(request, bot)
        assert response is not None
        return response

    bot_app = web.Application()
    bot_app.router.add_post("/api/messages", messages)
    bot_runner, bot_port = await start(bot_app)
    connector.bot_endpoint = f"http://127.0.0.1:{bot_port}/api/messages"
    async with httpx.AsyncClient(timeout=30) as http:
        teams = connector.teams_client(http)
        try:
            yield Stack(identity, connector, bot, teams, credentials)
        finally:
            await connector.drain_deliveries()
            await bot_runner.cleanup()
            await connector_runner.cleanup()
            await login_runner.cleanup()
            credentials.close()
            identity.close()


async def test_signed_message_is_accepted_and_reply_reaches_connector(stack: Stack) -> None:
    stack.connector.note_app_installed(user_oid=ALICE, user_name="Alice", installation_id="i1")
    await stack.connector.wait_until(lambda: len(stack.connector.deliveries()) == 2, timeout_s=30)
    # botbuilder's CloudAdapter answers non-invoke activities with 201.
    assert [r.status for r in stack.connector.deliveries()] == [201, 201]

    response = await stack.teams.message(ALICE, "hello")
    assert response.status == 201
    seen = stack.bot.seen[-1]
    assert seen["text"] == "hello"
    assert seen["from"]["aadObjectId"] == ALICE
    # botbuilder maps ConversationAccount.tenant_id to "tenantID", so Teams' "tenantId" is
    # dropped; the tenant survives in channelData.
    assert seen["channelData"]["tenant"]["id"] == TENANT_ID
    # The reply went out through the connector with the bot's msal token (validated there).
    [reply] = stack.connector.messages_to(ALICE)
    assert reply.activity["text"] == "echo: hello"
    assert reply.reply_to_id == seen["id"]
    assert stack.credentials.tokens_fetched >= 1


def card_text(body: Any) -> str:
    assert body["statusCode"] == 200
    return str(body["value"]["body"][0]["text"])


async def test_invokes_are_accepted(stack: Stack) -> None:
    response = await stack.teams.card_action(ALICE, "decide", {"item": "d1"}, sso=True)
    assert response.status == 200
    assert card_text(response.body) == "adaptiveCard/action:decide:True"
    invoke = stack.bot.seen[-1]
    assert invoke["value"]["trigger"] == "manual"
    assert invoke["value"]["action"]["data"] == {"item": "d1"}
    token = invoke["value"]["authentication"]["token"]
    # It is a Teams SSO token for this bot (test_msal shows OBO accepts such tokens).
    assert jwt.decode(token, options={"verify_signature": False})["aud"] == f"api://botid-{BOT_ID}"

    response = await stack.teams.card_action(ALICE, "page")
    assert card_text(response.body) == "adaptiveCard/action:page:False"
    response = await stack.teams.token_exchange(ALICE)
    assert response.status == 200
    assert stack.bot.seen[-1]["name"] == "signin/tokenExchange"
    # An Action.Submit is a message: the echo bot replies, which needs the chat to exist.
    stack.connector.note_app_installed(user_oid=ALICE, user_name="Alice", installation_id="i1")
    await stack.connector.drain_deliveries()
    response = await stack.teams.submit(ALICE, {"verb": "decide"})
    assert response.status == 201
    assert stack.bot.seen[-1]["value"] == {"verb": "decide"}


# botbuilder maps PermissionError to 401 but lets PyJWT's own errors (expired, bad signature)
# escape as 500. Either way the activity never reaches the bot; the bot may map 500s itself.
EXPECTED_STATUS = {
    Forgery.WRONG_AUDIENCE: 401,
    Forgery.WRONG_SERVICE_URL: 401,
    Forgery.NO_SERVICE_URL: 401,
    Forgery.WRONG_ISSUER: 401,
    Forgery.EXPIRED: 500,
    Forgery.BAD_SIGNATURE: 500,
}


@pytest.mark.parametrize("forgery", list(Forgery))
async def test_forged_tokens_are_rejected(stack: Stack, forgery: Forgery) -> None:
    # A good request first, so a rejection cannot come from a broken key fetch.
    assert (await stack.teams.card_action(ALICE, "ping")).status == 200
    before = len(stack.bot.seen)
    response = await stack.teams.forged(forgery).card_action(ALICE, "ping")
    assert response.status == EXPECTED_STATUS[forgery]
    assert len(stack.bot.seen) == before


async def test_unsigned_request_is_rejected_when_the_bot_has_an_app_id(stack: Stack) -> None:
    response = await stack.teams.without_auth().message(ALICE, "hi")
    # botbuilder's parameterized auth turns a missing header into an error inside validation
    # (reference §4.3): 500 rather than 401 today. Either way the bot never sees the activity.
    assert response.status in (401, 500)
    assert stack.bot.seen == []
