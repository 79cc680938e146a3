"""bot.http: httpx requests sent with aiohttp, over real loopback servers.

Every server here is real: an ``aiohttp.web`` app or a raw ``asyncio`` server on 127.0.0.1,
port 0. The error tests pin the mapping GraphClient and ConnectorClient rely on: connect
failures and connect/pool timeouts are ``httpx.ConnectError`` / ``httpx.ConnectTimeout``
("never sent", safe to retry); anything after the request may have gone out is some other
``httpx.TransportError`` ("maybe sent").
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest
import trustme
from aiohttp import web

from bot.http import AiohttpTransport, create_async_client

RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Seen:
    """What an aiohttp.web handler received."""

    method: str
    path_qs: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class Recorder:
    requests: list[Seen] = field(default_factory=list)

    async def record(self, request: web.Request) -> Seen:
        seen = Seen(
            method=request.method,
            path_qs=request.path_qs,
            headers=list(request.headers.items()),
            body=await request.read(),
        )
        self.requests.append(seen)
        return seen


def _bind() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


@asynccontextmanager
async def serve_app(
    app: web.Application, *, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[int]:
    """Run ``app`` on a fresh loopback port; yields the port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = _bind()
    site = web.SockSite(runner, sock, ssl_context=ssl_context)
    await site.start()
    try:
        yield sock.getsockname()[1]
    finally:
        await runner.cleanup()
        sock.close()  # SockSite does not own a socket passed in


@asynccontextmanager
async def serve_raw(handler: RawHandler) -> AsyncIterator[int]:
    """A bare TCP server for servers that misbehave; yields the port."""
    writers: list[asyncio.StreamWriter] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """Read one HTTP/1.1 request (head and Content-Length body) from a raw connection."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    return head, body


def _free_port() -> int:
    """A loopback port nothing listens on: bound, read, then released."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _outcome(pending: Awaitable[httpx.Response]) -> httpx.Response | BaseException:
    """The response, or the exception instead, so a test can finish its cleanup first."""
    try:
        return await pending
    except Exception as exc:
        return exc


def _assert_maybe_sent(exc: BaseException) -> None:
    """A failure after the request may have left must not read as "never sent"."""
    assert isinstance(exc, httpx.TransportError), repr(exc)
    never_sent = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
    assert not isinstance(exc, never_sent), repr(exc)


# --- requests and responses pass through -------------------------------------------------


async def test_post_json_round_trips_method_path_headers_and_body() -> None:
    recorder = Recorder()

    async def handler(request: web.Request) -> web.Response:
        await recorder.record(request)
        return web.json_response(
            {"id": "msg-1", "text": "héllo"},
            status=201,
            headers={"request-id": "req-42", "Retry-After": "7"},
        )

    app = web.Application()
    app.router.add_post("/v3/conversations/{cid}/activities", handler)
    payload = {"type": "message", "text": "ünïcode", "n": [1, 2, 3]}
    async with serve_app(app) as port, create_async_client() as client:
        response = await client.post(
            f"http://127.0.0.1:{port}/v3/conversations/a:1/activities?top=5&filter=x%20y",
            json=payload,
            headers={"Authorization": "Bearer tok-123", "client-request-id": "cri-9"},
        )

    assert response.status_code == 201
    assert response.json() == {"id": "msg-1", "text": "héllo"}
    assert response.headers["request-id"] == "req-42"
    assert response.headers["Retry-After"] == "7"
    assert response.headers["Content-Type"].startswith("application/json")

    [seen] = recorder.requests
    assert seen.method == "POST"
    assert seen.path_qs == "/v3/conversations/a:1/activities?top=5&filter=x%20y"
    assert json.loads(seen.body) == payload
    headers = {name.lower(): value for name, value in seen.headers}
    assert headers["authorization"] == "Bearer tok-123"
    assert headers["client-request-id"] == "cri-9"
    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == str(len(seen.body))
    assert headers["host"] == f"127.0.0.1:{port}"
    # httpx's own headers are the only ones: aiohttp adds no second User-Agent or Accept.
    names = [name.lower() for name, _ in seen.headers]
    assert names.count("user-agent") == 1
    assert headers["user-agent"].startswith("python-httpx/")
    assert names.count("accept-encoding") == 1
    assert names.count("host") == 1


