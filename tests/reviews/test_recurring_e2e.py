"""A recurring review rolls over to its next instance while a reviewer has its card.

The definition's instances each have their own id (never the definition's), and — the hardest
case — the same decision ids. The old card must end up saying the review ended, the new instance
must get a card of its own, and no decision may ever reach the wrong instance: a click on the old
card is refused (by the bot once it knows, by Graph before that), and the new instance's decisions
in Graph stay untouched until the reviewer decides on the new card.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.reviews import Assigned, InstanceEnded
from bot.web.keys import DISCOVERY, OUTBOX, POLLER, REVIEWS_API, STORE
from emulator.seeds import demo_id
from tests.bot_harness import BotOnEmulator, bot_on_emulator
from tests.cardtools import card_text, decide_item_ids
from tests.reviews.shaping import StatusOverride, add_recurring_review

LIDIA = demo_id("user", "lidia")
ISAIAH, GRADY = demo_id("user", "isaiah"), demo_id("user", "grady")
DEFINITION = str(uuid.UUID(int=0xD1, version=4))
OLD, NEW = str(uuid.UUID(int=0x11, version=4)), str(uuid.UUID(int=0x12, version=4))
ISAIAH_ITEM, GRADY_ITEM = str(uuid.UUID(int=0xA1, version=4)), str(uuid.UUID(int=0xA2, version=4))


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[BotOnEmulator]:
    async with bot_on_emulator(tmp_path) as running:
        now = datetime.now(UTC)
        add_recurring_review(
            running.cloud,
            definition_id=DEFINITION,
            name="Weekly R&D access",
            instances=[
                (OLD, now - timedelta(days=3), now + timedelta(days=1)),
                (NEW, now + timedelta(days=1), now + timedelta(days=8)),
            ],
            reviewer_ids=[LIDIA],
            principal_ids=[ISAIAH, GRADY],
            decision_ids=[ISAIAH_ITEM, GRADY_ITEM],
        )
        yield running


def _cards(harness: BotOnEmulator, instance_id: str) -> list[dict[str, Any]]:
    """The cards Lidia's chat shows for one instance (each message as last edited)."""
    found = []
    for message in harness.cloud.connector.messages_to(LIDIA):
        attachments = message.activity.get("attachments") or []
        if not attachments:
            continue
        card = attachments[0]["content"]
        data = card.get("refresh", {}).get("action", {}).get("data", {})
        if data.get("instanceId") == instance_id:
            found.append(card)
    return found


async def _deliver(harness: BotOnEmulator, *, until: Callable[[], bool]) -> None:
    """Run the outbox until ``until()`` holds (sends to one chat are paced by Teams' limits)."""
    deadline = asyncio.get_running_loop().time() + 10.0
    while True:
        await harness.app[OUTBOX].run_once()
        if until():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the outbox did not deliver in time")
        await asyncio.sleep(0.05)  # the next send slot of that chat


async def _graph_decision(harness: BotOnEmulator, instance_id: str, item_id: str) -> str:
    decision = await harness.app[REVIEWS_API].get_decision(DEFINITION, instance_id, item_id)
    assert decision.access_review_id == instance_id
    return decision.decision


async def _click(harness: BotOnEmulator, instance_id: str, item_id: str) -> str:
    answer = await harness.teams.card_action(
        LIDIA,
        "decide",
        {"instanceId": instance_id, "itemId": item_id, "decision": "Deny", "page": 0},
        sso=True,
    )
    assert answer.status == 200, answer.body
    return card_text(answer.body["value"])


