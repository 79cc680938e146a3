"""Remind-now as an admin uses it: the route and the command line, against the emulated cloud.

- One manual reminder per reviewer and review within the window, whoever asks and however often;
  a request inside it answers with the earlier reminder (when asked for, by whom, sent when) and
  sends nothing.
- By default a manual reminder reaches the reviewer at their next working moment (mailbox time
  zone and working hours) and after their snooze; ``now=true`` / ``--now`` overrides both, and the
  audit says which it was — also for a request of the window that still waits.
- A request that fails half-way (the database refuses a write) can be retried: it neither holds
  the window with nothing queued nor queues anything twice.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.notify.policy import ReminderPolicy, ScheduleSettings
from bot.settings import SettingsError, load_settings
from bot.web.keys import DISCOVERY, OUTBOX, REMINDERS, STORE
from emulator.clock import ManualClock
from emulator.connector import TeamsLimits
from emulator.seeds import demo_id
from emulator.server import EmulatorConfig
from tests.bot_harness import BotOnEmulator, bot_on_emulator, settings_environment

ROOT = Path(__file__).resolve().parents[2]
ALEX, DIEGO, MEGAN = (demo_id("user", k) for k in ("alex", "diego", "megan"))
# Marketing is reviewed by Alex (New York), Diego (Berlin) and Megan (Seattle), each working
# 08:00-17:00 in their own zone (the demo's mailbox settings).
MARKETING = demo_id("review", "marketing")
REVIEWERS = sorted([ALEX, DIEGO, MEGAN])
TOKEN = "admin-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# No scheduled reminders or escalations: only what the admin asks for (and a snooze's end).
QUIET = ScheduleSettings(default_policy=ReminderPolicy(points=(), escalation=None))


def _reminders_to(harness: BotOnEmulator, user: str) -> list[Any]:
    return [
        m
        for m in harness.cloud.connector.messages_to(user)
        if str(m.activity.get("summary", "")).startswith("Reminder:")
        and m.activity["attachments"][0]["content"]["refresh"]["action"]["data"]["instanceId"]
        == MARKETING
    ]


def _counts(harness: BotOnEmulator) -> dict[str, int]:
    return {user: len(_reminders_to(harness, user)) for user in REVIEWERS}


async def _remind(harness: BotOnEmulator, *, now: bool = False) -> tuple[int, dict[str, Any]]:
    response = await harness.client.post(
        f"/admin/remind?instance={MARKETING}&now={'true' if now else 'false'}", headers=AUTH
    )
    return response.status, await response.json()


def _by_reviewer(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["reviewer"]: row for row in body["reviewers"]}


async def _deliver_until(harness: BotOnEmulator, done: Callable[[], bool]) -> None:
    """Run the outbox until ``done`` (with the real clock, a Teams 429 makes a message wait)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not done():
        assert loop.time() < deadline, "the messages were never delivered"
        await harness.app[OUTBOX].run_once()
        await asyncio.sleep(0.1)  # between passes; the limiter and Retry-After do the pacing


# -- with a clock the test moves ---------------------------------------------------------------


@pytest.fixture
def clock() -> ManualClock:
    # Tuesday 19:00 UTC: 14:00 in New York, 20:00 in Berlin, 11:00 in Seattle.
    return ManualClock(datetime(2026, 12, 8, 19, 0, tzinfo=UTC))


@pytest.fixture
async def harness(tmp_path: Path, clock: ManualClock) -> AsyncIterator[BotOnEmulator]:
    # Time stands still between the test's moves, so the Teams rate windows would never pass.
    config = EmulatorConfig(seed="demo", clock=clock, teams_limits=TeamsLimits.unlimited())
    async with bot_on_emulator(
        tmp_path, config=config, clock=clock, schedule=QUIET, admin_token=TOKEN
    ) as running:
        await running.app[DISCOVERY].run_once()
        await running.app[OUTBOX].run_once()
        yield running


async def _pass(harness: BotOnEmulator) -> None:
    await harness.app[REMINDERS].run_once()
    await harness.app[OUTBOX].run_once()