async def test_fetch_round_trips_method_path_headers_body_and_response() -> None:
    """``fetch`` (the connector's card sends) skips httpx's client but returns the same."""
    recorder = Recorder()

    async def handler(request: web.Request) -> web.Response:
        await recorder.record(request)
        return web.json_response(
            {"id": "act-7"}, status=201, headers={"request-id": "req-7", "Retry-After": "2"}
        )

    app = web.Application()
    app.router.add_route("*", "/v3/conversations/{cid}/activities/{aid}", handler)
    body = json.dumps({"type": "message", "text": "ünïcode"}).encode()
    transport = AiohttpTransport()
    try:
        async with serve_app(app) as port:
            url = f"http://127.0.0.1:{port}/v3/conversations/a:1/activities/x1?q=1"
            response = await transport.fetch(
                "PUT",
                url,
                headers={"Content-Type": "application/json", "Authorization": "Bearer tok"},
                content=body,
                timeout_s=5.0,
            )
            empty = await transport.fetch("DELETE", url, headers={}, timeout_s=5.0)
    finally:
        await transport.aclose()

    assert response.status_code == 201
    assert response.json() == {"id": "act-7"}
    assert response.headers["request-id"] == "req-7"
    assert response.headers["Retry-After"] == "2"
    assert empty.status_code == 201

    first, second = recorder.requests
    assert (first.method, first.path_qs) == ("PUT", "/v3/conversations/a:1/activities/x1?q=1")
    assert first.body == body
    headers = {name.lower(): value for name, value in first.headers}
    assert headers["authorization"] == "Bearer tok"
    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == str(len(body))
    assert (second.method, second.body) == ("DELETE", b"")


async def test_repeated_request_and_response_headers_are_kept() -> None:
    recorder = Recorder()

    async def handler(request: web.Request) -> web.Response:
        await recorder.record(request)
        response = web.Response(status=200, text="ok")
        response.headers.add("X-Multi", "one")
        response.headers.add("X-Multi", "two")
        return response

    app = web.Application()
    app.router.add_get("/h", handler)
    async with serve_app(app) as port, create_async_client() as client:
        response = await client.get(
            f"http://127.0.0.1:{port}/h", headers=[("X-Tag", "a"), ("X-Tag", "b")]
        )

    assert response.headers.get_list("X-Multi") == ["one", "two"]
    [seen] = recorder.requests
    assert [value for name, value in seen.headers if name.lower() == "x-tag"] == ["a", "b"]


async def test_gzip_response_is_decoded_exactly_once() -> None:
    original = {"value": [{"id": str(i), "displayName": "Ada Lovelace"} for i in range(50)]}
    compressed = gzip.compress(json.dumps(original).encode())
    recorder = Recorder()

    async def handler(request: web.Request) -> web.Response:
        await recorder.record(request)
        return web.Response(
            body=compressed,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )

    app = web.Application()
    app.router.add_get("/users", handler)
    async with serve_app(app) as port, create_async_client() as client:
        response = await client.get(f"http://127.0.0.1:{port}/users")

    assert response.status_code == 200
    assert response.json() == original
    assert response.headers["Content-Encoding"] == "gzip"
    # The server really sent compressed bytes, and the client said it could take them.
    headers = {name.lower(): value for name, value in recorder.requests[0].headers}
    assert "gzip" in headers["accept-encoding"]


async def test_204_without_body() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=204, headers={"request-id": "r-204"})

    app = web.Application()
    app.router.add_delete("/item", handler)
    async with serve_app(app) as port, create_async_client() as client:
        response = await client.delete(f"http://127.0.0.1:{port}/item")

    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["request-id"] == "r-204"


async def test_429_with_retry_after_is_a_response_not_an_error() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response(
            {"error": {"code": "TooManyRequests"}}, status=429, headers={"Retry-After": "3"}
        )

    app = web.Application()
    app.router.add_post("/throttled", handler)
    async with serve_app(app) as port, create_async_client() as client:
        response = await client.post(f"http://127.0.0.1:{port}/throttled", json={})

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert response.json() == {"error": {"code": "TooManyRequests"}}


