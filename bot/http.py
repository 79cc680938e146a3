"""An httpx transport that moves the bytes with aiohttp.

The bot speaks httpx everywhere (GraphClient, the connector client, and the tests that hand
either an ``httpx.MockTransport``), but httpcore's connection pool is slow under concurrency:
measured on loopback with a 5 KB JSON body, one request costs about 1 ms of CPU alone, 1.9 ms at
16 in flight and 3.5 ms at 200 in flight (the pool rescans every waiting request at each change),
where aiohttp's client costs 0.2–0.3 ms at any of those. Cards sent and decisions written are
one request each, so that difference was most of the bot's time per send and per click.

:class:`AiohttpTransport` keeps httpx's API, timeouts and error classes: aiohttp's errors are
raised as the httpx errors GraphClient and ConnectorClient already handle, with the same meaning
for "never sent" (connect errors and connect/pool timeouts) versus "maybe sent" (read errors).
"""

from __future__ import annotations

import ssl
import urllib.request
from collections.abc import Mapping

import aiohttp
import httpx

__all__ = ["AiohttpTransport", "create_async_client"]

# Hop-by-hop and framing headers: aiohttp writes its own.
_SKIP_REQUEST_HEADERS = frozenset({"host", "content-length", "connection", "transfer-encoding"})


class AiohttpTransport(httpx.AsyncBaseTransport):
    """``httpx.AsyncClient(transport=AiohttpTransport(...))``: one aiohttp pool underneath.

    The aiohttp session is made on first use, inside the running loop, and closed by
    ``aclose()`` (which ``httpx.AsyncClient`` calls when it closes).
    """

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None, limit: int = 100) -> None:
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit, ssl=self._ssl),
                # httpx decodes Content-Encoding itself, from the raw bytes.
                auto_decompress=False,
                # httpx has set the headers it wants sent; aiohttp adds none of its own.
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
                cookie_jar=aiohttp.DummyCookieJar(),
                # HTTP(S)_PROXY / NO_PROXY, as httpx's own transport honours them. Only when one
                # is set: aiohttp then looks the proxy up again for every request (~0.25 ms).
                trust_env=bool(urllib.request.getproxies()),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout") or {}
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in request.headers.raw
            if name.decode("latin-1").lower() not in _SKIP_REQUEST_HEADERS
        ]
        return await self._exchange(
            request.method,
            str(request.url),
            headers,
            await request.aread(),
            _client_timeout(
                timeouts.get("connect"),
                timeouts.get("pool"),
                timeouts.get("read"),
                timeouts.get("write"),
            ),
            request,
        )

    async def fetch(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        content: bytes | None = None,
        timeout_s: float,
    ) -> httpx.Response:
        """One request without httpx's client layer (for the card sends, where it is most of
        the cost): the same pool, errors and response type as through ``httpx.AsyncClient``."""
        return await self._exchange(
            method,
            url,
            list(headers.items()),
            content or b"",
            _client_timeout(timeout_s, timeout_s, timeout_s, timeout_s),
            None,
        )

    async def _exchange(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes,
        limits: aiohttp.ClientTimeout,
        request: httpx.Request | None,
    ) -> httpx.Response:
        """Send; httpx's errors on failure. ``request`` (the httpx request being served, if
        any) is attached to the response and the errors."""
        try:
            async with self._client().request(
                method,
                url,
                headers=headers,
                data=body or None,
                timeout=limits,
                allow_redirects=False,
            ) as response:
                content = await response.read()
                status = response.status
                raw_headers = list(response.raw_headers)
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc) or "connect timeout", request=request) from exc
        except aiohttp.SocketTimeoutError as exc:
            raise httpx.ReadTimeout(str(exc) or "read timeout", request=request) from exc
        except TimeoutError as exc:
            raise httpx.ReadTimeout("timeout", request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
            raise httpx.RemoteProtocolError(
                str(exc) or type(exc).__name__, request=request
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc
        return httpx.Response(
            status,
            headers=raw_headers,
            content=content,
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()


def _client_timeout(
    connect_s: float | None, pool_s: float | None, read_s: float | None, write_s: float | None
) -> aiohttp.ClientTimeout:
    """httpx's four timeouts as aiohttp's: aiohttp has no write timeout, so a request that cannot
    be written (a peer that stops reading) is bounded by the sum of all four."""
    parts = (connect_s, pool_s, read_s, write_s)
    return aiohttp.ClientTimeout(
        total=None if any(part is None for part in parts) else sum(p or 0.0 for p in parts),
        # aiohttp's "connect" includes waiting for a pooled connection.
        connect=None if connect_s is None and pool_s is None else (connect_s or 0) + (pool_s or 0),
        sock_connect=connect_s,
        sock_read=read_s,
    )


def create_async_client(
    *,
    ssl_context: ssl.SSLContext | None = None,
    limit: int = 100,
    timeout: httpx.Timeout | None = None,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` over :class:`AiohttpTransport`."""
    return httpx.AsyncClient(
        transport=AiohttpTransport(ssl_context=ssl_context, limit=limit),
        timeout=timeout or httpx.Timeout(30.0, connect=10.0),
    )
