"""Retry-After as Graph really sends it: fractional, absent, per $batch item; full-jitter bounds.

In-process over httpx.MockTransport first, then against the emulator with injected faults.
"""

from __future__ import annotations

import json
import random
import statistics
from datetime import UTC, datetime

import httpx
import pytest

from bot.graph import BatchRequest, GraphClient, RetryPolicy
from emulator.faults import FaultRule
from tests.graph.support import GraphStack

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
BASE = "https://graph.example.test"
POLICY = RetryPolicy(max_attempts=8, deadline_s=600, backoff_base_s=0.5, backoff_max_s=30)


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, delay_s: float) -> None:
        self.sleeps.append(delay_s)
        self.now += delay_s


class Tokens:
    async def get_token(self) -> str:
        return "token"

    async def refresh_token(self, stale: str) -> str:
        return "token"


def client_for(
    http: httpx.AsyncClient, time: FakeTime, *, base_url: str = BASE, tokens: object = None
) -> GraphClient:
    return GraphClient(
        http,
        tokens=tokens or Tokens(),  # type: ignore[arg-type]
        base_url=base_url,
        retry=POLICY,
        sleep=time.sleep,
        monotonic=time.monotonic,
        wall_clock=lambda: NOW,
        rng=random.Random(11),
    )


def throttled(retry_after: str | None, status: int = 429) -> httpx.Response:
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    body = {"error": {"code": "TooManyRequests", "message": "Please retry again later."}}
    return httpx.Response(status, json=body, headers=headers)


async def test_a_fractional_retry_after_is_honoured_exactly() -> None:
    answers = iter([throttled("2.128"), throttled("0.004", 503), httpx.Response(200, json={})])
    time = FakeTime()
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: next(answers))) as http:
        await client_for(http, time).get("/users/a")
    assert time.sleeps == [2.128, 0.004]


@pytest.mark.parametrize("status", [429, 503, 504])
async def test_without_retry_after_the_waits_are_full_jitter_under_the_cap(status: int) -> None:
    answers = iter([throttled(None, status) for _ in range(7)] + [httpx.Response(200, json={})])
    time = FakeTime()
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: next(answers))) as http:
        await client_for(http, time).get("/users/a")
    assert len(time.sleeps) == 7
    for n, wait_s in enumerate(time.sleeps, start=1):
        assert 0.0 <= wait_s <= min(30.0, 0.5 * 2 ** (n - 1))
    # Drawn, not fixed: no two waits alike, and never the old fixed second.
    assert len(set(time.sleeps)) == 7 and 1.0 not in time.sleeps


def test_full_jitter_draws_cover_the_whole_range_and_stop_at_the_cap() -> None:
    rng = random.Random(5)
    for retry in (1, 3, 6, 12):
        ceiling = min(30.0, 0.5 * 2 ** (retry - 1))
        draws = [POLICY.backoff_s(retry, rng) for _ in range(4000)]
        assert min(draws) >= 0.0 and max(draws) <= ceiling
        # Uniform on [0, ceiling]: both ends are reached and the mean sits in the middle.
        assert min(draws) < 0.02 * ceiling and max(draws) > 0.98 * ceiling
        assert statistics.fmean(draws) == pytest.approx(ceiling / 2, rel=0.05)
    # Far past the cap the ceiling stays 30 s.
    assert max(POLICY.backoff_s(40, rng) for _ in range(2000)) <= 30.0


async def test_batch_waits_for_the_longest_fractional_retry_after_of_its_items() -> None:
    rounds: list[list[str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        ids = [r["id"] for r in json.loads(request.content)["requests"]]
        rounds.append(ids)
        if len(rounds) == 1:
            responses = [
                {"id": "a", "status": 429, "headers": {"Retry-After": "0.75"}, "body": {}},
                {"id": "b", "status": 429, "headers": {"Retry-After": "2.128"}, "body": {}},
                {"id": "c", "status": 200, "body": {"ok": True}},
            ]
        else:
            responses = [{"id": i, "status": 200, "body": {"ok": True}} for i in ids]
        return httpx.Response(200, json={"responses": responses})

    time = FakeTime()
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        answers = await client_for(http, time).batch(
            [BatchRequest(id=i, method="GET", url=f"/users/{i}") for i in "abc"]
        )
    assert time.sleeps == [2.128]
    assert rounds == [["a", "b", "c"], ["a", "b"]]  # only the throttled items again
    assert all(answer.ok for answer in answers.values())


async def test_batch_items_throttled_without_retry_after_back_off_with_jitter() -> None:
    rounds = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal rounds
        rounds += 1
        ids = [r["id"] for r in json.loads(request.content)["requests"]]
        status = 429 if rounds <= 4 else 200
        return httpx.Response(
            200, json={"responses": [{"id": i, "status": status, "body": {}} for i in ids]}
        )

    time = FakeTime()
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        answers = await client_for(http, time).batch(
            [BatchRequest(id="x", method="GET", url="/users/x")]
        )
    assert answers["x"].ok and answers["x"].attempts == 5
    assert len(time.sleeps) == 4 and len(set(time.sleeps)) == 4
    for n, wait_s in enumerate(time.sleeps, start=1):
        assert 0.0 <= wait_s <= 0.5 * 2 ** (n - 1)


# -- the same against the emulator, faults injected ------------------------------------------------


async def test_emulated_graph_429s_with_fractional_and_absent_retry_after(demo: GraphStack) -> None:
    time = FakeTime()
    graph = client_for(
        demo.http, time, base_url=demo.settings.graph_base_url, tokens=demo.app_tokens
    )
    user = next(iter(demo.cloud.tenant.users))
    faults = demo.cloud.faults
    faults.add(
        FaultRule(
            kind="status",
            service="graph",
            status=429,
            path_regex=r"/users/[^/]+$",
            retry_after_header="2.128",
            remaining=1,
        )
    )
    assert (await graph.get(f"/users/{user}"))["id"] == user
    assert time.sleeps == [2.128]

    time.sleeps.clear()
    faults.add(
        FaultRule(
            kind="status",
            service="graph",
            status=429,
            path_regex=r"/users/[^/]+$",
            omit_retry_after=True,
            remaining=3,
        )
    )
    assert (await graph.get(f"/users/{user}"))["id"] == user
    assert len(time.sleeps) == 3 and len(set(time.sleeps)) == 3
    assert all(0.0 <= s <= 0.5 * 2**n for n, s in enumerate(time.sleeps))

    # Inside $batch: faults are evaluated per sub-request, so single items are throttled.
    time.sleeps.clear()
    faults.add(
        FaultRule(
            kind="status",
            service="graph",
            status=429,
            path_regex=r"/users/[^/]+/manager$",
            retry_after_header="0.375",
            remaining=2,
        )
    )
    users = list(demo.cloud.tenant.users)[:5]
    answers = await graph.batch(
        [
            BatchRequest(id=str(n), method="GET", url=f"/users/{u}/manager")
            for n, u in enumerate(users)
        ]
    )
    assert time.sleeps == [0.375]
    assert all(a.status in (200, 404) for a in answers.values())
    assert sum(a.attempts for a in answers.values()) == len(users) + 2


def test_a_fault_rule_cannot_both_omit_and_set_retry_after() -> None:
    with pytest.raises(ValueError):
        FaultRule(kind="status", status=429, omit_retry_after=True, retry_after_header="1")
    with pytest.raises(ValueError):
        FaultRule(kind="status", status=429, omit_retry_after=True, retry_after_s=(1, 2))