async def test_a_second_request_inside_the_window_sends_nothing_and_says_what_was_sent(
    harness: BotOnEmulator, clock: ManualClock
) -> None:
    first_at = clock.now()
    status, first = await _remind(harness, now=True)
    assert status == 202 and first["queued"] == 3 and first["mode"] == "now"

    clock.advance(timedelta(seconds=1))  # the double submit, a second later
    status, second = await _remind(harness, now=True)
    assert status == 200 and second["queued"] == 0 and second["alreadyReminded"] == 3
    for row in second["reviewers"]:
        assert row["status"] == "already_reminded"
        assert row["requestedAt"] == first_at.isoformat() and row["requestedBy"] == "admin"
        assert row["mode"] == "now"
    await harness.app[OUTBOX].run_once()  # sent now, a second after the first request
    assert _counts(harness) == dict.fromkeys(REVIEWERS, 1)
    sent_at = clock.now()

    clock.advance(timedelta(hours=11, minutes=58))
    status, later = await _remind(harness)
    assert status == 200 and later["queued"] == 0
    for row in later["reviewers"]:
        assert (row["state"], row["sentAt"]) == ("sent", sent_at.isoformat())
        assert row["requestedAt"] == first_at.isoformat()
    await _pass(harness)
    assert _counts(harness) == dict.fromkeys(REVIEWERS, 1)

    clock.set(first_at + timedelta(hours=12, seconds=1))  # the window has passed
    status, again = await _remind(harness, now=True)
    assert status == 202 and again["queued"] == 3
    await harness.app[OUTBOX].run_once()
    assert _counts(harness) == dict.fromkeys(REVIEWERS, 2)

    audit = await harness.app[STORE].list_audit(actions=["manual_reminder"])
    assert [a.detail["count"] for a in audit] == [3, 0, 0, 3]
    assert [a.detail["alreadyReminded"] for a in audit] == [[], REVIEWERS, REVIEWERS, []]


async def test_manual_reminders_wait_for_working_hours_and_snooze_unless_now(
    harness: BotOnEmulator, clock: ManualClock
) -> None:
    tuesday_evening = clock.now()
    wednesday_0800_berlin = datetime(2026, 12, 9, 7, 0, tzinfo=UTC)
    status, body = await _remind(harness)
    assert status == 202 and body["queued"] == 3 and body["mode"] == "working_hours"
    await _pass(harness)
    # New York and Seattle are at work; Berlin is at 20:00 and hears nothing tonight.
    assert _counts(harness) == {ALEX: 1, DIEGO: 0, MEGAN: 1}
    store = harness.app[STORE]
    (deferred,) = await store.list_audit(actions=["reminder_deferred"])
    assert (deferred.detail["recipient"], deferred.result) == (DIEGO, "outside working hours")
    assert deferred.detail["until"] == wednesday_0800_berlin.isoformat()

    # Asking again tells the admin where each reminder is.
    status, again = await _remind(harness)
    rows = _by_reviewer(again)
    assert status == 200 and again["queued"] == 0
    assert rows[DIEGO]["state"] == "waiting"
    assert rows[DIEGO]["sendAt"] == wednesday_0800_berlin.isoformat()
    assert "outside working hours" in rows[DIEGO]["note"]
    assert (rows[ALEX]["state"], rows[ALEX]["sentAt"]) == ("sent", tuesday_evening.isoformat())

    clock.set(wednesday_0800_berlin - timedelta(minutes=1))
    await _pass(harness)
    assert _counts(harness)[DIEGO] == 0
    clock.set(wednesday_0800_berlin)
    await _pass(harness)
    assert _counts(harness)[DIEGO] == 1
    assert _reminders_to(harness, DIEGO)[0].sent_at == wednesday_0800_berlin

    # Diego snoozes until tomorrow morning; the next remind-now waits for the snooze to end, and
    # the reminder due at its end is the one he gets — one message, not two.
    clock.set(datetime(2026, 12, 9, 10, 0, tzinfo=UTC))
    snooze = await harness.teams.card_action(
        DIEGO, "snooze", {"instanceId": MARKETING, "until": "tomorrow"}
    )
    assert snooze.body["statusCode"] == 200
    thursday_0800_berlin = datetime(2026, 12, 10, 7, 0, tzinfo=UTC)
    assert await store.get_snooze(reviewer_oid=DIEGO, instance_id=MARKETING) == (
        thursday_0800_berlin
    )
    clock.set(datetime(2026, 12, 9, 19, 30, tzinfo=UTC))  # the first window has passed
    status, body = await _remind(harness)
    assert status == 202 and body["queued"] == 3
    await _pass(harness)
    assert _counts(harness) == {ALEX: 2, DIEGO: 1, MEGAN: 2}
    snoozed = [
        a for a in await store.list_audit(actions=["reminder_deferred"]) if a.result == "snoozed"
    ]
    assert [a.detail["until"] for a in snoozed] == [thursday_0800_berlin.isoformat()]

    clock.set(thursday_0800_berlin)
    await _pass(harness)
    assert _counts(harness)[DIEGO] == 2
    assert _reminders_to(harness, DIEGO)[1].sent_at == thursday_0800_berlin
    (covered,) = await store.list_audit(actions=["reminder_covered"])
    assert covered.detail["recipient"] == DIEGO
    await _pass(harness)
    assert _counts(harness)[DIEGO] == 2

    # The explicit override: at 21:00 in Berlin, sent at once.
    late = datetime(2026, 12, 10, 20, 0, tzinfo=UTC)
    clock.set(late)
    status, body = await _remind(harness, now=True)
    assert status == 202 and body["mode"] == "now"
    await harness.app[OUTBOX].run_once()
    assert _counts(harness)[DIEGO] == 3
    assert _reminders_to(harness, DIEGO)[2].sent_at == late

    modes = [a.detail["mode"] for a in await store.list_audit(actions=["manual_reminder"])]
    assert modes == ["working_hours", "working_hours", "working_hours", "now"]


