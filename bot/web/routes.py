"""HTTP routes: the bot endpoint and the operations endpoints."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.store import StoreError
from bot.store.schema import LATEST_VERSION
from bot.teams.adapter import (
    InboundAuthError,
    MalformedActivity,
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

__all__ = ["routes"]

log = logging.getLogger(__name__)

routes = web.RouteTableDef()


def _reject(request: web.Request, status: int, reason: str) -> web.Response:
    """A 4xx with a reason for the sender and a log line for us; nothing reaches the bot."""
    log.warning("activity rejected: %s", reason, extra={"status": status})
    request.app[METRICS].rejected_activities.labels(reason.split(":")[0]).inc()
    return web.json_response({"error": reason}, status=status)


async def _read_activity(request: web.Request) -> dict[str, Any] | web.Response:
    if request.content_type != "application/json":
        return _reject(request, 415, "unsupported media type: send application/json")
    try:
        # aiohttp enforces client_max_size here (413 for a body over the cap).
        body = await request.json()
    except web.HTTPRequestEntityTooLarge:
        return _reject(request, 413, "body too large")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _reject(request, 400, "body is not valid JSON")
    if not isinstance(body, dict):
        return _reject(request, 400, "body must be a JSON object (an activity)")
    if not isinstance(body.get("type"), str) or not body["type"]:
        return _reject(request, 400, "activity has no type")
    return body


@routes.post("/api/messages")
async def messages(request: web.Request) -> web.StreamResponse:
    """The Bot Framework endpoint. Validates the envelope, then hands over to the CloudAdapter."""
    body = await _read_activity(request)
    if isinstance(body, web.Response):
        return body
    try:
        activity = parse_activity(body)
    except MalformedActivity as exc:
        return _reject(request, 400, str(exc))
    try:
        return await process_request(
            request.app[ADAPTER],
            request,
            activity,
            request.app[BOT],
            require_auth=not request.app[SETTINGS].demo_mode,
        )
    except InboundAuthError:
        return _reject(request, 401, "unauthorized: missing or invalid bearer token")


@routes.get("/healthz")
async def healthz(_request: web.Request) -> web.Response:
    """The process is alive and serving."""
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
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
        {"status": "ready" if ready else "not ready", "checks": checks},
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


@routes.get("/metrics")
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
