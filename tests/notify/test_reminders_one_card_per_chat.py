"""A reviewer gets each review card once, whatever chat id their clicks and messages arrive from.

Teams names one 1:1 chat in more than one way (the ``a:`` conversation id of activities, the
``19:…@unq.gbl.spaces`` chat id Graph knows; the emulated connector accepts both for the same
chat). A click from an id the bot did not know must not send the card again into the chat that
already shows it; only a chat that is really gone makes the card move, once, to the new one.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.web.keys import DISCOVERY, OUTBOX, STORE
from emulator.seeds import demo_id
from emulator.teams_client import TeamsClient
from tests.bot_harness import BotOnEmulator, bot_on_emulator

ALEX = demo_id("user", "alex")
PARTNERS = demo_id("review", "partner_portal")
# The reviews Alex has work in, in the demo tenant.
ALEX_REVIEWS = {demo_id("review", k) for k in ("partner_portal", "marketing", "engineering")}


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[BotOnEmulator]:
    async with bot_on_emulator(tmp_path) as running:
        await running.app[DISCOVERY].run_once()
        await _deliver_until(running, lambda: set(_cards(running)) == ALEX_REVIEWS)
        yield running


def _cards(harness: BotOnEmulator, *, chat: str | None = None) -> Counter[str]:
    """Review cards Alex received, by review (in one chat, or in all)."""
    found: Counter[str] = Counter()
    for message in harness.cloud.connector.messages_to(ALEX):
        if not str(message.activity.get("summary", "")).startswith("Access review:"):
            continue
        if chat is not None and message.conversation_id != chat:
            continue
        content = message.activity["attachments"][0]["content"]
        found[content["refresh"]["action"]["data"]["instanceId"]] += 1
    return found


async def _deliver_until(harness: BotOnEmulator, done: Callable[[], bool]) -> None:
    """Run the outbox until ``done`` (with the real clock, a Teams 429 makes a message wait)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not done():
        assert loop.time() < deadline, "the messages were never delivered"
        await harness.app[OUTBOX].run_once()
        await asyncio.sleep(0.1)  # between passes; the limiter and Retry-After do the pacing


async def _outbox_settled(harness: BotOnEmulator) -> None:
    store = harness.app[STORE]

    async def queued() -> int:
        return await store.count_outbox(status="pending") + await store.count_outbox(
            status="in_flight"
        )

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while await queued():
        assert loop.time() < deadline, "the outbox never emptied"
        await harness.app[OUTBOX].run_once()
        await asyncio.sleep(0.1)


async def _click_from(harness: BotOnEmulator, conversation_id: str) -> Any:
    """Alex refreshes his partner-portal card; the invoke carries ``conversation_id``."""
    activity = harness.teams.card_action_activity(
        ALEX, "refresh", {"card": "review", "instanceId": PARTNERS}
    )
    activity["conversation"]["id"] = conversation_id
    return await harness.teams.send_activity(activity)


async def test_a_click_from_another_id_of_the_same_chat_sends_no_card_again(
    harness: BotOnEmulator,
) -> None:
    connector = harness.cloud.connector
    chat = connector.conversation_id_for(ALEX)
    graph_chat_id = connector.chat_id_for(ALEX)
    assert graph_chat_id is not None and graph_chat_id != chat
    assert _cards(harness, chat=chat) == Counter(dict.fromkeys(ALEX_REVIEWS, 1))

    answer = await _click_from(harness, graph_chat_id)
    assert answer.status == 200 and answer.body["statusCode"] == 200
    store = harness.app[STORE]
    reference = await store.get_conversation_reference(
        tenant_id=harness.cloud.tenant_id, user_oid=ALEX
    )
    assert reference is not None and reference["conversation"]["id"] == graph_chat_id
    await _outbox_settled(harness)

    # Still one card per review, in the one chat; the cards were brought up to date in place.
    assert _cards(harness) == Counter(dict.fromkeys(ALEX_REVIEWS, 1))
    edited = [m for m in connector.messages_to(ALEX) if m.update_count]
    assert len(edited) >= len(ALEX_REVIEWS)

    # Back from the usual id, and again from the other: nothing new either.
    await _click_from(harness, chat)
    await _click_from(harness, graph_chat_id)
    await _outbox_settled(harness)
    assert _cards(harness) == Counter(dict.fromkeys(ALEX_REVIEWS, 1))


