"""Reminder and escalation policy: which points of a review's life remind or escalate, and parsing it.

A policy is a list of *points* relative to an instance's start and end, plus an optional
escalation point and a holiday list. Point syntax (case-insensitive):

- ``assigned`` — when the reviewer is assigned (the first notification).
- ``halfway`` — half-way between the instance's start and end.
- ``start+Nwd`` — the start of the working day N working days after the instance's first day.
- ``end-Nwd`` — the start of the working day N working days before the last working day.
- ``last-day`` — the start of the last working day before the end.

"Working day" and "start of the day" are the recipient's (their zone, working days and hours,
minus the policy's holidays); see :mod:`bot.notify.schedule` for how points become send times.

Settings (one environment variable each; see :meth:`ScheduleSettings.from_env`):

========================  ==================================================================
``REMINDER_POLICY``       points, comma-separated, or ``off`` (default
                          ``assigned,halfway,end-3wd,end-1wd,last-day``)
``ESCALATION``            one point, or ``off`` (default ``end-2wd``)
``HOLIDAYS``              ``YYYY-MM-DD`` dates, comma-separated (default none)
``REMINDER_OVERRIDES``    JSON object: key = a definition id, or ``name:<glob>`` matched against
                          the review's display name (case-insensitive); value = an object with
                          any of ``reminders``, ``escalation``, ``holidays`` (same syntax as the
                          variables, strings or lists); missing fields inherit the default
``WORKING_HOURS``         default daily hours, ``HH:MM-HH:MM`` (default ``09:00-17:00``)
``WORKING_DAYS``          default working days, e.g. ``mon-fri`` (default)
``DEFAULT_TIME_ZONE``     IANA or Windows zone for people without mailbox settings (``UTC``)
========================  ==================================================================

A bad value raises :class:`PolicyError` (a ``ValueError``) whose message is one line naming the
variable, what is wrong, and the value given.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from bot.notify.worktime import (
    DEFAULT_WORKING_HOURS,
    WorkingHours,
    parse_hour_range,
    parse_working_days,
    parse_zone,
)

__all__ = [
    "DEFAULT_ESCALATION",
    "DEFAULT_POINTS",
    "DEFAULT_POLICY",
    "POLICY_VARIABLES",
    "PointKind",
    "PolicyError",
    "PolicyOverride",
    "PolicyPoint",
    "ReminderPolicy",
    "ScheduleSettings",
    "parse_escalation",
    "parse_holidays",
    "parse_overrides",
    "parse_points",
    "policy_for",
]

PointKind = Literal["assigned", "halfway", "start", "end", "last-day"]

# Working-day offsets beyond this are almost certainly typos (reviews rarely run past a quarter).
_MAX_WORKING_DAYS = 90
_POINT_RE = re.compile(r"(start)\s*\+\s*(\d+)\s*wd|(end)\s*-\s*(\d+)\s*wd")
_SIMPLE_POINTS: dict[str, PointKind] = {
    "assigned": "assigned",
    "halfway": "halfway",
    "last-day": "last-day",
}
_POINT_HELP = "use assigned, halfway, start+Nwd, end-Nwd or last-day"


class PolicyError(ValueError):
    """A reminder/escalation setting is invalid. ``str(err)`` is one line naming the setting."""


@dataclass(frozen=True)
class PolicyPoint:
    """One point of a review's life at which a reminder (or the escalation) becomes due."""

    kind: PointKind
    working_days: int = 0

    def __post_init__(self) -> None:
        needs_days = self.kind in ("start", "end")
        if needs_days and not 1 <= self.working_days <= _MAX_WORKING_DAYS:
            raise ValueError(f"working days must be 1 to {_MAX_WORKING_DAYS}")
        if not needs_days and self.working_days:
            raise ValueError(f"{self.kind} takes no working-day count")

    @property
    def name(self) -> str:
        """The canonical text of the point; part of every notification id, so it must be stable."""
        if self.kind == "start":
            return f"start+{self.working_days}wd"
        if self.kind == "end":
            return f"end-{self.working_days}wd"
        return self.kind

    def __str__(self) -> str:
        return self.name

    @classmethod
    def parse(cls, text: str) -> PolicyPoint:
        """Parse one point; raises ``ValueError`` saying what is allowed."""
        value = text.strip().casefold()
        simple = _SIMPLE_POINTS.get(value)
        if simple is not None:
            return cls(kind=simple)
        match = _POINT_RE.fullmatch(value)
        if match is None:
            raise ValueError(f"{text.strip()!r} is not a reminder point ({_POINT_HELP})")
        count = int(match.group(2) or match.group(4))
        if not 1 <= count <= _MAX_WORKING_DAYS:
            raise ValueError(f"{text.strip()!r}: working days must be 1 to {_MAX_WORKING_DAYS}")
        return cls(kind="start" if match.group(1) else "end", working_days=count)


