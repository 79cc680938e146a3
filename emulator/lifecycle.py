"""The time-driven life of an access review instance, and the schedule of recurring reviews.

Microsoft documents the instance statuses (``resources/accessreviewinstance.md``: ``NotStarted``,
``Initializing``, ``Starting``, ``InProgress``, ``Completing``, ``Completed``, ``AutoReviewing``,
``AutoReviewed``; ``Applying`` and ``Applied`` appear in the docs' examples and the custom data
provider pages) but not how long each lasts or in which order the automatic ones come. The
emulator's choices, written down here:

* Every transient status lasts :data:`PHASE` (one minute on the emulator's clock), so a client
  that polls meets each of them and a test can walk through them by moving a manual clock.
* Before ``startDateTime``: ``NotStarted``, then ``Initializing`` from ``start - 2·PHASE``, then
  ``Starting`` from ``start - PHASE``. A recurrence is created :data:`INSTANCE_LEAD` before its
  start, so it is first seen ``NotStarted``.
* ``InProgress`` from ``startDateTime`` until the end (``endDateTime``, or the moment ``stop`` was
  called): only then can decisions be written.
* After the end: ``Completing`` for one PHASE; with default decisions enabled the service then
  reviews the rest itself: ``AutoReviewing``, ``AutoReviewed`` (the defaults are recorded as the
  instance enters ``AutoReviewed``); then ``Completed``.
* ``Applying`` for one PHASE, one PHASE after ``Completed`` when ``autoApplyDecisionsEnabled``, or
  from the moment ``applyDecisions`` was called; then ``Applied`` (decisions take effect as it is
  entered).

Recurrence (``resources/accessreviewschedulesettings.md``: only ``type`` ``weekly`` or
``absoluteMonthly``, ``interval`` and the range are honoured): each recurrence starts one step after
the previous one started and lasts ``instanceDurationInDays`` (the stages' sum for multi-stage).
"""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from emulator.model import Definition, Instance, ReviewSettings

__all__ = [
    "INSTANCE_LEAD",
    "INSTANCE_STATUSES",
    "PHASE",
    "add_months",
    "applied_at",
    "apply_starts_at",
    "defaults_enabled",
    "defaults_recorded_at",
    "instance_status",
    "is_recurring",
    "next_occurrence_start",
    "occurrence_decision_id",
    "occurrence_instance_id",
    "recommendation_for",
    "status_timeline",
]

PHASE = timedelta(minutes=1)
INSTANCE_LEAD = 3 * PHASE
#: Every status an instance can have, in the order an instance meets them.
INSTANCE_STATUSES = (
    "NotStarted",
    "Initializing",
    "Starting",
    "InProgress",
    "Completing",
    "AutoReviewing",
    "AutoReviewed",
    "Completed",
    "Applying",
    "Applied",
)
#: Recommendations look back 30 days unless the review says otherwise (the docs' default).
RECOMMENDATION_LOOK_BACK = timedelta(days=30)


def defaults_enabled(settings: ReviewSettings) -> bool:
    """Whether the service records default decisions at the end (AutoReviewing/AutoReviewed)."""
    return settings.default_decision_enabled and settings.default_decision != "None"


def _completed_at(instance: Instance, settings: ReviewSettings) -> datetime:
    done = instance.actual_end() + PHASE
    if defaults_enabled(settings):
        done += 2 * PHASE
    return done


def defaults_recorded_at(instance: Instance, settings: ReviewSettings) -> datetime | None:
    """When default decisions are recorded (the instance enters ``AutoReviewed``), if ever."""
    if not defaults_enabled(settings):
        return None
    return instance.actual_end() + 3 * PHASE


def apply_starts_at(instance: Instance, settings: ReviewSettings) -> datetime | None:
    """When ``Applying`` begins: one PHASE after ``Completed`` with auto-apply, else when
    ``applyDecisions`` was called (``None``: not (yet) applied)."""
    if instance.apply_requested_at is not None:
        return instance.apply_requested_at
    if settings.auto_apply_decisions_enabled:
        return _completed_at(instance, settings) + PHASE
    return None


