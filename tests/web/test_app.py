"""The service over real HTTP on loopback: bot endpoint, malformed input, operations endpoints."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from app import create_app
from bot.clock import SystemClock
from bot.settings import Settings
from bot.store import open_store
from bot.store.schema import LATEST_VERSION
from bot.web.keys import STORE

TENANT = "11111111-1111-1111-1111-111111111111"
USER_OID = "aaaaaaaa-0000-0000-0000-000000000001"


class FakeConnector:
    """A minimal Bot Connector that records what the bot sends (anonymous mode: no auth)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.arrived = asyncio.Event()
        self.app = web.Application()
        self.app.router.add_post("/v3/conversations/{cid}/activities/{aid}", self._reply)
        self.app.router.add_post("/v3/conversations/{cid}/activities", self._reply)

    async def _reply(self, request: web.Request) -> web.Response:
        self.received.append((request.path, await request.json()))
        self.arrived.set()
        return web.json_response({"id": f"act-{len(self.received)}"})


@pytest.fixture
async def connector() -> AsyncIterator[tuple[FakeConnector, str]]:
    fake = FakeConnector()
    server = TestServer(fake.app, host="127.0.0.1", port=0)
    await server.start_server()
    yield fake, str(server.make_url("/"))
    await server.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'data' / 'bot.db'}", port=0)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[TestClient]:
    server = TestServer(create_app(settings), host="127.0.0.1", port=0)
    async with TestClient(server) as test_client:
        yield test_client


def _message(text: str, service_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "message",
        "id": "msg-1",
        "channelId": "msteams",
        "serviceUrl": service_url,
        "text": text,
        "from": {"id": "29:alex", "name": "Alex", "aadObjectId": USER_OID},
        "recipient": {"id": "28:bot", "name": "Access Review Bot"},
        "conversation": {"id": "a:alex-chat", "conversationType": "personal", "tenantId": TENANT},
        "channelData": {"tenant": {"id": TENANT}},
        **extra,
    }


async def _wait_for(event: asyncio.Event, timeout_s: float = 10) -> None:
    await asyncio.wait_for(event.wait(), timeout_s)


async def test_healthz_and_readyz(client: TestClient) -> None:
    response = await client.get("/healthz")
    assert response.status == 200 and (await response.json())["status"] == "ok"
    response = await client.get("/readyz")
    body = await response.json()
    assert response.status == 200, body
    assert body["checks"]["store"] == "ok" and body["checks"]["schema"] == LATEST_VERSION
    # Without credentials nothing runs in the background, so no replica holds a lease.
    assert all(lease == {"holder": None} for lease in body["checks"]["leases"].values())


async def test_readyz_fails_when_the_store_is_gone(settings: Settings, tmp_path: Path) -> None:
    server = TestServer(create_app(settings), host="127.0.0.1", port=0)
    async with TestClient(server) as test_client:
        # Take the database away under the running app: the file's directory becomes unusable.
        await test_client.app[STORE].close()
        data_dir = tmp_path / "data"
        for path in data_dir.iterdir():
            path.unlink()
        data_dir.rmdir()
        data_dir.write_text("not a directory any more")
        response = await test_client.get("/readyz")
        assert response.status == 503
        assert "unreachable" in (await response.json())["checks"]["store"]
        assert (await test_client.get("/healthz")).status == 200
        # A database comes back, but empty: reachable, yet not ready (migrations not applied).
        data_dir.unlink()
        data_dir.mkdir()
        await test_client.app[STORE].close()
        response = await test_client.get("/readyz")
        assert response.status == 503
        assert (await response.json())["checks"]["store"] == f"schema 0, expected {LATEST_VERSION}"


async def test_metrics_are_prometheus_text(client: TestClient) -> None:
    await client.get("/healthz")
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = await response.text()
    assert 'bot_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text


@pytest.mark.parametrize(
    ("body", "headers", "status", "reason"),
    [
        (b"this is not json", {"Content-Type": "application/json"}, 400, "not valid JSON"),
        (b"{}", {"Content-Type": "application/json"}, 400, "no type"),
        (b"[1, 2]", {"Content-Type": "application/json"}, 400, "JSON object"),
        (b'{"type": ""}', {"Content-Type": "application/json"}, 400, "no type"),
        (b'{"type": "message"}', {"Content-Type": "text/plain"}, 415, "application/json"),
        (b'{"type": "message"}', {}, 415, "application/json"),
        (b'{"type": 5}', {"Content-Type": "application/json"}, 400, "no type"),
        (b"\xff\xfe\x00", {"Content-Type": "application/json"}, 400, "not valid JSON"),
    ],
)
async def test_malformed_bodies_get_a_4xx_with_a_reason(
    client: TestClient, body: bytes, headers: dict[str, str], status: int, reason: str
) -> None:
    response = await client.post("/api/messages", data=body, headers=headers)
    assert response.status == status
    assert reason in (await response.json())["error"]


async def test_a_huge_body_is_refused(client: TestClient) -> None:
    huge = json.dumps({"type": "message", "text": "x" * (2 * 1024 * 1024)}).encode()
    response = await client.post(
        "/api/messages", data=io.BytesIO(huge), headers={"Content-Type": "application/json"}
    )
    assert response.status == 413
    # The server is still fine afterwards.
    assert (await client.get("/healthz")).status == 200


async def test_a_malformed_activity_field_is_a_400_not_a_500(client: TestClient) -> None:
    response = await client.post(
        "/api/messages", json={"type": "message", "timestamp": "not a date", "from": "nobody"}
    )
    assert 400 <= response.status < 500