DEFAULT_POINTS: tuple[PolicyPoint, ...] = (
    PolicyPoint("assigned"),
    PolicyPoint("halfway"),
    PolicyPoint("end", 3),
    PolicyPoint("end", 1),
    PolicyPoint("last-day"),
)
DEFAULT_ESCALATION = PolicyPoint("end", 2)


@dataclass(frozen=True)
class ReminderPolicy:
    """Reminder points, the escalation point (``None`` = off) and extra days off for everyone."""

    points: tuple[PolicyPoint, ...] = DEFAULT_POINTS
    escalation: PolicyPoint | None = DEFAULT_ESCALATION
    holidays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        names = [p.name for p in self.points]
        if len(set(names)) != len(names):
            raise ValueError("reminder points must be distinct")


DEFAULT_POLICY = ReminderPolicy()


@dataclass(frozen=True)
class PolicyOverride:
    """A policy for the reviews that match: by definition id (exact) or display-name glob."""

    policy: ReminderPolicy
    definition_id: str | None = None
    name_pattern: str | None = None

    def matches(self, definition_id: str, display_name: str) -> bool:
        if self.definition_id is not None:
            return self.definition_id.casefold() == definition_id.casefold()
        if self.name_pattern is not None:
            return fnmatch.fnmatchcase(display_name.casefold(), self.name_pattern.casefold())
        return False


def policy_for(
    definition_id: str,
    display_name: str,
    *,
    default: ReminderPolicy,
    overrides: Iterable[PolicyOverride] = (),
) -> ReminderPolicy:
    """The policy for one review: an override naming its definition id wins over any name
    pattern; among name patterns the first listed wins; no match gives ``default``."""
    rules = tuple(overrides)
    for rule in rules:
        if rule.definition_id is not None and rule.matches(definition_id, display_name):
            return rule.policy
    for rule in rules:
        if rule.name_pattern is not None and rule.matches(definition_id, display_name):
            return rule.policy
    return default


# -- parsing -----------------------------------------------------------------------------------


def parse_points(text: str | Iterable[str]) -> tuple[PolicyPoint, ...]:
    """Points from ``"assigned,halfway,end-1wd"`` (or a list); ``"off"``/``"none"`` gives none."""
    parts = _split(text)
    if len(parts) == 1 and parts[0].casefold() in ("off", "none"):
        return ()
    if not parts:
        raise ValueError(f"names no reminder point ({_POINT_HELP}, or off)")
    points: list[PolicyPoint] = []
    for part in parts:
        point = PolicyPoint.parse(part)
        if point in points:
            raise ValueError(f"lists {point.name!r} twice")
        points.append(point)
    return tuple(points)


def parse_escalation(text: str) -> PolicyPoint | None:
    """One escalation point, or ``None`` for ``"off"``. ``assigned`` is refused: escalating at
    assignment would tell a manager before the reviewer had any chance to act."""
    value = text.strip()
    if value.casefold() in ("off", "none", ""):
        return None
    point = PolicyPoint.parse(value)
    if point.kind == "assigned":
        raise ValueError("cannot escalate at assignment (use e.g. end-2wd, last-day or off)")
    return point


def parse_holidays(text: str | Iterable[str]) -> frozenset[date]:
    """``YYYY-MM-DD`` dates, comma-separated or as a list."""
    days: set[date] = set()
    for part in _split(text):
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", part):
            raise ValueError(f"{part!r} is not a date like 2026-12-25")
        try:
            days.add(date.fromisoformat(part))
        except ValueError:
            raise ValueError(f"{part!r} is not a date like 2026-12-25") from None
    return frozenset(days)


def _split(text: str | Iterable[str]) -> list[str]:
    raw = text.split(",") if isinstance(text, str) else [str(p) for p in text]
    return [p.strip() for p in raw if p.strip()]


_OVERRIDE_FIELDS = frozenset({"reminders", "escalation", "holidays"})


