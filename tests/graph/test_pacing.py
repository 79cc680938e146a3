"""Priority headers, lanes and budget pacing of the Graph client, over httpx.MockTransport."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import httpx
import pytest
from prometheus_client import CollectorRegistry

from bot.graph import (
    BatchRequest,
    GraphClient,
    GraphPacer,
    GraphThrottled,
    Priority,
    RetryPolicy,
    ThrottleScope,
    graph_priority,
)
from bot.graph.pacing import budget_for_tenant_size

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
BASE = "https://graph.example.test"
TENANT = "tenant-a"


class FakeTime:
    """A monotonic clock that moves only when somebody sleeps (or a test advances it)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, delay_s: float) -> None:
        self.sleeps.append(delay_s)
        self.now += delay_s


class Tokens:
    tenant_id = TENANT

    async def get_token(self) -> str:
        return "token"

    async def refresh_token(self, stale: str) -> str:
        return "token"


Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


def make_client(
    handler: Handler,
    *,
    time: FakeTime | None = None,
    priority: Priority = Priority.LOW,
    max_in_flight: int = 40,
    pacer: GraphPacer | None = None,
    registry: CollectorRegistry | None = None,
) -> tuple[GraphClient, httpx.AsyncClient]:
    time = time or FakeTime()
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    client = GraphClient(
        http,
        tokens=Tokens(),
        base_url=BASE,
        retry=RetryPolicy(max_attempts=6, deadline_s=600, backoff_base_s=0.5, backoff_max_s=8),
        priority=priority,
        max_in_flight=max_in_flight,
        pacer=pacer,
        registry=registry,
        sleep=time.sleep,
        monotonic=time.monotonic,
        wall_clock=lambda: NOW,
        rng=random.Random(3),
    )
    return client, http


def ok(ru: int | None = None, **headers: str) -> httpx.Response:
    if ru is not None:
        headers["x-ms-resource-unit"] = str(ru)
    return httpx.Response(200, json={"id": "x"}, headers=headers)


def throttled(**headers: str) -> httpx.Response:
    body = {"error": {"code": "TooManyRequests", "message": "Please retry again later."}}
    return httpx.Response(429, json=body, headers=headers)


# -- priority headers -----------------------------------------------------------------------------


async def test_background_says_low_a_click_says_high_and_normal_says_nothing() -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("x-ms-throttle-priority"))
        return ok()

    client, http = make_client(handler, priority=Priority.LOW)
    async with http:
        await client.get("/users/a")
        await client.with_priority(Priority.HIGH).get("/users/a")
        await client.with_tokens(Tokens(), priority=Priority.NORMAL).get("/users/a")
        # A click's context makes every client's requests high, whatever the client says.
        with graph_priority(Priority.HIGH):
            await client.get("/users/a")
            await asyncio.create_task(client.get("/users/a"))  # tasks started from a click too
        # An explicit priority on the call wins over both.
        with graph_priority(Priority.HIGH):
            await client.get("/users/a", priority=Priority.LOW)
        await client.get("/users/a")
    assert seen == ["low", "high", None, "high", "high", "low", "low"]


async def test_batch_sub_requests_carry_the_priority_of_the_call() -> None:
    outer: list[str | None] = []
    inner: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        outer.append(request.headers.get("x-ms-throttle-priority"))
        payload = json.loads(request.content)
        inner.extend(r.get("headers", {}) for r in payload["requests"])
        return httpx.Response(
            200,
            json={
                "responses": [
                    {"id": r["id"], "status": 200, "body": {}} for r in payload["requests"]
                ]
            },
        )

    client, http = make_client(handler, priority=Priority.LOW)
    async with http:
        await client.batch(
            [BatchRequest(id=str(n), method="GET", url=f"/users/{n}") for n in range(3)]
        )
        await client.with_priority(Priority.HIGH).batch(
            [BatchRequest(id="p", method="PATCH", url="/x/1", body={"decision": "Approve"})]
        )
    assert outer == ["low", "high"]
    assert [h.get("x-ms-throttle-priority") for h in inner] == ["low", "low", "low", "high"]
    # A sub-request with a body still says its Content-Type.
    assert inner[-1]["Content-Type"] == "application/json"