async def test_help_is_answered_through_the_service_url(
    client: TestClient, connector: tuple[FakeConnector, str]
) -> None:
    fake, service_url = connector
    response = await client.post("/api/messages", json=_message("help", service_url))
    assert response.status in (200, 201)
    await _wait_for(fake.arrived)
    path, reply = fake.received[0]
    assert path == "/v3/conversations/a:alex-chat/activities/msg-1"
    assert reply["type"] == "message" and "pending" in reply["text"]
    assert reply["replyToId"] == "msg-1"


async def test_any_message_stores_the_conversation_reference(
    client: TestClient, connector: tuple[FakeConnector, str]
) -> None:
    _fake, service_url = connector
    await client.post("/api/messages", json=_message("hello", service_url))
    stored = await client.app[STORE].get_conversation_reference(tenant_id=TENANT, user_oid=USER_OID)
    assert stored is not None
    assert stored["serviceUrl"] == service_url
    assert stored["conversation"]["id"] == "a:alex-chat"


async def test_a_reference_this_process_changed_is_compared_again_at_the_next_activity(
    client: TestClient, connector: tuple[FakeConnector, str]
) -> None:
    """The bot remembers the reference it last saw stored; a write through its own store (a chat
    created again by delivery) makes it look at the store again, and the activity's chat wins."""
    _fake, service_url = connector
    store = client.app[STORE]
    await client.post("/api/messages", json=_message("hello", service_url))
    stored = await store.get_conversation_reference(tenant_id=TENANT, user_oid=USER_OID)
    assert stored is not None
    moved = {**stored, "conversation": {**stored["conversation"], "id": "a:recreated"}}
    await store.save_conversation_reference(tenant_id=TENANT, user_oid=USER_OID, reference=moved)
    await client.post("/api/messages", json=_message("hello", service_url))
    again = await store.get_conversation_reference(tenant_id=TENANT, user_oid=USER_OID)
    assert again is not None and again["conversation"]["id"] == "a:alex-chat"
    # A new language from the client is written at once, remembered reference or not.
    await client.post("/api/messages", json=_message("hello", service_url, locale="de-DE"))
    german = await store.get_conversation_reference(tenant_id=TENANT, user_oid=USER_OID)
    assert german is not None and german["locale"] == "de-DE"


async def test_a_repeated_activity_trusts_the_reference_it_saw_stored_for_a_minute(
    client: TestClient,
    connector: tuple[FakeConnector, str],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another process's write (another replica) is not read back by every activity: within
    REFERENCE_TRUST_S the bot neither serializes nor reads the reference; after it, it does."""
    _fake, service_url = connector
    await client.post("/api/messages", json=_message("hello", service_url))
    other = await open_store(settings.database_url, clock=SystemClock(), migrate=False)
    try:
        stored = await other.get_conversation_reference(tenant_id=TENANT, user_oid=USER_OID)
        assert stored is not None
        moved = {**stored, "conversation": {**stored["conversation"], "id": "a:elsewhere"}}
        await other.save_conversation_reference(
            tenant_id=TENANT, user_oid=USER_OID, reference=moved
        )
        await client.post("/api/messages", json=_message("hello", service_url))
        kept = await other.get_conversation_reference(tenant_id=TENANT, user_oid=USER_OID)
        assert kept is not None and kept["conversation"]["id"] == "a:elsewhere"
        monkeypatch.setattr("bot.teams.bot.REFERENCE_TRUST_S", 0.0)
        await client.post("/api/messages", json=_message("hello", service_url))
        back = await other.get_conversation_reference(tenant_id=TENANT, user_oid=USER_OID)
        assert back is not None and back["conversation"]["id"] == "a:alex-chat"
    finally:
        await other.close()


async def test_install_greets_and_stores_reference(
    client: TestClient, connector: tuple[FakeConnector, str]
) -> None:
    fake, service_url = connector
    install = _message("", service_url, type="installationUpdate", action="add")
    install.pop("text")
    response = await client.post("/api/messages", json=install)
    assert response.status in (200, 201)
    await _wait_for(fake.arrived)
    assert "Access Review Bot" in fake.received[0][1]["text"]
    assert await client.app[STORE].get_conversation_reference(tenant_id=TENANT, user_oid=USER_OID)


async def test_unknown_text_gets_help(
    client: TestClient, connector: tuple[FakeConnector, str]
) -> None:
    fake, service_url = connector
    await client.post("/api/messages", json=_message("what's up?", service_url))
    await _wait_for(fake.arrived)
    assert "didn't catch that" in fake.received[0][1]["text"]


async def test_with_an_app_id_unsigned_activities_are_refused(
    settings: Settings, connector: tuple[FakeConnector, str]
) -> None:
    fake, service_url = connector
    secured = replace(
        settings,
        app_id="00000000-0000-0000-0000-0000000000b0",
        app_password="pw",
        app_tenant_id=TENANT,
        token_cache_key="q1Vh0dYQxGk2mDq4iYV6Yt3bq6r0p9O8c7n6m5l4k3I=",
    )
    server = TestServer(create_app(secured, workers=False), host="127.0.0.1", port=0)
    async with TestClient(server) as test_client:
        response = await test_client.post("/api/messages", json=_message("help", service_url))
        assert response.status == 401
        forged = await test_client.post(
            "/api/messages",
            json=_message("help", service_url),
            headers={"Authorization": "Bearer not-a-jwt"},
        )
        assert forged.status == 401
    assert fake.received == []


async def test_stored_data_survives_an_app_restart(settings: Settings) -> None:
    for attempt in range(2):
        server = TestServer(create_app(settings), host="127.0.0.1", port=0)
        async with TestClient(server) as test_client:
            store = test_client.app[STORE]
            if attempt == 0:
                await store.enqueue_outbox(key="k", kind="card", payload={"kept": True})
            else:
                message = await store.get_outbox(key="k")
                assert message is not None and message.payload == {"kept": True}
