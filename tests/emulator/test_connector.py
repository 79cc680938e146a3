"""The emulated Bot Connector over loopback http: REST shapes, errors, auth, Teams rate limits,
recording and install delivery to the bot."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from aiohttp import web
from jwt.algorithms import RSAAlgorithm

from emulator.clock import ManualClock
from emulator.connector import Connector, RateWindow, TeamsLimits
from emulator.faults import FaultRule, Faults
from emulator.identity import (
    BOT_FRAMEWORK_AUDIENCE,
    CHANNEL_TOKEN_ISSUER,
    AppRegistration,
    Identity,
)

TENANT_ID = "7d5c2a3e-4f1b-4c55-9a11-2b8e6f0d9c01"
BOT_ID = "0f4b6a52-1c2d-4e3f-8a9b-0c1d2e3f4a5b"
OTHER_APP = "44444444-4444-4444-8444-444444444444"
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def oid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


ALICE = oid(1)


def lookup(key: str) -> Mapping[str, Any] | None:
    if key.startswith("00000000-0000-4000-8000-"):
        n = int(key[-12:])
        return {"id": key, "userPrincipalName": f"user{n}@contoso.test", "displayName": f"User {n}"}
    return None


@dataclass
class FakeBot:
    """A bot endpoint that records what it receives."""

    received: list[tuple[Mapping[str, str], dict[str, Any]]] = field(default_factory=list)
    status: int = 201

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.json()))
        return web.Response(status=self.status)


@dataclass
class Env:
    clock: ManualClock
    identity: Identity
    connector: Connector
    faults: Faults
    url: str
    http: httpx.AsyncClient
    bot: FakeBot
    bot_url: str

    def headers(
        self, client_id: str = BOT_ID, audience: str = BOT_FRAMEWORK_AUDIENCE
    ) -> dict[str, str]:
        token = self.identity.issue_app_token(client_id=client_id, audience=audience)
        return {"Authorization": f"Bearer {token}"}

    async def create(self, member_id: str, **extra: Any) -> httpx.Response:
        body = {
            "isGroup": False,
            "bot": {"id": f"28:{BOT_ID}"},
            "members": [{"id": member_id}],
            "tenantId": TENANT_ID,
            **extra,
        }
        return await self.http.post(
            f"{self.url}/v3/conversations", json=body, headers=self.headers()
        )

    async def send(self, conversation_id: str, text: str = "hi", **extra: Any) -> httpx.Response:
        return await self.http.post(
            f"{self.url}/v3/conversations/{conversation_id}/activities",
            json={"type": "message", "text": text, **extra},
            headers=self.headers(),
        )

    def install(self, user_oid: str) -> str:
        self.connector.note_app_installed(
            user_oid=user_oid, user_name="x", installation_id=f"inst-{user_oid}"
        )
        return self.connector.conversation_id_for(user_oid)


async def start_site(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def make_env(
    limits: TeamsLimits | None = None, *, anonymous: bool = False, retry_after_header: bool = False
) -> AsyncIterator[Env]:
    clock = ManualClock(START)
    identity = Identity(clock=clock, tenant_id=TENANT_ID, user_lookup=lookup)
    for client_id in (BOT_ID, OTHER_APP):
        identity.register_app(
            AppRegistration(client_id=client_id, display_name=client_id, secret="s")
        )
    faults = Faults(clock=clock)
    connector = Connector(
        clock=clock,
        identity=identity,
        tenant_id=TENANT_ID,
        bot_app_id=BOT_ID,
        limits=limits,
        anonymous=anonymous,
        retry_after_header=retry_after_header,
    )
    runner, url = await start_site(connector.make_app(faults))
    bot = FakeBot()
    bot_app = web.Application()
    bot_app.router.add_post("/api/messages", bot.handle)
    bot_runner, bot_url = await start_site(bot_app)
    connector.service_url = url + "/"
    connector.bot_endpoint = bot_url + "/api/messages"
    async with httpx.AsyncClient() as http:
        try:
            yield Env(clock, identity, connector, faults, url, http, bot, bot_url + "/api/messages")
        finally:
            await bot_runner.cleanup()
            await runner.cleanup()
            identity.close()


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async for value in make_env():
        yield value


# ---------------------------------------------------------------------- conversations
async def test_create_conversation_needs_the_app_installed(env: Env) -> None:
    response = await env.create(ALICE)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "ForbiddenOperationException"
    assert not env.connector.is_installed(ALICE)
    assert env.connector.chat_id_for(ALICE) is None

    conversation_id = env.install(ALICE)
    assert env.connector.is_installed(ALICE)
    response = await env.create(ALICE)
    assert response.status_code == 201
    assert response.json() == {"id": conversation_id}
    assert conversation_id.startswith("a:")
    # The 29: id works as well as the Entra object id, and the id is stable.
    response = await env.create(env.connector.user_mri(ALICE))
    assert response.json() == {"id": conversation_id}


async def test_create_conversation_validation(env: Env) -> None:
    env.install(ALICE)
    response = await env.http.post(
        f"{env.url}/v3/conversations",
        headers=env.headers(),
        json={"isGroup": False, "bot": {"id": f"28:{BOT_ID}"}, "members": [{"id": ALICE}]},
    )
    assert response.status_code == 400  # no tenant id
    response = await env.create("", members=[{"aadObjectId": ALICE}])
    assert response.status_code == 400  # object id only works in members[].id
    response = await env.create(ALICE, isGroup=True)
    assert response.status_code == 400
    response = await env.create(ALICE, tenantId="11111111-0000-4000-8000-000000000000")
    assert response.status_code == 403


async def test_create_with_first_activity(env: Env) -> None:
    env.install(ALICE)
    response = await env.create(ALICE, activity={"type": "message", "text": "welcome"})
    assert response.status_code == 201
    body = response.json()
    [message] = env.connector.messages_to(ALICE)
    assert body["activityId"] == message.activity_id
    assert message.activity["text"] == "welcome"


async def test_send_update_delete_and_current_state(env: Env) -> None:
    conversation_id = env.install(ALICE)
    first = await env.send(conversation_id, "one")
    second = await env.send(conversation_id, "two")
    assert first.status_code == 201 and second.status_code == 201
    first_id, second_id = first.json()["id"], second.json()["id"]
    assert int(second_id) > int(first_id)

    update_url = f"{env.url}/v3/conversations/{conversation_id}/activities/{first_id}"
    response = await env.http.put(
        update_url, headers=env.headers(), json={"type": "message", "text": "one (edited)"}
    )
    assert response.status_code == 200 and response.json() == {"id": first_id}
    response = await env.http.delete(
        f"{env.url}/v3/conversations/{conversation_id}/activities/{second_id}",
        headers=env.headers(),
    )
    assert response.status_code == 200

    [current] = env.connector.messages_to(ALICE)
    assert current.activity_id == first_id
    assert current.activity["text"] == "one (edited)"
    assert current.update_count == 1
    both = env.connector.messages_to(ALICE, include_deleted=True)
    assert [m.deleted for m in both] == [False, True]

    # The deleted message can be neither updated nor deleted again.
    response = await env.http.put(
        f"{env.url}/v3/conversations/{conversation_id}/activities/{second_id}",
        headers=env.headers(),
        json={"type": "message", "text": "x"},
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "ActivityNotFoundInConversation"

    # Records carry the body, ids and statuses.
    sends = env.connector.calls("send")
    assert [r.status for r in sends] == [201, 201]
    assert sends[0].activity is not None and sends[0].activity["text"] == "one"
    assert sends[0].conversation_id == conversation_id
    assert sends[0].activity_id == first_id
    assert sends[0].user_oid == ALICE
    assert (
        env.connector.calls("update", status=404)[0].error_code == "ActivityNotFoundInConversation"
    )


async def test_reply_and_graph_chat_id_alias(env: Env) -> None:
    env.install(ALICE)
    chat_id = env.connector.chat_id_for(ALICE)
    assert chat_id is not None and chat_id.startswith("19:") and chat_id.endswith("@unq.gbl.spaces")
    response = await env.send(chat_id, "via chat id")
    assert response.status_code == 201
    response = await env.http.post(
        f"{env.url}/v3/conversations/{chat_id}/activities/f:123",
        headers=env.headers(),
        json={"type": "message", "text": "reply"},
    )
    assert response.status_code == 201
    messages = env.connector.messages_to(ALICE)
    assert [m.activity["text"] for m in messages] == ["via chat id", "reply"]
    assert messages[1].reply_to_id == "f:123"
    assert all(m.conversation_id == env.connector.conversation_id_for(ALICE) for m in messages)


async def test_unknown_and_forgotten_conversations(env: Env) -> None:
    response = await env.send("a:nope")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "ConversationNotFound", "message": "Conversation not found."}
    }
    old_id = env.install(ALICE)
    assert (await env.send(old_id, "before")).status_code == 201
    env.connector.forget_conversation(ALICE)
    assert (await env.send(old_id)).status_code == 404
    response = await env.create(ALICE)
    new_id = response.json()["id"]
    assert new_id != old_id
    assert (await env.send(new_id, "after")).status_code == 201
    assert [m.activity["text"] for m in env.connector.messages_to(ALICE)] == ["before", "after"]


async def test_blocked_and_uninstalled(env: Env) -> None:
    conversation_id = env.install(ALICE)
    env.connector.set_blocked(ALICE)
    response = await env.send(conversation_id)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "ConversationBlockedByUser"
    env.connector.set_blocked(ALICE, False)
    assert (await env.send(conversation_id)).status_code == 201
    env.connector.note_app_uninstalled(ALICE)
    response = await env.send(conversation_id)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "BotNotInConversationRoster"
    assert (await env.create(ALICE)).status_code == 403


async def test_message_size_limit(env: Env) -> None:
    conversation_id = env.install(ALICE)
    overhead = len(json.dumps({"type": "message", "text": ""}).encode())
    limit = env.connector.limits.max_message_bytes
    exact = await env.http.post(
        f"{env.url}/v3/conversations/{conversation_id}/activities",
        headers=env.headers(),
        content=json.dumps({"type": "message", "text": "x" * (limit - overhead)}),
    )
    assert exact.status_code == 201
    over = await env.http.post(
        f"{env.url}/v3/conversations/{conversation_id}/activities",
        headers=env.headers(),
        content=json.dumps({"type": "message", "text": "x" * (limit - overhead + 1)}),
    )
    assert over.status_code == 413
    assert over.json()["error"]["code"] == "MessageSizeTooBig"


async def test_members(env: Env) -> None:
    conversation_id = env.install(ALICE)
    mri = env.connector.user_mri(ALICE)
    for member in (mri, ALICE):
        response = await env.http.get(
            f"{env.url}/v3/conversations/{conversation_id}/members/{member}", headers=env.headers()
        )
        assert response.status_code == 200
        account = response.json()
        assert account["id"] == mri and account["aadObjectId"] == ALICE
        assert account["userPrincipalName"] == "user1@contoso.test"
        assert account["tenantId"] == TENANT_ID
    response = await env.http.get(
        f"{env.url}/v3/conversations/{conversation_id}/members/{oid(2)}", headers=env.headers()
    )
    assert response.status_code == 404
    response = await env.http.get(
        f"{env.url}/v3/conversations/{conversation_id}/pagedmembers?pageSize=100",
        headers=env.headers(),
    )
    assert response.status_code == 200
    assert [m["id"] for m in response.json()["members"]] == [mri]
    assert "continuationToken" not in response.json()


# ---------------------------------------------------------------------- auth
async def test_bearer_token_is_required_and_checked(env: Env) -> None:
    conversation_id = env.install(ALICE)
    url = f"{env.url}/v3/conversations/{conversation_id}/activities"
    body = {"type": "message", "text": "x"}
    for headers in (
        {},
        {"Authorization": "Bearer not-a-jwt"},
        env.headers(audience="https://graph.microsoft.com"),  # a Graph token
        env.headers(client_id=OTHER_APP),  # another app's connector token
    ):
        response = await env.http.post(url, json=body, headers=headers)
        assert response.status_code == 401, headers
        assert response.json() == {"message": "Authorization has been denied for this request."}
    issued_now = env.headers()
    assert (await env.http.post(url, json=body, headers=issued_now)).status_code == 201
    # Expired (lifetime 3599 s plus the 5 minute skew) on the emulator clock.
    env.clock.advance(timedelta(seconds=3599 + 301))
    assert (await env.http.post(url, json=body, headers=issued_now)).status_code == 401
    assert (await env.http.post(url, json=body, headers=env.headers())).status_code == 201
    assert [m.activity["text"] for m in env.connector.messages_to(ALICE)] == ["x", "x"]


async def test_anonymous_connector_accepts_no_token() -> None:
    async for env in make_env(anonymous=True):
        conversation_id = env.install(ALICE)
        response = await env.http.post(
            f"{env.url}/v3/conversations/{conversation_id}/activities",
            json={"type": "message", "text": "x"},
        )
        assert response.status_code == 201


async def test_faults_target_the_connector(env: Env) -> None:
    conversation_id = env.install(ALICE)
    env.faults.add(FaultRule(kind="status", service="connector", status=503, remaining=1))
    assert (await env.send(conversation_id)).status_code == 503
    assert (await env.send(conversation_id)).status_code == 201
    response = await env.http.post(
        f"{env.url}/_emulator/faults", json={"kind": "status", "status": 502, "service": "graph"}
    )
    assert response.status_code == 201
    assert (await env.send(conversation_id)).status_code == 201


# ---------------------------------------------------------------------- rate limits
async def test_burst_to_one_conversation_gets_seven_then_429(env: Env) -> None:
    conversation_id = env.install(ALICE)
    statuses = []
    for i in range(100):
        response = await env.send(conversation_id, f"m{i}")
        statuses.append(response.status_code)
        if response.status_code == 429:
            # Teams documents no Retry-After on its throttling answers: by default none comes.
            assert "Retry-After" not in response.headers
            assert response.json() == {
                "error": {"code": "Throttled", "message": "Too many requests"}
            }
    assert statuses == [201] * 7 + [429] * 93
    throttled = env.connector.throttled()
    assert len(throttled) == 93
    # The connector still knows when the request would have been admitted.
    assert {call.retry_after_s for call in throttled} == {1}
    assert len(env.connector.messages_to(ALICE)) == 7


async def test_retry_after_header_is_a_setting_for_tests_that_need_it() -> None:
    async for with_header in make_env(retry_after_header=True):
        conversation_id = with_header.install(ALICE)
        statuses = [(await with_header.send(conversation_id)).status_code for _ in range(7)]
        assert statuses == [201] * 7
        response = await with_header.send(conversation_id)
        assert response.status_code == 429 and response.headers["Retry-After"] == "1"


async def test_sender_honouring_retry_after_gets_exactly_the_teams_schedule() -> None:
    """100 messages as fast as allowed: 7 in the first second, 1 more in the next (8/2 s),
    repeating until 60 in 30 s, then a wait until the first second leaves the 30 s window.
    (The connector's Retry-After is switched on: the test reads the schedule from it.)"""
    async for env in make_env(retry_after_header=True):
        await _honour_retry_after(env)


async def _honour_retry_after(env: Env) -> None:
    conversation_id = env.install(ALICE)
    accepted_at: list[float] = []
    throttles: list[tuple[float, int]] = []
    while len(accepted_at) < 100:
        response = await env.send(conversation_id)
        now_s = (env.clock.now() - START).total_seconds()
        if response.status_code == 201:
            accepted_at.append(now_s)
        else:
            assert response.status_code == 429
            retry_after_s = int(response.headers["Retry-After"])
            throttles.append((now_s, retry_after_s))
            env.clock.advance(timedelta(seconds=retry_after_s))

    def expected_schedule() -> list[float]:
        # 7 at every even second and 1 at every odd second (8 per 2 s) until 60 per 30 s; then
        # each 30 s later the same pattern repeats (entries leave the 30 s window in order).
        one_cycle: list[float] = []
        second = 0
        while len(one_cycle) < 60:
            burst = 7 if second % 2 == 0 else 1
            one_cycle.extend([float(second)] * min(burst, 60 - len(one_cycle)))
            second += 1
        schedule: list[float] = []
        cycle = 0
        while len(schedule) < 100:
            schedule.extend(t + 30 * cycle for t in one_cycle)
            cycle += 1
        return schedule[:100]

    assert accepted_at == expected_schedule()
    # The 60th message went at t=14; the 61st had to wait until t=30 (Retry-After 16).
    assert (14.0, 16) in throttles
    assert all(retry >= 1 for _, retry in throttles)


async def test_per_tenant_limit_across_conversations(env: Env) -> None:
    conversations = [env.install(oid(n)) for n in range(1, 61)]
    statuses = [(await env.send(cid)).status_code for cid in conversations]
    assert statuses == [201] * 50 + [429] * 10
    env.clock.advance(timedelta(seconds=1))
    statuses = [(await env.send(cid)).status_code for cid in conversations[50:]]
    assert statuses == [201] * 10


async def test_rejected_requests_do_not_consume_quota(env: Env) -> None:
    conversation_id = env.install(ALICE)
    for _ in range(7):
        assert (await env.send(conversation_id)).status_code == 201
    for _ in range(50):  # hammering while throttled
        assert (await env.send(conversation_id)).status_code == 429
    env.clock.advance(timedelta(seconds=1))
    assert (await env.send(conversation_id)).status_code == 201
    # Nor the tenant's: 50 other conversations still get through in this second... minus this 1.
    others = [env.install(oid(n)) for n in range(2, 52)]
    statuses = [(await env.send(cid)).status_code for cid in others]
    assert statuses == [201] * 49 + [429]


async def test_hour_window() -> None:
    limits = TeamsLimits(
        per_app_per_tenant=(), per_conversation_send=(RateWindow(3600.0, 3), RateWindow(1.0, 2))
    )
    async for small in make_env(limits, retry_after_header=True):
        conversation_id = small.install(ALICE)
        assert [(await small.send(conversation_id)).status_code for _ in range(3)] == [
            201,
            201,
            429,
        ]
        small.clock.advance(timedelta(minutes=10))
        assert (await small.send(conversation_id)).status_code == 201
        response = await small.send(conversation_id)
        assert response.status_code == 429
        assert response.headers["Retry-After"] == str(3600 - 600)
        small.clock.advance(timedelta(seconds=3600 - 600))
        assert (await small.send(conversation_id)).status_code == 201


async def test_limits_can_be_lifted_or_scaled() -> None:
    async for env in make_env(TeamsLimits.unlimited()):
        conversation_id = env.install(ALICE)
        statuses = {(await env.send(conversation_id)).status_code for _ in range(100)}
        assert statuses == {201}
    doubled = TeamsLimits().scaled(2)
    assert doubled.per_app_per_tenant == (RateWindow(1.0, 100),)
    assert doubled.per_conversation_send[0] == RateWindow(1.0, 14)


async def test_member_reads_have_their_own_bucket(env: Env) -> None:
    conversation_id = env.install(ALICE)
    url = f"{env.url}/v3/conversations/{conversation_id}/members/{ALICE}"
    statuses = [(await env.http.get(url, headers=env.headers())).status_code for _ in range(15)]
    assert statuses == [200] * 14 + [429]
    assert (await env.send(conversation_id)).status_code == 201


# ---------------------------------------------------------------------- delivery to the bot
async def test_install_is_delivered_to_the_bot_signed(env: Env) -> None:
    env.install(ALICE)
    await env.connector.wait_until(lambda: len(env.connector.deliveries()) == 2)
    assert [r.status for r in env.connector.deliveries()] == [201, 201]
    (headers1, install), (_, update) = env.bot.received
    assert install["type"] == "installationUpdate" and install["action"] == "add"
    assert update["type"] == "conversationUpdate"
    assert update["membersAdded"] == [{"id": f"28:{BOT_ID}"}]
    for activity in (install, update):
        assert activity["channelId"] == "msteams"
        assert activity["serviceUrl"] == env.connector.service_url
        assert activity["conversation"] == {
            "conversationType": "personal",
            "tenantId": TENANT_ID,
            "id": env.connector.conversation_id_for(ALICE),
        }
        assert activity["from"]["aadObjectId"] == ALICE
        assert activity["from"]["id"] == env.connector.user_mri(ALICE)
        assert activity["recipient"]["id"] == f"28:{BOT_ID}"
        assert activity["channelData"]["tenant"]["id"] == TENANT_ID

    # The token verifies with the keys the connector's channel metadata points to.
    token = headers1["Authorization"].removeprefix("Bearer ")
    metadata = (await env.http.get(env.url + env.identity.channel_openid_metadata_path)).json()
    keys = (await env.http.get(metadata["jwks_uri"])).json()["keys"]
    [key] = [k for k in keys if k["kid"] == jwt.get_unverified_header(token)["kid"]]
    assert key["endorsements"] == ["msteams"]
    claims = jwt.decode(
        token,
        RSAAlgorithm.from_jwk(json.dumps(key)),
        algorithms=["RS256"],
        audience=BOT_ID,
        issuer=CHANNEL_TOKEN_ISSUER,
    )
    assert claims["serviceurl"] == env.connector.service_url
    assert "ver" not in claims and "appid" not in claims


async def test_failed_delivery_is_recorded(env: Env) -> None:
    env.bot.status = 500
    env.install(ALICE)
    await env.connector.wait_until(lambda: len(env.connector.deliveries()) == 2)
    assert [r.status for r in env.connector.deliveries()] == [500, 500]
    env.connector.bot_endpoint = env.url + "/nothing-here"
    env.install(oid(2))
    await env.connector.drain_deliveries()
    assert [r.status for r in env.connector.deliveries()][2:] == [404, 404]


async def test_unreachable_bot_is_recorded(env: Env) -> None:
    runner, url = await start_site(web.Application())
    await runner.cleanup()  # nothing listens there any more
    env.connector.bot_endpoint = url + "/api/messages"
    env.install(ALICE)
    await env.connector.drain_deliveries()
    deliveries = env.connector.deliveries()
    assert [r.status for r in deliveries] == [0, 0]
    assert deliveries[0].error_code == "ConnectError"


async def test_delivery_without_service_url_is_recorded(env: Env) -> None:
    env.connector.service_url = None
    env.install(ALICE)
    await env.connector.drain_deliveries()
    [delivery] = env.connector.deliveries()
    assert (delivery.status, delivery.error_code) == (0, "ServiceUrlNotSet")
    assert env.bot.received == []
    # The chat itself exists all the same.
    assert (await env.create(ALICE)).status_code == 201
