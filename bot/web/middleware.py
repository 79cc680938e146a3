"""Request logging and the last-resort error handler."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.web.keys import METRICS

__all__ = ["request_middleware"]

log = logging.getLogger("bot.web.access")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def request_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Logs every request with its outcome and timing; turns unexpected errors into a JSON 500."""
    started = time.perf_counter()
    request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except Exception:
        log.exception("unhandled error", extra={"path": request.path, "request_id": request_id})
        return web.json_response({"error": "internal error", "requestId": request_id}, status=500)
    finally:
        elapsed_s = time.perf_counter() - started
        route = _route_name(request)
        metrics = request.app.get(METRICS)
        if metrics is not None:
            metrics.http_requests.labels(route, request.method, str(status)).inc()
            metrics.http_duration_s.labels(route).observe(elapsed_s)
        log.info(
            "%s %s %d %.1fms",
            request.method,
            request.path,
            status,
            elapsed_s * 1000,
            extra={"request_id": request_id, "status": status},
        )
