"""GraphClient policy in-process: retries, errors, paging, $batch, over httpx.MockTransport."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from bot.graph import (
    BatchRequest,
    GraphBadRequest,
    GraphClient,
    GraphConflict,
    GraphError,
    GraphForbidden,
    GraphNotFound,
    GraphServerError,
    GraphThrottled,
    GraphUnauthorized,
    GraphUnavailable,
    Query,
    RetryPolicy,
    odata_eq,
    parse_retry_after,
)
from bot.graph.client import MAX_RETRY_AFTER_S

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
BASE = "https://graph.example.test"


class FakeTime:
    """A monotonic clock that only moves when the client sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, delay_s: float) -> None:
        self.sleeps.append(delay_s)
        self.now += delay_s


class StaticTokens:
    def __init__(self) -> None:
        self.tokens = ["token-1", "token-2", "token-3"]
        self.refreshes: list[str] = []

    async def get_token(self) -> str:
        return self.tokens[len(self.refreshes)]

    async def refresh_token(self, stale: str) -> str:
        self.refreshes.append(stale)
        return self.tokens[len(self.refreshes)]


def graph_error(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {
        "error": {
            "code": code,
            "message": f"{code} happened",
            "innerError": {"request-id": "rid-1"},
        }
    }
    return httpx.Response(status, json=body, headers=headers or {})


def make_client(
    handler: Callable[[httpx.Request], httpx.Response],
    *,
    time: FakeTime | None = None,
    tokens: StaticTokens | None = None,
    retry: RetryPolicy | None = None,
    registry: CollectorRegistry | None = None,
) -> tuple[GraphClient, httpx.AsyncClient, FakeTime, StaticTokens]:
    time = time or FakeTime()
    tokens = tokens or StaticTokens()
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    client = GraphClient(
        http,
        tokens=tokens,
        base_url=BASE,
        retry=retry
        or RetryPolicy(max_attempts=5, deadline_s=60, backoff_base_s=0.5, backoff_max_s=8),
        sleep=time.sleep,
        monotonic=time.monotonic,
        wall_clock=lambda: NOW,
        rng=random.Random(7),
        registry=registry,
    )
    return client, http, time, tokens


def test_parse_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("3", now=NOW) == 3.0
    assert parse_retry_after(" 0 ", now=NOW) == 0.0
    assert parse_retry_after("1.5", now=NOW) == 1.5
    assert (
        parse_retry_after(format_datetime(NOW + timedelta(seconds=42), usegmt=True), now=NOW)
        == 42.0
    )
    assert (
        parse_retry_after(format_datetime(NOW - timedelta(seconds=5), usegmt=True), now=NOW) == 0.0
    )
    assert parse_retry_after("-4", now=NOW) == 0.0
    assert parse_retry_after("soon", now=NOW) is None
    # Nothing parks a call longer than the cap, however far the answer says: not inf, not years.
    assert parse_retry_after("inf", now=NOW) == MAX_RETRY_AFTER_S
    assert parse_retry_after("1e12", now=NOW) == MAX_RETRY_AFTER_S
    far = format_datetime(NOW + timedelta(days=3650), usegmt=True)
    assert parse_retry_after(far, now=NOW) == MAX_RETRY_AFTER_S
    assert parse_retry_after("nan", now=NOW) is None
    assert parse_retry_after(None, now=NOW) is None


async def test_429_waits_for_retry_after_then_succeeds_and_counts_the_retry() -> None:
    answers = [
        graph_error(429, "TooManyRequests", {"Retry-After": "7"}),
        graph_error(
            503,
            "ServiceUnavailable",
            {"Retry-After": format_datetime(NOW + timedelta(seconds=3), usegmt=True)},
        ),
        httpx.Response(200, json={"id": "u1"}),
    ]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers[len(seen) - 1]

    registry = CollectorRegistry()
    client, http, time, _ = make_client(handler, registry=registry)
    async with http:
        assert await client.get("/users/u1") == {"id": "u1"}
    assert time.sleeps == [7.0, 3.0]
    assert len(seen) == 3
    assert registry.get_sample_value("graph_retries_total", {"reason": "429"}) == 1
    assert registry.get_sample_value("graph_retries_total", {"reason": "503"}) == 1
    assert (
        registry.get_sample_value("graph_http_requests_total", {"method": "GET", "status": "200"})
        == 1
    )
    # Same client-request-id across the attempts of one call, a User-Agent and the token.
    ids = {r.headers["client-request-id"] for r in seen}
    assert len(ids) == 1
    assert all(r.headers["User-Agent"].startswith("AccessReviewBot/") for r in seen)
    assert all(r.headers["Authorization"] == "Bearer token-1" for r in seen)


async def test_without_retry_after_backoff_is_exponential_full_jitter() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return graph_error(504, "GatewayTimeout") if calls < 5 else httpx.Response(200, json={})

    client, http, time, _ = make_client(handler)
    async with http:
        await client.get("/me")
    assert len(time.sleeps) == 4
    for n, wait in enumerate(time.sleeps, start=1):
        assert 0 <= wait <= min(8, 0.5 * 2 ** (n - 1))
    assert len(set(time.sleeps)) == 4  # jittered, not a fixed ladder


@pytest.mark.parametrize(
    ("status", "code", "error_class"),
    [
        (400, "BadRequest", GraphBadRequest),
        (403, "Forbidden", GraphForbidden),
        (404, "ResourceNotFound", GraphNotFound),
        (409, "Conflict", GraphConflict),
    ],
)
async def test_client_errors_are_typed_and_never_retried(
    status: int, code: str, error_class: type[GraphError]
) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return graph_error(status, code, {"request-id": "server-rid"})

    client, http, time, tokens = make_client(handler)
    async with http:
        with pytest.raises(error_class) as caught:
            await client.request("PATCH", "/x", json_body={"a": 1})
    assert calls == 1
    assert time.sleeps == []
    assert tokens.refreshes == []
    assert caught.value.status == status
    assert caught.value.code == code
    assert caught.value.request_id == "server-rid"
    assert caught.value.client_request_id


async def test_401_refreshes_the_token_once() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        if request.headers["Authorization"] == "Bearer token-1":
            return graph_error(401, "InvalidAuthenticationToken")
        return httpx.Response(200, json={"ok": True})

    client, http, _, tokens = make_client(handler)
    async with http:
        assert await client.get("/me") == {"ok": True}
    assert seen == ["Bearer token-1", "Bearer token-2"]
    assert tokens.refreshes == ["token-1"]


async def test_401_after_refresh_surfaces_as_unauthorized() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return graph_error(401, "InvalidAuthenticationToken")

    client, http, _, tokens = make_client(handler)
    async with http:
        with pytest.raises(GraphUnauthorized):
            await client.get("/me")
    assert calls == 2
    assert tokens.refreshes == ["token-1"]


async def test_attempts_are_bounded_and_the_last_error_carries_retry_after() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return graph_error(429, "TooManyRequests", {"Retry-After": "1"})

    client, http, time, _ = make_client(handler, retry=RetryPolicy(max_attempts=3, deadline_s=60))
    async with http:
        with pytest.raises(GraphThrottled) as caught:
            await client.get("/me")
    assert calls == 3
    assert time.sleeps == [1.0, 1.0]
    assert caught.value.retry_after_s == 1.0


async def test_a_wait_beyond_the_deadline_is_not_started() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return graph_error(429, "TooManyRequests", {"Retry-After": "120"})

    client, http, time, _ = make_client(handler, retry=RetryPolicy(max_attempts=10, deadline_s=30))
    async with http:
        with pytest.raises(GraphThrottled) as caught:
            await client.get("/me")
    assert time.sleeps == []
    assert caught.value.retry_after_s == 120.0


async def test_5xx_exhausted_is_server_error() -> None:
    client, http, _, _ = make_client(
        lambda r: graph_error(500, "InternalServerError"), retry=RetryPolicy(max_attempts=2)
    )
    async with http:
        with pytest.raises(GraphServerError):
            await client.get("/me")


async def test_transport_errors_retry_idempotent_requests_only() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) == 1:
            raise httpx.ReadError("connection reset", request=request)
        return httpx.Response(200, json={"ok": 1})

    client, http, _, _ = make_client(handler)
    async with http:
        assert await client.get("/me") == {"ok": 1}
        assert calls == ["GET", "GET"]
        calls.clear()
        # A POST whose answer was lost may have been processed: not repeated.
        with pytest.raises(GraphUnavailable):
            await client.request("POST", "/users/u/sendThing")
        assert calls == ["POST"]


