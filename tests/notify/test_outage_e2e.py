"""A Bot Connector outage never loses a card (issue 14, defect 1), over loopback on the emulator.

The outbox's time is the bot's injected clock: each "pass" below runs the outbox once, then moves
the clock past the longest backoff (15 minutes), so hours of outage take no real time. The
emulator's fault rules play the outage; nothing sleeps.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.clock import ManualClock
from bot.notify.delivery import RETRY_CAP_S
from bot.notify.notifier import FAILED_CARD_RECHECK_S
from bot.notify.reminders import enqueue_reminder
from bot.web.keys import DISCOVERY, OUTBOX, STORE
from emulator.faults import FaultRule
from emulator.seeds import DEMO_EXPECTED_ASSIGNMENTS, demo_id
from tests.bot_harness import BotOnEmulator, bot_on_emulator

ADMIN_TOKEN = "status-page-token-for-tests"
JOHANNA = demo_id("user", "johanna")
ROLE_REVIEW = demo_id("review", "user_admin_role")
#: What a first card could survive before issue 14: 8 attempts, about 212 s of 503s.
OLD_BUDGET_S = 212
PASS = timedelta(seconds=RETRY_CAP_S + 60)


@dataclass
class Running:
    harness: BotOnEmulator
    clock: ManualClock

    @property
    def app(self) -> Any:
        return self.harness.app

    async def outbox_pass(self) -> int:
        """One outbox pass now, then time moves past any backoff."""
        handled = int(await self.app[OUTBOX].run_once())
        self.clock.advance(PASS)
        return handled

    def cards_to(self, user: str) -> list[Any]:
        return [
            m
            for m in self.harness.cloud.connector.messages_to(user)
            if m.activity.get("attachments")
        ]


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    clock = ManualClock(datetime.now(UTC))
    async with bot_on_emulator(tmp_path, clock=clock, admin_token=ADMIN_TOKEN) as harness:
        yield Running(harness, clock)


async def _install(running: Running, user: str) -> None:
    """The app installed for ``user`` (as through Graph): the chat opens, the bot hears of it."""
    connector = running.harness.cloud.connector
    connector.note_app_installed(user_oid=user, user_name="Reviewer", installation_id=f"t-{user}")
    await connector.drain_deliveries()


def _connector_outage(running: Running) -> str:
    """Every connector call that sends (create chat, send, reply) answers 503."""
    return running.harness.cloud.faults.add(
        FaultRule(
            kind="status",
            service="connector",
            method="POST",
            path_regex=r"^/v3/conversations",
            status=503,
        )
    )


def _install_outage(running: Running) -> str:
    """Graph answers 503 to installing the app for a reviewer (what a first card needs first
    when the reviewer never used the bot)."""
    return running.harness.cloud.faults.add(
        FaultRule(
            kind="status",
            service="graph",
            method="POST",
            path_regex=r"/teamwork/installedApps$",
            status=503,
            retry_after_s=(0, 0),
        )
    )


async def _three_hours_of_outage(running: Running) -> None:
    began = running.clock.now()
    passes = 0
    while running.clock.now() - began < timedelta(hours=3):
        await running.outbox_pass()
        passes += 1
    assert passes >= 10 and (running.clock.now() - began).total_seconds() > 20 * OLD_BUDGET_S
    store = running.app[STORE]
    assert await store.count_outbox(status="failed") == 0
    waiting = await store.list_outbox(status="pending", kinds=["card"], limit=1000)
    assert waiting and min(m.attempts for m in waiting) > 8  # more than the old 8 tries
    assert all(running.cards_to(r) == [] for r in DEMO_EXPECTED_ASSIGNMENTS)


async def _recover(running: Running, rules: list[str]) -> None:
    for rule in rules:
        running.harness.cloud.faults.remove(rule)
    for _ in range(3):
        await running.outbox_pass()
    store = running.app[STORE]
    assert await store.count_outbox(status="pending") == 0
    assert await store.count_outbox(status="failed") == 0


def _review_cards_by_instance(running: Running, reviewer: str) -> Counter[str]:
    return Counter(
        m.activity["attachments"][0]["content"]["refresh"]["action"]["data"]["instanceId"]
        for m in running.cards_to(reviewer)
        if m.activity.get("summary", "").startswith("Access review")
    )


async def test_a_connector_outage_far_longer_than_the_old_budget_delivers_every_card_once(
    running: Running,
) -> None:
    # Every reviewer has the app and a chat; then the connector answers 503 for three hours.
    for reviewer in DEMO_EXPECTED_ASSIGNMENTS:
        await _install(running, reviewer)
    rule = _connector_outage(running)
    await running.app[DISCOVERY].run_once()
    # A reminder queued during the outage is kept just the same.
    await enqueue_reminder(
        running.app[STORE],
        tenant_id=running.harness.cloud.tenant_id,
        reviewer_oid=JOHANNA,
        instance_id=ROLE_REVIEW,
        key="reminder|outage-test",
        reason="halfway",
    )
    await _three_hours_of_outage(running)
    await _recover(running, [rule])
    for reviewer, reviews in DEMO_EXPECTED_ASSIGNMENTS.items():
        assert _review_cards_by_instance(running, reviewer) == Counter(dict.fromkeys(reviews, 1)), (
            reviewer
        )
    reminders = [
        m for m in running.cards_to(JOHANNA) if m.activity.get("summary", "").startswith("Reminder")
    ]
    assert len(reminders) == 1


async def test_an_app_install_outage_delays_first_cards_but_loses_none(running: Running) -> None:
    # Reviewers who never used the bot: Graph refuses to install the app, and the connector to
    # create chats, for three hours.
    rules = [_install_outage(running), _connector_outage(running)]
    await running.app[DISCOVERY].run_once()
    await _three_hours_of_outage(running)
    await _recover(running, rules)
    for reviewer, reviews in DEMO_EXPECTED_ASSIGNMENTS.items():
        assert _review_cards_by_instance(running, reviewer) == Counter(dict.fromkeys(reviews, 1)), (
            reviewer
        )


async def test_a_card_whose_review_ended_during_the_outage_ends_as_skipped(
    running: Running,
) -> None:
    store = running.app[STORE]
    rules = [_install_outage(running), _connector_outage(running)]
    await running.app[DISCOVERY].run_once()
    for _ in range(3):
        await running.outbox_pass()
    running.harness.cloud.tenant.stop_instance(ROLE_REVIEW)
    await running.app[DISCOVERY].run_once()
    for rule in rules:
        running.harness.cloud.faults.remove(rule)
    for _ in range(3):
        await running.outbox_pass()
    assert await store.count_outbox(status="pending") == 0
    assert await store.count_outbox(status="failed") == 0
    skipped = await store.list_audit(instance_id=ROLE_REVIEW, actions=["notify_skipped"])
    assert {e.detail["recipient"] for e in skipped} == {
        r for r, reviews in DEMO_EXPECTED_ASSIGNMENTS.items() if ROLE_REVIEW in reviews
    }
    assert {e.result for e in skipped} == {"review_ended"}
    assert not [
        m
        for r in DEMO_EXPECTED_ASSIGNMENTS
        for m in running.cards_to(r)
        if m.activity["attachments"][0]["content"]["refresh"]["action"]["data"].get("instanceId")
        == ROLE_REVIEW
    ]


async def test_a_blocked_reviewer_is_reported_then_sent_the_card_after_reinstalling(
    running: Running,
) -> None:
    store = running.app[STORE]
    connector = running.harness.cloud.connector
    await _install(running, JOHANNA)
    connector.set_blocked(JOHANNA)
    await running.app[DISCOVERY].run_once()
    await running.outbox_pass()
    # Failed for good (a 403 is never retried), once, with who, which review, why and when.
    failed = await store.list_outbox(status="failed", kinds=["card"])
    assert {m.payload["reviewerOid"] for m in failed} == {JOHANNA}
    assert {m.result["reason"] for m in failed if m.result} == {"blocked by the user"}
    sends = len(connector.calls("send"))
    await running.outbox_pass()
    assert len(connector.calls("send")) == sends
    page = await running.harness.client.get("/", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    html = await page.text()
    assert page.status == 200 and 'id="failed-cards"' in html
    assert JOHANNA in html and "blocked by the user" in html
    # Discovery leaves it failed while nothing changed and the failure is fresh.
    await running.app[DISCOVERY].run_once()
    assert await store.count_outbox(status="failed") == len(failed)

    # The reviewer unblocks the bot and reinstalls it: a new conversation reference arrives and
    # the card goes out at once.
    connector.set_blocked(JOHANNA, False)
    connector.note_app_uninstalled(JOHANNA)
    await running.harness.teams.uninstall(JOHANNA)
    await _install(running, JOHANNA)
    await running.outbox_pass()
    assert await store.count_outbox(status="failed") == 0
    assert len(running.cards_to(JOHANNA)) == len(DEMO_EXPECTED_ASSIGNMENTS[JOHANNA])
    requeued = await store.list_audit(actions=["notify_requeued"])
    assert {(e.detail["recipient"], e.result) for e in requeued} == {(JOHANNA, "reference_changed")}
    page = await running.harness.client.get("/", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert 'id="failed-cards"' not in await page.text()


async def test_a_failed_card_is_tried_again_after_the_recheck_interval(running: Running) -> None:
    store = running.app[STORE]
    connector = running.harness.cloud.connector
    await _install(running, JOHANNA)
    connector.set_blocked(JOHANNA)
    await running.app[DISCOVERY].run_once()
    await running.outbox_pass()
    assert await store.count_outbox(status="failed") >= 1
    # Unblocked without the bot hearing of it: the next discovery after the re-check interval
    # queues the card again.
    connector.set_blocked(JOHANNA, False)
    running.clock.advance(timedelta(seconds=FAILED_CARD_RECHECK_S))
    await running.app[DISCOVERY].run_once()
    await running.outbox_pass()
    assert await store.count_outbox(status="failed") == 0
    assert len(running.cards_to(JOHANNA)) == len(DEMO_EXPECTED_ASSIGNMENTS[JOHANNA])
    assert {e.result for e in await store.list_audit(actions=["notify_requeued"])} == {"recheck"}


async def test_an_app_missing_from_the_catalog_is_queued_again_once_published(
    running: Running,
) -> None:
    tenant = running.harness.cloud.tenant
    published = dict(tenant.teams_apps)
    tenant.teams_apps.clear()  # the admin has not published the app yet
    await running.app[DISCOVERY].run_once()
    await running.outbox_pass()
    store = running.app[STORE]
    failed = await store.list_outbox(status="failed", kinds=["card"], limit=100)
    assert failed and {m.result["reason"] for m in failed if m.result} == {
        "app not in the org catalog"
    }
    tenant.teams_apps.update(published)
    running.clock.advance(timedelta(seconds=FAILED_CARD_RECHECK_S))
    await running.app[DISCOVERY].run_once()
    for _ in range(2):
        await running.outbox_pass()
    assert await store.count_outbox(status="failed") == 0
    for reviewer, reviews in DEMO_EXPECTED_ASSIGNMENTS.items():
        assert len(running.cards_to(reviewer)) == len(reviews), reviewer


async def test_a_chat_that_is_gone_is_created_again_once(running: Running) -> None:
    connector = running.harness.cloud.connector
    await _install(running, JOHANNA)
    old_chat = connector.conversation_id_for(JOHANNA)
    connector.forget_conversation(JOHANNA)  # history cleared: the old chat id answers 404
    await running.app[DISCOVERY].run_once()
    await running.outbox_pass()
    store = running.app[STORE]
    assert await store.count_outbox(status="failed") == 0
    cards = running.cards_to(JOHANNA)
    assert len(cards) == len(DEMO_EXPECTED_ASSIGNMENTS[JOHANNA])
    assert all(m.conversation_id != old_chat for m in cards)


async def test_a_chat_gone_again_after_creating_it_once_fails_for_good(running: Running) -> None:
    await _install(running, JOHANNA)
    running.harness.cloud.faults.add(
        FaultRule(
            kind="status",
            service="connector",
            method="POST",
            path_regex=r"^/v3/conversations/[^/]+/activities$",
            status=404,
        )
    )
    await running.app[DISCOVERY].run_once()
    for _ in range(3):
        await running.outbox_pass()
    store = running.app[STORE]
    failed = await store.list_outbox(status="failed", kinds=["card"], limit=100)
    assert failed and {m.result["reason"] for m in failed if m.result} == {"chat gone"}
    # Created again exactly once per card, then failed: no loop of re-creations.
    assert all(m.result and m.result["attempts"] == 2 for m in failed)
