"""Pacing Graph traffic by the identity-and-access budget Graph reports, and request priority.

What Microsoft documents (``concepts/throttling-limits.md``, identity and access service limits,
and ``concepts/throttling.md``):

* Each app has a budget of resource units (RU) per tenant: 3,500 / 5,000 / 8,000 RU per 10 s
  for tenants of fewer than 50 / 50 to 500 / more than 500 users, and 3,000 writes per 2.5 min.
* Every answer carries ``x-ms-resource-unit``: what that request cost (a positive integer).
* Once the app has used more than 0.8 of its budget, answers also carry
  ``x-ms-throttle-limit-percentage`` (0.8 to 1.8): the share of the budget in use.
* A 429 carries ``x-ms-throttle-scope``, ``<Scope>/<Limit>/<ApplicationId>/<TenantId|UserId>``
  where ``Limit`` is ``Read``, ``Write`` or ``ReadWrite``.
* A request may say ``x-ms-throttle-priority: low | normal | high`` (``normal`` when absent;
  ``high`` only for requests a user is waiting on): when throttling must happen, low goes first.

How the bot uses them (:class:`GraphPacer`): it keeps, per tenant, a sliding 10-second window of
the RU its own requests cost, plus what the service says the whole app uses when it reports a
percentage. Once it knows the budget (the tenant's size from ``GET /users/$count``, or inferred
from a reported percentage), **background** requests (``low``/``normal``: discovery, directory
look-ups, reminders) wait before they would take the window past ``target_fraction`` of it, so a
full poll spends the budget at the rate it refills instead of running into 429s; a 429 with
``Retry-After`` holds the other background requests of its scope that long (without one, each
throttled request backs off on its own with full jitter).
**High** requests (a reviewer's click) are never held: they are accounted, so the background
leaves room for them, but they go straight out.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = [
    "PRIORITY_HEADER",
    "RESOURCE_UNIT_HEADER",
    "THROTTLE_PERCENT_HEADER",
    "THROTTLE_SCOPE_HEADER",
    "GraphPacer",
    "PacerMetrics",
    "Priority",
    "ThrottleScope",
    "Ticket",
    "budget_for_tenant_size",
    "current_priority",
    "graph_priority",
    "header_float",
]

log = logging.getLogger(__name__)

PRIORITY_HEADER = "x-ms-throttle-priority"
RESOURCE_UNIT_HEADER = "x-ms-resource-unit"
THROTTLE_PERCENT_HEADER = "x-ms-throttle-limit-percentage"
THROTTLE_SCOPE_HEADER = "x-ms-throttle-scope"

#: The window Graph's identity-and-access RU budget is counted over.
RU_WINDOW_S = 10.0
#: The write budget: 3,000 writes per app per tenant per 2.5 minutes.
WRITE_WINDOW_S = 150.0
WRITE_LIMIT = 3_000
#: The smallest and largest per-tenant RU budgets Graph documents (bounds for an inferred one).
SMALLEST_BUDGET_RU = 3_500
LARGEST_BUDGET_RU = 8_000


class Priority(StrEnum):
    """``x-ms-throttle-priority`` values."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


_PRIORITY: ContextVar[Priority | None] = ContextVar("graph_priority", default=None)


@contextmanager
def graph_priority(priority: Priority) -> Iterator[None]:
    """Every Graph request made inside this block (and tasks started from it) has ``priority``.

    The Teams action boundary wraps a click in ``graph_priority(Priority.HIGH)``, so the reads a
    click needs (a mailbox look-up for a snooze, the check before a retried write) are never
    paced or queued behind a poll, whichever client object makes them.
    """
    token = _PRIORITY.set(priority)
    try:
        yield
    finally:
        _PRIORITY.reset(token)


def current_priority() -> Priority | None:
    """The priority set by an enclosing :func:`graph_priority`, if any."""
    return _PRIORITY.get()


def budget_for_tenant_size(users: int) -> int:
    """The documented RU budget per 10 s for a tenant of ``users`` users."""
    if users < 50:
        return 3_500
    if users <= 500:
        return 5_000
    return 8_000


