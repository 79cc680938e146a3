"""Which reminder or escalation is due for whom, and when it may be sent: pure, clock-driven logic.

For one (reviewer, instance) pair, :func:`plan` turns a :class:`~bot.notify.policy.ReminderPolicy`
into *slots*, each with the first moment it may be sent; :func:`due_notifications` says which of
them to send at ``now``. The rules:

- **Point → time.** ``assigned`` is the assignment time; ``halfway`` the middle of the instance;
  ``start+Nwd`` / ``end-Nwd`` / ``last-day`` the start of a working day counted in the reviewer's
  calendar (their zone, working days and hours, minus the policy's holidays). The "last working
  day" is the last one whose working period starts before the instance ends.
- **Working hours.** A slot's send time is the first working moment at or after its point; a slot
  that cannot be sent before the instance ends is dropped. Nothing is due while ``now`` is
  outside the recipient's working hours; it waits for the next working period.
- **Only pending work.** Nothing is due when ``pending <= 0`` or the instance has ended.
- **One reminder at a time.** Of the reminder slots whose time has come, only the latest is due:
  a reviewer (or a bot that was down for two days) never receives a burst of stale reminders.
  Points before the reviewer's assignment are dropped (the assignment notification covers them);
  two points that land in the same working moment collapse into the one nearer the deadline.
- **Snooze.** While ``now < snoozed_until`` no reminder is due. At ``snoozed_until`` a reminder
  slot ``snooze-<UTC time>`` comes due ("remind me tomorrow" means a reminder tomorrow), replacing
  every point that fell inside the snooze. :func:`snooze_until` caps the snooze at the send time
  of the policy's last reminder, so a snooze never silences the final reminder before the deadline.
- **Escalation.** At the escalation point, if the reviewer still has pending items, one
  escalation is due *about* that reviewer; the caller resolves their manager (and decides what to
  do when there is none). It is sent inside ``escalation_hours`` (the manager's, when known) and is
  not affected by the reviewer's snooze. A reviewer assigned after the escalation point is not
  escalated: they never had the time the policy promises.
- **Exactly once.** Every slot has a deterministic id, ``"{kind}|{reviewer}|{instance}|{point}"``.
  :func:`claim_due` records ids with the store's ``mark_reminder_sent`` (unique per id), so
  restarts and replicas that evaluate the same slot send it once.

Everything here is synchronous and pure except :func:`claim_due`; the caller passes ``now`` from
its :class:`~bot.clock.Clock`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from bot.notify.policy import PolicyPoint, ReminderPolicy
from bot.notify.worktime import WorkingHours

__all__ = [
    "MAX_SNOOZE_HOURS",
    "NUDGE_INTERVAL",
    "Due",
    "NotificationKind",
    "ReminderLedger",
    "Slot",
    "SnoozeChoice",
    "SnoozeError",
    "SnoozeResult",
    "claim_due",
    "due_notifications",
    "escalation_point",
    "may_nudge",
    "notification_id",
    "nudge_key",
    "parse_snooze",
    "plan",
    "snooze_until",
]

logger = logging.getLogger(__name__)

NotificationKind = Literal["reminder", "escalation"]

# A manager may nudge a reviewer about one review at most once per this interval (rolling, so it
# does not depend on whose midnight counts).
NUDGE_INTERVAL = timedelta(hours=24)
# Longer snoozes are refused: "remind me in two weeks" on a review that lasts two weeks is a
# request to be left alone, which the last-reminder cap would turn into something else anyway.
MAX_SNOOZE_HOURS = 14 * 24


def notification_id(kind: NotificationKind, reviewer_oid: str, instance_id: str, point: str) -> str:
    """The deterministic id of one reminder/escalation slot (the exactly-once key)."""
    return f"{kind}|{reviewer_oid}|{instance_id}|{point}"


@dataclass(frozen=True)
class Slot:
    """A planned notification for one (reviewer, instance): its point and when it may be sent."""

    kind: NotificationKind
    point: str
    send_at: datetime  # UTC; the first working moment at or after ``nominal_at``
    nominal_at: datetime  # UTC; where the policy puts the point before working hours apply


@dataclass(frozen=True)
class Due:
    """A notification to send now. For an escalation, ``reviewer_oid`` is the reviewer it is about;
    the caller resolves the recipient (their manager) and the fallback when there is none."""

    kind: NotificationKind
    point: str
    reviewer_oid: str
    instance_id: str
    send_at: datetime  # the slot's planned send time (≤ the ``now`` it was found due at)
    pending: int
    deadline: datetime  # the instance's end

    @property
    def id(self) -> str:
        return notification_id(self.kind, self.reviewer_oid, self.instance_id, self.point)


# -- planning ----------------------------------------------------------------------------------


def _nominal(
    point: PolicyPoint,
    *,
    calendar: WorkingHours,
    instance_start: datetime,
    instance_end: datetime,
    assigned_at: datetime,
) -> datetime:
    if point.kind == "assigned":
        return assigned_at
    if point.kind == "halfway":
        return instance_start + (instance_end - instance_start) / 2
    if point.kind == "start":
        first_day = calendar.local(instance_start).date()
        return calendar.day_start(calendar.shift_working_days(first_day, point.working_days))
    last_day = calendar.last_working_day_before(instance_end)
    if point.kind == "last-day":
        return calendar.day_start(last_day)
    return calendar.day_start(calendar.shift_working_days(last_day, -point.working_days))


def _snooze_point(snoozed_until: datetime) -> str:
    return "snooze-" + snoozed_until.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def plan(
    *,
    policy: ReminderPolicy,
    hours: WorkingHours,
    instance_start: datetime,
    instance_end: datetime,
    assigned_at: datetime,
    snoozed_until: datetime | None = None,
    escalation_hours: WorkingHours | None = None,
) -> list[Slot]:
    """Every reminder and escalation slot of one (reviewer, instance), sorted by send time.

    ``hours`` are the reviewer's; ``escalation_hours`` the escalation recipient's (default: the
    reviewer's). Pending work and what was already sent are not considered here; see
    :func:`due_notifications`.
    """
    start, end = _utc(instance_start), _utc(instance_end)
    if end <= start:
        logger.warning("instance ends (%s) before it starts (%s): nothing to plan", end, start)
        return []
    assigned = max(_utc(assigned_at), start)
    calendar = hours.with_holidays(policy.holidays)

    by_send_time: dict[datetime, Slot] = {}
    for point in policy.points:
        nominal = _nominal(
            point, calendar=calendar, instance_start=start, instance_end=end, assigned_at=assigned
        )
        if nominal < assigned:
            continue  # before this reviewer was assigned: the assignment notice covers it
        send_at = calendar.next_working_moment(nominal)
        if send_at >= end:
            continue
        slot = Slot(kind="reminder", point=point.name, send_at=send_at, nominal_at=nominal)
        other = by_send_time.get(send_at)
        # Two points in one working moment collapse into the one nearer the deadline.
        if other is None or nominal >= other.nominal_at:
            by_send_time[send_at] = slot
    slots = list(by_send_time.values())

    if snoozed_until is not None:
        until = _utc(snoozed_until)
        send_at = calendar.next_working_moment(until)
        if send_at < end and send_at not in by_send_time:
            slots.append(
                Slot(kind="reminder", point=_snooze_point(until), send_at=send_at, nominal_at=until)
            )

    if policy.escalation is not None:
        nominal = _nominal(
            policy.escalation,
            calendar=calendar,
            instance_start=start,
            instance_end=end,
            assigned_at=assigned,
        )
        recipient_calendar = (escalation_hours or hours).with_holidays(policy.holidays)
        send_at = recipient_calendar.next_working_moment(nominal)
        if nominal >= assigned and send_at < end:
            slots.append(
                Slot(
                    kind="escalation",
                    point=policy.escalation.name,
                    send_at=send_at,
                    nominal_at=nominal,
                )
            )
    slots.sort(key=lambda s: (s.send_at, s.kind))
    return slots


def escalation_point(
    *,
    policy: ReminderPolicy,
    hours: WorkingHours,
    instance_start: datetime,
    instance_end: datetime,
    assigned_at: datetime,
) -> datetime | None:
    """Where the policy's escalation point falls for this reviewer (UTC, counted in their working
    days), or ``None``: escalation off, the reviewer assigned after the point, or the point at or
    after the end. Cheap, and needs nobody else's hours: callers check it before resolving who
    the escalation goes to."""
    if policy.escalation is None:
        return None
    start, end = _utc(instance_start), _utc(instance_end)
    if end <= start:
        return None
    assigned = max(_utc(assigned_at), start)
    nominal = _nominal(
        policy.escalation,
        calendar=hours.with_holidays(policy.holidays),
        instance_start=start,
        instance_end=end,
        assigned_at=assigned,
    )
    if nominal < assigned or nominal >= end:
        return None
    return nominal


def due_notifications(
    *,
    now: datetime,
    instance_start: datetime,
    instance_end: datetime,
    assigned_at: datetime,
    reviewer_oid: str,
    instance_id: str,
    pending: int,
    policy: ReminderPolicy,
    hours: WorkingHours,
    snoozed_until: datetime | None = None,
    already_sent: Collection[str] = frozenset(),
    escalation_hours: WorkingHours | None = None,
) -> list[Due]:
    """What to send at ``now`` for one (reviewer, instance): at most one reminder and at most one
    escalation. ``already_sent`` holds ids known to be sent (it may be empty: :func:`claim_due`
    then drops repeats against the store)."""
    now_utc = _utc(now)
    end = _utc(instance_end)
    if pending <= 0 or now_utc >= end:
        return []
    slots = plan(
        policy=policy,
        hours=hours,
        instance_start=instance_start,
        instance_end=instance_end,
        assigned_at=assigned_at,
        snoozed_until=snoozed_until,
        escalation_hours=escalation_hours,
    )

    def due(slot: Slot) -> Due:
        return Due(
            kind=slot.kind,
            point=slot.point,
            reviewer_oid=reviewer_oid,
            instance_id=instance_id,
            send_at=slot.send_at,
            pending=pending,
            deadline=end,
        )

    result: list[Due] = []
    calendar = hours.with_holidays(policy.holidays)
    snoozing = snoozed_until is not None and now_utc < _utc(snoozed_until)
    if not snoozing and calendar.is_working_moment(now_utc):
        passed = [s for s in slots if s.kind == "reminder" and s.send_at <= now_utc]
        if passed:
            latest = due(passed[-1])
            if latest.id not in already_sent:
                result.append(latest)

    recipient_calendar = (escalation_hours or hours).with_holidays(policy.holidays)
    for slot in slots:
        if (
            slot.kind == "escalation"
            and slot.send_at <= now_utc
            and recipient_calendar.is_working_moment(now_utc)
        ):
            escalation = due(slot)
            if escalation.id not in already_sent:
                result.append(escalation)
    return result


# -- exactly once ------------------------------------------------------------------------------


class ReminderLedger(Protocol):
    """The part of :class:`~bot.store.protocol.Store` that records sent reminder slots."""

    async def mark_reminder_sent(
        self, *, reminder_id: str, recipient_oid: str, instance_id: str, kind: str
    ) -> bool: ...


async def claim_due(ledger: ReminderLedger, dues: Iterable[Due]) -> list[Due]:
    """Record each due slot in the store; return only those this caller claimed first.

    Claim-then-send is at-most-once per slot: a crash between the claim and the enqueue loses that
    one reminder rather than sending it twice. Callers that prefer at-least-once can instead
    enqueue into the outbox with ``key=due.id`` (itself unique) and claim afterwards. The ledger's
    ``recipient_oid`` is the reviewer, also for escalations (the manager is resolved later).
    """
    claimed: list[Due] = []
    for item in dues:
        first = await ledger.mark_reminder_sent(
            reminder_id=item.id,
            recipient_oid=item.reviewer_oid,
            instance_id=item.instance_id,
            kind=item.kind,
        )
        if first:
            claimed.append(item)
        else:
            logger.debug(
                "%s %s for instance %s already claimed", item.kind, item.point, item.instance_id
            )
    return claimed


# -- snooze ------------------------------------------------------------------------------------


class SnoozeError(ValueError):
    """A snooze request is not one we offer. ``str(err)`` is one line, safe to show."""


SnoozeChoice = Literal["tomorrow"] | timedelta


def parse_snooze(text: object) -> SnoozeChoice:
    """``"tomorrow"`` or ``"<N>h"`` (1 ≤ N ≤ :data:`MAX_SNOOZE_HOURS`) from untrusted card data
    (any JSON value; anything else raises :class:`SnoozeError`)."""
    value = text.strip().casefold() if isinstance(text, str) else ""
    if value == "tomorrow":
        return "tomorrow"
    match = re.fullmatch(r"(\d{1,4})\s*h", value)
    if match is None or not 1 <= int(match.group(1)) <= MAX_SNOOZE_HOURS:
        raise SnoozeError(f"snooze must be 'tomorrow' or 1h to {MAX_SNOOZE_HOURS}h")
    return timedelta(hours=int(match.group(1)))


@dataclass(frozen=True)
class SnoozeResult:
    """When the snooze ends, and whether it was cut short to keep the last reminder."""

    until: datetime
    capped: bool


def snooze_until(
    choice: SnoozeChoice,
    *,
    now: datetime,
    hours: WorkingHours,
    policy: ReminderPolicy,
    instance_start: datetime,
    instance_end: datetime,
    assigned_at: datetime,
) -> SnoozeResult:
    """When a snooze chosen at ``now`` ends.

    ``"tomorrow"`` is the start of the reviewer's next working day after today (their zone; a
    weekend or holiday tomorrow moves it on); a duration ends at the first working moment after
    it. Either way the end is capped at the send time of the policy's last reminder slot, so the
    final reminder before the deadline still goes out.
    """
    now_utc = _utc(now)
    calendar = hours.with_holidays(policy.holidays)
    if isinstance(choice, timedelta):
        if choice <= timedelta(0):
            raise SnoozeError("snooze must be for a positive time")
        target = calendar.next_working_moment(now_utc + choice)
    else:
        today = calendar.local(now_utc).date()
        target = calendar.day_start(calendar.shift_working_days(today, 1))
    reminders = [
        s
        for s in plan(
            policy=policy,
            hours=hours,
            instance_start=instance_start,
            instance_end=instance_end,
            assigned_at=assigned_at,
        )
        if s.kind == "reminder"
    ]
    if reminders and target > reminders[-1].send_at:
        return SnoozeResult(until=reminders[-1].send_at, capped=True)
    return SnoozeResult(until=target, capped=False)


# -- nudges ------------------------------------------------------------------------------------


def may_nudge(
    last_nudge_at: datetime | None, now: datetime, *, interval: timedelta = NUDGE_INTERVAL
) -> bool:
    """True if a manager may nudge this reviewer about this review again (once per ``interval``).

    A last nudge in the future (clock skew between replicas) counts as recent.
    """
    if last_nudge_at is None:
        return True
    return _utc(now) - _utc(last_nudge_at) >= interval


def nudge_key(reviewer_oid: str, instance_id: str) -> str:
    """Key for ``Store.remember_once(key=..., ttl_s=NUDGE_INTERVAL.total_seconds())``, which
    enforces :func:`may_nudge` atomically across replicas."""
    return f"nudge|{reviewer_oid}|{instance_id}"


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("datetimes given to the scheduler must be timezone-aware")
    return at.astimezone(UTC)