async def test_a_chat_that_is_really_gone_gets_its_cards_once_in_the_new_one(
    harness: BotOnEmulator,
) -> None:
    connector = harness.cloud.connector
    old_chat = connector.conversation_id_for(ALEX)
    connector.forget_conversation(ALEX)  # Alex deleted the chat: the old id answers 404
    new_chat = connector.conversation_id_for(ALEX)
    assert new_chat != old_chat

    answer = await harness.teams.message(ALEX, "pending")  # from the new chat
    assert answer.status in (200, 201)
    await _outbox_settled(harness)
    assert _cards(harness, chat=new_chat) == Counter(dict.fromkeys(ALEX_REVIEWS, 1))

    # More activity from the new chat, and a click from the old card's id: no second copy.
    await _click_from(harness, new_chat)
    await harness.teams.message(ALEX, "help")
    await _outbox_settled(harness)
    assert _cards(harness, chat=new_chat) == Counter(dict.fromkeys(ALEX_REVIEWS, 1))
    moved = await harness.app[STORE].list_audit(actions=["notified"])
    to_new = [a for a in moved if a.detail.get("conversationId") == new_chat]
    assert len(to_new) == len(ALEX_REVIEWS)


async def test_reinstalling_the_app_into_the_same_chat_sends_nothing_again(
    harness: BotOnEmulator,
) -> None:
    chat = harness.cloud.connector.conversation_id_for(ALEX)
    await harness.teams.uninstall(ALEX)
    await harness.teams.install(ALEX)
    await harness.teams.message(ALEX, "pending")
    await _outbox_settled(harness)
    assert _cards(harness) == Counter(dict.fromkeys(ALEX_REVIEWS, 1))
    assert _cards(harness, chat=chat) == Counter(dict.fromkeys(ALEX_REVIEWS, 1))


async def test_a_chat_in_another_client_gets_the_cards_once(harness: BotOnEmulator) -> None:
    # Another Bot Connector service (say Agents Playground beside Teams): its chat cannot show
    # the cards sent to the Teams chat, so they go there — once.
    posted: list[tuple[str, str, str]] = []  # (method, chat, review) of review cards

    async def record(request: web.Request) -> web.Response:
        body = await request.json()
        if str(body.get("summary") or "").startswith("Access review:"):
            content = body["attachments"][0]["content"]
            review = content["refresh"]["action"]["data"]["instanceId"]
            posted.append((request.method, request.match_info["cid"], review))
        return web.json_response({"id": f"other-{len(posted)}"})

    other = web.Application()
    other.router.add_post("/v3/conversations/{cid}/activities", record)
    other.router.add_put("/v3/conversations/{cid}/activities/{aid}", record)
    async with TestServer(other, host="127.0.0.1", port=0) as server:
        cloud = harness.cloud
        elsewhere = TeamsClient(
            cloud.identity,
            str(server.make_url("")).rstrip("/"),
            harness.teams.bot_endpoint,
            cloud.bot_app_id,
            cloud.tenant_id,
            harness.teams.http,
            conversation_id_for=lambda _user: "other-client-chat",
        )
        for _ in range(2):
            answer = await elsewhere.message(ALEX, "pending")
            assert answer.status in (200, 201)
            await _outbox_settled(harness)
        assert sorted(posted) == sorted(
            ("POST", "other-client-chat", review) for review in ALEX_REVIEWS
        )
        assert _cards(harness) == Counter(dict.fromkeys(ALEX_REVIEWS, 1))  # Teams chat: as it was
        sent = await harness.app[STORE].list_audit(actions=["notified"])
        to_other = [a for a in sent if a.detail.get("conversationId") == "other-client-chat"]
        assert Counter(a.detail["kind"] for a in to_other) == {"review": len(ALEX_REVIEWS)}
