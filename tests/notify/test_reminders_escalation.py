"""Escalations reach the manager in the manager's working hours, not the reviewer's.

Alex works in New York, his manager Megan in Seattle (the demo's mailbox settings, 08:00-17:00).
The escalation point (two working days before the end) is Alex's: Wednesday 08:00 in New York,
13:00 UTC. The card is Megan's, so it waits for her Wednesday 08:00 in Seattle, 16:00 UTC. Without
her mailbox settings, the configured default hours (09:00-17:00 UTC) are hers.

A slot yields its cards once, whatever happens: a throttled manager look-up postpones the
escalation (it is not "no manager"), and a restart, another replica or a pass that failed half-way
never sends a second escalation, to the manager or anyone else.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.exc

from bot.notify.policy import ReminderPolicy, ScheduleSettings
from bot.notify.reminders import ReminderScheduler
from bot.web.keys import DIRECTORY_API, DISCOVERY, MICROSOFT, OUTBOX, REMINDERS, STORE
from emulator.clock import ManualClock
from emulator.connector import TeamsLimits
from emulator.faults import FaultRule
from emulator.seeds import demo_id
from emulator.server import EmulatorConfig
from emulator.tenant import ReviewerScope
from tests.bot_harness import BotOnEmulator, bot_on_emulator

ALEX, MEGAN = (demo_id("user", k) for k in ("alex", "megan"))
PARTNERS, MARKETING = (demo_id("review", k) for k in ("partner_portal", "marketing"))
# Monday 06:00 UTC: the demo's reviews are seeded around it; the partner portal ends Saturday
# 19 December 06:00 UTC, so Alex's last working day is Friday 18th and end-2wd Wednesday 16th.
START = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
WEDNESDAY = datetime(2026, 12, 16, tzinfo=UTC)
# Escalations only (at the default end-2wd), no reminders.
ESCALATIONS_ONLY = ScheduleSettings(default_policy=ReminderPolicy(points=()))


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[tuple[BotOnEmulator, ManualClock]]:
    clock = ManualClock(START)
    # Time stands still between the test's moves, so the Teams rate windows would never pass.
    config = EmulatorConfig(seed="demo", clock=clock, teams_limits=TeamsLimits.unlimited())
    async with bot_on_emulator(
        tmp_path, config=config, clock=clock, schedule=ESCALATIONS_ONLY
    ) as running:
        await running.app[DISCOVERY].run_once()
        await running.app[OUTBOX].run_once()
        yield running, clock


def _escalations_about(
    harness: BotOnEmulator, reviewer: str, recipient: str, instance: str = PARTNERS
) -> list[Any]:
    found = []
    for message in harness.cloud.connector.messages_to(recipient):
        attachments = message.activity.get("attachments") or [{}]
        card = attachments[0].get("content") or {}
        data = card.get("refresh", {}).get("action", {}).get("data", {})
        if data.get("card") == "escalation" and (
            data.get("reviewerId"),
            data.get("instanceId"),
        ) == (
            reviewer,
            instance,
        ):
            found.append(message)
    return found


async def _hour_by_hour(harness: BotOnEmulator, clock: ManualClock) -> None:
    """Wednesday 10:00 to 20:00 UTC, a reminder pass and the outbox every hour."""
    for hour in range(10, 21):
        clock.set(WEDNESDAY.replace(hour=hour))
        await harness.app[REMINDERS].run_once()
        await harness.app[OUTBOX].run_once()


async def test_the_escalation_waits_for_the_managers_working_hours(
    harness: tuple[BotOnEmulator, ManualClock],
) -> None:
    bot, clock = harness
    await _hour_by_hour(bot, clock)
    (escalation,) = _escalations_about(bot, ALEX, MEGAN)
    assert escalation.sent_at == WEDNESDAY.replace(hour=16)  # 08:00 in Seattle

    audit = await bot.app[STORE].list_audit(actions=["escalation_queued"])
    (about_alex,) = [a for a in audit if a.detail["reviewer"] == ALEX and a.instance_id == PARTNERS]
    assert about_alex.at == WEDNESDAY.replace(hour=16)
    assert about_alex.detail["recipients"] == [MEGAN]
    assert about_alex.detail["sendAt"] == {MEGAN: WEDNESDAY.replace(hour=16).isoformat()}


async def test_without_mailbox_settings_the_default_hours_are_the_managers(
    harness: tuple[BotOnEmulator, ManualClock],
) -> None:
    bot, clock = harness
    bot.cloud.tenant.users[MEGAN].mailbox = None  # no mailbox: Graph cannot tell her hours
    await _hour_by_hour(bot, clock)
    (escalation,) = _escalations_about(bot, ALEX, MEGAN)
    # Alex's point, 13:00 UTC, is inside the default 09:00-17:00 UTC.
    assert escalation.sent_at == WEDNESDAY.replace(hour=13)
    assert escalation.sent_at - START > timedelta(days=9)


async def test_several_recipients_each_get_the_card_in_their_own_hours(tmp_path: Path) -> None:
    # Megan (Seattle) has no manager: her escalation goes to the review's other fallback
    # reviewers, Johanna in Berlin and Patti in Seattle.
    johanna, patti = demo_id("user", "johanna"), demo_id("user", "patti")
    clock = ManualClock(START)
    config = EmulatorConfig(seed="demo", clock=clock, teams_limits=TeamsLimits.unlimited())
    async with bot_on_emulator(
        tmp_path, config=config, clock=clock, schedule=ESCALATIONS_ONLY
    ) as bot:
        instance = bot.cloud.tenant.instances[MARKETING]
        instance.fallback_reviewers = tuple(
            ReviewerScope(f"/users/{user}") for user in (MEGAN, johanna, patti)
        )
        await bot.app[DISCOVERY].run_once()
        await bot.app[OUTBOX].run_once()
        for hour in range(10, 24 + 11):  # Wednesday 10:00 to Thursday 10:00 UTC
            clock.set(WEDNESDAY + timedelta(hours=hour))
            await bot.app[REMINDERS].run_once()
            await bot.app[OUTBOX].run_once()

        # Megan's point is her Wednesday 08:00, 16:00 UTC: Patti's 08:00 too, but 17:00 in
        # Berlin, after Johanna's day; Johanna's card waits for her Thursday 08:00.
        (to_patti,) = _escalations_about(bot, MEGAN, patti, MARKETING)
        (to_johanna,) = _escalations_about(bot, MEGAN, johanna, MARKETING)
        assert to_patti.sent_at == WEDNESDAY.replace(hour=16)
        assert to_johanna.sent_at == WEDNESDAY.replace(hour=7) + timedelta(days=1)
        audit = await bot.app[STORE].list_audit(actions=["escalation_queued"])
        (about_megan,) = [
            a for a in audit if a.detail["reviewer"] == MEGAN and a.instance_id == MARKETING
        ]
        assert about_megan.detail["sources"] == ["fallback_reviewer"]
        assert about_megan.detail["sendAt"] == {
            patti: to_patti.sent_at.isoformat(),
            johanna: to_johanna.sent_at.isoformat(),
        }


# -- an escalation slot yields its cards once, to the manager --------------------------------------

JOHANNA = demo_id("user", "johanna")


def _manager_lookups_fail(bot: BotOnEmulator, status: int = 429) -> str:
    """Graph answers Alex's manager look-up with ``status`` until the rule is removed (with
    ``Retry-After: 0``, so the client spends its retries at once)."""
    return bot.cloud.faults.add(
        FaultRule(
            kind="status",
            service="graph",
            method="GET",
            path_regex=f"/users/{ALEX}/manager$",
            status=status,
            retry_after_s=(0.0, 0.0),
        )
    )


@pytest.mark.parametrize("status", [429, 503])
async def test_a_throttled_manager_lookup_postpones_the_escalation(
    tmp_path: Path, status: int
) -> None:
    clock = ManualClock(START)
    config = EmulatorConfig(seed="demo", clock=clock, teams_limits=TeamsLimits.unlimited())
    async with bot_on_emulator(
        tmp_path,
        config=config,
        clock=clock,
        schedule=ESCALATIONS_ONLY,
        escalation_fallback_user=JOHANNA,
    ) as bot:
        await bot.app[DISCOVERY].run_once()
        await bot.app[OUTBOX].run_once()
        rule = _manager_lookups_fail(bot, status)
        clock.set(WEDNESDAY.replace(hour=16))  # Megan's 08:00 in Seattle
        await bot.app[REMINDERS].run_once()
        await bot.app[OUTBOX].run_once()
        assert bot.cloud.faults.fired(rule) > 0
        # Not "no manager": neither the configured fallback nor anyone else hears of it yet.
        assert _escalations_about(bot, ALEX, JOHANNA) == []
        assert _escalations_about(bot, ALEX, MEGAN) == []
        bot.cloud.faults.remove(rule)
        clock.set(WEDNESDAY.replace(hour=17))
        await bot.app[REMINDERS].run_once()
        await bot.app[OUTBOX].run_once()
        assert len(_escalations_about(bot, ALEX, MEGAN)) == 1
        assert _escalations_about(bot, ALEX, JOHANNA) == []


def _restarted(bot: BotOnEmulator, clock: ManualClock) -> ReminderScheduler:
    """The reminder scheduler of a new process (a restart, or another replica taking the
    lease): the same store and Graph, nothing remembered in memory."""
    return ReminderScheduler(
        store=bot.app[STORE],
        directory=bot.app[DIRECTORY_API],
        clock=clock,
        schedule=ESCALATIONS_ONLY,
        tenant_id=bot.app[MICROSOFT].tenant_id,
        escalation_fallback=JOHANNA,
    )


async def test_after_a_restart_a_claimed_escalation_is_not_sent_again(tmp_path: Path) -> None:
    clock = ManualClock(START)
    config = EmulatorConfig(seed="demo", clock=clock, teams_limits=TeamsLimits.unlimited())
    async with bot_on_emulator(
        tmp_path,
        config=config,
        clock=clock,
        schedule=ESCALATIONS_ONLY,
        escalation_fallback_user=JOHANNA,
    ) as bot:
        await bot.app[DISCOVERY].run_once()
        await bot.app[OUTBOX].run_once()
        clock.set(WEDNESDAY.replace(hour=16))
        await bot.app[REMINDERS].run_once()
        await bot.app[OUTBOX].run_once()
        assert len(_escalations_about(bot, ALEX, MEGAN)) == 1
        # After the restart Graph throttles the manager look-up (the emulator's realistic
        # profile makes that likely): nobody gets a second escalation.
        _manager_lookups_fail(bot)
        for day in (1, 2):  # 10:00 in Berlin, where the configured fallback (Johanna) works
            clock.set(WEDNESDAY + timedelta(days=day, hours=9))
            await _restarted(bot, clock).run_once()
            await bot.app[OUTBOX].run_once()
        assert _escalations_about(bot, ALEX, JOHANNA) == []
        assert len(_escalations_about(bot, ALEX, MEGAN)) == 1


async def test_a_pass_that_fails_after_queuing_the_cards_sends_them_once(tmp_path: Path) -> None:
    clock = ManualClock(START)
    config = EmulatorConfig(seed="demo", clock=clock, teams_limits=TeamsLimits.unlimited())
    async with bot_on_emulator(
        tmp_path,
        config=config,
        clock=clock,
        schedule=ESCALATIONS_ONLY,
        escalation_fallback_user=JOHANNA,
    ) as bot:
        await bot.app[DISCOVERY].run_once()
        await bot.app[OUTBOX].run_once()
        clock.set(WEDNESDAY.replace(hour=16))
        # The database refuses the write that records Alex's claimed slot: the pass fails there.
        path = bot.settings.database_url.removeprefix("sqlite:///")
        with closing(sqlite3.connect(path)) as db:
            db.execute(
                "CREATE TRIGGER injected_fault BEFORE INSERT ON reminders_sent "
                f"WHEN NEW.reminder_id LIKE 'escalation|{ALEX}|{PARTNERS}|%' "
                "BEGIN SELECT RAISE(ABORT, 'database is locked (injected)'); END"
            )
            db.commit()
            with pytest.raises(sqlalchemy.exc.DBAPIError):
                await bot.app[REMINDERS].run_once()
            db.execute("DROP TRIGGER injected_fault")
            db.commit()
        # Meanwhile Alex got another manager in the directory; a new process takes over.
        bot.cloud.tenant.users[ALEX].manager_id = JOHANNA
        clock.set(WEDNESDAY.replace(hour=17))
        await _restarted(bot, clock).run_once()
        await bot.app[OUTBOX].run_once()
        assert len(_escalations_about(bot, ALEX, MEGAN)) == 1
        assert _escalations_about(bot, ALEX, JOHANNA) == []
        audit = await bot.app[STORE].list_audit(actions=["escalation_queued"])
        assert [a.detail["recipients"] for a in audit if a.detail["reviewer"] == ALEX] == [[MEGAN]]
