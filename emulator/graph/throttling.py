"""Graph throttling on its own: the identity and access service limits of Microsoft's
``concepts/throttling-limits.md``, applied to every request the emulated Graph routes.

What the docs say, and the emulator does:

* A token bucket of **resource units** per application + tenant: S 3,500, M 5,000, L 8,000 per
  10 seconds, by tenant size (S under 50 users, M 50–500, L above 500).
* A **write** quota per application + tenant of 3,000 per 2 minutes 30 seconds, and per tenant
  (all applications) of 18,000 per 5 minutes.
* Each request's **cost**: the base-cost table (``GET users`` 2, ``GET groups/{id}/members`` 3,
  ``GET groups/{id}/transitiveMembers`` 5, ...; anything else 1; writes also cost 1 write),
  ``$select`` −1, ``$expand`` +1, ``$top`` under 20 −1, never below 1; ``me/`` costs as
  ``users/{id}/``.
* ``x-ms-resource-unit`` (the units charged) on every answer; ``x-ms-throttle-limit-percentage``
  once more than 0.8 of the limit is used (0.8–1.8); on a 429, ``x-ms-throttle-scope``
  (``<Scope>/<Limit>/<ApplicationId>/<TenantId>``) and ``x-ms-throttle-information``.
* ``x-ms-throttle-priority: low|normal|high`` (anything else is normal): "low priority requests
  will be throttled first, normal priority requests second, and high priority requests last.
  Using the priority request header does not change the limits."
* "Microsoft Graph continues to log resource usage while a client is being throttled": a
  throttled request is charged too.
* ``$batch``: every sub-request is evaluated and charged on its own (the envelope is not).
* The 429 answer is the sample of ``concepts/throttling.md``, with a ``Retry-After`` that may be
  fractional (``2.128``).

Emulator choices where the docs leave one (the harder side each time):

* The limits apply to every Graph request, access reviews included (they are not on the identity
  and access list, but the docs warn any service may answer 429 below its published limits).
* Priorities are enforced by headroom: a **low** request is refused once admitting it would leave
  less than 20 % of the bucket, **normal** less than 5 %, **high** may use it all.
* Debt is bounded: a bucket never goes below −0.8 of its capacity (so the limit percentage stays
  within the documented 0.8–1.8).
* ``Retry-After`` is the exact time until this request would be admitted (rounded up to the
  millisecond), and is **left out** on some 429s: each 429 draws from a random generator seeded
  with :attr:`ThrottleSettings.seed`; with probability
  :attr:`ThrottleSettings.retry_after_absent_fraction` (default 0.2) the header is omitted, so a
  client must also back off without it. The same sequence of requests draws the same answers.
* The limit percentage is sent with one decimal, rounded down.
"""

from __future__ import annotations

import math
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = [
    "PRIORITIES",
    "TENANT_SIZES",
    "Charge",
    "GraphThrottle",
    "ThrottleRecord",
    "ThrottleSettings",
    "request_cost",
    "tenant_size_for",
]

Priority = Literal["low", "normal", "high"]
PRIORITIES: tuple[Priority, ...] = ("low", "normal", "high")
#: Resource units per 10 seconds per application + tenant, by tenant size.
TENANT_SIZES: Mapping[str, int] = {"small": 3_500, "medium": 5_000, "large": 8_000}
RESOURCE_UNIT_PERIOD_S = 10.0
APP_TENANT_WRITES, APP_TENANT_WRITE_PERIOD_S = 3_000, 150.0
TENANT_WRITES, TENANT_WRITE_PERIOD_S = 18_000, 300.0
#: Share of a bucket a request of each priority must leave free to be admitted.
_HEADROOM: Mapping[Priority, float] = {"low": 0.2, "normal": 0.05, "high": 0.0}
_MAX_DEBT = 0.8
_WARN_ABOVE = 0.8
_RECORD_LIMIT = 20_000

