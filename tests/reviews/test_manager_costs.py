"""Managers the cheaper documented way: per principal, or the tenant's user list with ``$expand``.

Over httpx.MockTransport (the emulator does not list users with ``$expand=manager`` yet): a small
Graph that answers ``/users/$count``, ``/users?$expand=manager`` in pages of 100 with nextLinks,
and ``$batch`` of ``/users/{id}/manager``, and counts every request as Graph's limits would.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from bot.graph import DirectoryApi, GraphClient, RetryPolicy
from bot.graph.models import AccessReviewDecision, ReviewerScope
from bot.reviews.resolver import ManagerLookup, ReviewerResolver

BASE = "https://graph.example.test"


class FakeDirectory:
    """Users with managers; a Graph front end for them; a count of what was asked."""

    def __init__(self, users: int, *, without_manager: int = 0) -> None:
        self.ids = [f"u{n:06d}" for n in range(users)]
        self.manager = {
            uid: (None if n < without_manager else f"m{n % 7}") for n, uid in enumerate(self.ids)
        }
        self.requests: Counter[str] = Counter()
        self.count_supported = True
        self.list_status: int | None = None  # answer the list with this error status
        self.list_gate: asyncio.Event | None = None  # hold list pages until set
        self.seen_headers: list[dict[str, str]] = []

    async def handler(self, request: httpx.Request) -> httpx.Response:
        url = urlsplit(str(request.url))
        path = url.path.removeprefix("/v1.0")
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if path == "/$batch":
            responses = []
            for item in json.loads(request.content)["requests"]:
                self.requests["manager"] += 1
                uid = item["url"].split("/")[2]
                manager = self.manager.get(uid)
                if manager is None:
                    body = {"error": {"code": "Request_ResourceNotFound", "message": "no"}}
                    responses.append({"id": item["id"], "status": 404, "body": body})
                else:
                    responses.append({"id": item["id"], "status": 200, "body": {"id": manager}})
            return httpx.Response(200, json={"responses": responses})
        if path == "/users/$count":
            self.requests["count"] += 1
            self.seen_headers.append(dict(request.headers))
            if not self.count_supported:
                body = {"error": {"code": "Request_ResourceNotFound", "message": "no"}}
                return httpx.Response(404, json=body)
            return httpx.Response(
                200, text=str(len(self.ids)), headers={"Content-Type": "text/plain"}
            )
        if path == "/users":
            self.requests["users_page"] += 1
            if self.list_gate is not None:
                await self.list_gate.wait()
            if self.list_status is not None:
                return httpx.Response(
                    self.list_status, json={"error": {"code": "x", "message": "x"}}
                )
            assert query["$expand"] == "manager($select=id)" and query["$select"] == "id"
            top = min(int(query.get("$top", "100")), 100)
            start = int(query.get("$skiptoken", "0"))
            chunk = self.ids[start : start + top]
            value = []
            for uid in chunk:
                item: dict[str, object] = {"id": uid}
                if self.manager[uid] is not None:
                    item["manager"] = {
                        "@odata.type": "#microsoft.graph.user",
                        "id": self.manager[uid],
                    }
                value.append(item)
            body: dict[str, object] = {"value": value}
            if start + top < len(self.ids):
                body["@odata.nextLink"] = (
                    f"{BASE}/v1.0/users?$select=id&$expand=manager($select=id)&$top={top}"
                    f"&$skiptoken={start + top}"
                )
            return httpx.Response(200, json=body)
        raise AssertionError(f"unexpected request {request.method} {request.url}")


def _lookup(
    directory: FakeDirectory, **kwargs: object
) -> tuple[ManagerLookup, GraphClient, httpx.AsyncClient]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(directory.handler))

    class Tokens:
        tenant_id = "t"

        async def get_token(self) -> str:
            return "token"

        async def refresh_token(self, stale: str) -> str:
            return "token"

    async def no_sleep(_s: float) -> None:
        return None

    graph = GraphClient(
        http,
        tokens=Tokens(),
        base_url=BASE,
        retry=RetryPolicy(max_attempts=2, deadline_s=60, backoff_base_s=0.01),
        sleep=no_sleep,
        rng=random.Random(1),
    )
    return ManagerLookup(DirectoryApi(graph), **kwargs), graph, http  # type: ignore[arg-type]


async def test_many_principals_in_a_small_tenant_list_the_users_once() -> None:
    tenant = FakeDirectory(2_500, without_manager=3)
    lookup, graph, http = _lookup(tenant)
    lookup.plan(scoped_targets=10)
    async with http:
        results = {}
        for n in range(10):  # ten instances of 200 distinct principals each
            principals = tenant.ids[n * 200 : (n + 1) * 200]
            results.update(await lookup.managers_of(principals))
    # 2,000 principals would be 2,000 requests; the list is 25 pages and one count.
    assert tenant.requests == {"count": 1, "users_page": 25}
    assert lookup.mode == "list" and lookup.requests == 26
    assert results == {uid: tenant.manager[uid] for uid in tenant.ids[:2_000]}
    assert results["u000000"] is None  # a user without a manager
    assert tenant.seen_headers[0]["consistencylevel"] == "eventual"
    # The count told the pacer the tenant's documented budget (more than 500 users: 8,000 RU).
    assert graph.pacer.budget_ru("t") == 8_000


async def test_few_principals_in_a_big_tenant_are_looked_up_one_by_one() -> None:
    tenant = FakeDirectory(100_000)
    lookup, _graph, http = _lookup(tenant)
    lookup.plan(scoped_targets=1)
    async with http:
        found = await lookup.managers_of(tenant.ids[:30])
    assert tenant.requests == {"count": 1, "manager": 30}  # 30 < 1,000 pages
    assert lookup.mode == "per_user" and found == {
        uid: tenant.manager[uid] for uid in tenant.ids[:30]
    }


async def test_the_projection_switches_to_the_list_when_later_instances_are_big() -> None:
    tenant = FakeDirectory(10_000)  # 100 pages
    lookup, _graph, http = _lookup(tenant)
    lookup.plan(scoped_targets=10)
    async with http:
        await lookup.managers_of(tenant.ids[:5])  # 5 x 10 = 50 expected: one by one
        assert lookup.mode == "per_user" and tenant.requests["manager"] == 5
        found = await lookup.managers_of(tenant.ids[5:1_005])  # now ~5,000 expected: list
    assert lookup.mode == "list"
    assert tenant.requests == {"count": 1, "manager": 5, "users_page": 100}
    assert len(found) == 1_000


async def test_without_a_user_count_managers_are_looked_up_one_by_one() -> None:
    tenant = FakeDirectory(500)
    tenant.count_supported = False
    lookup, _graph, http = _lookup(tenant)
    lookup.plan(scoped_targets=5)
    async with http:
        for n in range(5):
            await lookup.managers_of(tenant.ids[n * 100 : (n + 1) * 100])
    assert tenant.requests == {"count": 1, "manager": 500}


async def test_a_failing_user_list_falls_back_to_one_by_one() -> None:
    tenant = FakeDirectory(1_000)
    tenant.list_status = 403
    lookup, _graph, http = _lookup(tenant)
    lookup.plan(scoped_targets=4)
    async with http:
        found = await lookup.managers_of(tenant.ids[:300])
        again = await lookup.managers_of(tenant.ids[300:600])
    assert found == {uid: tenant.manager[uid] for uid in tenant.ids[:300]}
    assert len(again) == 300 and lookup.mode == "per_user"
    assert tenant.requests == {"count": 1, "users_page": 1, "manager": 600}


async def test_principals_missing_from_the_list_are_looked_up_directly() -> None:
    tenant = FakeDirectory(300)
    lookup, _graph, http = _lookup(tenant)
    lookup.plan(scoped_targets=3)
    newcomer = "u999999"
    tenant.manager[newcomer] = "m-new"  # created after the list was read: not in it
    async with http:
        found = await lookup.managers_of([*tenant.ids[:250], newcomer])
    assert found[newcomer] == "m-new"
    assert tenant.requests == {"count": 1, "users_page": 3, "manager": 1}


async def test_tenants_beyond_the_listing_bound_are_never_listed() -> None:
    tenant = FakeDirectory(3_000)
    lookup, _graph, http = _lookup(tenant, max_users_listed=2_000)
    lookup.plan(scoped_targets=10)
    async with http:
        await lookup.managers_of(tenant.ids[:500])
    assert tenant.requests == {"count": 1, "manager": 500}


def _decisions(user_ids: list[str]) -> list[AccessReviewDecision]:
    return [
        AccessReviewDecision.from_graph(
            {
                "id": f"d-{uid}",
                "decision": "NotReviewed",
                "principal": {"@odata.type": "#microsoft.graph.userIdentity", "id": uid},
            }
        )
        for uid in user_ids
    ]


async def test_instances_sharing_principals_wait_for_one_list_read() -> None:
    """Several instances at once, overlapping principals: one count, one read of the list, and
    every instance's ``./manager`` reviewers right (some wait on answers another fetches)."""
    tenant = FakeDirectory(1_000)
    tenant.list_gate = asyncio.Event()
    lookup, graph, http = _lookup(tenant)
    lookup.plan(scoped_targets=3)
    resolver = ReviewerResolver(DirectoryApi(graph), managers=lookup)
    slots = asyncio.Semaphore(2)  # discovery's instance concurrency, smaller than the instances
    manager_scope = (ReviewerScope("./manager", query_root="decisions"),)
    principals = [tenant.ids[:600], tenant.ids[300:700], tenant.ids[650:900]]

    async def instance(user_ids: list[str]) -> set[str]:
        decisions = _decisions(user_ids)
        async with slots:
            await resolver.prefetch_managers(decisions)
            found = await asyncio.gather(
                *(
                    resolver.resolve(reviewers=manager_scope, fallback_reviewers=(), decision=d)
                    for d in decisions
                )
            )
            return set().union(*(r.reviewers for r in found))

    async with http:
        running = [asyncio.create_task(instance(ids)) for ids in principals]
        deadline = asyncio.get_running_loop().time() + 5
        while tenant.requests["users_page"] == 0:  # the list is being read (held at the gate)
            assert asyncio.get_running_loop().time() < deadline, "the user list was never read"
            await asyncio.sleep(0)
        tenant.list_gate.set()
        results = await asyncio.wait_for(asyncio.gather(*running), timeout=10)
    for ids, reviewers in zip(principals, results, strict=True):
        assert reviewers == {tenant.manager[u] for u in ids}
    assert tenant.requests == {"count": 1, "users_page": 10}
    assert not slots.locked()


@pytest.mark.parametrize("users", [49, 50, 500, 501])
async def test_the_count_sets_the_documented_budget(users: int) -> None:
    tenant = FakeDirectory(users)
    _unused, graph, http = _lookup(tenant)
    async with http:
        assert await DirectoryApi(graph).count_users() == users
    assert graph.pacer.budget_ru("t") == (3_500 if users < 50 else 5_000 if users <= 500 else 8_000)