async def test_connect_errors_are_retried_even_for_post() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(204)

    client, http, _, _ = make_client(handler)
    async with http:
        response = await client.request("POST", "/x")
    assert response.status == 204
    assert response.body is None
    assert calls == 2


async def test_deadline_exhaustion_on_transport_errors_is_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client, http, _, _ = make_client(
        handler, retry=RetryPolicy(max_attempts=4, backoff_base_s=0.01)
    )
    async with http:
        with pytest.raises(GraphUnavailable):
            await client.get("/me")


async def test_paging_follows_next_links_and_encodes_odata_queries() -> None:
    urls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        page = int(request.url.params.get("page", "0"))
        body: dict[str, Any] = {"value": [{"n": page * 2}, {"n": page * 2 + 1}]}
        if page < 2:
            body["@odata.nextLink"] = f"{BASE}/v1.0/things?page={page + 1}"
        return httpx.Response(200, json=body)

    client, http, _, _ = make_client(handler)
    async with http:
        query = Query(top=2, select=("id", "n"), filter=odata_eq("name", "O'Neil & Co"))
        items = [i["n"] async for i in client.paginate("/things", params=query)]
    assert items == [0, 1, 2, 3, 4, 5]
    assert urls[0] == (
        f"{BASE}/v1.0/things?$top=2&$select=id,n&$filter=name%20eq%20'O''Neil%20%26%20Co'"
    )
    assert urls[1:] == [f"{BASE}/v1.0/things?page=1", f"{BASE}/v1.0/things?page=2"]