# (method, path pattern relative to the version, base resource units, write cost); the first
# match wins. Paths under me/ are matched as users/{id}/.
_BASE_COSTS: tuple[tuple[str, re.Pattern[str], int, int], ...] = tuple(
    (method, re.compile(f"^{pattern}$"), units, writes)
    for method, pattern, units, writes in (
        ("GET", r"applications", 2, 0),
        ("GET", r"applications/[^/]+/extensionProperties", 2, 0),
        ("GET", r"contracts", 3, 0),
        ("POST", r"directoryObjects/getByIds", 3, 0),
        ("GET", r"domains/[^/]+/domainNameReferences", 4, 0),
        ("POST", r"getObjectsById", 3, 0),
        ("GET", r"groups/[^/]+/members", 3, 0),
        ("GET", r"groups/[^/]+/transitiveMembers", 5, 0),
        ("POST", r"(?:.+/)?isMemberOf", 4, 0),
        ("POST", r"users/[^/]+/checkMemberGroups", 4, 0),
        ("POST", r"users/[^/]+/checkMemberObjects", 4, 0),
        ("POST", r"users/[^/]+/getMemberGroups", 2, 0),
        ("POST", r"users/[^/]+/getMemberObjects", 2, 0),
        ("GET", r"users/[^/]+/licenseDetails", 2, 0),
        ("GET", r"users/[^/]+/memberOf", 2, 0),
        ("GET", r"users/[^/]+/ownedObjects", 2, 0),
        ("GET", r"users/[^/]+/transitiveMemberOf", 2, 0),
        ("GET", r"oauth2PermissionGrants(?:/[^/]+)?", 2, 0),
        ("GET", r"servicePrincipals/[^/]+/appRoleAssignments", 2, 0),
        ("GET", r"subscribedSkus", 3, 0),
        ("GET", r"users", 2, 0),
    )
)
_WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


def tenant_size_for(user_count: int) -> str:
    """The documented tenant size class: small under 50 users, medium 50–500, large above."""
    if user_count < 50:
        return "small"
    if user_count <= 500:
        return "medium"
    return "large"


def request_cost(method: str, path: str, query: Sequence[tuple[str, str]]) -> tuple[int, int]:
    """``(resource units, writes)`` one request costs."""
    relative = path.strip("/")
    if relative == "me" or relative.startswith("me/"):
        relative = "users/me" + relative[2:]
    method = method.upper()
    units, writes = 1, (1 if method in _WRITE_METHODS else 0)
    for cost_method, pattern, base_units, base_writes in _BASE_COSTS:
        if cost_method == method and pattern.match(relative):
            units, writes = base_units, base_writes
            break
    names = {name for name, _value in query}
    if "$select" in names:
        units -= 1
    if "$expand" in names:
        units += 1
    top = next((value for name, value in query if name == "$top"), None)
    if top is not None and top.strip().isdigit() and int(top) < 20:
        units -= 1
    return max(1, units), writes


def parse_priority(header: str | None) -> Priority:
    """``x-ms-throttle-priority``: low, normal or high; absent or anything else is normal."""
    value = (header or "").strip().lower()
    if value == "low":
        return "low"
    if value == "high":
        return "high"
    return "normal"


@dataclass(frozen=True, slots=True)
class ThrottleSettings:
    """How the emulated Graph throttles (``EmulatorConfig`` builds it)."""

    enabled: bool = True
    #: "small" | "medium" | "large"; None: from the tenant's number of users, as Graph does.
    tenant_size: str | None = None
    #: Share of 429s answered without ``Retry-After`` (drawn from a generator seeded below).
    retry_after_absent_fraction: float = 0.2
    seed: int = 19

    def __post_init__(self) -> None:
        if self.tenant_size is not None and self.tenant_size not in TENANT_SIZES:
            raise ValueError(f"tenant_size must be one of {sorted(TENANT_SIZES)} or None")
        if not 0.0 <= self.retry_after_absent_fraction <= 1.0:
            raise ValueError("retry_after_absent_fraction must be within [0, 1]")


class _Bucket:
    """A token bucket: ``capacity`` units refilled evenly over ``period_s``; may run into debt
    (down to −0.8 of its capacity) because throttled requests are charged too."""

    def __init__(self, capacity: int, period_s: float, now_s: float) -> None:
        self.capacity = capacity
        self.period_s = period_s
        self.tokens = float(capacity)
        self.updated_s = now_s

    def resize(self, capacity: int) -> None:
        self.tokens += capacity - self.capacity
        self.capacity = capacity

    def _refill(self, now_s: float) -> None:
        elapsed = max(0.0, now_s - self.updated_s)
        self.tokens = min(float(self.capacity), self.tokens + elapsed * self.rate)
        self.updated_s = max(self.updated_s, now_s)

    @property
    def rate(self) -> float:
        return self.capacity / self.period_s

    def wait_s(self, cost: int, headroom: float, now_s: float) -> float:
        """Seconds until a request of ``cost`` leaves ``headroom`` (a share of the capacity)."""
        self._refill(now_s)
        missing = cost + headroom * self.capacity - self.tokens
        # A hair of tolerance: a client that waited exactly the Retry-After it was given must
        # not be refused over floating-point dust.
        return 0.0 if missing <= 1e-9 else missing / self.rate

    def charge(self, cost: int, now_s: float) -> None:
        self._refill(now_s)
        self.tokens = max(-_MAX_DEBT * self.capacity, self.tokens - cost)

    def used_fraction(self, now_s: float) -> float:
        self._refill(now_s)
        return (self.capacity - self.tokens) / self.capacity


