"""Fault injection: rule semantics in-process, then the middleware and admin routes over
loopback HTTP."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from aiohttp import web

from emulator.faults import FaultRule, Faults


@dataclass
class Served:
    faults: Faults
    base_url: str
    client: httpx.AsyncClient
    hits: list[str]


async def _serve(service: str) -> AsyncIterator[Served]:
    faults = Faults()
    hits: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response({"ok": True})

    app = web.Application()
    faults.install(app, service)
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    site = web.SockSite(runner, sock)
    await site.start()
    async with httpx.AsyncClient(timeout=10.0) as client:
        yield Served(faults, f"http://127.0.0.1:{sock.getsockname()[1]}", client, hits)
    await runner.cleanup()
    sock.close()


@pytest.fixture
async def graph_app() -> AsyncIterator[Served]:
    async for served in _serve("graph"):
        yield served


@pytest.fixture
async def connector_app() -> AsyncIterator[Served]:
    async for served in _serve("connector"):
        yield served


async def test_rule_matching_in_process() -> None:
    faults = Faults()
    faults.add(
        FaultRule(
            kind="status",
            service="connector",
            method="POST",
            path_regex=r"/activities$",
            status=503,
        )
    )
    assert await faults.evaluate("graph", "POST", "/v3/conversations/a/activities") is None
    assert await faults.evaluate("connector", "GET", "/v3/conversations/a/activities") is None
    assert await faults.evaluate("connector", "POST", "/v3/conversations/a/members") is None
    outcome = await faults.evaluate("connector", "post", "/v3/conversations/a/activities")
    assert outcome is not None and outcome.status == 503 and outcome.retry_after_s is None


async def test_remaining_counts_firings_then_the_rule_expires() -> None:
    faults = Faults()
    rule_id = faults.add(FaultRule(kind="status", status=500, remaining=2))
    assert await faults.evaluate("graph", "GET", "/x") is not None
    assert await faults.evaluate("graph", "GET", "/x") is not None
    assert await faults.evaluate("graph", "GET", "/x") is None
    assert faults.fired(rule_id) == 2
    assert faults.rules() == {}


async def test_probability_is_reproducible_with_a_seed() -> None:
    async def pattern() -> list[bool]:
        faults = Faults()
        faults.add(FaultRule(kind="status", probability=0.3, seed=42))
        return [await faults.evaluate("graph", "GET", "/x") is not None for _ in range(200)]

    first, second = await pattern(), await pattern()
    assert first == second
    assert 30 < sum(first) < 90  # about 60 of 200


async def test_latency_rules_add_up_and_terminal_rule_wins_in_order() -> None:
    faults = Faults()
    faults.add(FaultRule(kind="latency", latency_s=0.03))
    faults.add(FaultRule(kind="latency", latency_s=0.03))
    first = faults.add(FaultRule(kind="status", status=502))
    faults.add(FaultRule(kind="status", status=504))
    started = time.perf_counter()
    outcome = await faults.evaluate("graph", "GET", "/x")
    assert time.perf_counter() - started >= 0.06
    assert outcome is not None and outcome.rule_id == first and outcome.status == 502


def test_invalid_rules_are_rejected() -> None:
    with pytest.raises(ValueError, match="kind"):
        FaultRule(kind="explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        FaultRule(kind="status", probability=1.5)
    with pytest.raises(ValueError):
        FaultRule(kind="status", retry_after_s=(5, 1))
    with pytest.raises(ValueError):
        FaultRule(kind="status", service="mail")
    with pytest.raises(Exception):  # noqa: B017 - re.error
        FaultRule(kind="status", path_regex="(")


async def test_429_has_graph_body_and_integer_retry_after(graph_app: Served) -> None:
    graph_app.faults.add(FaultRule(kind="status", status=429, retry_after_s=(2.0, 4.0), seed=7))
    seen = set()
    for _ in range(20):
        response = await graph_app.client.get(graph_app.base_url + "/v1.0/users")
        assert response.status_code == 429
        seen.add(int(response.headers["Retry-After"]))
        error = response.json()["error"]
        assert error["code"] == "TooManyRequests"
        assert error["innerError"]["request-id"] == response.headers["request-id"]
    assert seen <= {2, 3, 4} and len(seen) > 1
    assert graph_app.hits == []


async def test_connector_429_body_and_no_retry_after(connector_app: Served) -> None:
    connector_app.faults.add(FaultRule(kind="status", status=429, service="connector"))
    response = await connector_app.client.post(
        connector_app.base_url + "/v3/conversations", json={}
    )
    assert response.status_code == 429
    # Teams documents no Retry-After: a connector 429 comes without one unless a rule asks.
    assert "Retry-After" not in response.headers
    assert response.json() == {"error": {"code": "Throttled", "message": "Too many requests"}}
    connector_app.faults.clear()
    connector_app.faults.add(
        FaultRule(kind="status", status=429, service="connector", retry_after_s=(2, 2))
    )
    asked = await connector_app.client.post(connector_app.base_url + "/v3/conversations", json={})
    assert asked.status_code == 429 and asked.headers["Retry-After"] == "2"


async def test_expired_token(graph_app: Served, connector_app: Served) -> None:
    graph_app.faults.add(FaultRule(kind="expired_token"))
    response = await graph_app.client.get(graph_app.base_url + "/v1.0/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"
    connector_app.faults.add(FaultRule(kind="expired_token"))
    response = await connector_app.client.get(connector_app.base_url + "/v3/conversations")
    assert response.status_code == 401


async def test_drop_closes_the_connection_without_an_answer(graph_app: Served) -> None:
    graph_app.faults.add(FaultRule(kind="drop", method="POST", remaining=1))
    with pytest.raises(httpx.TransportError):
        await graph_app.client.post(graph_app.base_url + "/v1.0/$batch", json={})
    assert graph_app.hits == []
    response = await graph_app.client.post(graph_app.base_url + "/v1.0/$batch", json={})
    assert response.status_code == 200


async def test_service_targeting(graph_app: Served) -> None:
    graph_app.faults.add(FaultRule(kind="status", service="connector", status=500))
    response = await graph_app.client.get(graph_app.base_url + "/v1.0/users")
    assert response.status_code == 200


async def test_admin_routes_over_http(graph_app: Served) -> None:
    admin = graph_app.base_url + "/_emulator/faults"
    created = await graph_app.client.post(
        admin,
        json={
            "kind": "status",
            "status": 503,
            "path_regex": "^/v1.0/users",
            "retry_after_s": [3, 3],
        },
    )
    assert created.status_code == 201
    rule_id = created.json()["id"]
    listed = (await graph_app.client.get(admin)).json()["rules"]
    assert listed[0]["id"] == rule_id and listed[0]["retry_after_s"] == [3, 3]
    response = await graph_app.client.get(graph_app.base_url + "/v1.0/users")
    assert response.status_code == 503 and response.headers["Retry-After"] == "3"
    # A catch-all drop rule must not lock the admin route out.
    graph_app.faults.add(FaultRule(kind="drop"))
    assert (await graph_app.client.delete(admin)).status_code == 204
    assert graph_app.faults.rules() == {}
    assert (await graph_app.client.get(graph_app.base_url + "/v1.0/users")).status_code == 200
    bad = await graph_app.client.post(admin, json={"kind": "status", "colour": "red"})
    assert bad.status_code == 400
    one = (await graph_app.client.post(admin, json={"kind": "latency", "latency_s": 0})).json()
    assert (await graph_app.client.delete(f"{admin}/{one['id']}")).status_code == 204
    assert graph_app.faults.rules() == {}


async def test_a_connector_429_can_come_without_retry_after(connector_app: Served) -> None:
    admin = connector_app.base_url + "/_emulator/faults"
    created = await connector_app.client.post(
        admin, json={"kind": "status", "status": 429, "omit_retry_after": True, "remaining": 1}
    )
    assert created.status_code == 201
    response = await connector_app.client.post(
        connector_app.base_url + "/v3/conversations", json={}
    )
    assert response.status_code == 429 and "Retry-After" not in response.headers
    assert response.json()["error"]["code"] == "Throttled"


async def test_response_latency_delays_the_answer_after_the_work(connector_app: Served) -> None:
    with pytest.raises(ValueError):
        FaultRule(kind="status", phase="response")
    connector_app.faults.add(FaultRule(kind="latency", latency_s=0.3, phase="response"))
    started = time.monotonic()
    pending = connector_app.client.post(connector_app.base_url + "/v3/conversations", json={})
    response = await pending
    # The handler ran (the work was done), and the answer came late.
    assert response.status_code == 200 and connector_app.hits == ["/v3/conversations"]
    assert time.monotonic() - started >= 0.3