async def test_a_next_link_to_another_host_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"value": [], "@odata.nextLink": "https://evil.example/v1.0/things?page=1"}
        )

    client, http, _, _ = make_client(handler)
    async with http:
        with pytest.raises(GraphError, match="refusing"):
            [i async for i in client.paginate("/things")]


async def test_batch_chunks_maps_by_id_and_retries_only_throttled_items() -> None:
    batches: list[list[dict[str, Any]]] = []
    throttled_once: set[str] = set()

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1.0/$batch"
        items = json.loads(request.content)["requests"]
        batches.append(items)
        responses = []
        for item in items:
            rid = item["id"]
            if rid in ("3", "21") and rid not in throttled_once:
                throttled_once.add(rid)
                wait = "4" if rid == "3" else "2"
                responses.append(
                    {
                        "id": rid,
                        "status": 429,
                        "headers": {"Retry-After": wait},
                        "body": {"error": {"code": "TooManyRequests", "message": "slow down"}},
                    }
                )
            elif rid == "5":
                responses.append(
                    {
                        "id": rid,
                        "status": 404,
                        "body": {"error": {"code": "NotFound", "message": "no"}},
                    }
                )
            else:
                responses.append({"id": rid, "status": 200, "body": {"echo": item["url"]}})
        responses.reverse()  # Graph may answer in any order
        return httpx.Response(200, json={"responses": responses})

    client, http, time, _ = make_client(handler)
    requests = [BatchRequest(id=str(n), method="GET", url=f"/users/u{n}") for n in range(25)]
    async with http:
        answers = await client.batch(requests)
    assert list(answers) == [str(n) for n in range(25)]
    sent_ids = [sorted(int(item["id"]) for item in b) for b in batches]
    assert list(range(20)) in sent_ids and list(range(20, 25)) in sent_ids
    # Each chunk retried only its throttled item, after the longest Retry-After of that chunk.
    assert len(batches) == 4
    assert sorted(ids for ids in sent_ids if len(ids) == 1) == [[3], [21]]
    assert sorted(time.sleeps) == [2.0, 4.0]
    assert answers["3"].ok and answers["3"].attempts == 2
    assert answers["0"].body == {"echo": "/users/u0"}
    assert isinstance(answers["5"].error, GraphNotFound)
    assert answers["5"].error.code == "NotFound"
    with pytest.raises(GraphNotFound):
        answers["5"].raise_for_status()


