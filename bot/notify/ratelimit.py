"""Keeping Bot Connector calls under the Teams rate limits, before Teams has to say 429.

Teams allows a bot 50 requests per second per tenant, and per conversation 7 per second, 8 per
2 seconds, 60 per 30 seconds and 1800 per hour. :class:`RateLimiter` hands out send slots so
that, measured over any sliding window, those counts are never exceeded:

- each conversation has its own windows, and requests to one conversation are served in order;
- the tenant has one window (default 48 per 1.04 s, just under the limit with room for jitter
  between our clock and the connector's), served first come, first served;
- a 429 pauses its scope for ``Retry-After``.

Slots are reserved under a lock and slept on outside it, so thousands of waiting senders cost
one timer each.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["RateLimiter", "TeamsRateLimits"]


@dataclass(frozen=True)
class TeamsRateLimits:
    """Limits in (count, window seconds) pairs; the defaults are Teams' own, with a margin."""

    tenant: tuple[tuple[int, float], ...] = ((48, 1.04),)
    conversation: tuple[tuple[int, float], ...] = ((7, 1.0), (8, 2.0), (60, 30.0), (1800, 3600.0))

    @classmethod
    def scaled(cls, factor: float) -> TeamsRateLimits:
        """Limits multiplied by ``factor`` (benchmarks lift them to find the bot's own ceiling)."""
        base = cls()
        return cls(
            tenant=tuple((max(1, int(n * factor)), w) for n, w in base.tenant),
            conversation=tuple((max(1, int(n * factor)), w) for n, w in base.conversation),
        )


class _Windows:
    """Sliding-window logs for one scope: sorted reservation times and a pause."""

    def __init__(self, limits: tuple[tuple[int, float], ...]) -> None:
        self._limits = limits
        self._times: list[float] = []
        self.paused_until = 0.0
        self.lock = asyncio.Lock()
        self._longest_s = max((w for _, w in limits), default=0.0)

    def reserve(self, now: float) -> float:
        """The earliest time ≥ ``now`` at which one more request keeps every window within limits."""
        start = max(now, self.paused_until, self._times[-1] if self._times else now)
        t = start
        for _ in range(8):  # converges in one or two rounds; bounded for safety
            moved = False
            for count, window_s in self._limits:
                # Requests in (t - window, t]; if full, wait until the oldest of them leaves.
                first = bisect.bisect_right(self._times, t - window_s)
                in_window = len(self._times) - first
                if in_window >= count:
                    t = self._times[first + in_window - count] + window_s + 1e-6
                    moved = True
            if not moved:
                break
        self._times.append(t)
        self._forget(now)
        return t

    def _forget(self, now: float) -> None:
        cut = bisect.bisect_right(self._times, now - self._longest_s)
        if cut > 1024:
            del self._times[:cut]


class RateLimiter:
    """Send slots under the per-tenant and per-conversation limits of one bot in one tenant."""

    def __init__(
        self,
        limits: TeamsRateLimits | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._limits = limits or TeamsRateLimits()
        self._monotonic = monotonic
        self._sleep = sleep
        self._tenant = _Windows(self._limits.tenant)
        self._conversations: dict[str, _Windows] = {}
        self.waited_s = 0.0

    def tenant_rate_per_s(self) -> float:
        """The most requests per second the tenant windows allow (the tightest of them)."""
        return min((count / window_s for count, window_s in self._limits.tenant), default=1e9)

    async def acquire(self, conversation_id: str | None) -> None:
        """Wait for a slot to send to ``conversation_id`` (None: tenant-wide call, e.g. create)."""
        if conversation_id is not None:
            scope = self._conversations.get(conversation_id)
            if scope is None:
                scope = self._conversations[conversation_id] = _Windows(self._limits.conversation)
            async with scope.lock:
                await self._wait_until(scope.reserve(self._monotonic()))
        async with self._tenant.lock:
            at = self._tenant.reserve(self._monotonic())
        await self._wait_until(at)

    def pause(self, conversation_id: str | None, retry_after_s: float) -> None:
        """Teams said 429: nothing more to that scope (or the tenant) for ``retry_after_s``."""
        until = self._monotonic() + retry_after_s
        scope = (
            self._tenant if conversation_id is None else self._conversations.get(conversation_id)
        )
        if scope is not None:
            scope.paused_until = max(scope.paused_until, until)

    async def _wait_until(self, at: float) -> None:
        delay = at - self._monotonic()
        if delay > 0:
            self.waited_s += delay
            await self._sleep(delay)
