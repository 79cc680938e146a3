"""Escalation cards: refresh for the manager, Nudge once a day in the reviewer's hours, nobody else
may nudge — and a refused nudge is audited as what it is."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.notify.policy import ReminderPolicy, ScheduleSettings
from bot.web.keys import DISCOVERY, OUTBOX, REMINDERS, STORE
from emulator.clock import ManualClock
from emulator.connector import TeamsLimits
from emulator.seeds import demo_id
from emulator.server import EmulatorConfig
from tests.bot_harness import BotOnEmulator, bot_on_emulator
from tests.cardtools import card_text

ALEX, MEGAN, PATTI = (demo_id("user", k) for k in ("alex", "megan", "patti"))
PARTNERS = demo_id("review", "partner_portal")
# A Tuesday, 10:00 in New York, where Alex works 08:00-17:00 (the demo's mailbox settings).
START = datetime(2026, 12, 8, 15, 0, tzinfo=UTC)
# Scheduled reminders and escalations off: only what the manager asks for is sent.
QUIET = ScheduleSettings(default_policy=ReminderPolicy(points=(), escalation=None))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def harness(tmp_path: Path, clock: ManualClock) -> AsyncIterator[BotOnEmulator]:
    # Time stands still between the test's moves, so the Teams rate windows would never pass.
    config = EmulatorConfig(seed="demo", clock=clock, teams_limits=TeamsLimits.unlimited())
    async with bot_on_emulator(tmp_path, config=config, clock=clock, schedule=QUIET) as running:
        await running.app[DISCOVERY].run_once()
        await running.app[OUTBOX].run_once()
        # The scheduler escalated Alex's pending partner-portal work to Megan.
        await running.app[STORE].record_escalation(
            instance_id=PARTNERS, reviewer_oid=ALEX, recipient_oid=MEGAN
        )
        yield running


async def _pass_and_deliver(harness: BotOnEmulator, done: Callable[[], bool]) -> None:
    """A reminder pass, then the outbox until ``done`` (a Teams 429 makes a message wait)."""
    await harness.app[REMINDERS].run_once()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while not done():
        assert loop.time() < deadline, "the message was never delivered"
        await harness.app[OUTBOX].run_once()
        await asyncio.sleep(0.1)  # between passes; the limiter and Retry-After do the pacing


def _reminders_to(harness: BotOnEmulator, user: str) -> list[Any]:
    return [
        m
        for m in harness.cloud.connector.messages_to(user)
        if str(m.activity.get("summary", "")).startswith("Reminder:")
    ]


async def _nudge(harness: BotOnEmulator, who: str) -> Any:
    return await harness.teams.card_action(
        who, "nudge", {"instanceId": PARTNERS, "reviewerId": ALEX}
    )


async def test_the_manager_refreshes_and_nudges_once_a_day(harness: BotOnEmulator) -> None:
    refresh = await harness.teams.card_action(
        MEGAN, "refresh", {"card": "escalation", "instanceId": PARTNERS, "reviewerId": ALEX}
    )
    assert refresh.status == 200 and refresh.body["statusCode"] == 200
    assert "Nudge" in card_text(refresh.body["value"])

    nudge = await _nudge(harness, MEGAN)
    assert nudge.body["statusCode"] == 200
    await _pass_and_deliver(harness, lambda: len(_reminders_to(harness, ALEX)) == 1)

    again = await _nudge(harness, MEGAN)
    assert again.body["statusCode"] == 200
    await harness.app[REMINDERS].run_once()
    await harness.app[OUTBOX].run_once()
    assert len(_reminders_to(harness, ALEX)) == 1  # at most once a day per reviewer and review
    store = harness.app[STORE]
    nudges = await store.list_audit(actions=["nudge"])
    assert [(a.actor, a.detail["reviewer"]) for a in nudges] == [(MEGAN, ALEX)]
    queued = await store.list_audit(actions=["reminder_queued"])
    assert [
        (a.detail["recipient"], a.detail["point"], a.detail["requestedBy"]) for a in queued
    ] == [(ALEX, "nudge", MEGAN)]


async def test_a_nudge_waits_for_the_reviewers_working_hours(
    harness: BotOnEmulator, clock: ManualClock
) -> None:
    # 23:00 UTC: Megan's afternoon in Seattle, Alex's evening (18:00) in New York.
    clock.set(START.replace(hour=23))
    assert (await _nudge(harness, MEGAN)).body["statusCode"] == 200
    await harness.app[REMINDERS].run_once()
    await harness.app[OUTBOX].run_once()
    assert _reminders_to(harness, ALEX) == []
    (deferred,) = await harness.app[STORE].list_audit(actions=["reminder_deferred"])
    morning = START.replace(hour=13) + timedelta(days=1)  # 08:00 in New York
    assert deferred.result == "outside working hours"
    assert deferred.detail["until"] == morning.isoformat()

    clock.set(morning - timedelta(minutes=1))
    await harness.app[REMINDERS].run_once()
    await harness.app[OUTBOX].run_once()
    assert _reminders_to(harness, ALEX) == []
    clock.set(morning)
    await _pass_and_deliver(harness, lambda: len(_reminders_to(harness, ALEX)) == 1)
    assert _reminders_to(harness, ALEX)[0].sent_at == morning


async def test_only_the_escalation_recipient_may_nudge(harness: BotOnEmulator) -> None:
    answer = await _nudge(harness, PATTI)
    assert answer.status == 200 and answer.body["statusCode"] == 200
    # A plain message for Patti, the card she clicked stays as it was.
    assert answer.body["type"] == "application/vnd.microsoft.activity.message"
    assert "escalation was sent to you" in answer.body["value"]
    await harness.app[REMINDERS].run_once()
    await harness.app[OUTBOX].run_once()
    assert _reminders_to(harness, ALEX) == []

    store = harness.app[STORE]
    (refused,) = await store.list_audit(actions=["nudge_refused"])
    assert (refused.actor, refused.result, refused.instance_id) == (
        PATTI,
        "not_escalation_recipient",
        PARTNERS,
    )
    assert refused.detail["reviewer"] == ALEX
    # Not a decision, and Patti was not refused as a reviewer of anything.
    assert await store.list_audit(actions=["decision_refused"]) == []
    assert await store.list_audit(actions=["nudge", "reminder_queued"]) == []

    refresh = await harness.teams.card_action(
        PATTI, "refresh", {"card": "escalation", "instanceId": PARTNERS, "reviewerId": ALEX}
    )
    assert "Nudge" not in card_text(refresh.body["value"])


async def test_a_nudge_that_failed_can_be_clicked_again(
    harness: BotOnEmulator, clock: ManualClock
) -> None:
    # The database refuses the nudge's request (as a locked or full one would): the click fails.
    path = harness.settings.database_url.removeprefix("sqlite:///")
    with closing(sqlite3.connect(path)) as db:
        db.execute(
            "CREATE TRIGGER injected_fault BEFORE INSERT ON outbox "
            "WHEN NEW.key LIKE 'nudge-request|%' "
            "BEGIN SELECT RAISE(ABORT, 'database is locked (injected)'); END"
        )
        db.commit()
        failed = await _nudge(harness, MEGAN)
        db.execute("DROP TRIGGER injected_fault")
        db.commit()
    assert failed.status != 200 or (failed.body or {}).get("statusCode") != 200
    assert await harness.app[STORE].list_audit(actions=["nudge"]) == []
    # Clicked again, it reaches Alex — once, and audited once.
    again = await _nudge(harness, MEGAN)
    assert again.status == 200 and again.body["statusCode"] == 200
    await _pass_and_deliver(harness, lambda: len(_reminders_to(harness, ALEX)) == 1)
    assert len(await harness.app[STORE].list_audit(actions=["nudge"])) == 1
    await _nudge(harness, MEGAN)
    await harness.app[REMINDERS].run_once()
    await harness.app[OUTBOX].run_once()
    assert len(_reminders_to(harness, ALEX)) == 1