def parse_overrides(text: str, *, default: ReminderPolicy) -> tuple[PolicyOverride, ...]:
    """Overrides from the ``REMINDER_OVERRIDES`` JSON object (see the module docs), in order."""
    if not text.strip():
        return ()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"is not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(data, dict):
        raise ValueError('must be a JSON object like {"name:Quarterly*": {"escalation": "off"}}')
    rules: list[PolicyOverride] = []
    for key, spec in data.items():
        where = f"entry {key!r}"
        if not isinstance(spec, dict):
            raise ValueError(f"{where} must map to an object with reminders/escalation/holidays")
        unknown = set(spec) - _OVERRIDE_FIELDS
        if unknown:
            raise ValueError(
                f"{where} has unknown field {sorted(unknown)[0]!r} "
                "(allowed: reminders, escalation, holidays)"
            )
        try:
            policy = ReminderPolicy(
                points=_field(spec, "reminders", parse_points, default.points),
                escalation=_field(spec, "escalation", parse_escalation, default.escalation),
                holidays=_field(spec, "holidays", parse_holidays, default.holidays),
            )
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        pattern = key.strip()
        if pattern.casefold().startswith("name:"):
            glob = pattern[len("name:") :].strip()
            if not glob:
                raise ValueError(f"{where} has an empty name pattern")
            rules.append(PolicyOverride(policy=policy, name_pattern=glob))
        elif pattern:
            rules.append(PolicyOverride(policy=policy, definition_id=pattern))
        else:
            raise ValueError("has an empty key (use a definition id or name:<pattern>)")
    return tuple(rules)


def _field(spec: Mapping[str, Any], name: str, parse: Any, inherited: Any) -> Any:
    if name not in spec:
        return inherited
    value = spec[name]
    if isinstance(value, list) and name != "escalation":
        if not all(isinstance(v, str) for v in value):
            raise ValueError(f"{name} must be a string or a list of strings")
        return parse(value)
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    return parse(value)


# -- settings ----------------------------------------------------------------------------------

# Every variable :meth:`ScheduleSettings.from_env` reads, for ``.env.example`` and the settings docs.
POLICY_VARIABLES = (
    "REMINDER_POLICY",
    "ESCALATION",
    "HOLIDAYS",
    "REMINDER_OVERRIDES",
    "WORKING_HOURS",
    "WORKING_DAYS",
    "DEFAULT_TIME_ZONE",
)


@dataclass(frozen=True)
class ScheduleSettings:
    """Everything the reminder schedule is configured with."""

    default_policy: ReminderPolicy = DEFAULT_POLICY
    overrides: tuple[PolicyOverride, ...] = ()
    default_hours: WorkingHours = DEFAULT_WORKING_HOURS

    def policy_for(self, definition_id: str, display_name: str) -> ReminderPolicy:
        """The policy of one review (see :func:`policy_for`)."""
        return policy_for(
            definition_id, display_name, default=self.default_policy, overrides=self.overrides
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ScheduleSettings:
        """Parse the variables in :data:`POLICY_VARIABLES` from ``env``; unset or empty = default.

        Raises :class:`PolicyError` with a one-line message naming the variable.
        """

        def get(name: str) -> str | None:
            value = env.get(name)
            return value if value is not None and value.strip() else None

        def fail(name: str, exc: ValueError, raw: str) -> PolicyError:
            return PolicyError(f"{name} {exc} (got {raw!r})")

        points: tuple[PolicyPoint, ...] = DEFAULT_POINTS
        escalation: PolicyPoint | None = DEFAULT_ESCALATION
        holidays: frozenset[date] = frozenset()
        if (raw := get("REMINDER_POLICY")) is not None:
            try:
                points = parse_points(raw)
            except ValueError as exc:
                raise fail("REMINDER_POLICY", exc, raw) from None
        if (raw := get("ESCALATION")) is not None:
            try:
                escalation = parse_escalation(raw)
            except ValueError as exc:
                raise fail("ESCALATION", exc, raw) from None
        if (raw := get("HOLIDAYS")) is not None:
            try:
                holidays = parse_holidays(raw)
            except ValueError as exc:
                raise fail("HOLIDAYS", exc, raw) from None
        default = ReminderPolicy(points=points, escalation=escalation, holidays=holidays)

        overrides: tuple[PolicyOverride, ...] = ()
        if (raw := get("REMINDER_OVERRIDES")) is not None:
            try:
                overrides = parse_overrides(raw, default=default)
            except ValueError as exc:
                # The JSON can be long: name the problem, not the whole value.
                raise PolicyError(f"REMINDER_OVERRIDES {exc}") from None

        hours = DEFAULT_WORKING_HOURS
        start, end, days, zone = hours.start, hours.end, hours.days, hours.zone
        if (raw := get("WORKING_HOURS")) is not None:
            try:
                start, end = parse_hour_range(raw)
            except ValueError as exc:
                raise fail("WORKING_HOURS", exc, raw) from None
        if (raw := get("WORKING_DAYS")) is not None:
            try:
                days = parse_working_days(raw)
            except ValueError as exc:
                raise fail("WORKING_DAYS", exc, raw) from None
        if (raw := get("DEFAULT_TIME_ZONE")) is not None:
            try:
                zone = parse_zone(raw)
            except ValueError as exc:
                raise fail("DEFAULT_TIME_ZONE", exc, raw) from None
        hours = WorkingHours(zone=zone, days=days, start=start, end=end)
        return cls(default_policy=default, overrides=overrides, default_hours=hours)
