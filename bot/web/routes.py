"""HTTP routes: the bot endpoint and the operations endpoints."""

from __future__ import annotations

import logging
import os
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.bounded_json import JsonRefused, load_json
from bot.store import StoreError
from bot.store.schema import LATEST_VERSION
from bot.teams.adapter import (
    ChannelKeysUnavailable,
    InboundAuthError,
    MalformedActivity,
    check_authorization,
    parse_activity,
    process_request,
)
from bot.web.keys import (
    ADAPTER,
    BOT,
    CLOCK,
    METRICS,
    MICROSOFT,
    OUTBOX,
    POLLER,
    REGISTRY,
    REMINDERS,
    SETTINGS,
    STORE,
)
from bot.web.middleware import expect_handler

__all__ = ["fallback_routes", "routes"]

log = logging.getLogger(__name__)

routes = web.RouteTableDef()
# Added after every other route (create_app): what no route serves.
fallback_routes = web.RouteTableDef()


def _reject(request: web.Request, status: int, reason: str) -> web.Response:
    """A 4xx with a reason for the sender and a log line for us; nothing reaches the bot."""
    log.warning("activity rejected: %s", reason, extra={"status": status})
    request.app[METRICS].rejected_activities.labels(reason.split(":")[0]).inc()
    return web.json_response({"error": reason}, status=status)


#: Longest serviceUrl accepted (Teams' are about 50 characters).
MAX_SERVICE_URL_CHARS = 2048


async def _read_activity(request: web.Request) -> dict[str, Any] | web.Response:
    if request.content_type != "application/json":
        return _reject(request, 415, "unsupported media type: send application/json")
    try:
        # aiohttp enforces client_max_size here (413 for a body over the cap).
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _reject(request, 413, "body too large")
    try:
        body = load_json(raw)
    except JsonRefused as exc:
        return _reject(request, 400, str(exc))
    if not isinstance(body, dict):
        return _reject(request, 400, "body must be a JSON object (an activity)")
    if not isinstance(body.get("type"), str) or not body["type"]:
        return _reject(request, 400, "activity has no type")
    if "serviceUrl" in body and not _is_service_url(body["serviceUrl"]):
        return _reject(request, 400, "serviceUrl must be an absolute http(s) URL")
    return body


def _is_service_url(value: Any) -> bool:
    """Where replies go. Signed activities carry it in the token too (botbuilder compares them);
    anonymous ones are the demo's, and nothing but an http(s) URL may be called there."""
    if not isinstance(value, str) or not value or len(value) > MAX_SERVICE_URL_CHARS:
        return False
    if not value.isascii() or not value.isprintable():
        return False
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and port_ok


@routes.post("/api/messages", expect_handler=expect_handler)
async def messages(request: web.Request) -> web.StreamResponse:
    """The Bot Framework endpoint. Validates the envelope, then hands over to the CloudAdapter."""
    try:
        # The header's shape first: a request that cannot be authenticated costs no body read.
        auth_header = check_authorization(
            request.headers.get("Authorization", ""),
            require_auth=not request.app[SETTINGS].demo_mode,
        )
    except InboundAuthError as exc:
        return _reject(request, 401, f"unauthorized: {exc}")
    body = await _read_activity(request)
    if isinstance(body, web.Response):
        return body
    try:
        activity = parse_activity(body)
    except MalformedActivity as exc:
        return _reject(request, 400, str(exc))
    try:
        return await process_request(
            request.app[ADAPTER], activity, request.app[BOT], auth_header=auth_header
        )
    except InboundAuthError as exc:
        return _reject(request, 401, f"unauthorized: {exc}")
    except ChannelKeysUnavailable as exc:
        # Not the caller's doing: the channel retries on 503; the operator needs to know.
        log.error("cannot validate channel tokens: signing keys unavailable (%s)", exc)
        return web.json_response(
            {"error": "cannot validate tokens right now"}, status=503, headers={"Retry-After": "5"}
        )


