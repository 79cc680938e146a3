"""Demo mode as Agents Playground drives it: unsigned activities, the demo's people, real writes.

The playground posts activities without a Bot Framework token to /api/messages with its own
mocked connector as serviceUrl; this test plays that part over the same HTTP, with the tenant and
user of `.m365agentsplayground.yml`.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from app import create_app
from bot.demo import DemoCloud, start_demo_cloud
from bot.settings import Settings
from bot.web.keys import DISCOVERY, OUTBOX, REVIEWS_API
from bot.wiring import DemoShortcutRefused
from tests.cardtools import execute_actions

ROOT = Path(__file__).resolve().parents[2]


def _playground_config() -> dict[str, str]:
    text = (ROOT / ".m365agentsplayground.yml").read_text()
    tenant = re.search(r"^tenantId: (\S+)", text, re.M)
    user = re.search(
        r"^currentUser:\n  id: (\S+)\n  name: (.+)\n(?:  .+\n)*?  aadObjectId: (\S+)", text, re.M
    )
    assert tenant and user
    return {
        "tenant": tenant.group(1),
        "id": user.group(1),
        "name": user.group(2),
        "oid": user.group(3),
    }


@dataclass
class Playground:
    """The playground's mocked connector: records what the bot sends."""

    received: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()

        async def activity(request: web.Request) -> web.Response:
            self.received.append(await request.json())
            return web.json_response({"id": uuid.uuid4().hex})

        app.router.add_post("/_connector/v3/conversations/{cid}/activities", activity)
        app.router.add_post("/_connector/v3/conversations/{cid}/activities/{aid}", activity)
        app.router.add_put("/_connector/v3/conversations/{cid}/activities/{aid}", activity)
        return app

    def cards(self) -> list[dict[str, Any]]:
        return [
            a["content"]
            for activity in self.received
            for a in activity.get("attachments") or []
            if a.get("contentType") == "application/vnd.microsoft.card.adaptive"
        ]


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[DemoCloud, TestClient, Playground, str]]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'demo.db'}", port=0)
    demo = start_demo_cloud(settings, bot_endpoint="http://127.0.0.1:1/api/messages")
    playground = Playground()
    try:
        pg_server = TestServer(playground.app(), host="127.0.0.1", port=0)
        await pg_server.start_server()
        service_url = str(pg_server.make_url("/_connector"))
        server = TestServer(
            create_app(demo.settings, microsoft=demo.side, workers=False), host="127.0.0.1", port=0
        )
        async with TestClient(server) as client:
            demo.cloud.connector.bot_endpoint = str(client.make_url("/api/messages"))
            yield demo, client, playground, service_url
        await pg_server.close()
    finally:
        demo.stop()


def _activity(kind: str, config: dict[str, str], service_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "id": uuid.uuid4().hex,
        "channelId": "msteams",
        "serviceUrl": service_url,
        "from": {"id": config["id"], "name": config["name"], "aadObjectId": config["oid"]},
        "recipient": {"id": "28:bot", "name": "Access Review Bot"},
        "conversation": {
            "id": "personal-chat-alex",
            "conversationType": "personal",
            "tenantId": config["tenant"],
        },
        "channelData": {"tenant": {"id": config["tenant"]}},
        **extra,
    }


async def test_the_playground_user_gets_cards_and_decides(
    running: tuple[DemoCloud, TestClient, Playground, str],
) -> None:
    demo, client, playground, service_url = running
    config = _playground_config()
    assert config["tenant"] == demo.cloud.tenant_id
    await client.app[DISCOVERY].run_once()
    await client.app[OUTBOX].run_once()

    # The playground announces the user, as it does when it starts.
    update = _activity(
        "conversationUpdate",
        config,
        service_url,
        membersAdded=[{"id": config["id"], "name": config["name"], "aadObjectId": config["oid"]}],
    )
    assert (await client.post("/api/messages", json=update)).status in (200, 201)
    await client.app[OUTBOX].run_once()
    cards = playground.cards()
    assert len(cards) == 3  # Alex reviews three things in the demo tenant

    # "pending" lists them.
    before = len(playground.received)
    assert (
        await client.post(
            "/api/messages", json=_activity("message", config, service_url, text="pending")
        )
    ).status in (200, 201)
    assert len(playground.received) == before + 1

    # Approve an item from a card: an unsigned invoke, as the playground sends it.
    action = next(
        a
        for card in cards
        for a in execute_actions(card, "decide")
        if a["data"]["decision"] == "Approve"
    )
    data = dict(action["data"])
    invoke = _activity(
        "invoke",
        config,
        service_url,
        name="adaptiveCard/action",
        value={
            "action": {"type": "Action.Execute", "verb": "decide", "data": data},
            "trigger": "manual",
        },
    )
    response = await client.post("/api/messages", json=invoke)
    assert response.status == 200
    body = await response.json()
    assert body["statusCode"] == 200 and body["type"] == "application/vnd.microsoft.card.adaptive"
    decision = await client.app[REVIEWS_API].get_decision(
        data["instanceId"], data["instanceId"], data["itemId"]
    )
    assert decision.decision == "Approve"
    assert decision.reviewed_by.id == config["oid"]


async def test_demo_shortcuts_are_refused_with_real_credentials(
    running: tuple[DemoCloud, TestClient, Playground, str],
) -> None:
    demo, _client, _playground, _url = running
    real = replace(
        demo.settings,
        app_id="00000000-0000-0000-0000-0000000000b0",
        app_password="secret",
        app_tenant_id=demo.cloud.tenant_id,
        token_cache_key=base64.urlsafe_b64encode(b"x" * 32).decode(),
    )
    with pytest.raises(DemoShortcutRefused):
        create_app(real, microsoft=demo.side)
    with pytest.raises(RuntimeError, match="only for runs without MicrosoftAppId"):
        start_demo_cloud(real, bot_endpoint="http://127.0.0.1:1/api/messages")