# -- lanes ----------------------------------------------------------------------------------------


async def test_a_click_goes_straight_through_while_a_poll_fills_the_in_flight_cap() -> None:
    release = asyncio.Event()
    arrived: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        arrived.append(request.url.path)
        if request.headers.get("x-ms-throttle-priority") == "low":
            await release.wait()  # the poll's requests hang at Graph
        return ok()

    client, http = make_client(handler, priority=Priority.LOW, max_in_flight=4)
    async with http:
        poll = [asyncio.create_task(client.get(f"/users/{n}/manager")) for n in range(10)]
        while len(arrived) < 4:
            await asyncio.sleep(0)
        for _ in range(20):
            await asyncio.sleep(0)
        # The cap is full: six of the poll's requests are queued in the client, not sent.
        assert len(arrived) == 4
        click = client.with_priority(Priority.HIGH)
        answer = await asyncio.wait_for(click.get("/identityGovernance/decision"), timeout=5)
        assert answer == {"id": "x"}
        assert arrived[-1] == "/v1.0/identityGovernance/decision"
        assert len(arrived) == 5 and not any(task.done() for task in poll)
        release.set()
        await asyncio.gather(*poll)
    assert len(arrived) == 11  # ten of the poll's requests and the click


# -- pacing ---------------------------------------------------------------------------------------


