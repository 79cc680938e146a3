"""Every instance status end to end: discovery → store → the reviewer's card and the status page.

Only ``InProgress`` is open for decisions. Each documented status is said on the card in words
("This review is completing — no more decisions"), a status nobody documented is "not open for
decisions" with one log line, and a click on such a card writes nothing to Graph.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.clock import ManualClock
from bot.graph import models as graph_models
from bot.reviews import InstanceEnded
from bot.web.keys import DISCOVERY, OUTBOX, REVIEWS_API, STORE
from emulator.seeds import demo_id
from tests.bot_harness import BotOnEmulator, bot_on_emulator
from tests.cardtools import card_text, decide_item_ids
from tests.reviews.shaping import StatusOverride

JOHANNA = demo_id("user", "johanna")
ROLE_REVIEW = demo_id("review", "user_admin_role")
MEGAN_ITEM = demo_id("decision", f"user_admin_role:{demo_id('user', 'megan')}")
ADMIN_TOKEN = "status-page-token-for-tests"


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[BotOnEmulator]:
    clock = ManualClock(datetime.now(UTC))
    async with bot_on_emulator(tmp_path, clock=clock, admin_token=ADMIN_TOKEN) as running:
        await running.app[DISCOVERY].run_once()
        await running.app[OUTBOX].run_once()
        yield running


def _review_card(harness: BotOnEmulator, user: str) -> dict:
    [message] = [
        m
        for m in harness.cloud.connector.messages_to(user)
        if m.activity.get("attachments")
        and m.activity["attachments"][0]["content"]
        .get("refresh", {})
        .get("action", {})
        .get("data", {})
        .get("instanceId")
        == ROLE_REVIEW
    ]
    return message.activity["attachments"][0]["content"]


async def _poll_and_deliver(harness: BotOnEmulator) -> list[InstanceEnded]:
    report = await harness.app[DISCOVERY].run_once()
    assert report.complete, report.errors
    await harness.app[OUTBOX].run_once()
    return [e for e in report.events if isinstance(e, InstanceEnded)]


@pytest.mark.parametrize(
    ("status", "card_says"),
    [
        ("Completing", "This review is completing — no more decisions."),
        ("Completed", "This review has ended. Decisions can no longer be changed."),
        ("AutoReviewing", "the items nobody decided are being decided automatically"),
        ("AutoReviewed", "The items nobody decided were decided automatically."),
        ("Applying", "its results are being applied"),
        ("Applied", "This review has ended and its results were applied."),
        ("NotStarted", "This review has not started yet."),
        ("Initializing", "This review is starting."),
        ("Starting", "This review is starting."),
        ("OnHold", "This review is not open for decisions."),  # nobody documented this one
    ],
)
async def test_each_status_is_said_on_the_card_and_takes_no_decision(
    harness: BotOnEmulator,
    status: str,
    card_says: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = _review_card(harness, JOHANNA)
    assert MEGAN_ITEM in decide_item_ids(before)
    StatusOverride(harness.cloud)[ROLE_REVIEW] = status
    monkeypatch.setattr(graph_models, "_WARNED", set())  # "once" per process: start afresh

    with caplog.at_level(logging.INFO):
        ended = await _poll_and_deliver(harness)
        again = await _poll_and_deliver(harness)
    assert [(e.instance_id, e.status) for e in ended] == [(ROLE_REVIEW, status)]
    assert again == []  # said once
    record = await harness.app[STORE].get_instance(instance_id=ROLE_REVIEW)
    assert record is not None and record.status == status

    after = _review_card(harness, JOHANNA)
    assert card_says in card_text(after)
    assert decide_item_ids(after) == set()  # no buttons on a review that is not open
    undocumented = [r for r in caplog.records if "OnHold" in r.getMessage()]
    if status == "OnHold":
        assert len(undocumented) == 1 and "not open for decisions" in undocumented[0].getMessage()
    else:
        assert undocumented == []

    # A click on the old card is refused before anything reaches Graph.
    answer = await harness.teams.card_action(
        JOHANNA,
        "decide",
        {"instanceId": ROLE_REVIEW, "itemId": MEGAN_ITEM, "decision": "Deny", "page": 0},
        sso=True,
    )
    assert answer.status == 200
    assert "has ended" in card_text(answer.body["value"])
    decision = await harness.app[REVIEWS_API].get_decision(ROLE_REVIEW, ROLE_REVIEW, MEGAN_ITEM)
    assert decision.decision == "NotReviewed"


async def test_an_ended_review_is_followed_until_it_is_applied(harness: BotOnEmulator) -> None:
    statuses = StatusOverride(harness.cloud)
    clock = harness.app[DISCOVERY]._clock
    statuses[ROLE_REVIEW] = "Completing"
    assert [e.status for e in await _poll_and_deliver(harness)] == ["Completing"]
    # Graph finishes on its own: a settling review is read again every cycle.
    statuses[ROLE_REVIEW] = "Completed"
    [moved] = await _poll_and_deliver(harness)
    assert (moved.status, moved.previous_status) == ("Completed", "Completing")
    assert "has ended" in card_text(_review_card(harness, JOHANNA))
    # Completed → Applied needs an admin; the bot looks again hourly, for a week.
    statuses[ROLE_REVIEW] = "Applied"
    assert await _poll_and_deliver(harness) == []
    clock.advance(timedelta(minutes=61))
    [applied] = await _poll_and_deliver(harness)
    assert (applied.status, applied.previous_status) == ("Applied", "Completed")
    assert "its results were applied" in card_text(_review_card(harness, JOHANNA))
    # Applied is final: never read again.
    clock.advance(timedelta(hours=2))
    calls = len(harness.cloud.graph.request_log)
    await harness.app[DISCOVERY].run_once()
    reads = [
        entry
        for entry in list(harness.cloud.graph.request_log)[calls:]
        if entry[2].endswith(f"/instances/{ROLE_REVIEW}")
    ]
    assert reads == []
    actions = [
        (e.action, e.detail.get("status"))
        for e in await harness.app[STORE].list_audit(instance_id=ROLE_REVIEW)
        if e.action.startswith("instance_")
    ]
    assert actions == [
        ("instance_ended", "Completing"),
        ("instance_status_changed", "Completed"),
        ("instance_status_changed", "Applied"),
    ]


async def test_a_review_is_no_longer_followed_a_week_after_it_ended(
    harness: BotOnEmulator,
) -> None:
    statuses = StatusOverride(harness.cloud)
    clock = harness.app[DISCOVERY]._clock
    statuses[ROLE_REVIEW] = "Completed"
    await _poll_and_deliver(harness)
    clock.advance(timedelta(days=8))
    statuses[ROLE_REVIEW] = "Applied"
    assert await _poll_and_deliver(harness) == []


async def test_the_status_page_names_each_review_status(harness: BotOnEmulator) -> None:
    statuses = StatusOverride(harness.cloud)
    finance = demo_id("review", "finance")
    statuses[ROLE_REVIEW] = "Completing"
    statuses[finance] = "Applied"
    await _poll_and_deliver(harness)
    page = await harness.client.get("/", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert page.status == 200
    html = await page.text()
    other = html[html.index('id="other-reviews"') :]
    assert "Completing — no more decisions" in other and "Applied" in other
