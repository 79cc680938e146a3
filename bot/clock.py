"""Time as a collaborator, so that background work and tests can move it instead of sleeping.

- :class:`SystemClock` — the wall clock, for real runs.
- :class:`ManualClock` — moves only when told to, for tests and benchmarks.
- :class:`DemoClock` — the wall clock plus an offset that only grows: the demo shares one with its
  emulated Microsoft cloud, so ``python app.py demo clock +3d`` moves both and days of reminders,
  snoozes and escalations can be watched in minutes. Only demo mode may move it
  (:mod:`bot.web.demo_routes` refuses whenever ``MicrosoftAppId`` is set).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = [
    "MAX_DEMO_ADVANCE",
    "Clock",
    "DemoClock",
    "ManualClock",
    "SystemClock",
    "iso_duration",
    "parse_advance",
]

# One move of the demo clock may not exceed this: a typo ("+300d") should not end every review.
MAX_DEMO_ADVANCE = timedelta(days=90)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to: for tests, simulations and benchmarks."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when.astimezone(UTC)


def _wall_now() -> datetime:
    return datetime.now(UTC)


class DemoClock:
    """The wall clock shifted forward by an offset that :meth:`advance` grows.

    Time keeps flowing between moves, as it does for a person watching the demo. It never goes
    back: leases, claims and "already sent" records all assume that time only moves forward.
    Thread-safe: the emulated cloud reads it from its own thread.

    ``start`` (default: now) is where the clock begins; tests start the demo on a chosen Monday.
    """

    def __init__(
        self, start: datetime | None = None, *, wall: Callable[[], datetime] = _wall_now
    ) -> None:
        if start is not None and start.tzinfo is None:
            raise ValueError("DemoClock needs a timezone-aware start")
        self._wall = wall
        self._lock = threading.Lock()
        self._offset = (start.astimezone(UTC) - wall()) if start is not None else timedelta(0)

    def now(self) -> datetime:
        with self._lock:
            return self._wall() + self._offset

    @property
    def offset(self) -> timedelta:
        """How far ahead of the wall clock the demo runs."""
        with self._lock:
            return self._offset

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by ``delta`` (more than zero, at most :data:`MAX_DEMO_ADVANCE`)."""
        if delta <= timedelta(0):
            raise ValueError("the demo clock only moves forward")
        if delta > MAX_DEMO_ADVANCE:
            raise ValueError(f"move the demo clock at most {MAX_DEMO_ADVANCE.days} days at a time")
        with self._lock:
            self._offset += delta
            return self._wall() + self._offset


# ISO 8601 durations in weeks, days, hours, minutes and seconds ("P3D", "PT4H", "P1DT2H30M",
# "P1W"). Years and months are refused: their length depends on the date they start from.
_ISO_DURATION = re.compile(
    r"P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?"
)
# The command line's shorthand: "+3d", "8h", "1d12h", "90m", "2w".
_SHORT_DURATION = re.compile(r"\+?(?:(?P<w>\d+)w)?(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?")
_ADVANCE_HELP = (
    "use an ISO 8601 duration such as P3D, PT4H or P1DT2H, or a shorthand such as +3d or 8h"
)


def parse_advance(text: str) -> timedelta:
    """How far to move the demo clock, from ``P3D``/``PT4H``/``P1W`` or ``+3d``/``8h``/``90m``.

    Raises ``ValueError`` with one line saying what is allowed.
    """
    value = text.strip()
    if len(value) > 40:
        raise ValueError(f"the duration is too long to be one ({_ADVANCE_HELP})")
    match = _ISO_DURATION.fullmatch(value.upper())
    if match is None or value.upper() in ("P", "PT") or value.upper().endswith("T"):
        match = _SHORT_DURATION.fullmatch(value.lower())
    if match is None or not any(match.groupdict().values()):
        raise ValueError(f"{value!r} is not a duration ({_ADVANCE_HELP})")
    parts = {name: int(number or 0) for name, number in match.groupdict().items()}
    try:
        delta = timedelta(
            weeks=parts["w"],
            days=parts["d"],
            hours=parts["h"],
            minutes=parts["m"],
            seconds=parts.get("s", 0),
        )
    except OverflowError:
        # Beyond what a timedelta holds (about 2.7 million years): far past the limit below.
        raise ValueError(
            f"move the demo clock at most {MAX_DEMO_ADVANCE.days} days at a time"
        ) from None
    if delta <= timedelta(0):
        raise ValueError("the demo clock only moves forward: give a duration above zero")
    if delta > MAX_DEMO_ADVANCE:
        raise ValueError(f"move the demo clock at most {MAX_DEMO_ADVANCE.days} days at a time")
    return delta


def iso_duration(delta: timedelta) -> str:
    """``delta`` as an ISO 8601 duration (``P3DT4H``), whole seconds, for answers and URLs."""
    total_s = int(delta.total_seconds())
    sign = "-" if total_s < 0 else ""
    total_s = abs(total_s)
    days, rest = divmod(total_s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{sign}P{days}D" if days else f"{sign}P"
    time_part = "".join(
        f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n
    )
    if time_part:
        text += "T" + time_part
    return text if text not in ("P", "-P") else "PT0S"