@dataclass(frozen=True, slots=True)
class Charge:
    """What the throttle decided for one request."""

    units: int
    writes: int
    priority: Priority
    throttled: bool = False
    #: Seconds for ``Retry-After`` on a 429 (None: the header is left out).
    retry_after_s: float | None = None
    scope: str | None = None
    information: str | None = None
    #: Share of the most used limit after this request (None: throttling is off).
    used_fraction: float | None = None

    def headers(self) -> dict[str, str]:
        """The documented response headers for this request."""
        headers = {"x-ms-resource-unit": str(self.units)}
        if self.used_fraction is not None and self.used_fraction > _WARN_ABOVE:
            shown = math.floor(min(self.used_fraction, 1.0 + _MAX_DEBT) * 10) / 10
            headers["x-ms-throttle-limit-percentage"] = f"{shown:.1f}"
        if self.throttled:
            if self.retry_after_s is not None:
                headers["Retry-After"] = _seconds_text(self.retry_after_s)
            if self.scope:
                headers["x-ms-throttle-scope"] = self.scope
            if self.information:
                headers["x-ms-throttle-information"] = self.information
        return headers


def _seconds_text(seconds: float) -> str:
    # Milliseconds, rounded up so that waiting exactly this long is enough ("2.128").
    millis = max(1, math.ceil(seconds * 1000 - 1e-6))
    whole, rest = divmod(millis, 1000)
    return f"{whole}.{rest:03d}".rstrip("0").rstrip(".") if rest else str(whole)


@dataclass(frozen=True, slots=True)
class ThrottleRecord:
    """One request as the throttle saw it (what tests assert the bot sent)."""

    app_id: str
    method: str
    path: str
    #: The raw ``x-ms-throttle-priority`` header (None when the request carried none).
    priority_header: str | None
    priority: Priority
    units: int
    writes: int
    throttled: bool
    retry_after_s: float | None


@dataclass(slots=True)
class _AppCounters:
    requests: int = 0
    units: int = 0
    writes: int = 0
    throttled: int = 0
    by_priority: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PRIORITIES, 0))
    throttled_by_priority: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(PRIORITIES, 0)
    )


