"""Listing a 10,000-decision tenant while Graph throttles (30 % 429) and fails (5 % 503).

Every request is timed by a transport wrapper, so the test can check that no retry left before
the ``Retry-After`` of the answer it retries had elapsed. Real time: the emulator really waits.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bot.graph import AccessReviewsApi, Query, RetryPolicy
from emulator.faults import FaultRule
from emulator.server import EmulatorCloud, EmulatorConfig
from tests.graph.support import graph_stack

DECISIONS = 10_000


@dataclass
class Exchange:
    url: str
    sent_s: float
    received_s: float
    status: int
    retry_after: str | None


class TimingTransport(httpx.AsyncBaseTransport):
    """Records when each request left and when its answer came back (monotonic seconds)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.exchanges: list[Exchange] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sent_s = time.monotonic()
        response = await self.inner.handle_async_request(request)
        self.exchanges.append(
            Exchange(
                str(request.url),
                sent_s,
                time.monotonic(),
                response.status_code,
                response.headers.get("Retry-After"),
            )
        )
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
async def big_cloud() -> AsyncIterator[EmulatorCloud]:
    config = EmulatorConfig(
        seed="generated",
        seed_params={"decisions": DECISIONS, "instances": 1, "reviewers": 10},
    )
    async with EmulatorCloud(config) as cloud:
        yield cloud


async def list_all_under_faults(cloud: EmulatorCloud, store: Any, *, top: int | None) -> None:
    instance_id = next(iter(cloud.tenant.instances))
    expected = set(cloud.tenant.instances[instance_id].decisions)
    assert len(expected) == DECISIONS
    cloud.faults.clear()
    # Rules are tried in order: 429 fires on 30 % of requests, 503 on 5 % overall (0.05 / 0.7
    # of what the 429 rule lets through).
    cloud.faults.add(
        FaultRule(
            service="graph",
            kind="status",
            status=429,
            probability=0.30,
            retry_after_s=(0, 2),
            seed=4,
        )
    )
    cloud.faults.add(
        FaultRule(service="graph", kind="status", status=503, probability=0.05 / 0.70, seed=5)
    )
    timing: list[TimingTransport] = []

    def transport(verify: Any) -> TimingTransport:
        timing.append(TimingTransport(httpx.AsyncHTTPTransport(verify=verify)))
        return timing[0]

    retry = RetryPolicy(max_attempts=12, deadline_s=120, backoff_base_s=0.2, backoff_max_s=2)
    try:
        async with graph_stack(cloud, store, retry=retry, transport=transport) as stack:
            reviews = AccessReviewsApi(stack.graph)
            seen: list[str] = []
            query = Query(top=top) if top else None
            async for decision in reviews.list_decisions(instance_id, instance_id, query):
                seen.append(decision.id)
            retries = {
                reason: stack.registry.get_sample_value("graph_retries_total", {"reason": reason})
                for reason in ("429", "503")
            }
    finally:
        cloud.faults.clear()

    assert len(seen) == DECISIONS
    assert set(seen) == expected  # every item, exactly once

    exchanges = timing[0].exchanges
    throttled = [e for e in exchanges if e.status == 429]
    unavailable = [e for e in exchanges if e.status == 503]
    assert throttled and unavailable, "the faults did not fire; the test proves nothing"
    assert retries == {"429": len(throttled), "503": len(unavailable)}
    # Paging is sequential: the request after a 429 is its retry, which must not leave before
    # the Retry-After it was given has passed.
    for earlier, later in itertools.pairwise(exchanges):
        if earlier.status == 429:
            assert later.url == earlier.url
            wait_s = float(earlier.retry_after or 0)
            assert later.sent_s - earlier.received_s >= wait_s, (earlier, later)
        elif earlier.status == 503:
            assert later.url == earlier.url


async def test_full_listing_under_throttling_largest_pages(
    big_cloud: EmulatorCloud, store: Any
) -> None:
    # 100 is the most decisions Graph serves a page (it refuses a larger $top).
    await list_all_under_faults(big_cloud, store, top=100)


@pytest.mark.slow
async def test_full_listing_under_throttling_default_pages(
    big_cloud: EmulatorCloud, store: Any
) -> None:
    await list_all_under_faults(big_cloud, store, top=None)
