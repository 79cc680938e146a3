"""The Microsoft Graph HTTP client: auth, retries, paging and ``$batch`` in one place.

:class:`GraphClient` owns policy (base URL, token, retry, deadline, metrics, logging); the
``httpx.AsyncClient`` it is given only moves bytes, so tests pass one built around
``httpx.MockTransport`` or pointed at the emulator, and production shares one pool.

Retry policy (the only one in the bot):

* 429, 503 and 504 wait for ``Retry-After`` (seconds or an HTTP date) when the server sends it,
  otherwise exponential backoff with full jitter; 500/502 and transport failures back off too,
  but only for idempotent requests (a POST that may have been processed is not repeated).
* 400/403/404/409 and other 4xx are never retried. A 401 gets one token refresh and one retry.
* Each call has bounded attempts and an overall deadline; a wait that would pass the deadline is
  not started: the call fails with the last error instead.
* ``$batch`` retries only the throttled/failed sub-requests, after the longest ``Retry-After``
  among them, and keeps every item's own error.
* ``Retry-After`` is honoured to the millisecond (Graph may send ``2.128``); without one the wait
  is drawn uniformly from ``[0, min(backoff_max_s, backoff_base_s * 2**(n-1))]`` for the n-th
  retry ("full jitter"; defaults 0.5 s base, 30 s cap), never a fixed second.

Priority and pacing (see :mod:`bot.graph.pacing`): every request says
``x-ms-throttle-priority`` (``low`` for background work, ``high`` for what a reviewer waits on),
goes through the pacer (background requests wait when the app's Graph budget is nearly spent;
high ones never do) and through one of two in-flight caps: background requests can fill theirs
without delaying a click by a single slot.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from prometheus_client import CollectorRegistry, Counter, Histogram

from bot.graph.config import GraphSettings
from bot.graph.errors import (
    GraphError,
    GraphUnavailable,
    error_from_parts,
)
from bot.graph.odata import Query, encode_query
from bot.graph.pacing import (
    PRIORITY_HEADER,
    RESOURCE_UNIT_HEADER,
    THROTTLE_PERCENT_HEADER,
    THROTTLE_SCOPE_HEADER,
    GraphPacer,
    Priority,
    ThrottleScope,
    Ticket,
    current_priority,
    header_float,
)
from bot.graph.tokens import TokenSource
from bot.http import create_async_client

__all__ = [
    "MAX_BATCH_SIZE",
    "BatchRequest",
    "BatchResponse",
    "GraphClient",
    "GraphMetrics",
    "GraphResponse",
    "RetryPolicy",
    "create_http_client",
    "parse_retry_after",
]

log = logging.getLogger(__name__)

#: Graph refuses a ``$batch`` with more sub-requests than this.
MAX_BATCH_SIZE = 20

_FOREGROUND = "foreground"
_BACKGROUND = "background"

_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Answers that say "not processed, come back later": safe to repeat for any method.
_RETRY_ANY_METHOD = frozenset({429, 503})
# Answers that may come after the work was done: repeat only idempotent requests.
_RETRY_IDEMPOTENT = frozenset({500, 502, 504})


#: The longest ``Retry-After`` taken at its word: a longer one (or ``inf``, or a date years
#: ahead) is read as this, so no answer can park a write past its review or overflow a date.
MAX_RETRY_AFTER_S = 900.0


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP date), at most
    :data:`MAX_RETRY_AFTER_S`; ``None`` if absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if seconds != seconds:  # NaN is not a wait
            return None
        return min(max(0.0, seconds), MAX_RETRY_AFTER_S)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - now).total_seconds()), MAX_RETRY_AFTER_S)


@dataclass(frozen=True)
class RetryPolicy:
    """How persistent one logical Graph call is."""

    max_attempts: int = 6
    deadline_s: float = 120.0
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0

    def backoff_s(self, retry_number: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(max, base * 2**n)] for the n-th retry (n from 1)."""
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2 ** (retry_number - 1))
        return rng.uniform(0.0, ceiling)


