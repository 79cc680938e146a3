"""Injectable clocks for the emulator (and anything else that needs to control time in tests)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """Source of the current time. ``now()`` always returns a timezone-aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(UTC)


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        # A naive datetime is ambiguous; refusing it prevents silent local-time bugs in tests.
        raise ValueError("ManualClock needs a timezone-aware datetime")
    return value.astimezone(UTC)


class ManualClock:
    """A clock that only moves when told to (tests, benchmarks, the demo's time travel)."""

    def __init__(self, start: datetime) -> None:
        self._now = _as_utc(start)
        # Tests may move time from a thread (e.g. a sync fixture) while the loop reads it.
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """Return the current manual time."""
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move time forward by ``delta`` (must not be negative) and return the new time."""
        if delta < timedelta(0):
            raise ValueError("ManualClock cannot go backwards with advance(); use set()")
        with self._lock:
            self._now = self._now + delta
            return self._now

    def set(self, value: datetime) -> None:
        """Jump to ``value`` (forwards or backwards)."""
        with self._lock:
            self._now = _as_utc(value)