# -- with the wall clock, the route and the command line together ------------------------------


async def test_the_route_and_the_command_line_share_the_window(tmp_path: Path) -> None:
    async with bot_on_emulator(tmp_path, schedule=QUIET, admin_token=TOKEN) as harness:
        await harness.app[DISCOVERY].run_once()
        await harness.app[OUTBOX].run_once()
        status, first = await _remind(harness, now=True)
        assert status == 202 and first["queued"] == 3
        await _deliver_until(harness, lambda: all(_counts(harness).values()))

        env = settings_environment(harness.settings)
        for extra in (["--now"], []):
            cli = subprocess.run(
                [sys.executable, str(ROOT / "app.py"), "remind", "--instance", MARKETING, *extra],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert cli.returncode == 0, cli.stderr
            assert "queued no reminder" in cli.stdout
            assert "not reminded again" in cli.stdout and "3 reviewer(s)" in cli.stdout
            for reviewer in REVIEWERS:
                line = next(x for x in cli.stdout.splitlines() if reviewer in x)
                assert "by admin; sent" in line

        status, last = await _remind(harness)
        assert status == 200 and last["queued"] == 0
        await harness.app[REMINDERS].run_once()
        await harness.app[OUTBOX].run_once()
        assert _counts(harness) == dict.fromkeys(REVIEWERS, 1)
        actors = [a.actor for a in await harness.app[STORE].list_audit(actions=["manual_reminder"])]
        assert actors == ["admin", "cli", "cli", "admin"]


async def test_the_window_is_a_setting(tmp_path: Path, clock: ManualClock) -> None:
    with pytest.raises(SettingsError, match=r"^MANUAL_REMINDER_WINDOW_H must be a positive"):
        load_settings({"MANUAL_REMINDER_WINDOW_H": "0"}, env_file=None)
    assert (
        load_settings({"MANUAL_REMINDER_WINDOW_H": "2.5"}, env_file=None).manual_reminder_window_h
        == 2.5
    )

    config = EmulatorConfig(seed="demo", clock=clock, teams_limits=TeamsLimits.unlimited())
    async with bot_on_emulator(
        tmp_path,
        config=config,
        clock=clock,
        schedule=QUIET,
        admin_token=TOKEN,
        manual_reminder_window_h=1.0,
    ) as harness:
        await harness.app[DISCOVERY].run_once()
        status, first = await _remind(harness, now=True)
        assert status == 202 and first["windowHours"] == 1.0
        clock.advance(timedelta(minutes=59))
        assert (await _remind(harness, now=True))[1]["queued"] == 0
        clock.advance(timedelta(minutes=1, seconds=1))
        assert (await _remind(harness, now=True))[1]["queued"] == 3


# -- a failure at any point loses nothing and sends nothing twice ------------------------------


@contextmanager
def _failing_insert(harness: BotOnEmulator, table: str, condition: str) -> Iterator[None]:
    """A fault in the database itself, whatever code path writes: a trigger aborts the matching
    insert (and with it the transaction it is in), as a locked or full database would."""
    path = harness.settings.database_url.removeprefix("sqlite:///")
    with closing(sqlite3.connect(path)) as db:
        db.execute(
            f"CREATE TRIGGER injected_fault BEFORE INSERT ON {table} WHEN {condition} "
            "BEGIN SELECT RAISE(ABORT, 'database is locked (injected)'); END"
        )
        db.commit()
        try:
            yield
        finally:
            db.execute("DROP TRIGGER injected_fault")
            db.commit()


# Where remind-now can fail: queuing the first reviewer's reminder, the second's (the first
# already queued in the same request), or writing the request's audit line after all of them.
CRASH_POINTS = {
    "first reviewer": ("outbox", f"NEW.key LIKE 'manual%|{REVIEWERS[0]}|%'"),
    "second reviewer": ("outbox", f"NEW.key LIKE 'manual%|{REVIEWERS[1]}|%'"),
    "audit line": ("audit", "NEW.action = 'manual_reminder'"),
}


@pytest.mark.parametrize("point", sorted(CRASH_POINTS))
async def test_a_failed_remind_now_can_be_retried_and_reminds_everyone_once(
    harness: BotOnEmulator, clock: ManualClock, point: str
) -> None:
    with _failing_insert(harness, *CRASH_POINTS[point]):
        status, _ = await _remind(harness, now=True)
    assert status == 500
    # Nothing of the failed request holds the window: the admin's retry reminds everyone.
    clock.advance(timedelta(minutes=1))
    status, retry = await _remind(harness, now=True)
    assert status == 202 and retry["queued"] == 3, retry
    await harness.app[OUTBOX].run_once()
    assert _counts(harness) == dict.fromkeys(REVIEWERS, 1)
    # Every queued reminder has its audit line, and a further request sends nothing.
    status, again = await _remind(harness, now=True)
    assert status == 200 and {row["state"] for row in again["reviewers"]} == {"sent"}
    audit = await harness.app[STORE].list_audit(actions=["manual_reminder"])
    assert [(a.detail["count"], a.detail["reviewers"]) for a in audit] == [
        (3, REVIEWERS),
        (0, []),
    ]
    await _pass(harness)
    assert _counts(harness) == dict.fromkeys(REVIEWERS, 1)


async def test_a_failed_request_for_working_hours_is_retried_without_loss(
    harness: BotOnEmulator, clock: ManualClock
) -> None:
    with _failing_insert(harness, *CRASH_POINTS["second reviewer"]):
        assert (await _remind(harness))[0] == 500
    status, retry = await _remind(harness)
    assert status == 202 and retry["queued"] == 3
    await _pass(harness)
    # 20:00 in Berlin: Diego's waits for his morning; the others are at work.
    assert _counts(harness) == {ALEX: 1, DIEGO: 0, MEGAN: 1}
    clock.set(datetime(2026, 12, 9, 7, 0, tzinfo=UTC))
    await _pass(harness)
    assert _counts(harness) == dict.fromkeys(REVIEWERS, 1)


# -- --now overrides a request still waiting in the window -------------------------------------


async def test_now_sends_a_waiting_request_at_once_as_one_message(
    harness: BotOnEmulator, clock: ManualClock
) -> None:
    wednesday_0800_berlin = datetime(2026, 12, 9, 7, 0, tzinfo=UTC)
    status, first = await _remind(harness)
    assert status == 202 and first["mode"] == "working_hours"
    await _pass(harness)
    assert _counts(harness) == {ALEX: 1, DIEGO: 0, MEGAN: 1}

    # 20:05 in Berlin the admin asks again, now: Diego's waiting reminder goes out at once.
    clock.advance(timedelta(minutes=5))
    status, override = await _remind(harness, now=True)
    rows = _by_reviewer(override)
    assert status == 202 and override["queued"] == 1, override
    assert (rows[DIEGO]["status"], rows[DIEGO]["mode"]) == ("queued", "now")
    assert f"instead of waiting until {wednesday_0800_berlin.isoformat()}" in rows[DIEGO]["note"]
    assert "outside working hours" in rows[DIEGO]["note"]
    for reviewer in (ALEX, MEGAN):
        assert (rows[reviewer]["status"], rows[reviewer]["state"]) == ("already_reminded", "sent")
    await harness.app[OUTBOX].run_once()
    assert _counts(harness) == dict.fromkeys(REVIEWERS, 1)
    assert _reminders_to(harness, DIEGO)[0].sent_at == clock.now()

    store = harness.app[STORE]
    (audited,) = await store.list_audit(actions=["reminder_overridden"])
    assert (audited.actor, audited.result) == ("admin", "sent now")
    assert audited.detail["recipient"] == DIEGO
    assert audited.detail["until"] == wednesday_0800_berlin.isoformat()
    assert audited.detail["requestedAt"] == (clock.now() - timedelta(minutes=5)).isoformat()

    # The window now describes it as sent, and his morning brings nothing more.
    status, again = await _remind(harness, now=True)
    assert status == 200 and _by_reviewer(again)[DIEGO]["state"] == "sent"
    clock.set(wednesday_0800_berlin)
    await _pass(harness)
    assert _counts(harness) == dict.fromkeys(REVIEWERS, 1)