async def test_redirect_is_returned_not_followed() -> None:
    recorder = Recorder()

    async def handler(request: web.Request) -> web.Response:
        await recorder.record(request)
        return web.Response(status=302, headers={"Location": "/elsewhere"})

    app = web.Application()
    app.router.add_get("/moved", handler)
    app.router.add_get("/elsewhere", handler)
    async with serve_app(app) as port, create_async_client() as client:
        response = await client.get(f"http://127.0.0.1:{port}/moved")

    assert response.status_code == 302
    assert response.headers["Location"] == "/elsewhere"
    assert [seen.path_qs for seen in recorder.requests] == ["/moved"]


async def test_cookies_from_a_response_are_not_sent_back() -> None:
    recorder = Recorder()

    async def handler(request: web.Request) -> web.Response:
        await recorder.record(request)
        response = web.Response(text="ok")
        response.set_cookie("session", "s3cret")
        return response

    app = web.Application()
    app.router.add_get("/c", handler)
    transport = AiohttpTransport()
    try:
        async with serve_app(app) as port:
            # A name, not an IP: aiohttp's default jar would ignore cookies from an IP host.
            url = f"http://localhost:{port}/c"
            first = await transport.fetch("GET", url, headers={}, timeout_s=5.0)
            await transport.fetch("GET", url, headers={}, timeout_s=5.0)
    finally:
        await transport.aclose()

    assert "session=s3cret" in first.headers["Set-Cookie"]
    second = {name.lower(): value for name, value in recorder.requests[1].headers}
    assert "cookie" not in second


# --- errors, through both ways in: httpx.AsyncClient and AiohttpTransport.fetch -----------

VIA = ["client", "fetch"]
BODY = b'{"a":1}'

Post = Callable[[str, float], Awaitable[httpx.Response]]


@asynccontextmanager
async def poster(via: str, *, limit: int = 100) -> AsyncIterator[tuple[Post, httpx.AsyncClient]]:
    """POST ``BODY`` to a URL with a timeout of ``timeout_s``, through ``via``."""
    transport = AiohttpTransport(limit=limit)
    async with httpx.AsyncClient(transport=transport) as client:

        async def post(url: str, timeout_s: float) -> httpx.Response:
            headers = {"Content-Type": "application/json"}
            if via == "client":
                return await client.post(
                    url, content=BODY, headers=headers, timeout=httpx.Timeout(timeout_s)
                )
            return await transport.fetch(
                "POST", url, headers=headers, content=BODY, timeout_s=timeout_s
            )

        yield post, client


@pytest.mark.parametrize("via", VIA)
async def test_connection_refused_is_connect_error(via: str) -> None:
    port = _free_port()
    async with poster(via) as (post, _):
        with pytest.raises(httpx.ConnectError):
            await post(f"http://127.0.0.1:{port}/x", 2.0)


@pytest.mark.parametrize("via", VIA)
async def test_waiting_for_a_pooled_connection_past_the_timeout_is_connect_timeout(
    via: str,
) -> None:
    """limit=1 with the one connection busy: the second request times out, unsent."""
    entered = asyncio.Event()
    release = asyncio.Event()
    recorder = Recorder()

    async def slow(request: web.Request) -> web.Response:
        await recorder.record(request)
        entered.set()
        await release.wait()
        return web.Response(text="slow done")

    async def fast(request: web.Request) -> web.Response:
        await recorder.record(request)
        return web.Response(text="fast")

    app = web.Application()
    app.router.add_get("/slow", slow)
    app.router.add_post("/fast", fast)
    async with serve_app(app) as port, poster(via, limit=1) as (post, client):
        first = asyncio.create_task(
            client.get(f"http://127.0.0.1:{port}/slow", timeout=httpx.Timeout(5.0))
        )
        await asyncio.wait_for(entered.wait(), 5.0)
        # wait_for only guards against a hang if the pool timeout were ignored.
        second = await _outcome(asyncio.wait_for(post(f"http://127.0.0.1:{port}/fast", 0.1), 3.0))
        release.set()
        done = await first

    assert isinstance(second, httpx.ConnectTimeout), repr(second)
    assert done.text == "slow done"
    assert [seen.path_qs for seen in recorder.requests] == ["/slow"]