class GraphMetrics:
    """Prometheus metrics of Graph traffic, registered on ``registry`` (a private one if None)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.requests = Counter(
            "graph_http_requests",
            "HTTP requests sent to Graph, by method and status ('error' = no answer).",
            ["method", "status"],
            registry=self.registry,
        )
        self.retries = Counter(
            "graph_retries",
            "Graph requests repeated, by reason (status code, 'transport', 'unauthorized').",
            ["reason"],
            registry=self.registry,
        )
        self.batch_item_retries = Counter(
            "graph_batch_item_retries",
            "$batch sub-requests sent again, by the status that made us retry.",
            ["reason"],
            registry=self.registry,
        )
        self.batch_subrequests = Counter(
            "graph_batch_subrequests",
            "Sub-requests sent inside $batch calls (each counts against Graph's limits).",
            registry=self.registry,
        )
        self.throttled = Counter(
            "graph_throttled",
            "429 answers met (whole requests and $batch items), by request priority.",
            ["priority"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "graph_http_request_duration_seconds",
            "Time for one Graph HTTP request (one attempt).",
            ["method"],
            registry=self.registry,
        )


@dataclass(frozen=True)
class GraphResponse:
    """A successful Graph answer: status, headers and the decoded JSON body (None if empty)."""

    status: int
    headers: Mapping[str, str]
    body: Any
    request_id: str | None = None


@dataclass(frozen=True)
class BatchRequest:
    """One sub-request of a ``$batch``: ``url`` is relative to the version root (``/users/{id}``)."""

    id: str
    method: str
    url: str
    body: Any = None
    headers: Mapping[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        item: dict[str, Any] = {"id": self.id, "method": self.method.upper(), "url": self.url}
        headers = dict(self.headers or {})
        if self.body is not None:
            # Graph requires Content-Type on every sub-request that has a body.
            headers.setdefault("Content-Type", "application/json")
            item["body"] = self.body
        if headers:
            item["headers"] = headers
        return item


@dataclass(frozen=True)
class BatchResponse:
    """The final answer for one sub-request (after any retries)."""

    id: str
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    attempts: int = 1
    error: GraphError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def raise_for_status(self) -> None:
        if self.error is not None:
            raise self.error


def create_http_client(settings: GraphSettings) -> httpx.AsyncClient:
    """The process's shared ``httpx.AsyncClient`` for Graph: our CA bundle (if any), timeouts,
    a bounded pool. The caller owns it (``await http.aclose()`` at shutdown)."""
    context: ssl.SSLContext | None = None
    if settings.ca_bundle_path:
        # An explicit context: neither SSL_CERT_FILE nor any other environment setting replaces it.
        context = ssl.create_default_context(cafile=settings.ca_bundle_path)
    return create_async_client(
        ssl_context=context,
        limit=50,
        timeout=httpx.Timeout(settings.request_timeout_s, connect=settings.connect_timeout_s),
    )


class GraphClient:
    """Async Microsoft Graph client.

    ``http`` is shared (one connection pool for the process) and not closed here. ``tokens``
    supplies bearer tokens (:class:`~bot.graph.tokens.AppTokenProvider` for app-only,
    ``OboTokenProvider.for_user(...)`` for delegated calls; see :meth:`with_tokens`).

    ``priority`` is this client's ``x-ms-throttle-priority`` (background work: ``LOW``; what a
    reviewer waits on: ``HIGH``); an enclosing :func:`~bot.graph.pacing.graph_priority` or a
    call's own ``priority=`` overrides it. ``max_in_flight`` caps the requests in flight per lane:
    high-priority requests have a lane of their own, so background work never holds their slots.

    Graph failures raise :class:`~bot.graph.errors.GraphError` subclasses; a token that cannot
    be had raises the provider's :class:`~bot.graph.errors.TokenAcquisitionError` unchanged.
    ``sleep``/``monotonic``/``wall_clock``/``rng`` are injectable for tests (inject ``sleep``
    together with ``monotonic``: the default sleep waits by ``monotonic``).
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        tokens: TokenSource,
        base_url: str = "https://graph.microsoft.com",
        version: str = "v1.0",
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout | None = None,
        user_agent: str = "AccessReviewBot/0.1",
        batch_concurrency: int = 4,
        max_in_flight: int = 40,
        priority: Priority = Priority.NORMAL,
        tenant_id: str = "",
        pacer: GraphPacer | None = None,
        registry: CollectorRegistry | None = None,
        metrics: GraphMetrics | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._http = http
        self._tokens = tokens
        self._base_url = base_url.rstrip("/")
        origin = urlsplit(self._base_url)
        self._origin = (origin.scheme, origin.netloc.lower())
        self._version = version
        self._retry = retry or RetryPolicy()
        self._timeout = timeout or httpx.Timeout(30.0, connect=10.0)
        self._user_agent = user_agent
        self._batch_concurrency = max(1, batch_concurrency)
        self.metrics = metrics or GraphMetrics(registry)
        self._monotonic = monotonic
        self._sleep = sleep or self._sleep_until_elapsed
        self._wall_clock = wall_clock or (lambda: datetime.now(UTC))
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not crypto
        self._priority = Priority(priority)
        self._tenant_id = tenant_id or getattr(tokens, "tenant_id", "") or ""
        self._pacer = pacer or GraphPacer(
            registry=self.metrics.registry, monotonic=monotonic, sleep=self._sleep
        )
        # Requests waiting for a pooled connection inside httpcore cost CPU on every change of
        # the pool (it rescans its queue): thousands queued there make it quadratic. Queue them
        # here instead, below the pool size, shared by every with_tokens() clone. Two lanes: a
        # poll may fill the background one; a click's requests queue only behind other clicks.
        self._lanes = {
            _FOREGROUND: asyncio.Semaphore(max(1, max_in_flight)),
            _BACKGROUND: asyncio.Semaphore(max(1, max_in_flight)),
        }

    @classmethod
    def from_settings(
        cls,
        http: httpx.AsyncClient,
        *,
        tokens: TokenSource,
        settings: GraphSettings,
        registry: CollectorRegistry | None = None,
        priority: Priority = Priority.NORMAL,
    ) -> GraphClient:
        """A client configured from :class:`GraphSettings`."""
        return cls(
            http,
            tokens=tokens,
            base_url=settings.graph_base_url,
            retry=RetryPolicy(
                max_attempts=settings.max_attempts,
                deadline_s=settings.deadline_s,
                backoff_base_s=settings.backoff_base_s,
                backoff_max_s=settings.backoff_max_s,
            ),
            timeout=httpx.Timeout(settings.request_timeout_s, connect=settings.connect_timeout_s),
            user_agent=settings.user_agent,
            batch_concurrency=settings.batch_concurrency,
            priority=priority,
            tenant_id=settings.tenant_id,
            registry=registry,
        )

    def with_tokens(self, tokens: TokenSource, *, priority: Priority | None = None) -> GraphClient:
        """The same client (pool, lanes, pacer, policy, metrics) acting with other tokens, e.g. a
        reviewer's; with this client's priority unless another is given."""
        clone = object.__new__(GraphClient)
        clone.__dict__.update(self.__dict__)
        clone._tokens = tokens
        clone._tenant_id = getattr(tokens, "tenant_id", "") or self._tenant_id
        if priority is not None:
            clone._priority = Priority(priority)
        return clone

    def with_priority(self, priority: Priority) -> GraphClient:
        """The same client sending its requests with another ``x-ms-throttle-priority``."""
        return self.with_tokens(self._tokens, priority=priority)

    @property
    def priority(self) -> Priority:
        return self._priority

    @property
    def pacer(self) -> GraphPacer:
        """The budget estimate shared by this client and its clones."""
        return self._pacer

    @property
    def tenant_id(self) -> str:
        return self._tenant_id

    def _effective_priority(self, override: Priority | None) -> Priority:
        return override or current_priority() or self._priority

    @property
    def base_url(self) -> str:
        return self._base_url

    # -- single requests ------------------------------------------------------------------------

    def url_for(self, path: str, *, version: str | None = None) -> str:
        """Absolute URL for ``path`` (``/users/x`` → ``{base}/v1.0/users/x``); absolute URLs are
        checked to point at our Graph host (a nextLink elsewhere must not get our token)."""
        if path.startswith(("https://", "http://")):
            parts = urlsplit(path)
            if (parts.scheme, parts.netloc.lower()) != self._origin:
                raise GraphError(
                    f"refusing to send a Graph token to {parts.scheme}://{parts.netloc}"
                )
            return path
        if not path.startswith("/"):
            path = "/" + path
        return f"{self._base_url}/{version or self._version}{path}"

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | Query | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        version: str | None = None,
        idempotent: bool | None = None,
        priority: Priority | None = None,
    ) -> GraphResponse:
        """Send one logical request with retries; return the success or raise a :class:`GraphError`."""
        method = method.upper()
        url = self.url_for(path, version=version)
        if isinstance(params, Query):
            params = params.params()
        if params:
            url += ("&" if "?" in url else "?") + encode_query(params)
        if idempotent is None:
            idempotent = method in _IDEMPOTENT_METHODS
        content = None if json_body is None else json.dumps(json_body).encode()
        return await self._send_with_retries(
            method,
            url,
            content=content,
            extra_headers=headers or {},
            idempotent=idempotent,
            priority=self._effective_priority(priority),
        )

    async def get(
        self,
        path: str,
        *,
        params: Mapping[str, str] | Query | None = None,
        version: str | None = None,
        headers: Mapping[str, str] | None = None,
        priority: Priority | None = None,
    ) -> Any:
        """GET and return the decoded JSON body."""
        return (
            await self.request(
                "GET", path, params=params, version=version, headers=headers, priority=priority
            )
        ).body

    async def paginate(
        self,
        path: str,
        *,
        params: Mapping[str, str] | Query | None = None,
        version: str | None = None,
        headers: Mapping[str, str] | None = None,
        priority: Priority | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every item of a collection, following ``@odata.nextLink`` until the last page."""
        async for page in self.pages(
            path, params=params, version=version, headers=headers, priority=priority
        ):
            for item in page:
                yield item

    async def pages(
        self,
        path: str,
        *,
        params: Mapping[str, str] | Query | None = None,
        version: str | None = None,
        headers: Mapping[str, str] | None = None,
        priority: Priority | None = None,
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Each page's ``value`` list of a collection, following ``@odata.nextLink``."""
        next_path: str | None = path
        next_params = params
        while next_path is not None:
            body = await self.get(
                next_path, params=next_params, version=version, headers=headers, priority=priority
            )
            if not isinstance(body, Mapping):
                raise GraphError("collection answer is not a JSON object", status=200)
            value = body.get("value")
            if not isinstance(value, list):
                raise GraphError("collection answer has no 'value' list", status=200)
            yield [item for item in value if isinstance(item, dict)]
            link = body.get("@odata.nextLink")
            next_path = str(link) if link else None
            next_params = None  # the nextLink carries the query (and the skip token)

    # -- $batch ---------------------------------------------------------------------------------

    async def batch(
        self,
        requests: Sequence[BatchRequest],
        *,
        version: str | None = None,
        priority: Priority | None = None,
    ) -> dict[str, BatchResponse]:
        """Run sub-requests through ``$batch`` (20 per HTTP call); the answers keyed by id.

        Sub-requests are independent (no ``dependsOn``). Throttled or failed-but-retryable items
        are sent again, alone, after the longest ``Retry-After`` among them; every other item keeps
        its own status and error. The call itself raises only when a whole ``$batch`` HTTP call
        fails.
        """
        ids = [r.id for r in requests]
        if len(set(ids)) != len(ids):
            raise ValueError("$batch request ids must be unique")
        for r in requests:
            if r.url.startswith(("http://", "https://")):
                raise ValueError("$batch sub-request urls are relative (e.g. '/users/{id}')")
        chunks = [requests[i : i + MAX_BATCH_SIZE] for i in range(0, len(requests), MAX_BATCH_SIZE)]
        semaphore = asyncio.Semaphore(self._batch_concurrency)
        results: dict[str, BatchResponse] = {}
        effective = self._effective_priority(priority)

        async def run(chunk: Sequence[BatchRequest]) -> None:
            async with semaphore:
                results.update(
                    await self._run_batch_chunk(chunk, version=version, priority=effective)
                )

        tasks = [asyncio.create_task(run(chunk)) for chunk in chunks]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            # Raise the first failure itself (not an ExceptionGroup), after stopping the rest.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return {i: results[i] for i in ids}

    async def _run_batch_chunk(
        self, chunk: Sequence[BatchRequest], *, version: str | None, priority: Priority
    ) -> dict[str, BatchResponse]:
        deadline = self._monotonic() + self._retry.deadline_s
        pending = {r.id: r for r in chunk}
        attempts = dict.fromkeys(pending, 0)
        final: dict[str, BatchResponse] = {}
        round_number = 0
        while pending:
            round_number += 1
            all_idempotent = all(r.method.upper() in _IDEMPOTENT_METHODS for r in pending.values())
            self.metrics.batch_subrequests.inc(len(pending))
            subrequests = [r.to_json() for r in pending.values()]
            if priority is not Priority.NORMAL:
                # Graph checks every sub-request against its limits on its own: each says its
                # priority too.
                for sub in subrequests:
                    sub.setdefault("headers", {})[PRIORITY_HEADER] = priority.value
            response = await self._send_with_retries(
                "POST",
                self.url_for("/$batch", version=version),
                content=json.dumps({"requests": subrequests}).encode(),
                extra_headers={},
                idempotent=all_idempotent,
                priority=priority,
                batch_items=len(pending),
                batch_writes=any(r.method.upper() != "GET" for r in pending.values()),
            )
            answered = self._parse_batch_body(response.body)
            retry_ids: list[str] = []
            waits: list[float] = []
            for request_id, request in pending.items():
                attempts[request_id] += 1
                item = answered.get(request_id)
                status: int
                headers: dict[str, str]
                body: Any
                if item is None:
                    # Graph answers every id; a missing one is treated like a transient failure.
                    status, headers, body = 0, {}, None
                else:
                    status, headers, body = item
                retry_after_s = parse_retry_after(
                    _header(headers, "Retry-After"), now=self._wall_clock()
                )
                error: GraphError | None = None
                if status == 0 or status >= 400:
                    if status == 0:
                        error = GraphUnavailable("no answer for this $batch item")
                    else:
                        error = error_from_parts(
                            status=status,
                            body=body,
                            headers=headers,
                            client_request_id=None,
                            retry_after_s=retry_after_s,
                        )
                final[request_id] = BatchResponse(
                    id=request_id,
                    status=status,
                    headers=headers,
                    body=body,
                    attempts=attempts[request_id],
                    error=error,
                )
                idempotent = request.method.upper() in _IDEMPOTENT_METHODS
                if (
                    status == 0
                    or status in _RETRY_ANY_METHOD
                    or (idempotent and status in _RETRY_IDEMPOTENT)
                ):
                    retry_ids.append(request_id)
                    if retry_after_s is not None:
                        waits.append(retry_after_s)
            if not retry_ids or round_number >= self._retry.max_attempts:
                break
            # Graph's guidance: wait for the longest Retry-After of the throttled items.
            wait_s = max(waits) if waits else self._retry.backoff_s(round_number, self._rng)
            if self._monotonic() + wait_s > deadline:
                break
            for request_id in retry_ids:
                self.metrics.batch_item_retries.labels(str(final[request_id].status)).inc()
            log.info(
                "graph $batch: %d of %d items to retry in %.2fs (round %d)",
                len(retry_ids),
                len(pending),
                wait_s,
                round_number,
            )
            await self._sleep(wait_s)
            pending = {i: pending[i] for i in retry_ids}
        return final

    @staticmethod
    def _parse_batch_body(body: Any) -> dict[str, tuple[int, dict[str, str], Any]]:
        if not isinstance(body, Mapping) or not isinstance(body.get("responses"), list):
            raise GraphError("$batch answer has no 'responses' list", status=200)
        answered: dict[str, tuple[int, dict[str, str], Any]] = {}
        for item in body["responses"]:
            if not isinstance(item, Mapping) or "id" not in item:
                continue
            raw_headers = item.get("headers") or {}
            headers = (
                {str(k): str(v) for k, v in raw_headers.items()}
                if isinstance(raw_headers, Mapping)
                else {}
            )
            try:
                status = int(item.get("status", 0))
            except (TypeError, ValueError):
                status = 0
            answered[str(item["id"])] = (status, headers, item.get("body"))
        return answered

    # -- the retry loop -------------------------------------------------------------------------

    async def _send_with_retries(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None,
        extra_headers: Mapping[str, str],
        idempotent: bool,
        priority: Priority,
        batch_items: int = 0,
        batch_writes: bool = False,
    ) -> GraphResponse:
        started = self._monotonic()
        deadline = started + self._retry.deadline_s
        client_request_id = str(uuid.uuid4())
        path = urlsplit(url).path
        token = ""
        refreshed = False
        attempt = 0
        lane = self._lanes[_FOREGROUND if priority is Priority.HIGH else _BACKGROUND]
        write = batch_writes if batch_items else method not in ("GET", "HEAD")
        while True:
            attempt += 1
            if not refreshed:
                # Per attempt: after a long Retry-After the previous token may have expired.
                token = await self._tokens.get_token()
            # Background requests wait here while the budget is spent; high ones never do.
            ticket = await self._pacer.admit(
                tenant=self._tenant_id,
                priority=priority,
                cost_ru=self._pacer.estimate_ru(self._tenant_id, max(1, batch_items)),
                write=write,
                writes=max(1, batch_items),
            )
            remaining_s = deadline - self._monotonic()
            if remaining_s <= 0:
                self._pacer.settle(ticket, resource_units=0.0, limit_percentage=None)
                raise GraphUnavailable(
                    f"deadline of {self._retry.deadline_s:.0f}s passed",
                    client_request_id=client_request_id,
                )
            headers = {
                "Authorization": f"Bearer {token}",
                "User-Agent": self._user_agent,
                "client-request-id": client_request_id,
                "return-client-request-id": "true",
                "Accept": "application/json",
                **extra_headers,
            }
            if priority is not Priority.NORMAL:
                headers[PRIORITY_HEADER] = priority.value
            if content is not None:
                headers.setdefault("Content-Type", "application/json")
            timeout = httpx.Timeout(
                connect=min(self._timeout.connect or remaining_s, remaining_s),
                read=min(self._timeout.read or remaining_s, remaining_s),
                write=min(self._timeout.write or remaining_s, remaining_s),
                pool=min(self._timeout.pool or remaining_s, remaining_s),
            )
            sent_at = self._monotonic()
            try:
                async with lane:
                    response = await self._http.request(
                        method, url, content=content, headers=headers, timeout=timeout
                    )
                    await response.aread()
            except BaseException as exc:
                # Unknown cost: the reservation stands as the estimate (also when cancelled: a
                # reservation nobody settles would hold the background back for good).
                self._pacer.settle(ticket, resource_units=None, limit_percentage=None)
                if not isinstance(exc, httpx.TransportError):
                    raise
                elapsed_ms = (self._monotonic() - sent_at) * 1000
                self.metrics.requests.labels(method, "error").inc()
                # A request that never left (connect failures) can always be repeated.
                never_sent = isinstance(
                    exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout
                )
                log.warning(
                    "graph %s %s failed: %s after %.0f ms (attempt %d, client-request-id %s)",
                    method,
                    path,
                    exc.__class__.__name__,
                    elapsed_ms,
                    attempt,
                    client_request_id,
                )
                error: GraphError = GraphUnavailable(
                    f"{method} {path}: {exc.__class__.__name__}",
                    client_request_id=client_request_id,
                )
                if not (idempotent or never_sent):
                    raise error from exc
                wait_s = self._retry.backoff_s(attempt, self._rng)
                if not self._may_retry(attempt, wait_s, deadline):
                    raise error from exc
                self.metrics.retries.labels("transport").inc()
                await self._sleep(wait_s)
                continue

            elapsed_s = self._monotonic() - sent_at
            status = response.status_code
            self.metrics.requests.labels(method, str(status)).inc()
            self.metrics.duration.labels(method).observe(elapsed_s)
            request_id = response.headers.get("request-id")
            retry_after_s = parse_retry_after(
                response.headers.get("Retry-After"), now=self._wall_clock()
            )
            if status < 400:
                body: Any = None
                try:
                    body = _decode_json(response)
                finally:
                    self._settle(ticket, response.headers, status, retry_after_s, body, batch_items)
                log.debug(
                    "graph %s %s -> %d in %.0f ms (attempt %d, client-request-id %s, request-id %s)",
                    method,
                    path,
                    status,
                    elapsed_s * 1000,
                    attempt,
                    client_request_id,
                    request_id,
                )
                return GraphResponse(
                    status=status,
                    headers=response.headers,
                    body=body,
                    request_id=request_id,
                )

            self._settle(ticket, response.headers, status, retry_after_s, None, 0)
            error = error_from_parts(
                status=status,
                body=response.content,
                headers=response.headers,
                client_request_id=client_request_id,
                retry_after_s=retry_after_s,
            )
            # A 404 is often an answer ("no manager"), not a problem: keep it out of INFO logs.
            log.log(
                logging.DEBUG if status == 404 else logging.INFO,
                "graph %s %s -> %d %s in %.0f ms (attempt %d, client-request-id %s, request-id %s)",
                method,
                path,
                status,
                error.code,
                elapsed_s * 1000,
                attempt,
                client_request_id,
                request_id,
            )
            if status == 401 and not refreshed:
                # Expired or revoked token: one refresh, then the answer stands.
                refreshed = True
                token = await self._tokens.refresh_token(token)
                self.metrics.retries.labels("unauthorized").inc()
                if attempt < self._retry.max_attempts:
                    continue
                raise error
            retryable = status in _RETRY_ANY_METHOD or (idempotent and status in _RETRY_IDEMPOTENT)
            if not retryable:
                raise error
            if retry_after_s is not None and status in (429, 503, 504):
                wait_s = retry_after_s
            else:
                wait_s = self._retry.backoff_s(attempt, self._rng)
            if not self._may_retry(attempt, wait_s, deadline):
                raise error
            self.metrics.retries.labels(str(status)).inc()
            await self._sleep(wait_s)

    def _settle(
        self,
        ticket: Ticket,
        headers: Mapping[str, str],
        status: int,
        retry_after_s: float | None,
        body: Any,
        batch_items: int,
    ) -> None:
        """Tell the pacer what an answer (and, for ``$batch``, each item) said about the budget."""
        units = header_float(headers, RESOURCE_UNIT_HEADER)
        percentage = header_float(headers, THROTTLE_PERCENT_HEADER)
        scope = ThrottleScope.parse(_header(headers, THROTTLE_SCOPE_HEADER))
        throttled = status == 429
        wait_s = retry_after_s if throttled else None
        if throttled:
            self.metrics.throttled.labels(ticket.priority.value).inc()
        if batch_items and isinstance(body, Mapping) and isinstance(body.get("responses"), list):
            item_units: float | None = None
            for item in body["responses"]:
                if not isinstance(item, Mapping):
                    continue
                raw = item.get("headers")
                item_headers = (
                    {str(k): str(v) for k, v in raw.items()} if isinstance(raw, Mapping) else {}
                )
                cost = header_float(item_headers, RESOURCE_UNIT_HEADER)
                if cost is not None:
                    item_units = (item_units or 0.0) + cost
                share = header_float(item_headers, THROTTLE_PERCENT_HEADER)
                if share is not None:
                    percentage = max(percentage or 0.0, share)
                if str(item.get("status")) == "429":
                    self.metrics.throttled.labels(ticket.priority.value).inc()
                    throttled = True
                    scope = scope or ThrottleScope.parse(
                        _header(item_headers, THROTTLE_SCOPE_HEADER)
                    )
                    item_wait = parse_retry_after(
                        _header(item_headers, "Retry-After"), now=self._wall_clock()
                    )
                    if item_wait is not None:
                        wait_s = max(wait_s or 0.0, item_wait)
            if item_units is not None:
                units = (units or 0.0) + item_units
        self._pacer.settle(
            ticket,
            resource_units=units,
            limit_percentage=percentage,
            throttle_scope=scope,
            retry_after_s=wait_s,
            throttled=throttled,
        )

    def _may_retry(self, attempt: int, wait_s: float, deadline: float) -> bool:
        return attempt < self._retry.max_attempts and self._monotonic() + wait_s < deadline

    async def _sleep_until_elapsed(self, delay_s: float) -> None:
        """Sleep at least ``delay_s`` by the monotonic clock (the loop may wake a hair early)."""
        until = self._monotonic() + delay_s
        while True:
            remaining_s = until - self._monotonic()
            if remaining_s <= 0:
                return
            await asyncio.sleep(remaining_s)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def _decode_json(response: httpx.Response) -> Any:
    if not response.content:
        return None
    content_type = response.headers.get("Content-Type", "")
    if "json" not in content_type:
        return response.text
    try:
        return response.json()
    except ValueError as exc:
        raise GraphError(
            "Graph answered with malformed JSON",
            status=response.status_code,
            request_id=response.headers.get("request-id"),
        ) from exc