@routes.get("/healthz", expect_handler=expect_handler)
async def healthz(_request: web.Request) -> web.Response:
    """The process is alive and serving (``pid``: which process answered, with ``WORKERS=N``)."""
    return web.json_response({"status": "ok", "pid": os.getpid()})


@routes.get("/readyz", expect_handler=expect_handler)
async def readyz(request: web.Request) -> web.Response:
    """Ready when the store answers and its schema is the one this program expects, and the
    credential can get tokens (a certificate within its validity, a readable token file)."""
    store = request.app[STORE]
    checks: dict[str, Any] = {}
    ready = True
    side = request.app.get(MICROSOFT)
    if side is not None:
        # A stat of the credential's file (parsed again only when it changed): cheap enough here.
        # Validity is the wall clock's business: Entra judges certificates by its own time.
        status = side.credential.status()
        checks["credential"] = status.as_dict()
        ready = status.usable
    try:
        await store.ping()
        version = await store.schema_version()
        checks["store"] = "ok"
        checks["schema"] = version
        if version != LATEST_VERSION:
            ready = False
            checks["store"] = f"schema {version}, expected {LATEST_VERSION}"
    except StoreError as exc:
        ready = False
        checks["store"] = str(exc)
    if "store" in checks and checks["store"] == "ok":
        checks["leases"] = await _leases(request)
    return web.json_response(
        {"status": "ready" if ready else "not ready", "pid": os.getpid(), "checks": checks},
        status=200 if ready else 503,
    )


LEASES = ("discovery-poll", "delivery", "reminders")


async def _leases(request: web.Request) -> dict[str, Any]:
    """Who holds each background role, for how long, and whether it is this replica."""
    store = request.app[STORE]
    now = request.app[CLOCK].now()
    mine = _my_holders(request)
    leases: dict[str, Any] = {}
    for name in LEASES:
        lease = await store.get_lease(name=name)
        if lease is None:
            leases[name] = {"holder": None}
            continue
        expires_in_s = (lease.expires_at - now).total_seconds()
        leases[name] = {
            "holder": lease.holder if expires_in_s > 0 else None,
            "expires_in_s": round(max(expires_in_s, 0.0), 1),
            "fence": lease.fence,
            "mine": expires_in_s > 0 and lease.holder in mine,
        }
    return leases


def _my_holders(request: web.Request) -> set[str]:
    holders: set[str] = set()
    poller = request.app.get(POLLER)
    if poller is not None:
        holders.add(poller.holder)
    outbox = request.app.get(OUTBOX)
    if outbox is not None:
        holders.add(outbox.worker_id)
    reminders = request.app.get(REMINDERS)
    if reminders is not None:
        holders.add(reminders.holder)
    return holders


@routes.get("/metrics", expect_handler=expect_handler)
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition of this application's registry."""
    store, gauges = request.app[STORE], request.app[METRICS]
    try:
        for status in ("pending", "in_flight", "failed"):
            gauges.outbox_depth.labels(status).set(await store.count_outbox(status=status))
        for name, info in (await _leases(request)).items():
            gauges.lease_held.labels(name).set(1 if info.get("mine") else 0)
    except StoreError:
        log.warning("store unreachable while collecting metrics")
    payload = generate_latest(request.app[REGISTRY])
    return web.Response(body=payload, headers={"Content-Type": CONTENT_TYPE_LATEST})


@fallback_routes.route("*", "/{path:.*}", expect_handler=expect_handler)
async def not_served(request: web.Request) -> web.Response:
    """404 for a path no route serves, 405 (with ``Allow``) for a method a path does not take.

    aiohttp answers those itself, but with its default ``Expect`` handling, which turns an odd
    ``Expect`` value into a 500 (see :func:`bot.web.middleware.expect_handler`).
    """
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource is request.match_info.route.resource:
            continue
        _match, methods = await resource.resolve(request)
        allowed |= methods
    if allowed:
        return web.json_response(
            {"error": "method not allowed"},
            status=405,
            headers={"Allow": ", ".join(sorted(allowed))},
        )
    return web.json_response({"error": "not found"}, status=404)