@pytest.mark.parametrize("via", VIA)
async def test_server_that_never_answers_is_read_timeout(via: str) -> None:
    got: list[bytes] = []
    stop = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, body = await read_request(reader)
        got.append(body)
        await stop.wait()

    async with serve_raw(silent) as port, poster(via) as (post, _):
        try:
            with pytest.raises(httpx.ReadTimeout) as caught:
                # wait_for only guards against a hang if the read timeout were ignored.
                await asyncio.wait_for(post(f"http://127.0.0.1:{port}/x", 0.2), 3.0)
        finally:
            stop.set()

    assert got == [BODY]
    _assert_maybe_sent(caught.value)


@pytest.mark.parametrize("via", VIA)
async def test_server_that_closes_after_reading_the_request_is_not_a_connect_error(
    via: str,
) -> None:
    got: list[bytes] = []

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, body = await read_request(reader)
        got.append(body)
        writer.close()

    async with serve_raw(hang_up) as port, poster(via) as (post, _):
        with pytest.raises(httpx.TransportError) as caught:
            await post(f"http://127.0.0.1:{port}/x", 2.0)

    assert got == [BODY]  # the request did arrive: a retry could duplicate it
    _assert_maybe_sent(caught.value)


@pytest.mark.parametrize("via", VIA)
async def test_body_cut_short_is_remote_protocol_error(via: str) -> None:
    async def truncate(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        writer.write(b"Content-Length: 100\r\n\r\n" + b'{"partial": ')
        await writer.drain()
        writer.close()

    async with serve_raw(truncate) as port, poster(via) as (post, _):
        with pytest.raises(httpx.RemoteProtocolError) as caught:
            await post(f"http://127.0.0.1:{port}/x", 2.0)

    _assert_maybe_sent(caught.value)


# --- TLS ------------------------------------------------------------------------------------


async def test_https_with_custom_ca_trusted_only_when_given() -> None:
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(server_ctx)
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)

    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"secure": request.secure})

    app = web.Application()
    app.router.add_get("/tls", handler)
    async with serve_app(app, ssl_context=server_ctx) as port:
        url = f"https://127.0.0.1:{port}/tls"
        async with create_async_client(ssl_context=trusting, timeout=httpx.Timeout(5.0)) as client:
            response = await client.get(url)
        assert response.status_code == 200
        assert response.json() == {"secure": True}

        async with create_async_client(timeout=httpx.Timeout(5.0)) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get(url)


# --- closing --------------------------------------------------------------------------------


async def test_aclose_closes_the_aiohttp_session_and_its_connections() -> None:
    eof = asyncio.Event()

    async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok")
        await writer.drain()
        if await reader.read() == b"":  # the client hung up its pooled connection
            eof.set()

    transport = AiohttpTransport()
    async with serve_raw(keep_alive) as port:
        client = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(5.0))
        response = await client.get(f"http://127.0.0.1:{port}/")
        assert response.text == "ok"
        session = transport._session
        assert session is not None and not session.closed
        assert not eof.is_set()  # kept alive in the pool until the client closes

        await client.aclose()

        assert session.closed
        assert transport._session is None
        await asyncio.wait_for(eof.wait(), 5.0)
        with pytest.raises(RuntimeError):
            await client.get(f"http://127.0.0.1:{port}/")

        # The transport itself makes a fresh session on its next use.
        again = await transport.handle_async_request(
            httpx.Request("GET", f"http://127.0.0.1:{port}/")
        )
        assert again.status_code == 200
        assert transport._session is not None and transport._session is not session
        await transport.aclose()
        assert transport._session is None


async def test_a_configured_proxy_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_PROXY in the environment sends requests through the proxy (as httpx would)."""
    seen: list[str] = []

    async def proxy(request: web.Request) -> web.Response:
        # A forward proxy is asked for the target host's URL.
        seen.append(f"{request.host} {request.path}")
        return web.json_response({"via": "proxy"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy)
    async with serve_app(app) as port:
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
        client = create_async_client()
        try:
            response = await client.get("http://graph.example.invalid/v1.0/me")
        finally:
            await client.aclose()
    assert response.json() == {"via": "proxy"}
    assert seen == ["graph.example.invalid /v1.0/me"]