async def test_background_requests_wait_for_the_budget_to_refill_and_clicks_do_not() -> None:
    time = FakeTime()
    sent_at: list[tuple[float, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent_at.append((time.now, request.headers.get("x-ms-throttle-priority")))
        return ok(ru=10)

    pacer = GraphPacer(monotonic=time.monotonic, sleep=time.sleep)
    pacer.set_budget(TENANT, 100)  # 100 RU per 10 s; background may fill 80 of them
    client, http = make_client(handler, time=time, pacer=pacer)
    async with http:
        for n in range(8):
            await client.get(f"/users/{n}")
        assert time.sleeps == [] and pacer.used_fraction(TENANT) == pytest.approx(0.8)
        # A click is not held, even with the background share used up.
        await client.with_priority(Priority.HIGH).get("/me")
        assert time.sleeps == []
        # The next background request waits until enough of the window has moved on.
        await client.get("/users/9")
    assert sent_at[-1][0] == pytest.approx(1010.0)
    assert sum(time.sleeps) == pytest.approx(10.0)
    assert [p for _, p in sent_at].count("high") == 1


async def test_a_reported_percentage_teaches_an_unknown_budget() -> None:
    time = FakeTime()
    answers = iter(
        [ok(ru=1000) for _ in range(3)]
        + [ok(ru=1000, **{"x-ms-throttle-limit-percentage": "0.85"})]
        + [ok(ru=1) for _ in range(5)]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        return next(answers)

    pacer = GraphPacer(monotonic=time.monotonic, sleep=time.sleep)
    client, http = make_client(handler, time=time, pacer=pacer)
    async with http:
        for n in range(4):
            await client.get(f"/users/{n}")
        assert time.sleeps == []  # until Graph said something, nothing is known
        # 4,000 of our units are 0.85 of the budget: about 4,700 RU per 10 s.
        assert pacer.budget_ru(TENANT) == pytest.approx(4000 / 0.85)
        await client.get("/users/next")
    # 4,000 units in the window exceed 0.8 of it: the next one waited for the window to move.
    assert time.sleeps and sum(time.sleeps) == pytest.approx(10.0)


def test_the_documented_budget_by_tenant_size() -> None:
    assert [budget_for_tenant_size(n) for n in (1, 49, 50, 500, 501, 100_000)] == [
        3_500,
        3_500,
        5_000,
        5_000,
        8_000,
        8_000,
    ]
    pacer = GraphPacer()
    assert pacer.budget_ru(TENANT) is None
    pacer.note_tenant_users(TENANT.upper(), 25_000)  # tenants are compared case-insensitively
    assert pacer.budget_ru(TENANT) == 8_000


def test_throttle_scopes_parse_and_say_what_they_cover() -> None:
    scope = ThrottleScope.parse(
        "Tenant_Application/Read/9a3d526c-b3c1-4479-ba74-197b5c5751ae/0785ef7c-2d7a"
    )
    assert scope is not None and scope.scope == "Tenant_Application" and scope.limit == "read"
    assert scope.covers(write=False) and not scope.covers(write=True)
    both = ThrottleScope.parse("Application/ReadWrite/app")
    assert both is not None and both.covers(write=True) and both.covers(write=False)
    assert ThrottleScope.parse("") is None
    assert ThrottleScope.parse("garbage") is None
    assert ThrottleScope.parse("Tenant/Sometimes/x/y") is None


async def test_a_throttled_read_holds_background_reads_only() -> None:
    time = FakeTime()
    log: list[tuple[float, str, str | None]] = []
    first = True

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal first
        log.append((time.now, request.method, request.headers.get("x-ms-throttle-priority")))
        if first:
            first = False
            return throttled(
                **{"Retry-After": "700", "x-ms-throttle-scope": "Tenant_Application/Read/app/t"}
            )
        return ok()

    pacer = GraphPacer(monotonic=time.monotonic, sleep=time.sleep, max_pause_s=60)
    client, http = make_client(handler, time=time, pacer=pacer)
    async with http:
        # A click meets a 429 for the app's reads (its wait is past its deadline: it gives up).
        with pytest.raises(GraphThrottled):
            await client.with_priority(Priority.HIGH).get("/users/a")
        # Writes are another budget; another click is never held.
        await client.request("POST", "/users/b/teamwork/installedApps", json_body={})
        await client.with_priority(Priority.HIGH).get("/users/c")
        assert time.now == pytest.approx(1000.0)
        # A background read waits out the throttling (capped at 60 s) instead of meeting it.
        await client.get("/users/d")
    assert log[-1] == (pytest.approx(1060.0), "GET", "low")
    assert time.sleeps == [pytest.approx(60.0)]


async def test_429s_are_counted_by_priority_for_whole_requests_and_batch_items() -> None:
    registry = CollectorRegistry()
    answers = iter(
        [
            throttled(**{"Retry-After": "0.25"}),
            ok(),
            httpx.Response(
                200,
                json={
                    "responses": [
                        {"id": "1", "status": 429, "headers": {"Retry-After": "0.5"}, "body": {}},
                        {"id": "2", "status": 200, "body": {}},
                    ]
                },
            ),
            httpx.Response(200, json={"responses": [{"id": "1", "status": 200, "body": {}}]}),
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        return next(answers)

    client, http = make_client(handler, registry=registry)
    async with http:
        await client.get("/users/a")
        await client.batch([BatchRequest(id=str(n), method="GET", url=f"/u/{n}") for n in (1, 2)])
    assert registry.get_sample_value("graph_throttled_total", {"priority": "low"}) == 2


async def test_batch_items_report_their_resource_units_to_the_pacer() -> None:
    time = FakeTime()

    def handler(request: httpx.Request) -> httpx.Response:
        payload = json.loads(request.content)
        return httpx.Response(
            200,
            json={
                "responses": [
                    {
                        "id": r["id"],
                        "status": 200,
                        "headers": {"x-ms-resource-unit": "2"},
                        "body": {},
                    }
                    for r in payload["requests"]
                ]
            },
        )

    pacer = GraphPacer(monotonic=time.monotonic, sleep=time.sleep)
    pacer.set_budget(TENANT, 1000)
    client, http = make_client(handler, time=time, pacer=pacer)
    async with http:
        await client.batch(
            [BatchRequest(id=str(n), method="GET", url=f"/u/{n}") for n in range(30)]
        )
    assert pacer.used_fraction(TENANT) == pytest.approx(60 / 1000)
    # The pacer now expects about 2 RU per request (a running mean, from 1).
    assert 1.0 < pacer.estimate_ru(TENANT) < 2.0


async def test_an_absent_resource_unit_header_keeps_the_estimate() -> None:
    time = FakeTime()
    pacer = GraphPacer(monotonic=time.monotonic, sleep=time.sleep)
    pacer.set_budget(TENANT, 10)
    client, http = make_client(lambda request: ok(), time=time, pacer=pacer)
    async with http:
        for n in range(8):
            await client.get(f"/users/{n}")
        assert time.sleeps == []
        await client.get("/users/9")  # 8 of 10 units counted at 1 each: this one waits
    assert sum(time.sleeps) == pytest.approx(10.0)


def test_target_fraction_is_validated() -> None:
    with pytest.raises(ValueError):
        GraphPacer(target_fraction=0)
    with pytest.raises(ValueError):
        GraphPacer(target_fraction=1.5)


async def test_the_pacer_is_shared_by_clones_and_the_tenant_comes_from_the_tokens() -> None:
    client, http = make_client(lambda request: ok(ru=3))
    async with http:
        click = client.with_priority(Priority.HIGH)
        assert click.pacer is client.pacer and click.tenant_id == TENANT
        client.pacer.set_budget(TENANT, 100)
        await click.get("/me")
    assert client.pacer.used_fraction(TENANT) == pytest.approx(0.03)


async def test_background_writes_stay_under_the_write_budget_and_batches_count_each() -> None:
    time = FakeTime()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/$batch"):
            payload = json.loads(request.content)
            return httpx.Response(
                200,
                json={
                    "responses": [
                        {"id": r["id"], "status": 204, "body": None} for r in payload["requests"]
                    ]
                },
            )
        return httpx.Response(204)

    # 10 writes per 150 s: the background may use 8 of them.
    pacer = GraphPacer(monotonic=time.monotonic, sleep=time.sleep, write_limit=10)
    client, http = make_client(handler, time=time, pacer=pacer)
    async with http:
        await client.batch(
            [
                BatchRequest(
                    id=str(n), method="POST", url=f"/users/{n}/teamwork/installedApps", body={}
                )
                for n in range(5)
            ]
        )
        for n in range(3):
            await client.request("POST", f"/users/x{n}/teamwork/installedApps", json_body={})
        assert time.sleeps == []
        # Reads are another budget.
        await client.get("/users/y")
        assert time.sleeps == []
        await client.request("POST", "/users/z/teamwork/installedApps", json_body={})
    assert time.sleeps == [pytest.approx(150.0)]


async def test_a_big_request_goes_into_an_empty_window_and_others_wait_for_it_to_settle() -> None:
    time = FakeTime()

    async def yielding_sleep(delay_s: float) -> None:
        await time.sleep(delay_s)
        await asyncio.sleep(0)

    pacer = GraphPacer(monotonic=time.monotonic, sleep=yielding_sleep)
    pacer.set_budget(TENANT, 10)  # background share: 8 RU
    big = await pacer.admit(tenant=TENANT, priority=Priority.LOW, cost_ru=20, write=False)
    assert time.sleeps == []  # bigger than the share, but nothing else is in the window
    waiting = asyncio.create_task(
        pacer.admit(tenant=TENANT, priority=Priority.LOW, cost_ru=1, write=False)
    )
    for _ in range(5):
        await asyncio.sleep(0)
    assert not waiting.done()
    # It looks again every 50 ms while the big one is in flight, rather than spinning.
    assert time.sleeps and all(s == pytest.approx(0.05) for s in time.sleeps)
    pacer.settle(big, resource_units=0.0, limit_percentage=None)  # it cost nothing after all
    small = await asyncio.wait_for(waiting, timeout=5)
    assert small.reserved_ru == 1