async def test_batch_gives_up_per_item_and_keeps_the_throttled_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        items = json.loads(request.content)["requests"]
        return httpx.Response(
            200,
            json={
                "responses": [
                    {"id": i["id"], "status": 429, "headers": {"Retry-After": "1"}, "body": {}}
                    if i["id"] == "a"
                    else {"id": i["id"], "status": 204}
                    for i in items
                ]
            },
        )

    client, http, time, _ = make_client(handler, retry=RetryPolicy(max_attempts=3))
    async with http:
        answers = await client.batch(
            [
                BatchRequest(id="a", method="PATCH", url="/x/a", body={"decision": "Approve"}),
                BatchRequest(id="b", method="PATCH", url="/x/b", body={"decision": "Deny"}),
            ]
        )
    assert answers["b"].ok and answers["b"].attempts == 1
    assert isinstance(answers["a"].error, GraphThrottled)
    assert answers["a"].attempts == 3
    assert answers["a"].error.retry_after_s == 1.0
    assert time.sleeps == [1.0, 1.0]


async def test_batch_sub_requests_with_a_body_carry_content_type() -> None:
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.extend(json.loads(request.content)["requests"])
        return httpx.Response(200, json={"responses": [{"id": "1", "status": 204}]})

    client, http, _, _ = make_client(handler)
    async with http:
        await client.batch([BatchRequest(id="1", method="patch", url="/x", body={"a": 1})])
    assert sent == [
        {
            "id": "1",
            "method": "PATCH",
            "url": "/x",
            "body": {"a": 1},
            "headers": {"Content-Type": "application/json"},
        }
    ]


async def test_batch_rejects_duplicate_ids_and_absolute_urls() -> None:
    client, http, _, _ = make_client(lambda r: httpx.Response(500))
    async with http:
        with pytest.raises(ValueError, match="unique"):
            await client.batch([BatchRequest("1", "GET", "/a"), BatchRequest("1", "GET", "/b")])
        with pytest.raises(ValueError, match="relative"):
            await client.batch([BatchRequest("1", "GET", f"{BASE}/v1.0/a")])


async def test_with_tokens_shares_the_pool_and_metrics_but_not_the_token() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(200, json={})

    client, http, _, _ = make_client(handler)

    class UserTokens(StaticTokens):
        async def get_token(self) -> str:
            return "user-token"

    as_user = client.with_tokens(UserTokens())
    async with http:
        await as_user.get("/me")
        await client.get("/me")
    assert seen == ["Bearer user-token", "Bearer token-1"]
    assert as_user.metrics is client.metrics


async def test_a_failing_batch_call_raises_its_graph_error_and_stops_the_others() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return graph_error(400, "BadRequest")

    client, http, _, _ = make_client(handler)
    requests = [BatchRequest(id=str(n), method="GET", url=f"/users/u{n}") for n in range(45)]
    async with http:
        with pytest.raises(GraphBadRequest):
            await client.batch(requests)
    assert calls <= 3
