"""Graph throttling on its own, checked against Microsoft's concepts/throttling-limits.md and
concepts/throttling.md: costs, limits by tenant size, the write quota, the documented headers and
429 body, priorities, ``$batch`` items charged one by one, and the admin surface.

The throttle's buckets run on an injected monotonic clock here (``Seconds``), so no test sleeps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from emulator.clock import ManualClock
from emulator.graph import GraphThrottle, ThrottleSettings
from emulator.graph.throttling import request_cost, tenant_size_for
from emulator.seeds import DEFAULT_BOT_APP_ID, DEMO_TENANT_ID, demo
from tests.emulator.conftest import GraphHarness, serve_graph


class Seconds:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now_s = 1_000.0

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


@pytest.fixture
def seconds() -> Seconds:
    return Seconds()


def make_throttle(seconds: Seconds, **settings: Any) -> GraphThrottle:
    return GraphThrottle(
        tenant_id=DEMO_TENANT_ID,
        user_count=lambda: 15,  # the demo tenant: small (under 50 users)
        settings=ThrottleSettings(**settings),
        monotonic_s=seconds,
    )


@pytest.fixture
async def throttled_graph(emu_clock: ManualClock, seconds: Seconds) -> AsyncIterator[GraphHarness]:
    throttle = make_throttle(seconds, retry_after_absent_fraction=0.0)
    async for harness in serve_graph(demo(emu_clock), emu_clock, throttle=throttle):
        yield harness


def drain(throttle: GraphThrottle, units: int, app_id: str = DEFAULT_BOT_APP_ID) -> None:
    """Spend ``units`` resource units of the app's bucket in-process (cheap GETs cost 1)."""
    for _ in range(units):
        throttle.charge(
            app_id=app_id, method="GET", path="/users/x", query=[], priority_header="high"
        )


# ---------------------------------------------------------------------------------- costs
@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        # The documented base costs...
        ("GET", "/users", [], (2, 0)),
        ("GET", "/applications", [], (2, 0)),
        ("GET", "/groups/g1/members", [], (3, 0)),
        ("GET", "/groups/g1/transitiveMembers", [], (5, 0)),
        ("GET", "/oauth2PermissionGrants", [], (2, 0)),
        ("POST", "/directoryObjects/getByIds", [], (3, 0)),
        ("GET", "/me/memberOf", [], (2, 0)),  # me/ costs as users/{id}/
        ("GET", "/users/u1/memberOf", [], (2, 0)),
        # ...anything else costs 1, and a write also costs 1 write...
        ("GET", "/users/u1", [], (1, 0)),
        ("GET", "/users/u1/manager", [], (1, 0)),
        ("GET", "/identityGovernance/accessReviews/definitions", [], (1, 0)),
        (
            "PATCH",
            "/identityGovernance/accessReviews/definitions/d/instances/i/decisions/x",
            [],
            (1, 1),
        ),
        ("POST", "/users/u1/teamwork/installedApps", [], (1, 1)),
        # ...$select -1, $expand +1, $top under 20 -1, never below 1.
        ("GET", "/users", [("$select", "id")], (1, 0)),
        ("GET", "/users", [("$expand", "manager")], (3, 0)),
        ("GET", "/users", [("$expand", "manager"), ("$select", "id")], (2, 0)),
        ("GET", "/groups/g1/transitiveMembers", [("$top", "5")], (4, 0)),
        ("GET", "/groups/g1/transitiveMembers", [("$top", "20")], (5, 0)),
        ("GET", "/users/u1", [("$select", "id"), ("$top", "1")], (1, 0)),
    ],
)
def test_request_costs_follow_the_documented_table(
    method: str, path: str, query: list[tuple[str, str]], expected: tuple[int, int]
) -> None:
    assert request_cost(method, path, query) == expected


def test_tenant_size_classes() -> None:
    # S under 50 users, M 50-500, L above 500.
    assert [tenant_size_for(n) for n in (1, 49, 50, 500, 501, 25_000)] == [
        "small",
        "small",
        "medium",
        "medium",
        "large",
        "large",
    ]


