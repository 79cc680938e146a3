"""Request logging, the last-resort error handler, and the HTTP server's own limits and logger."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from aiohttp import ClientPayloadError, web
from aiohttp.http_exceptions import HttpProcessingError

from bot.web.keys import METRICS

__all__ = ["ProtocolLogger", "expect_handler", "protocol_handler_args", "request_middleware"]

log = logging.getLogger("bot.web.access")

#: The status counted for a request whose caller hung up before the answer.
CLIENT_CLOSED_REQUEST = 499

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Methods named in metrics as themselves; any other (a stranger may send any token) is "other",
# so the label set cannot grow without bound.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# A caller's X-Request-Id is kept (it ties their logs to ours) only when it looks like an id.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def _route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _client_gone(request: web.Request, error: BaseException) -> bool:
    """True when ``error`` came from reading this request (its connection is closing, or its
    body's framing broke), not from a call of ours to somewhere else."""
    if isinstance(error, HttpProcessingError | ClientPayloadError):
        return True
    transport = request.transport
    return transport is None or transport.is_closing()


def _request_id(request: web.Request) -> str:
    given = request.headers.get("x-request-id", "")
    return given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


@web.middleware
async def request_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Logs every request with its outcome and timing; turns unexpected errors into a JSON 500."""
    started = time.perf_counter()
    request_id = _request_id(request)
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        # aiohttp cancels the handler when the caller hangs up: nobody gets an answer, and it is
        # not a server error (499, "client closed request", as nginx counts it).
        status = CLIENT_CLOSED_REQUEST
        raise
    except (ConnectionError, ClientPayloadError, HttpProcessingError) as exc:
        if not _client_gone(request, exc):
            log.exception("unhandled error", extra={"path": request.path, "request_id": request_id})
            return web.json_response(
                {"error": "internal error", "requestId": request_id}, status=500
            )
        # The caller closed the connection before its body arrived, or sent a broken one:
        # nobody is left to answer, and nothing of ours went wrong.
        status = 400
        log.warning("request body incomplete: %s", type(exc).__name__)
        return web.json_response({"error": "incomplete or malformed body"}, status=400)
    except Exception:
        log.exception("unhandled error", extra={"path": request.path, "request_id": request_id})
        return web.json_response({"error": "internal error", "requestId": request_id}, status=500)
    finally:
        elapsed_s = time.perf_counter() - started
        route = _route_name(request)
        metrics = request.app.get(METRICS)
        if metrics is not None:
            method = request.method if request.method in _METHODS else "other"
            metrics.http_requests.labels(route, method, str(status)).inc()
            metrics.http_duration_s.labels(route).observe(elapsed_s)
        log.info(
            "%s %s %d %.1fms",
            request.method,
            # The matched route, not the raw path: a stranger's path is theirs to make up.
            route if route != "unmatched" else request.path[:200],
            status,
            elapsed_s * 1000,
            extra={"request_id": request_id, "status": status},
        )


async def expect_handler(request: web.Request) -> None:
    """``Expect: 100-continue`` answered as aiohttp does; any other value is a plain 417.

    aiohttp's own handler puts the header's value into its 417 text, and a value with bytes that
    are not UTF-8 then fails to encode: a 500 with a stack trace, before any middleware runs.
    Every route passes this one (``expect_handler=expect_handler``).
    """
    if request.headers.get("Expect", "").lower() == "100-continue":
        major, minor = request.version
        try:
            await request.writer.write(b"HTTP/%d.%d 100 Continue\r\n\r\n" % (major, minor))
        except ConnectionError:
            # The caller already hung up; the handler finds the body missing and says so once.
            pass
        return
    raise web.HTTPExpectationFailed(text="unsupported Expect header")


class ProtocolLogger(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's server logger, with a request that is not HTTP at all kept out of ERROR.

    aiohttp answers a request it cannot parse (a header line over the limit, a byte that may not
    be in a header, a broken chunk) with a 4xx and logs it with ``logger.exception``: an ERROR
    with a stack trace for whatever a stranger sends. Those, and a caller hanging up while
    aiohttp answers, become one WARNING line without a stack; anything else aiohttp reports
    stays an ERROR with its trace.
    """

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        return msg, kwargs

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info", True)
        error = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if isinstance(error, HttpProcessingError) and 400 <= (error.code or 0) < 500:
            self.logger.warning(
                "malformed HTTP request refused (%d %s)", error.code, type(error).__name__
            )
            return
        if isinstance(error, ConnectionError):
            # The caller hung up while aiohttp was still answering (an Expect, say).
            self.logger.warning("caller hung up mid-request (%s)", type(error).__name__)
            return
        kwargs.setdefault("exc_info", True)
        self.logger.error(msg, *args, **kwargs)


def protocol_handler_args() -> Mapping[str, Any]:
    """The HTTP server's per-connection settings (``web.Application(handler_args=...)``).

    The limits are aiohttp's defaults, stated here because they bound what a request may cost
    before any handler runs: a request line or header line of at most 8,190 bytes (a channel
    token is about 1 KB), at most 128 header lines; bodies are bounded by ``MAX_BODY_BYTES``.
    """
    return {
        "logger": ProtocolLogger(logging.getLogger("aiohttp.server"), {}),
        "max_line_size": 8190,
        "max_field_size": 8190,
        "max_headers": 128,
    }
