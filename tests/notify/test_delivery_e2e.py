"""Notifications end to end: discovery → outbox → Bot Connector (emulated, with Teams limits)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.web.keys import DISCOVERY, OUTBOX, STORE
from emulator.seeds import DEMO_EXPECTED_ASSIGNMENTS, demo_id
from tests.bot_harness import BotOnEmulator, bot_on_emulator
from tests.cardtools import decide_item_ids


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[BotOnEmulator]:
    async with bot_on_emulator(tmp_path) as running:
        yield running


def _card(message: object) -> dict:
    activity = message.activity  # type: ignore[attr-defined]
    attachments = activity["attachments"]
    assert attachments[0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    return attachments[0]["content"]


def _cards_to(harness: BotOnEmulator, user: str) -> list:
    return [m for m in harness.cloud.connector.messages_to(user) if m.activity.get("attachments")]


async def test_every_reviewer_gets_one_message_per_review(harness: BotOnEmulator) -> None:
    await harness.app[DISCOVERY].run_once()
    await harness.app[OUTBOX].run_once()
    connector = harness.cloud.connector
    for reviewer, reviews in DEMO_EXPECTED_ASSIGNMENTS.items():
        # Cards only: the welcome message after the app was installed for them is not counted.
        messages = [m for m in connector.messages_to(reviewer) if m.activity.get("attachments")]
        assert len(messages) == len(reviews), reviewer
        by_instance = {}
        for message in messages:
            card = _card(message)
            instance_ids = {
                a["data"]["instanceId"]
                for a in [card.get("refresh", {}).get("action", {})]
                if a.get("data", {}).get("instanceId")
            }
            assert len(instance_ids) == 1
            by_instance[instance_ids.pop()] = decide_item_ids(card)
        assert set(by_instance) == set(reviews)
        for instance_id, items in reviews.items():
            # Small reviews fit on one page: every pending item has its buttons.
            assert by_instance[instance_id] == set(items)
    # The reviewers had never installed the app: it was installed for each, then messaged.
    assert connector.throttled() == [] or all(c.status == 429 for c in connector.throttled())


async def test_a_second_cycle_sends_nothing_new(harness: BotOnEmulator) -> None:
    await harness.app[DISCOVERY].run_once()
    await harness.app[OUTBOX].run_once()
    sent = len(harness.cloud.connector.calls("send", status=201)) + len(
        harness.cloud.connector.calls("send", status=200)
    )
    await harness.app[DISCOVERY].run_once()
    assert await harness.app[OUTBOX].run_once() == 0
    again = len(harness.cloud.connector.calls("send", status=201)) + len(
        harness.cloud.connector.calls("send", status=200)
    )
    assert again == sent > 0


async def test_a_decision_made_elsewhere_edits_the_card(harness: BotOnEmulator) -> None:
    await harness.app[DISCOVERY].run_once()
    await harness.app[OUTBOX].run_once()
    reviewer = demo_id("user", "johanna")
    instance_id = demo_id("review", "user_admin_role")
    decision_id = demo_id("decision", f"user_admin_role:{demo_id('user', 'megan')}")
    [before] = _cards_to(harness, reviewer)
    assert decision_id in decide_item_ids(_card(before))

    harness.cloud.tenant.record_decision(instance_id, decision_id, "Deny", reviewer, "left")
    await harness.app[DISCOVERY].run_once()
    assert await harness.app[OUTBOX].run_once() >= 1
    [after] = _cards_to(harness, reviewer)
    assert after.activity_id == before.activity_id and after.update_count == 1
    assert decision_id not in decide_item_ids(_card(after))
    # The audit trail has the notification and the edit.
    actions = [e.action for e in await harness.app[STORE].list_audit(instance_id=instance_id)]
    assert "notified" in actions and "card_updated" in actions


async def test_an_app_missing_from_the_catalog_is_reported_not_retried_forever(
    harness: BotOnEmulator,
) -> None:
    harness.cloud.tenant.teams_apps.clear()  # the admin never published the app
    await harness.app[DISCOVERY].run_once()
    await harness.app[OUTBOX].run_once()
    store = harness.app[STORE]
    failures = await store.list_audit(actions=["notify_failed"])
    assert failures and all("catalog" in str(f.detail["error"]) for f in failures)
    assert await store.count_outbox(status="failed") == len(failures)
    assert await store.count_outbox(status="in_flight") == 0
    assert harness.cloud.connector.calls("send") == []