# ---------------------------------------------------------------------------------- headers
async def test_every_answer_carries_its_resource_units(throttled_graph: GraphHarness) -> None:
    token = throttled_graph.app_token()
    group = throttled_graph.tenant.groups
    auditors = next(g for g in group.values() if g.display_name == "Security Auditors")
    cases = [
        (f"/v1.0/users/{throttled_graph.uid('adele')}", "1"),
        (f"/v1.0/groups/{auditors.id}/transitiveMembers", "5"),
        (f"/v1.0/groups/{auditors.id}/transitiveMembers?$top=5", "4"),
        (throttled_graph.decisions_url("finance"), "1"),
        ("/v1.0/users/no-such-user", "1"),  # errors are charged too
    ]
    for path, units in cases:
        response = await throttled_graph.client.get(
            throttled_graph.base_url + path, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.headers["x-ms-resource-unit"] == units, path
        assert "x-ms-throttle-limit-percentage" not in response.headers


async def test_limit_percentage_then_429_with_the_documented_answer(
    throttled_graph: GraphHarness, seconds: Seconds
) -> None:
    throttle = throttled_graph.graph.throttle
    token = throttled_graph.app_token()
    url = f"/v1.0/users/{throttled_graph.uid('adele')}"
    drain(throttle, 2_900)  # of 3,500 units per 10 s (small tenant)
    response = await throttled_graph.call("GET", url, token)
    assert response.status_code == 200
    assert response.headers["x-ms-throttle-limit-percentage"] == "0.8"  # 2,901 / 3,500
    drain(throttle, 3_500 - 2_901)
    response = await throttled_graph.client.get(
        throttled_graph.base_url + url,
        headers={
            "Authorization": f"Bearer {token}",
            "client-request-id": "my-request-0001",
            "x-ms-throttle-priority": "high",
        },
    )
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "TooManyRequests"
    assert error["message"] == "Please retry again later."
    inner = error["innerError"]
    assert (inner["code"], inner["message"], inner["status"]) == (
        "429",
        "Please retry after",
        "429",
    )
    assert inner["request-id"] == response.headers["request-id"]
    assert inner["client-request-id"] == "my-request-0001"
    assert response.headers["x-ms-throttle-scope"] == (
        f"Tenant_Application/ReadWrite/{DEFAULT_BOT_APP_ID}/{DEMO_TENANT_ID}"
    )
    assert response.headers["x-ms-throttle-information"] == "ResourceUnitLimitExceeded"
    assert response.headers["x-ms-resource-unit"] == "1"
    # Retry-After may be fractional: the exact refill time of the missing units, to the ms.
    retry_after = response.headers["Retry-After"]
    assert float(retry_after) > 0 and "." in retry_after
    # Usage keeps being logged while throttled: the refused request was charged, so an early
    # retry is refused again ...
    seconds.advance(float(retry_after) / 2)
    assert (await throttled_graph.call("GET", url, token)).status_code == 429
    # ... and waiting the latest Retry-After (no one else calling) is enough.
    again = await throttled_graph.call("GET", url, token)
    seconds.advance(float(again.headers["Retry-After"]))
    assert (await throttled_graph.call("GET", url, token)).status_code == 200


def test_usage_keeps_being_logged_while_throttled(seconds: Seconds) -> None:
    throttle = make_throttle(seconds, retry_after_absent_fraction=0.0)
    drain(throttle, 3_500)
    waits = []
    for _ in range(5):  # a client retrying at once, without waiting
        charge = throttle.charge(
            app_id=DEFAULT_BOT_APP_ID,
            method="GET",
            path="/users/x",
            query=[],
            priority_header="high",
        )
        assert charge.throttled and charge.retry_after_s is not None
        waits.append(charge.retry_after_s)
    # Each refused request was charged too, so each retry pushes the next admission further.
    assert waits == sorted(waits) and len(set(waits)) == 5
    assert waits[-1] == pytest.approx(6 / 350)  # five units of debt, plus the request itself


async def test_the_budget_refills_over_ten_seconds(
    throttled_graph: GraphHarness, seconds: Seconds
) -> None:
    throttle = throttled_graph.graph.throttle
    drain(throttle, 3_500)
    url = f"/v1.0/users/{throttled_graph.uid('adele')}"
    token = throttled_graph.app_token()
    assert (await throttled_graph.call("GET", url, token)).status_code == 429
    seconds.advance(10.0)  # a full period refills the whole bucket (the 429 cost one unit)
    statuses = [(await throttled_graph.call("GET", url, token)).status_code for _ in range(20)]
    assert statuses == [200] * 20


def test_tenant_size_sets_the_limit(seconds: Seconds) -> None:
    for size, limit in (("small", 3_500), ("medium", 5_000), ("large", 8_000)):
        throttle = make_throttle(seconds, tenant_size=size)
        drain(throttle, limit)  # exactly the budget of 10 s: all admitted
        assert throttle.counters()[DEFAULT_BOT_APP_ID]["throttled"] == 0, size
        drain(throttle, 1)
        assert throttle.counters()[DEFAULT_BOT_APP_ID]["throttled"] == 1, size
        # Another application has a budget of its own.
        other = throttle.charge(
            app_id="other-app", method="GET", path="/users/x", query=[], priority_header=None
        )
        assert not other.throttled
    # Without a configured size, the tenant's user count decides (50 users or more: medium).
    counted = GraphThrottle(tenant_id=DEMO_TENANT_ID, user_count=lambda: 60, monotonic_s=seconds)
    assert counted.limits()["resource_units"] == 5_000


def test_writes_have_their_own_quota_and_reads_still_pass(seconds: Seconds) -> None:
    throttle = make_throttle(seconds, tenant_size="large", retry_after_absent_fraction=0.0)
    path = "/identityGovernance/accessReviews/definitions/d/instances/i/decisions/x"
    for _ in range(3_000):  # 3,000 writes per 2 minutes 30 seconds (and 3,000 of 8,000 units)
        ok = throttle.charge(
            app_id="writer", method="PATCH", path=path, query=[], priority_header="high"
        )
        assert not ok.throttled
    refused = throttle.charge(
        app_id="writer", method="PATCH", path=path, query=[], priority_header="high"
    )
    assert refused.throttled
    assert refused.scope == f"Tenant_Application/Write/writer/{DEMO_TENANT_ID}"
    assert refused.information == "WriteLimitExceeded"
    assert refused.retry_after_s is not None and 0 < refused.retry_after_s <= 1.0
    read = throttle.charge(
        app_id="writer", method="GET", path="/users/x", query=[], priority_header=None
    )
    assert not read.throttled  # writes can be throttled while reads are still permitted


def test_low_priority_is_throttled_first_then_normal_then_high(seconds: Seconds) -> None:
    throttle = make_throttle(seconds)

    def attempt(priority: str | None) -> bool:
        charge = throttle.charge(
            app_id="p", method="GET", path="/users/x", query=[], priority_header=priority
        )
        return not charge.throttled

    drain(throttle, 2_700, app_id="p")  # 77 % used
    assert attempt("low") and attempt("LOW")
    drain(throttle, 150, app_id="p")  # 81 % used
    assert not attempt("low")
    assert attempt("normal") and attempt(None) and attempt("urgent")  # others mean normal
    drain(throttle, 480, app_id="p")  # 95 % used
    assert not attempt("normal") and not attempt(None)
    assert attempt("high")
    counters = throttle.counters()["p"]
    assert counters["throttled_by_priority"]["low"] == 1
    assert counters["throttled_by_priority"]["normal"] == 2
    assert counters["throttled_by_priority"]["high"] == 0
    # The header each request carried is recorded as it was sent.
    sent = [r.priority_header for r in throttle.records("p") if r.priority_header != "high"]
    assert sent == ["low", "LOW", "low", "normal", None, "urgent", "normal", None]


def test_retry_after_is_left_out_on_some_429s_by_a_seeded_rule(seconds: Seconds) -> None:
    def pattern(seed: int) -> list[bool]:
        throttle = make_throttle(seconds, seed=seed)
        drain(throttle, 3_500, app_id="s")
        return [
            throttle.charge(
                app_id="s", method="GET", path="/users/x", query=[], priority_header=None
            ).retry_after_s
            is None
            for _ in range(60)
        ]

    first, again, other = pattern(19), pattern(19), pattern(7)
    assert first == again  # deterministic for a seed
    assert first != other
    assert 0 < sum(first) < 60  # some without Retry-After, most with
    never = make_throttle(seconds, retry_after_absent_fraction=0.0)
    drain(never, 3_500, app_id="s")
    assert all(
        never.charge(
            app_id="s", method="GET", path="/users/x", query=[], priority_header=None
        ).retry_after_s
        for _ in range(20)
    )


async def test_batch_items_are_charged_and_throttled_one_by_one(
    throttled_graph: GraphHarness,
) -> None:
    throttle = throttled_graph.graph.throttle
    drain(throttle, 3_500 - 4)  # room for four one-unit requests at high priority
    token = throttled_graph.app_token()
    requests = [
        {
            "id": str(n),
            "method": "GET",
            "url": f"/users/{throttled_graph.uid('adele')}",
            "headers": {"x-ms-throttle-priority": "high"},
        }
        for n in range(6)
    ]
    before = throttle.counters()[DEFAULT_BOT_APP_ID]["requests"]
    response = await throttled_graph.call(
        "POST", "/v1.0/$batch", token, json={"requests": requests}
    )
    assert response.status_code == 200  # the batch itself parses, whatever its items meet
    items = sorted(response.json()["responses"], key=lambda r: int(r["id"]))
    assert [r["status"] for r in items] == [200] * 4 + [429] * 2
    for throttled in items[4:]:
        assert float(throttled["headers"]["Retry-After"]) > 0
        assert throttled["body"]["error"]["code"] == "TooManyRequests"
    assert all(r["headers"]["x-ms-resource-unit"] == "1" for r in items)
    # Six items charged, the envelope not; the envelope reports its items' units.
    assert throttle.counters()[DEFAULT_BOT_APP_ID]["requests"] == before + 6
    assert response.headers["x-ms-resource-unit"] == "6"
    # Each item's own priority header is what counts (and is recorded).
    assert {r.priority_header for r in throttle.records()[-6:]} == {"high"}


async def test_throttling_can_be_switched_off_and_still_counts(
    emu_clock: ManualClock, seconds: Seconds
) -> None:
    throttle = make_throttle(seconds, enabled=False)
    async for harness in serve_graph(demo(emu_clock), emu_clock, throttle=throttle):
        drain(throttle, 10_000)
        token = harness.app_token()
        response = await harness.call("GET", f"/v1.0/users/{harness.uid('adele')}", token)
        assert response.status_code == 200
        assert response.headers["x-ms-resource-unit"] == "1"
        assert "x-ms-throttle-limit-percentage" not in response.headers
        counters = throttle.counters()[DEFAULT_BOT_APP_ID]
        assert (counters["requests"], counters["throttled"]) == (10_001, 0)


async def test_admin_surface_reports_and_changes_throttling(throttled_graph: GraphHarness) -> None:
    token = throttled_graph.app_token()
    url = f"/v1.0/users/{throttled_graph.uid('adele')}"
    await throttled_graph.client.get(
        throttled_graph.base_url + url,
        headers={"Authorization": f"Bearer {token}", "x-ms-throttle-priority": "low"},
    )
    admin = throttled_graph.base_url + "/_emulator/graph/throttling"
    state = (await throttled_graph.client.get(admin, params={"records": "5"})).json()
    assert state["limits"]["tenant_size"] == "small"
    assert state["limits"]["resource_units"] == 3_500
    assert state["counters"][DEFAULT_BOT_APP_ID]["requests"] == 1
    assert state["counters"][DEFAULT_BOT_APP_ID]["by_priority"]["low"] == 1
    assert state["records"][-1]["priority_header"] == "low"
    changed = await throttled_graph.client.post(admin, json={"tenant_size": "large"})
    assert changed.status_code == 200 and changed.json()["limits"]["resource_units"] == 8_000
    refused = await throttled_graph.client.post(admin, json={"tenant_size": "huge"})
    assert refused.status_code == 400
    unknown = await throttled_graph.client.post(admin, json={"speed": 1})
    assert unknown.status_code == 400
    assert (await throttled_graph.client.delete(admin)).status_code == 204
    assert (await throttled_graph.client.get(admin)).json()["counters"] == {}
    # Never faulted, never throttled: the admin route answers even when Graph refuses all.
    drain(throttled_graph.graph.throttle, 10_000)
    assert (await throttled_graph.client.get(admin)).status_code == 200