@dataclass(frozen=True)
class ThrottleScope:
    """A parsed ``x-ms-throttle-scope``: which budget a 429 was about."""

    scope: str  # Tenant_Application | Tenant | Application
    limit: str  # read | write | readwrite (lowercased)
    application_id: str = ""
    target_id: str = ""

    @classmethod
    def parse(cls, value: str | None) -> ThrottleScope | None:
        if not value:
            return None
        parts = [p.strip() for p in value.split("/")]
        if len(parts) < 2 or not parts[0] or not parts[1]:
            return None
        limit = parts[1].lower()
        if limit not in ("read", "write", "readwrite"):
            return None
        return cls(
            scope=parts[0],
            limit=limit,
            application_id=parts[2] if len(parts) > 2 else "",
            target_id=parts[3] if len(parts) > 3 else "",
        )

    def covers(self, *, write: bool) -> bool:
        """Whether requests of this kind (a write or a read) are throttled by this scope."""
        return self.limit == "readwrite" or self.limit == ("write" if write else "read")


class PacerMetrics:
    """Prometheus metrics of the pacer."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry if registry is not None else CollectorRegistry()
        self.wait_s = Counter(
            "graph_pacing_wait_seconds",
            "Time background Graph requests waited for the budget, by reason.",
            ["reason"],
            registry=registry,
        )
        self.waits = Counter(
            "graph_pacing_waits",
            "Background Graph requests that waited for the budget, by reason.",
            ["reason"],
            registry=registry,
        )
        self.budget_used = Gauge(
            "graph_budget_used_ratio",
            "Estimated share of the app's Graph resource-unit budget in use (last look).",
            registry=registry,
        )
        self.resource_units = Counter(
            "graph_resource_units",
            "Resource units Graph reported for our requests (x-ms-resource-unit), by priority.",
            ["priority"],
            registry=registry,
        )


@dataclass
class _Budget:
    """What we know of one tenant's budget."""

    limit_ru: float | None = None
    limit_source: str = ""  # "tenant size", "reported percentage", "configured"
    # (monotonic time, RU) of our requests in the last window; in-flight ones are reservations.
    spent: deque[tuple[float, float]] = field(default_factory=deque)
    spent_total: float = 0.0
    reserved: float = 0.0
    # Units the service counts that are not ours (other replicas): (amount, until).
    others_ru: float = 0.0
    others_until: float = 0.0
    writes: deque[float] = field(default_factory=deque)
    reserved_writes: int = 0
    # Background requests of a throttled scope wait until then (monotonic), by limit kind.
    paused_until: dict[str, float] = field(default_factory=dict)
    # Running mean of RU per request, to estimate a request's cost before it is sent.
    mean_ru: float = 1.0


@dataclass
class Ticket:
    """An admitted request: what was reserved for it, to be settled with what it cost."""

    tenant: str
    priority: Priority
    reserved_ru: float
    write: bool
    writes: int = 1  # write operations it carries ($batch of PATCHes: one per item)
    settled: bool = False


