"""The reminder & escalation schedule: a simulated two-week review, and each rule on its own.

The simulation drives the real functions with a :class:`ManualClock` moved in 30-minute steps and
claims every due notification against a real SQLite store, evaluated by two "replicas" per step,
so that it shows the exact schedule each kind of reviewer gets and that each slot is sent once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.clock import ManualClock
from bot.notify.policy import (
    DEFAULT_POLICY,
    PolicyPoint,
    ReminderPolicy,
    ScheduleSettings,
)
from bot.notify.schedule import (
    MAX_SNOOZE_HOURS,
    NUDGE_INTERVAL,
    Due,
    NotificationKind,
    SnoozeChoice,
    SnoozeError,
    claim_due,
    due_notifications,
    escalation_point,
    may_nudge,
    notification_id,
    nudge_key,
    parse_snooze,
    plan,
    snooze_until,
)
from bot.notify.worktime import DEFAULT_WORKING_HOURS, WorkingHours, hours_from_mailbox
from bot.store import SqlStore, open_store


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# The review: Monday 2026-12-07 12:00 UTC to Monday 2026-12-21 12:00 UTC, with Wednesday
# 2026-12-16 a holiday. Default policy: assigned, halfway, end-3wd, end-1wd, last-day;
# escalation at end-2wd.
START = utc(2026, 12, 7, 12)
END = utc(2026, 12, 21, 12)
HOLIDAY = date(2026, 12, 16)
POLICY = ReminderPolicy(holidays=frozenset({HOLIDAY}))
INSTANCE = "inst-0001"
UTC_HOURS = DEFAULT_WORKING_HOURS  # 09:00-17:00 Mon-Fri, UTC


def _mailbox(
    zone: str, start: str = "09:00:00.0000000", end: str = "17:00:00.0000000"
) -> dict[str, object]:
    return {
        "timeZone": zone,
        "workingHours": {
            "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
            "startTime": start,
            "endTime": end,
            "timeZone": {"name": zone},
        },
    }


# Brisbane is UTC+10 all year (no daylight saving); "E. Australia Standard Time" in Windows terms.
BRISBANE = hours_from_mailbox(_mailbox("E. Australia Standard Time"), default=UTC_HOURS)
# A manager in Seattle, 08:00-16:00 local.
SEATTLE_MANAGER = hours_from_mailbox(
    _mailbox("Pacific Standard Time", "08:00:00.0000000", "16:00:00.0000000"), default=UTC_HOURS
)


@dataclass
class Reviewer:
    """One simulated reviewer and what they do over the review."""

    oid: str
    hours: WorkingHours
    pending: int = 5
    manager_oid: str | None = "manager-1"
    manager_hours: WorkingHours | None = None
    # When they finish all their items (pending drops to 0).
    finishes_at: datetime | None = None
    # (when they click, what they choose) — applied at the first step at or after ``when``.
    snoozes: list[tuple[datetime, SnoozeChoice]] = field(default_factory=list)
    snoozed_until: datetime | None = None
    snooze_results: list[tuple[datetime, datetime, bool]] = field(default_factory=list)


@dataclass(frozen=True)
class Sent:
    at: datetime
    kind: NotificationKind
    point: str
    reviewer_oid: str
    recipient: str | None  # the manager for escalations; None when the reviewer has none


@pytest.fixture
async def store(tmp_path: Path, clock: ManualClock) -> AsyncIterator[SqlStore]:
    store = await open_store(f"sqlite:///{tmp_path / 'bot.db'}", clock=clock)
    try:
        yield store
    finally:
        await store.close()


async def simulate(
    store: SqlStore,
    reviewers: list[Reviewer],
    *,
    step: timedelta = timedelta(minutes=30),
    days: int = 15,
    replicas: int = 2,
) -> list[Sent]:
    """Move a clock from START over ``days`` in ``step``s; each replica evaluates every reviewer
    at every step and sends what it manages to claim."""
    clock = ManualClock(START)
    sent: list[Sent] = []
    stop = START + timedelta(days=days)
    while clock.now() <= stop:
        now = clock.now()
        for reviewer in reviewers:
            if reviewer.finishes_at is not None and now >= reviewer.finishes_at:
                reviewer.pending = 0
            while reviewer.snoozes and reviewer.snoozes[0][0] <= now:
                _, choice = reviewer.snoozes.pop(0)
                result = snooze_until(
                    choice,
                    now=now,
                    hours=reviewer.hours,
                    policy=POLICY,
                    instance_start=START,
                    instance_end=END,
                    assigned_at=START,
                )
                reviewer.snoozed_until = result.until
                reviewer.snooze_results.append((now, result.until, result.capped))
            for _ in range(replicas):
                dues = due_notifications(
                    now=now,
                    instance_start=START,
                    instance_end=END,
                    assigned_at=START,
                    reviewer_oid=reviewer.oid,
                    instance_id=INSTANCE,
                    pending=reviewer.pending,
                    policy=POLICY,
                    hours=reviewer.hours,
                    snoozed_until=reviewer.snoozed_until,
                    escalation_hours=reviewer.manager_hours,
                )
                for item in await claim_due(store, dues):
                    recipient = reviewer.oid if item.kind == "reminder" else reviewer.manager_oid
                    sent.append(Sent(now, item.kind, item.point, item.reviewer_oid, recipient))
        clock.advance(step)
    return sent


def schedule_of(sent: list[Sent], oid: str) -> list[tuple[str, str, datetime]]:
    return [(s.kind, s.point, s.at) for s in sent if s.reviewer_oid == oid]


async def test_two_week_review(store: SqlStore) -> None:
    early = Reviewer("early", UTC_HOURS, finishes_at=utc(2026, 12, 9, 10))
    idle = Reviewer("idle", UTC_HOURS, manager_oid="mgr-seattle", manager_hours=SEATTLE_MANAGER)
    sydney = Reviewer("brisbane", BRISBANE)
    snoozer = Reviewer(
        "snoozer",
        UTC_HOURS,
        snoozes=[
            # Right after the halfway reminder: 72 hours, over end-3wd (Tue 15th).
            (utc(2026, 12, 14, 12, 30), timedelta(hours=72)),
            # Friday after end-1wd: "tomorrow" is Saturday, so Monday 09:00 — the last reminder.
            (utc(2026, 12, 18, 9, 30), "tomorrow"),
        ],
    )
    orphan = Reviewer("no-manager", UTC_HOURS, manager_oid=None)
    reviewers = [early, idle, sydney, snoozer, orphan]

    sent = await simulate(store, reviewers)

    assert schedule_of(sent, "early") == [("reminder", "assigned", utc(2026, 12, 7, 12))]

    # Never acts: every reminder, then the escalation — sent in the manager's working hours
    # (Thursday 08:00 in Seattle = 16:00 UTC). Wednesday the 16th is a holiday, so end-3wd is
    # Tuesday the 15th, end-2wd Thursday the 17th.
    assert schedule_of(sent, "idle") == [
        ("reminder", "assigned", utc(2026, 12, 7, 12)),
        ("reminder", "halfway", utc(2026, 12, 14, 12)),
        ("reminder", "end-3wd", utc(2026, 12, 15, 9)),
        ("escalation", "end-2wd", utc(2026, 12, 17, 16)),
        ("reminder", "end-1wd", utc(2026, 12, 18, 9)),
        ("reminder", "last-day", utc(2026, 12, 21, 9)),
    ]
    assert [s.recipient for s in sent if s.reviewer_oid == "idle" and s.kind == "escalation"] == [
        "mgr-seattle"
    ]

    # UTC+10, 09:00-17:00 local. Assigned at 22:00 local: waits until Tuesday 09:00 local.
    # Halfway (Monday 22:00 local) moves to Tuesday 09:00 local, the same working moment as
    # end-3wd (the holiday is local Wednesday): they collapse into end-3wd.
    assert schedule_of(sent, "brisbane") == [
        ("reminder", "assigned", utc(2026, 12, 7, 23)),
        ("reminder", "end-3wd", utc(2026, 12, 14, 23)),
        ("escalation", "end-2wd", utc(2026, 12, 16, 23)),
        ("reminder", "end-1wd", utc(2026, 12, 17, 23)),
        ("reminder", "last-day", utc(2026, 12, 20, 23)),
    ]
    for item in sent:
        if item.reviewer_oid == "brisbane":
            assert BRISBANE.is_working_moment(item.at), item
            local = item.at.astimezone(ZoneInfo("Australia/Brisbane"))
            assert time(9) <= local.time() < time(17) and local.weekday() < 5

    # The 72-hour snooze swallows end-3wd and comes back as its own reminder on Thursday 12:30;
    # the escalation is not the reviewer's to snooze. "Tomorrow" on Friday lands on Monday 09:00,
    # which is the last reminder (never skipped).
    assert snoozer.snooze_results == [
        (utc(2026, 12, 14, 12, 30), utc(2026, 12, 17, 12, 30), False),
        (utc(2026, 12, 18, 9, 30), utc(2026, 12, 21, 9), False),
    ]
    assert schedule_of(sent, "snoozer") == [
        ("reminder", "assigned", utc(2026, 12, 7, 12)),
        ("reminder", "halfway", utc(2026, 12, 14, 12)),
        ("escalation", "end-2wd", utc(2026, 12, 17, 9)),
        ("reminder", "snooze-20261217T123000Z", utc(2026, 12, 17, 12, 30)),
        ("reminder", "end-1wd", utc(2026, 12, 18, 9)),
        ("reminder", "last-day", utc(2026, 12, 21, 9)),
    ]

    # No manager: the escalation is still computed, about this reviewer; the caller decides whom
    # to tell (here: nobody was resolved).
    orphan_escalations = [
        s for s in sent if s.reviewer_oid == "no-manager" and s.kind == "escalation"
    ]
    assert [(s.point, s.at, s.recipient) for s in orphan_escalations] == [
        ("end-2wd", utc(2026, 12, 17, 9), None)
    ]

    # Nothing on weekends or the holiday (in the recipient's calendar), nothing after the end.
    for item in sent:
        reviewer = next(r for r in reviewers if r.oid == item.reviewer_oid)
        calendar = (
            reviewer.manager_hours
            if item.kind == "escalation" and reviewer.manager_hours
            else reviewer.hours
        ).with_holidays(POLICY.holidays)
        assert calendar.is_working_moment(item.at), item
        assert item.at < END

    # One send per slot although two replicas evaluated every step; ids differ per point.
    ids = [notification_id(s.kind, s.reviewer_oid, INSTANCE, s.point) for s in sent]
    assert len(ids) == len(set(ids)) == 1 + 6 + 5 + 6 + 6


async def test_replicas_racing_claim_each_slot_once(store: SqlStore) -> None:
    now = utc(2026, 12, 14, 12)
    dues = due_notifications(
        now=now,
        instance_start=START,
        instance_end=END,
        assigned_at=START,
        reviewer_oid="r1",
        instance_id=INSTANCE,
        pending=3,
        policy=POLICY,
        hours=UTC_HOURS,
    )
    assert [d.point for d in dues] == ["halfway"]
    results = await asyncio.gather(*(claim_due(store, dues) for _ in range(8)))
    assert sorted(len(r) for r in results) == [0] * 7 + [1]
    # A restart evaluates the same moment again: nothing new to claim.
    assert await claim_due(store, dues) == []


# -- the rules one by one ----------------------------------------------------------------------


def due_at(
    now: datetime,
    *,
    pending: int = 4,
    policy: ReminderPolicy = POLICY,
    hours: WorkingHours = UTC_HOURS,
    assigned_at: datetime = START,
    snoozed_until: datetime | None = None,
    already_sent: frozenset[str] = frozenset(),
    start: datetime = START,
    end: datetime = END,
) -> list[tuple[str, str]]:
    return [
        (d.kind, d.point)
        for d in due_notifications(
            now=now,
            instance_start=start,
            instance_end=end,
            assigned_at=assigned_at,
            reviewer_oid="r1",
            instance_id=INSTANCE,
            pending=pending,
            policy=policy,
            hours=hours,
            snoozed_until=snoozed_until,
            already_sent=already_sent,
        )
    ]


def test_only_reviewers_with_pending_items_are_reminded() -> None:
    assert due_at(utc(2026, 12, 15, 9)) == [("reminder", "end-3wd")]
    assert due_at(utc(2026, 12, 15, 9), pending=0) == []
    assert due_at(utc(2026, 12, 17, 9), pending=0) == []  # no escalation either
    assert due_at(utc(2026, 12, 17, 9)) == [("reminder", "end-3wd"), ("escalation", "end-2wd")]


def test_nothing_after_the_end() -> None:
    assert due_at(END) == []
    assert due_at(END + timedelta(days=1)) == []


def test_outside_working_hours_waits_for_the_next_period() -> None:
    # end-3wd is due Tuesday 09:00; at 08:59 nothing, at 17:30 (missed window) nothing either,
    # and the next morning it is still the latest reminder, so it goes out then.
    assert due_at(utc(2026, 12, 15, 8, 59)) == []
    assert due_at(utc(2026, 12, 15, 9, 0)) == [("reminder", "end-3wd")]
    assert due_at(utc(2026, 12, 15, 17, 30)) == []
    assert due_at(utc(2026, 12, 17, 9, 0)) == [("reminder", "end-3wd"), ("escalation", "end-2wd")]


def test_after_downtime_only_the_latest_reminder_is_due() -> None:
    # A bot that was down from Monday to Friday sends end-1wd, not halfway + end-3wd + end-1wd.
    assert due_at(utc(2026, 12, 18, 10)) == [("reminder", "end-1wd"), ("escalation", "end-2wd")]


def test_already_sent_ids_are_not_due_again() -> None:
    sent = frozenset(
        {
            notification_id("reminder", "r1", INSTANCE, "end-1wd"),
            notification_id("escalation", "r1", INSTANCE, "end-2wd"),
        }
    )
    assert due_at(utc(2026, 12, 18, 10), already_sent=sent) == []


def test_late_assignment_skips_earlier_points_and_the_escalation() -> None:
    assigned = utc(2026, 12, 17, 10, 20)  # after halfway, end-3wd and the escalation point
    slots = plan(
        policy=POLICY,
        hours=UTC_HOURS,
        instance_start=START,
        instance_end=END,
        assigned_at=assigned,
    )
    assert [(s.kind, s.point, s.send_at) for s in slots] == [
        ("reminder", "assigned", assigned),
        ("reminder", "end-1wd", utc(2026, 12, 18, 9)),
        ("reminder", "last-day", utc(2026, 12, 21, 9)),
    ]
    assert due_at(utc(2026, 12, 17, 10, 30), assigned_at=assigned) == [("reminder", "assigned")]


def test_policy_without_assigned_does_not_fire_stale_points_at_assignment() -> None:
    policy = ReminderPolicy(points=(PolicyPoint("halfway"), PolicyPoint("last-day")))
    assigned = utc(2026, 12, 15, 10)
    assert due_at(utc(2026, 12, 15, 10, 30), policy=policy, assigned_at=assigned) == []


@pytest.mark.parametrize("reverse", [False, True])
def test_points_in_one_working_moment_collapse_into_the_later_point(reverse: bool) -> None:
    # Start on Friday evening: "assigned" and "start+1wd" both wait for Monday 09:00. The order
    # the points are listed in does not matter.
    start = utc(2026, 12, 4, 18)
    points = (PolicyPoint("assigned"), PolicyPoint("start", 1))
    policy = ReminderPolicy(points=points[::-1] if reverse else points)
    slots = plan(
        policy=policy, hours=UTC_HOURS, instance_start=start, instance_end=END, assigned_at=start
    )
    assert [(s.point, s.send_at) for s in slots if s.kind == "reminder"] == [
        ("start+1wd", utc(2026, 12, 7, 9))
    ]


def test_end_on_a_weekend_counts_back_from_friday() -> None:
    end = utc(2026, 12, 20, 23, 59)  # Sunday
    slots = plan(
        policy=DEFAULT_POLICY,
        hours=UTC_HOURS,
        instance_start=START,
        instance_end=end,
        assigned_at=START,
    )
    by_point = {s.point: s.send_at for s in slots}
    assert by_point["last-day"] == utc(2026, 12, 18, 9)
    assert by_point["end-1wd"] == utc(2026, 12, 17, 9)
    assert by_point["end-2wd"] == utc(2026, 12, 16, 9)
    assert by_point["end-3wd"] == utc(2026, 12, 15, 9)


def test_escalation_is_planned_in_the_recipients_hours() -> None:
    def escalation_time(escalation_hours: WorkingHours | None) -> datetime:
        slots = plan(
            policy=POLICY,
            hours=UTC_HOURS,
            instance_start=START,
            instance_end=END,
            assigned_at=START,
            escalation_hours=escalation_hours,
        )
        (slot,) = (s for s in slots if s.kind == "escalation")
        return slot.send_at

    # The point is the reviewer's (Thursday, their end-2wd); the time is the manager's morning.
    assert escalation_time(None) == utc(2026, 12, 17, 9)
    assert escalation_time(SEATTLE_MANAGER) == utc(2026, 12, 17, 16)


def test_the_escalation_point_is_the_reviewers_and_needs_nobody_elses_hours() -> None:
    def point(
        policy: ReminderPolicy = POLICY,
        assigned_at: datetime = START,
        instance_end: datetime = END,
    ) -> datetime | None:
        return escalation_point(
            policy=policy,
            hours=UTC_HOURS,
            instance_start=START,
            instance_end=instance_end,
            assigned_at=assigned_at,
        )

    # Where plan() puts the escalation before the recipient's hours apply.
    (slot,) = (
        s
        for s in plan(
            policy=POLICY,
            hours=UTC_HOURS,
            instance_start=START,
            instance_end=END,
            assigned_at=START,
            escalation_hours=SEATTLE_MANAGER,
        )
        if s.kind == "escalation"
    )
    assert point() == slot.nominal_at == utc(2026, 12, 17, 9)
    assert point(policy=ReminderPolicy(escalation=None)) is None
    assert point(assigned_at=utc(2026, 12, 17, 10)) is None  # assigned after the point
    assert point(instance_end=START) is None


def test_escalation_can_be_off_or_moved() -> None:
    off = ReminderPolicy(escalation=None, holidays=POLICY.holidays)
    assert ("escalation", "end-2wd") not in due_at(utc(2026, 12, 17, 9), policy=off)
    later = ReminderPolicy(escalation=PolicyPoint("last-day"))
    assert ("escalation", "last-day") in due_at(utc(2026, 12, 21, 9), policy=later)
    assert ("escalation", "last-day") not in due_at(utc(2026, 12, 18, 16), policy=later)


def test_policy_from_settings_drives_the_schedule() -> None:
    settings = ScheduleSettings.from_env(
        {
            "REMINDER_POLICY": "assigned,start+2wd,last-day",
            "ESCALATION": "end-1wd",
            "HOLIDAYS": "2026-12-09",
        }
    )
    slots = plan(
        policy=settings.default_policy,
        hours=settings.default_hours,
        instance_start=START,
        instance_end=END,
        assigned_at=START,
    )
    assert [(s.kind, s.point, s.send_at) for s in slots] == [
        ("reminder", "assigned", START),
        # Two working days after Monday the 7th, Wednesday the 9th being a holiday: Thursday.
        ("reminder", "start+2wd", utc(2026, 12, 10, 9)),
        ("escalation", "end-1wd", utc(2026, 12, 18, 9)),
        ("reminder", "last-day", utc(2026, 12, 21, 9)),
    ]


def test_ids_are_deterministic_and_distinct() -> None:
    def ids() -> list[str]:
        return [
            notification_id(s.kind, "r1", INSTANCE, s.point)
            for s in plan(
                policy=POLICY,
                hours=UTC_HOURS,
                instance_start=START,
                instance_end=END,
                assigned_at=START,
            )
        ]

    first = ids()
    assert first == ids()
    assert len(set(first)) == len(first) == 6
    assert "reminder|r1|inst-0001|end-3wd" in first
    assert "escalation|r1|inst-0001|end-2wd" in first
    due = Due(
        kind="escalation",
        point="end-2wd",
        reviewer_oid="r1",
        instance_id=INSTANCE,
        send_at=utc(2026, 12, 17, 9),
        pending=3,
        deadline=END,
    )
    assert due.id == "escalation|r1|inst-0001|end-2wd"


def test_inverted_instance_plans_nothing() -> None:
    assert (
        plan(
            policy=POLICY,
            hours=UTC_HOURS,
            instance_start=END,
            instance_end=START,
            assigned_at=START,
        )
        == []
    )


# -- snooze ------------------------------------------------------------------------------------


def snooze(
    choice: SnoozeChoice, now: datetime, hours: WorkingHours = UTC_HOURS
) -> tuple[datetime, bool]:
    result = snooze_until(
        choice,
        now=now,
        hours=hours,
        policy=POLICY,
        instance_start=START,
        instance_end=END,
        assigned_at=START,
    )
    return result.until, result.capped


def test_snooze_until_tomorrow() -> None:
    assert snooze("tomorrow", utc(2026, 12, 8, 15)) == (utc(2026, 12, 9, 9), False)
    # Friday → Monday; Tuesday → Thursday because Wednesday the 16th is a holiday.
    assert snooze("tomorrow", utc(2026, 12, 11, 15)) == (utc(2026, 12, 14, 9), False)
    assert snooze("tomorrow", utc(2026, 12, 15, 10)) == (utc(2026, 12, 17, 9), False)


def test_snooze_tomorrow_is_the_recipients_tomorrow() -> None:
    # Monday 13:30 UTC is Monday 23:30 in Brisbane: tomorrow there is Tuesday, 09:00 local.
    until, _ = snooze("tomorrow", utc(2026, 12, 7, 13, 30), BRISBANE)
    assert until == utc(2026, 12, 7, 23)
    # Monday 14:30 UTC is already Tuesday 00:30 in Brisbane: tomorrow is Wednesday — the local
    # holiday — so Thursday 09:00 local.
    until, _ = snooze("tomorrow", utc(2026, 12, 14, 14, 30), BRISBANE)
    assert until == utc(2026, 12, 16, 23)


def test_snooze_for_hours_ends_in_working_hours() -> None:
    assert snooze(timedelta(hours=2), utc(2026, 12, 8, 10)) == (utc(2026, 12, 8, 12), False)
    assert snooze(timedelta(hours=4), utc(2026, 12, 8, 15)) == (utc(2026, 12, 9, 9), False)


def test_snooze_never_passes_the_last_reminder() -> None:
    assert snooze(timedelta(hours=100), utc(2026, 12, 17, 10)) == (utc(2026, 12, 21, 9), True)
    # Even after the last reminder, the cap holds (and that reminder is not sent twice).
    until, capped = snooze("tomorrow", utc(2026, 12, 21, 10))
    assert (until, capped) == (utc(2026, 12, 21, 9), True)
    sent = frozenset(
        {
            notification_id("reminder", "r1", INSTANCE, "last-day"),
            notification_id("escalation", "r1", INSTANCE, "end-2wd"),
        }
    )
    assert due_at(utc(2026, 12, 21, 10), snoozed_until=until, already_sent=sent) == []


def test_snooze_silences_reminders_until_it_ends() -> None:
    until = utc(2026, 12, 17, 12, 30)
    assert due_at(utc(2026, 12, 15, 9), snoozed_until=until) == []
    assert due_at(utc(2026, 12, 17, 12), snoozed_until=until) == [("escalation", "end-2wd")]
    assert due_at(until, snoozed_until=until) == [
        ("reminder", "snooze-20261217T123000Z"),
        ("escalation", "end-2wd"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tomorrow", "tomorrow"),
        (" Tomorrow ", "tomorrow"),
        ("4h", timedelta(hours=4)),
        ("1 h", timedelta(hours=1)),
    ],
)
def test_parse_snooze(text: str, expected: SnoozeChoice) -> None:
    assert parse_snooze(text) == expected


@pytest.mark.parametrize(
    "text", ["0h", "-1h", f"{MAX_SNOOZE_HOURS + 1}h", "later", "4", "4.5h", "", 4, None, ["4h"]]
)
def test_parse_snooze_refuses_other_choices(text: object) -> None:
    with pytest.raises(SnoozeError, match="tomorrow"):
        parse_snooze(text)


def test_snooze_refuses_non_positive_durations() -> None:
    with pytest.raises(SnoozeError):
        snooze(timedelta(0), utc(2026, 12, 8, 10))


# -- nudges ------------------------------------------------------------------------------------


def test_may_nudge_once_per_day() -> None:
    last = utc(2026, 12, 17, 9)
    assert may_nudge(None, last)
    assert not may_nudge(last, last + timedelta(hours=23, minutes=59))
    assert may_nudge(last, last + NUDGE_INTERVAL)
    assert not may_nudge(last + timedelta(hours=1), last)  # clock skew: counts as recent


async def test_nudge_key_enforces_the_interval_in_the_store(
    store: SqlStore, clock: ManualClock
) -> None:
    key = nudge_key("r1", INSTANCE)
    ttl_s = NUDGE_INTERVAL.total_seconds()
    assert await store.remember_once(key=key, ttl_s=ttl_s)
    clock.advance(NUDGE_INTERVAL - timedelta(seconds=1))
    assert not await store.remember_once(key=key, ttl_s=ttl_s)
    assert await store.remember_once(key=nudge_key("r2", INSTANCE), ttl_s=ttl_s)
    clock.advance(timedelta(seconds=1))
    assert await store.remember_once(key=key, ttl_s=ttl_s)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        due_at(datetime(2026, 12, 15, 9))