def applied_at(instance: Instance, settings: ReviewSettings) -> datetime | None:
    """When decisions take effect (the instance enters ``Applied``), if ever."""
    start = apply_starts_at(instance, settings)
    return None if start is None else start + PHASE


def status_timeline(instance: Instance, settings: ReviewSettings) -> list[tuple[datetime, str]]:
    """``(from, status)`` pairs in time order; the status at ``now`` is the last one started.

    Later events (a stop, ``applyDecisions``) change the timeline, so it is recomputed each time.
    """
    start, end = instance.start, instance.actual_end()
    timeline = [
        (datetime.min.replace(tzinfo=start.tzinfo), "NotStarted"),
        (start - 2 * PHASE, "Initializing"),
        (start - PHASE, "Starting"),
        (start, "InProgress"),
        (end, "Completing"),
    ]
    if defaults_enabled(settings):
        timeline += [(end + PHASE, "AutoReviewing"), (end + 2 * PHASE, "AutoReviewed")]
    timeline.append((_completed_at(instance, settings), "Completed"))
    applying = apply_starts_at(instance, settings)
    if applying is not None:
        timeline += [(applying, "Applying"), (applying + PHASE, "Applied")]
    return timeline


def instance_status(instance: Instance, settings: ReviewSettings, now: datetime) -> str:
    """The instance's status at ``now``."""
    status = "NotStarted"
    for begins, name in status_timeline(instance, settings):
        if begins > now:
            break
        status = name
    return status


# ---------------------------------------------------------------------------------- recurrence
def occurrence_instance_id(definition_id: str, occurrence: int) -> str:
    """The id of a recurrence's instance: its own GUID, never the definition's (only a one-time
    review's single instance may share the definition's id, as the docs' tutorial shows)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"accessReviewInstance:{definition_id}:{occurrence}"))


def occurrence_decision_id(instance_id: str, principal_id: str) -> str:
    """The id of a decision item in a recurrence: unique per instance and principal."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"accessReviewDecision:{instance_id}:{principal_id}"))


def _pattern(recurrence: Mapping[str, Any] | None) -> tuple[str, int] | None:
    pattern = (recurrence or {}).get("pattern")
    if not isinstance(pattern, Mapping):
        return None
    kind = pattern.get("type")
    interval = pattern.get("interval")
    if kind not in {"weekly", "absoluteMonthly"} or not isinstance(interval, int) or interval < 1:
        return None
    return str(kind), interval


def is_recurring(definition: Definition) -> bool:
    """Whether the definition recurs (a ``weekly`` or ``absoluteMonthly`` pattern)."""
    return _pattern(definition.recurrence) is not None


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` moved by whole calendar months (the day clamped to the month's length)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def next_occurrence_start(definition: Definition, previous_start: datetime) -> datetime | None:
    """When the recurrence after one that started at ``previous_start`` starts; ``None`` when the
    definition does not recur or its range is used up."""
    pattern = _pattern(definition.recurrence)
    if pattern is None:
        return None
    kind, interval = pattern
    if kind == "weekly":
        start = previous_start + timedelta(weeks=interval)
    else:
        start = add_months(previous_start, interval)
    recurrence_range = (definition.recurrence or {}).get("range") or {}
    occurrences = recurrence_range.get("numberOfOccurrences")
    if (
        recurrence_range.get("type") == "numbered"
        and isinstance(occurrences, int)
        and occurrences > 0
        and len(definition.instance_ids) >= occurrences
    ):
        return None
    end_date = recurrence_range.get("endDate")
    if isinstance(end_date, str):
        try:
            if start.date() > date.fromisoformat(end_date):
                return None
        except ValueError:
            pass  # an unreadable end date does not end the schedule
    return start


def recommendation_for(last_sign_in: datetime | None, now: datetime) -> str:
    """Graph's default recommendation rule: no interactive sign-in within the look-back → Deny;
    nothing to go by → NoInfoAvailable."""
    if last_sign_in is None:
        return "NoInfoAvailable"
    return "Approve" if now - last_sign_in <= RECOMMENDATION_LOOK_BACK else "Deny"
