"""Keeping Bot Connector calls under the Teams rate limits, before Teams has to say 429.

Teams allows a bot 50 requests per second per tenant, and per conversation 7 per second, 8 per
2 seconds, 60 per 30 seconds and 1800 per hour. :class:`RateLimiter` hands out send slots so
that, measured over any sliding window, those counts are never exceeded:

- each conversation has its own windows, and requests to one conversation are served in order;
- the tenant has one window (default 48 per 1.04 s, just under the limit with room for jitter
  between our clock and the connector's), served first come, first served;
- a 429 pauses its scope (:meth:`RateLimiter.throttled`): for ``Retry-After`` when the answer
  has one, else for an exponential backoff with full jitter.

Teams documents no ``Retry-After`` on its 429s; its rate-limit page asks for "exponential backoff
and random jitter" (msteams-docs ``bots/how-to/rate-limit.md``). Full jitter — a delay drawn
uniformly from ``[0, min(cap, base · 2^n)]`` after the n-th 429 in a row — is the variant that
spreads a burst of clients best (AWS Architecture Blog, "Exponential Backoff And Jitter", 2015).
A 429 does not say whether the conversation's limit or the tenant's was hit, so the scope is
inferred: a 429 on a tenant-wide call (creating a chat), or 429s without ``Retry-After`` on
several different conversations at nearly the same moment (:class:`BackoffPolicy`), slow the
whole tenant; a lone 429 slows only its conversation. A ``Retry-After`` is honoured for the call
it came with (its conversation; the tenant for a call on none). A conversation's (or the
tenant's) count of 429s in a row starts over with the first call that gets through after its
pause.

Slots are reserved under a lock and slept on outside it, so thousands of waiting senders cost
one timer each.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.backoff import full_jitter_s

__all__ = ["BackoffPolicy", "RateLimiter", "TeamsRateLimits"]

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class BackoffPolicy:
    """How long a 429 without ``Retry-After`` pauses its scope (full jitter, see the module).

    A conversation's windows are 1 s to 1 h long, the tenant's 1 s: the first pause of a
    conversation is up to ``conversation_base_s``, of the tenant up to ``tenant_base_s``, each
    doubling with every further 429 in a row up to its cap. (The Teams page's own example:
    three retries between 2 s and 20 s.)
    """

    conversation_base_s: float = 1.0
    conversation_cap_s: float = 60.0
    tenant_base_s: float = 0.25
    tenant_cap_s: float = 30.0
    #: Distinct conversations answered 429 within ``tenant_window_s`` that make it tenant-wide.
    #: An overflowing tenant window refuses every call until its oldest entry leaves, and our
    #: calls leave about 20 ms apart at the tenant's pace, so three come back within a few tens
    #: of milliseconds; a quarter of a second keeps occasional 429s of single conversations
    #: (3 % of calls early in the fanout benchmark) from looking tenant-wide.
    tenant_quorum: int = 3
    tenant_window_s: float = 0.25


class _Windows:
    """Sliding-window logs for one scope: sorted reservation times, a pause, 429s in a row."""

    def __init__(self, limits: tuple[tuple[int, float], ...]) -> None:
        self._limits = limits
        self._times: list[float] = []
        self.paused_until = 0.0
        self.failures = 0
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
        backoff: BackoffPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._limits = limits or TeamsRateLimits()
        self._monotonic = monotonic
        self._sleep = sleep
        self._backoff = backoff or BackoffPolicy()
        self._rng = rng or random.Random()  # noqa: S311 - backoff jitter, not cryptography
        self._tenant = _Windows(self._limits.tenant)
        self._conversations: dict[str, _Windows] = {}
        # (monotonic time, conversation) of recent 429s, to tell a tenant-wide one.
        self._recent_429s: deque[tuple[float, str | None]] = deque()
        self.waited_s = 0.0
        #: 429s seen without ``Retry-After``, and tenant-wide pauses taken (for metrics, tests).
        self.throttled_without_retry_after = 0
        self.tenant_backoffs = 0

    def tenant_rate_per_s(self) -> float:
        """The most requests per second the tenant windows allow (the tightest of them)."""
        return min((count / window_s for count, window_s in self._limits.tenant), default=1e9)

    async def acquire(self, conversation_id: str | None) -> None:
        """Wait for a slot to send to ``conversation_id`` (None: tenant-wide call, e.g. create)."""
        if conversation_id is not None:
            scope = self._scope(conversation_id)
            async with scope.lock:
                await self._wait_until(scope.reserve(self._monotonic()))
        async with self._tenant.lock:
            at = self._tenant.reserve(self._monotonic())
        await self._wait_until(at)

    def pause(self, conversation_id: str | None, retry_after_s: float) -> None:
        """Nothing more to that conversation (None: the tenant) for ``retry_after_s``."""
        until = self._monotonic() + retry_after_s
        scope = self._tenant if conversation_id is None else self._scope(conversation_id)
        scope.paused_until = max(scope.paused_until, until)

    def throttled(self, conversation_id: str | None, retry_after_s: float | None) -> float:
        """Teams answered 429 to a call to ``conversation_id`` (None: a tenant-wide call).

        Pauses the conversation, and the tenant when the 429 looks tenant-wide (see the module
        docstring): for ``retry_after_s`` when the answer gave one, else for a full-jitter
        backoff that grows with each 429 in a row. Returns the seconds until the refused call
        may be tried again.
        """
        now = self._monotonic()
        policy = self._backoff
        if retry_after_s is None:
            self.throttled_without_retry_after += 1
            self._recent_429s.append((now, conversation_id))
        while self._recent_429s and self._recent_429s[0][0] < now - policy.tenant_window_s:
            self._recent_429s.popleft()
        distinct = {cid for _at, cid in self._recent_429s}
        # A Retry-After is the answer for the call it came with: honoured there. Only 429s
        # without one leave the bot to guess their scope.
        tenant_wide = conversation_id is None or (
            retry_after_s is None and len(distinct) >= policy.tenant_quorum
        )
        until = now
        if conversation_id is not None:
            scope = self._scope(conversation_id)
            until = self._pause_scope(
                scope,
                now,
                retry_after_s,
                base_s=policy.conversation_base_s,
                cap_s=policy.conversation_cap_s,
            )
        if tenant_wide:
            paused_before = self._tenant.paused_until > now
            until = max(
                until,
                self._pause_scope(
                    self._tenant,
                    now,
                    retry_after_s,
                    base_s=policy.tenant_base_s,
                    cap_s=policy.tenant_cap_s,
                ),
            )
            if not paused_before:
                self.tenant_backoffs += 1
                log.info(
                    "tenant-wide 429s: every conversation waits %.2f s",
                    self._tenant.paused_until - now,
                    extra={"conversations_throttled": len(distinct)},
                )
        return max(0.0, until - now)

    def succeeded(self, conversation_id: str | None) -> None:
        """A call got through: the 429s in a row of its scopes (once their pause ended) end."""
        now = self._monotonic()
        if conversation_id is not None:
            scope = self._conversations.get(conversation_id)
            if scope is not None and scope.failures and now >= scope.paused_until:
                scope.failures = 0
        if self._tenant.failures and now >= self._tenant.paused_until:
            self._tenant.failures = 0

    def _pause_scope(
        self,
        scope: _Windows,
        now: float,
        retry_after_s: float | None,
        *,
        base_s: float,
        cap_s: float,
    ) -> float:
        """Pause ``scope`` for one more 429; return the end of its pause.

        429s to calls already on their way when the pause began say nothing new: they share
        that pause instead of doubling it once each.
        """
        if retry_after_s is not None:
            scope.paused_until = max(scope.paused_until, now + retry_after_s)
        elif scope.paused_until <= now:
            delay_s = full_jitter_s(scope.failures, base_s=base_s, cap_s=cap_s, rng=self._rng)
            scope.failures += 1
            scope.paused_until = now + delay_s
        return scope.paused_until

    def _scope(self, conversation_id: str) -> _Windows:
        scope = self._conversations.get(conversation_id)
        if scope is None:
            scope = self._conversations[conversation_id] = _Windows(self._limits.conversation)
        return scope

    async def _wait_until(self, at: float) -> None:
        delay = at - self._monotonic()
        if delay > 0:
            self.waited_s += delay
            await self._sleep(delay)