class GraphPacer:
    """Per-tenant estimate of the app's Graph budget; holds background requests when it is spent.

    ``target_fraction`` is the share of the budget background requests may fill (the rest is
    headroom for clicks and for what the estimate misses). ``monotonic``/``sleep`` are injectable
    for tests.
    """

    def __init__(
        self,
        *,
        target_fraction: float = 0.8,
        window_s: float = RU_WINDOW_S,
        write_window_s: float = WRITE_WINDOW_S,
        write_limit: int = WRITE_LIMIT,
        max_pause_s: float = 60.0,
        metrics: PacerMetrics | None = None,
        registry: CollectorRegistry | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not 0.0 < target_fraction <= 1.0:
            raise ValueError("target_fraction must be within (0, 1]")
        self._target = target_fraction
        self._window_s = window_s
        self._write_window_s = write_window_s
        self._write_limit = write_limit
        self._max_pause_s = max_pause_s
        self._budgets: dict[str, _Budget] = {}
        self._monotonic = monotonic
        self._sleep = sleep
        self.metrics = metrics or PacerMetrics(registry)

    # -- what we learn from outside ------------------------------------------------------------
    def note_tenant_users(self, tenant: str, users: int) -> None:
        """The tenant's user count (``GET /users/$count``): its documented budget."""
        budget = self._budget(tenant)
        limit = budget_for_tenant_size(users)
        if budget.limit_ru != limit:
            log.info(
                "graph budget set from the tenant size",
                extra={"tenant": tenant, "users": users, "budget_ru_per_10s": limit},
            )
        budget.limit_ru = float(limit)
        budget.limit_source = "tenant size"

    def set_budget(self, tenant: str, limit_ru: float) -> None:
        """Set the RU budget per window outright (tests, or an operator who knows it)."""
        budget = self._budget(tenant)
        budget.limit_ru = float(limit_ru)
        budget.limit_source = "configured"

    def budget_ru(self, tenant: str) -> float | None:
        """The budget per window we assume for ``tenant`` (None until known)."""
        return self._budget(tenant).limit_ru

    def used_fraction(self, tenant: str) -> float | None:
        """Estimated share of the budget in use now (None while the budget is unknown)."""
        budget = self._budget(tenant)
        now = self._monotonic()
        self._expire(budget, now)
        if not budget.limit_ru:
            return None
        return self._in_use(budget, now) / budget.limit_ru

    # -- admission -----------------------------------------------------------------------------
    def estimate_ru(self, tenant: str, requests: int = 1) -> float:
        """Expected cost of ``requests`` requests, from what this tenant's requests cost so far."""
        return max(1.0, self._budget(tenant).mean_ru) * max(1, requests)

    async def admit(
        self, *, tenant: str, priority: Priority, cost_ru: float, write: bool, writes: int = 1
    ) -> Ticket:
        """Wait until a request of ``cost_ru`` (carrying ``writes`` writes when ``write``) may go
        (high: at once), and reserve it."""
        writes = max(1, writes) if write else 0
        budget = self._budget(tenant)
        if priority is not Priority.HIGH:
            while True:
                now = self._monotonic()
                self._expire(budget, now)
                wait_s, reason = self._wait_s(budget, now, cost_ru, writes)
                if wait_s <= 0:
                    break
                self.metrics.waits.labels(reason).inc()
                self.metrics.wait_s.labels(reason).inc(wait_s)
                log.debug("graph pacing: background request waits %.3f s (%s)", wait_s, reason)
                await self._sleep(wait_s)
        budget.reserved += cost_ru
        budget.reserved_writes += writes
        return Ticket(
            tenant=tenant, priority=priority, reserved_ru=cost_ru, write=write, writes=writes
        )

    def settle(
        self,
        ticket: Ticket,
        *,
        resource_units: float | None,
        limit_percentage: float | None,
        throttle_scope: ThrottleScope | None = None,
        retry_after_s: float | None = None,
        throttled: bool = False,
    ) -> None:
        """Account a finished request with what Graph said about it.

        ``resource_units`` is the sum of ``x-ms-resource-unit`` over the answer (None when Graph
        sent none: the reservation stands as the estimate); ``limit_percentage`` the highest
        ``x-ms-throttle-limit-percentage`` seen; ``throttled`` a 429 (with its scope and wait).
        """
        if ticket.settled:
            return
        ticket.settled = True
        budget = self._budget(ticket.tenant)
        now = self._monotonic()
        budget.reserved = max(0.0, budget.reserved - ticket.reserved_ru)
        if ticket.write:
            budget.reserved_writes = max(0, budget.reserved_writes - ticket.writes)
            budget.writes.extend([now] * ticket.writes)
        cost = ticket.reserved_ru if resource_units is None else max(0.0, resource_units)
        if resource_units is not None:
            self.metrics.resource_units.labels(ticket.priority.value).inc(cost)
            requests = max(1.0, ticket.reserved_ru / max(budget.mean_ru, 1.0))
            per_request = cost / requests
            budget.mean_ru = 0.9 * budget.mean_ru + 0.1 * max(1.0, per_request)
        if cost > 0:
            budget.spent.append((now, cost))
            budget.spent_total += cost
        self._expire(budget, now)
        if limit_percentage is not None:
            self._observe_percentage(budget, now, limit_percentage)
        if throttled:
            self._observe_throttled(budget, now, throttle_scope, retry_after_s)
        if budget.limit_ru:
            self.metrics.budget_used.set(self._in_use(budget, now) / budget.limit_ru)

    # -- the model -----------------------------------------------------------------------------
    def _budget(self, tenant: str) -> _Budget:
        key = tenant.lower()
        budget = self._budgets.get(key)
        if budget is None:
            budget = self._budgets[key] = _Budget()
        return budget

    def _expire(self, budget: _Budget, now: float) -> None:
        horizon = now - self._window_s
        while budget.spent and budget.spent[0][0] <= horizon:
            _at, ru = budget.spent.popleft()
            budget.spent_total -= ru
        if budget.spent_total < 1e-9:
            budget.spent_total = 0.0
        write_horizon = now - self._write_window_s
        while budget.writes and budget.writes[0] <= write_horizon:
            budget.writes.popleft()
        if budget.others_ru and now >= budget.others_until:
            budget.others_ru = 0.0

    def _others(self, budget: _Budget, now: float) -> float:
        """Units the service counted that were not ours, fading out over one window."""
        if not budget.others_ru or now >= budget.others_until:
            return 0.0
        return budget.others_ru * (budget.others_until - now) / self._window_s

    def _in_use(self, budget: _Budget, now: float) -> float:
        return budget.spent_total + budget.reserved + self._others(budget, now)

    def _wait_s(
        self, budget: _Budget, now: float, cost_ru: float, writes: int
    ) -> tuple[float, str]:
        """How long a background request must wait, and why (0 when it may go now)."""
        write = writes > 0
        for limit, until in budget.paused_until.items():
            if until > now and (limit == "readwrite" or limit == ("write" if write else "read")):
                return until - now, "throttled"
        if write:
            allowed_writes = self._target * self._write_limit
            in_window = len(budget.writes) + budget.reserved_writes + writes
            if in_window > allowed_writes and budget.writes:
                return max(budget.writes[0] + self._write_window_s - now, 0.001), "writes"
        if not budget.limit_ru:
            return 0.0, ""
        allowed = self._target * budget.limit_ru
        in_use = self._in_use(budget, now)
        excess = in_use + cost_ru - allowed
        if excess <= 0 or in_use <= 0:
            # (A request bigger than the whole share still goes once the window is empty.)
            return 0.0, ""
        # Wait until enough of our own spending leaves the window (others fade linearly).
        freed = 0.0
        for at, ru in budget.spent:
            freed += ru
            if freed >= excess:
                return max(at + self._window_s - now, 0.001), "budget"
        # The rest is in flight (settles within a request's time) or not ours (fades within one
        # window): look again shortly rather than spin.
        return min(self._window_s, max(budget.others_until - now, 0.05)), "budget"

    def _observe_percentage(self, budget: _Budget, now: float, fraction: float) -> None:
        """Graph says the app uses ``fraction`` of its budget (sent only above 0.8)."""
        if fraction <= 0 or not math.isfinite(fraction):
            return
        ours = budget.spent_total
        if budget.limit_ru is None or budget.limit_source == "reported percentage":
            # Infer the budget from our share of what Graph counts; another consumer's units make
            # the estimate low (which paces us more, never less); Graph's documented budgets bound it.
            inferred = min(max(ours / fraction, SMALLEST_BUDGET_RU), LARGEST_BUDGET_RU)
            if budget.limit_ru is None:
                log.info(
                    "graph budget inferred from a reported percentage",
                    extra={"used_fraction": fraction, "budget_ru_per_10s": round(inferred)},
                )
            budget.limit_ru = inferred
            budget.limit_source = "reported percentage"
        service_ru = fraction * budget.limit_ru
        others = service_ru - ours - budget.reserved
        if others > self._others(budget, now):
            budget.others_ru = others
            budget.others_until = now + self._window_s

    def _observe_throttled(
        self, budget: _Budget, now: float, scope: ThrottleScope | None, retry_after_s: float | None
    ) -> None:
        """When Graph names the wait, the other background requests of the throttled scope wait
        it out too instead of each meeting its own 429. Without one nothing is held: each
        throttled request backs off on its own, with full jitter, so they spread out. (Holding
        everything for a fixed time, or counting the budget as spent, stalled a whole 100k poll
        for seconds per stray 429.)"""
        if retry_after_s is None:
            return
        limit = scope.limit if scope is not None else "readwrite"
        until = now + min(max(retry_after_s, 0.0), self._max_pause_s)
        if budget.paused_until.get(limit, 0.0) < until:
            budget.paused_until[limit] = until


def header_float(headers: Mapping[str, str], name: str) -> float | None:
    """A numeric header (case-insensitive); None when absent or not a finite number."""
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            try:
                number = float(str(value).strip())
            except ValueError:
                return None
            return number if math.isfinite(number) else None
    return None