async def test_a_rollover_ends_the_old_cards_and_sends_new_ones(harness: BotOnEmulator) -> None:
    discovery, outbox, store = harness.app[DISCOVERY], harness.app[OUTBOX], harness.app[STORE]
    poller = harness.app[POLLER]
    first = await poller.run_once()  # the full poll; the next is due in POLL_INTERVAL_S
    assert first.complete, first.errors
    await outbox.run_once()
    [old_card] = _cards(harness, OLD)
    assert decide_item_ids(old_card) == {ISAIAH_ITEM, GRADY_ITEM}
    assert _cards(harness, NEW) == []
    record = await store.get_instance(instance_id=OLD)
    assert record is not None and record.definition_id == DEFINITION

    # The week turns: Graph closes the old instance and opens the next one.
    statuses = StatusOverride(harness.cloud)
    statuses[OLD] = "Completed"
    statuses[NEW] = "InProgress"

    # A click on the old card before the bot has polled: the write goes to the old instance,
    # Graph refuses it, and nothing is written anywhere — least of all to the new instance.
    assert "not be saved" in await _click(harness, OLD, ISAIAH_ITEM)
    assert await _graph_decision(harness, OLD, ISAIAH_ITEM) == "NotReviewed"
    assert await _graph_decision(harness, NEW, ISAIAH_ITEM) == "NotReviewed"

    # The refusal asked for a poll of that review, which the poller runs on its next tick,
    # long before the next full poll is due.
    assert await poller.tick()
    ended = await store.get_instance(instance_id=OLD)
    assert ended is not None and ended.status == "Completed"
    assert await store.get_instance(instance_id=NEW) is None  # that was a poll of one review
    # The next full poll finds the new instance and assigns its items afresh.
    report = await discovery.run_once()
    assert report.complete, report.errors
    assigned = [e for e in report.events if isinstance(e, Assigned)]
    assert [(e.instance_id, set(e.item_ids)) for e in assigned] == [
        (NEW, {ISAIAH_ITEM, GRADY_ITEM})
    ]
    await _deliver(harness, until=lambda: bool(_cards(harness, NEW)))

    [old_card] = _cards(harness, OLD)
    assert "This review has ended" in card_text(old_card)
    assert decide_item_ids(old_card) == set()
    [new_card] = _cards(harness, NEW)
    assert decide_item_ids(new_card) == {ISAIAH_ITEM, GRADY_ITEM}
    # (One message each: a message's card belongs to exactly one instance.)

    # Now the bot knows: a click on the old card is refused before Graph is asked.
    calls = len(harness.cloud.graph.request_log)
    assert "This review has ended" in await _click(harness, OLD, GRADY_ITEM)
    patches = [e for e in list(harness.cloud.graph.request_log)[calls:] if e[0] == "PATCH"]
    assert patches == []
    assert await _graph_decision(harness, NEW, GRADY_ITEM) == "NotReviewed"

    # The new card's click lands on the new instance, and only there.
    await _click(harness, NEW, ISAIAH_ITEM)
    assert await _graph_decision(harness, NEW, ISAIAH_ITEM) == "Deny"
    assert await _graph_decision(harness, OLD, ISAIAH_ITEM) == "NotReviewed"
    assert await _graph_decision(harness, NEW, GRADY_ITEM) == "NotReviewed"

    # The audit trail keeps the instances apart.
    old_audit = {e.action for e in await store.list_audit(instance_id=OLD)}
    new_audit = [e for e in await store.list_audit(instance_id=NEW) if e.action == "decision"]
    assert "instance_ended" in old_audit
    assert [(e.item_id, e.result) for e in new_audit] == [(ISAIAH_ITEM, "recorded")]


async def test_a_targeted_poll_by_definition_finds_the_rollover(harness: BotOnEmulator) -> None:
    discovery = harness.app[DISCOVERY]
    await discovery.run_once()
    statuses = StatusOverride(harness.cloud)
    statuses[OLD] = "Completed"
    statuses[NEW] = "InProgress"
    report = await discovery.run_once(definition_id=DEFINITION)
    assert report.complete, report.errors
    assert [(e.instance_id, e.status) for e in report.events if isinstance(e, InstanceEnded)] == [
        (OLD, "Completed")
    ]
    assert {e.instance_id for e in report.events if isinstance(e, Assigned)} == {NEW}
    # Both instances are kept apart in the store, each under the right definition.
    for instance_id in (OLD, NEW):
        record = await harness.app[STORE].get_instance(instance_id=instance_id)
        assert record is not None and record.definition_id == DEFINITION
        items = await harness.app[STORE].list_items(instance_id=instance_id)
        assert {i.item_id for i in items} == {ISAIAH_ITEM, GRADY_ITEM}


SECRET = "notify-secret-recurring"


@pytest.fixture
async def notified(tmp_path: Path) -> AsyncIterator[BotOnEmulator]:
    async with bot_on_emulator(tmp_path, notifications_secret=SECRET) as running:
        now = datetime.now(UTC)
        add_recurring_review(
            running.cloud,
            definition_id=DEFINITION,
            name="Weekly R&D access",
            instances=[
                (OLD, now - timedelta(days=3), now + timedelta(days=1)),
                (NEW, now + timedelta(days=1), now + timedelta(days=8)),
            ],
            reviewer_ids=[LIDIA],
            principal_ids=[ISAIAH, GRADY],
            decision_ids=[ISAIAH_ITEM, GRADY_ITEM],
        )
        yield running


async def _notify(harness: BotOnEmulator, body: dict[str, str]) -> tuple[int, dict[str, Any]]:
    import json

    from bot.web.keys import CLOCK
    from bot.web.notifications import signed_headers

    raw = json.dumps(body).encode()
    response = await harness.client.post(
        "/api/notifications",
        data=raw,
        headers=signed_headers(SECRET, raw, now_s=harness.app[CLOCK].now().timestamp()),
    )
    return response.status, await response.json()


async def test_a_notification_about_the_rollover_polls_the_right_review(
    notified: BotOnEmulator,
) -> None:
    poller = notified.app[POLLER]
    await poller.run_once()
    statuses = StatusOverride(notified.cloud)
    statuses[OLD] = "Completed"
    statuses[NEW] = "InProgress"
    # The new instance alone is not known yet: the route says what it needs.
    status, body = await _notify(notified, {"instanceId": NEW})
    assert status == 404 and "definitionId" in body["error"]
    # Its definition id (the review's id in the portal) is enough: that poll finds both changes.
    status, body = await _notify(notified, {"definitionId": DEFINITION})
    assert status == 202 and body["queued"] is True
    assert await poller.tick()
    store = notified.app[STORE]
    old = await store.get_instance(instance_id=OLD)
    new = await store.get_instance(instance_id=NEW)
    assert old is not None and old.status == "Completed"
    assert new is not None and new.definition_id == DEFINITION and new.status == "InProgress"
    # The new instance's own id now works too. (The same body at the same second would be a
    # replayed signature: a caller adds a field of its own to tell two requests apart.)
    status, _body = await _notify(notified, {"instanceId": NEW, "requestId": "second"})
    assert status == 202