class GraphThrottle:
    """The throttling state of one emulated tenant (thread-safe: tests read it from theirs).

    ``user_count()`` sizes the tenant; ``monotonic_s()`` is the clock the buckets refill on — real
    time by default, since clients wait ``Retry-After`` in real time.
    """

    def __init__(
        self,
        *,
        tenant_id: str,
        user_count: Callable[[], int],
        settings: ThrottleSettings | None = None,
        monotonic_s: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tenant_id = tenant_id
        self._user_count = user_count
        self._monotonic_s = monotonic_s
        self._lock = threading.Lock()
        self.settings = settings or ThrottleSettings()
        self._rng = random.Random(self.settings.seed)  # noqa: S311 - reproducible, not secret
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._counters: dict[str, _AppCounters] = {}
        self._records: deque[ThrottleRecord] = deque(maxlen=_RECORD_LIMIT)

    # ------------------------------------------------------------------ settings
    def configure(self, settings: ThrottleSettings) -> None:
        """Change the settings at run time (buckets keep their level)."""
        with self._lock:
            if settings.seed != self.settings.seed:
                self._rng = random.Random(settings.seed)  # noqa: S311
            self.settings = settings

    def tenant_size(self) -> str:
        """The size class the limits are taken from."""
        return self.settings.tenant_size or tenant_size_for(self._user_count())

    def limits(self) -> dict[str, Any]:
        """The limits in force (for the admin route and benchmarks)."""
        size = self.tenant_size()
        return {
            "tenant_size": size,
            "resource_units": TENANT_SIZES[size],
            "resource_unit_period_s": RESOURCE_UNIT_PERIOD_S,
            "writes": APP_TENANT_WRITES,
            "write_period_s": APP_TENANT_WRITE_PERIOD_S,
            "tenant_writes": TENANT_WRITES,
            "tenant_write_period_s": TENANT_WRITE_PERIOD_S,
        }

    # ------------------------------------------------------------------ charging
    def _bucket(
        self, key: tuple[str, str], capacity: int, period_s: float, now_s: float
    ) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(capacity, period_s, now_s)
        elif bucket.capacity != capacity:
            bucket.resize(capacity)
        return bucket

    def charge(
        self,
        *,
        app_id: str,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        priority_header: str | None,
    ) -> Charge:
        """Charge one request to ``app_id``'s limits and say whether it is admitted."""
        units, writes = request_cost(method, path, query)
        priority = parse_priority(priority_header)
        with self._lock:
            charge = self._charge_locked(app_id, units, writes, priority)
            counters = self._counters.setdefault(app_id, _AppCounters())
            counters.requests += 1
            counters.units += units
            counters.writes += writes
            counters.by_priority[priority] += 1
            if charge.throttled:
                counters.throttled += 1
                counters.throttled_by_priority[priority] += 1
            self._records.append(
                ThrottleRecord(
                    app_id=app_id,
                    method=method.upper(),
                    path=path,
                    priority_header=priority_header,
                    priority=priority,
                    units=units,
                    writes=writes,
                    throttled=charge.throttled,
                    retry_after_s=charge.retry_after_s,
                )
            )
        return charge

    def _charge_locked(self, app_id: str, units: int, writes: int, priority: Priority) -> Charge:
        if not self.settings.enabled:
            return Charge(units=units, writes=writes, priority=priority)
        now_s = self._monotonic_s()
        headroom = _HEADROOM[priority]
        limits: list[tuple[_Bucket, int, str, str]] = [
            (
                self._bucket(
                    (app_id, "units"),
                    TENANT_SIZES[self.tenant_size()],
                    RESOURCE_UNIT_PERIOD_S,
                    now_s,
                ),
                units,
                f"Tenant_Application/ReadWrite/{app_id}/{self.tenant_id}",
                "ResourceUnitLimitExceeded",
            )
        ]
        if writes:
            limits.append(
                (
                    self._bucket(
                        (app_id, "writes"), APP_TENANT_WRITES, APP_TENANT_WRITE_PERIOD_S, now_s
                    ),
                    writes,
                    f"Tenant_Application/Write/{app_id}/{self.tenant_id}",
                    "WriteLimitExceeded",
                )
            )
            limits.append(
                (
                    self._bucket(
                        ("", "tenant-writes"), TENANT_WRITES, TENANT_WRITE_PERIOD_S, now_s
                    ),
                    writes,
                    f"Tenant/Write/{app_id}/{self.tenant_id}",
                    "WriteLimitExceeded",
                )
            )
        refused = next(
            (
                (scope, info)
                for bucket, cost, scope, info in limits
                if bucket.wait_s(cost, headroom, now_s) > 0
            ),
            None,
        )
        for bucket, cost, _scope, _info in limits:
            bucket.charge(cost, now_s)
        used = max(bucket.used_fraction(now_s) for bucket, *_ in limits)
        if refused is None:
            return Charge(units=units, writes=writes, priority=priority, used_fraction=used)
        wait_s = max(bucket.wait_s(cost, headroom, now_s) for bucket, cost, *_ in limits)
        omit = self._rng.random() < self.settings.retry_after_absent_fraction
        return Charge(
            units=units,
            writes=writes,
            priority=priority,
            throttled=True,
            retry_after_s=None if omit else max(wait_s, 0.001),
            scope=refused[0],
            information=refused[1],
            used_fraction=used,
        )

    # ------------------------------------------------------------------ observing
    def counters(self) -> dict[str, dict[str, Any]]:
        """Per application id: requests, units, writes, throttled (429s), by priority."""
        with self._lock:
            return {app_id: asdict(c) for app_id, c in self._counters.items()}

    def records(self, app_id: str | None = None) -> list[ThrottleRecord]:
        """The most recent requests (bounded), optionally of one application."""
        with self._lock:
            return [r for r in self._records if app_id is None or r.app_id == app_id]

    def reset(self) -> None:
        """Forget counters, records and bucket levels (a fresh budget)."""
        with self._lock:
            self._buckets.clear()
            self._counters.clear()
            self._records.clear()
            self._rng = random.Random(self.settings.seed)  # noqa: S311

    def describe(self) -> dict[str, Any]:
        """Settings, limits in force and counters, as JSON."""
        return {
            "settings": asdict(self.settings),
            "limits": self.limits(),
            "counters": self.counters(),
        }
