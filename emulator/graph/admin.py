"""The emulated Graph's admin surface (never faulted, never throttled, not part of Graph):

* ``GET /_emulator/graph/throttling`` — settings, limits in force and per-application counters
  (requests, resource units, writes, 429s, by priority); ``?records=N`` adds the last N requests
  with the ``x-ms-throttle-priority`` each carried.
* ``POST /_emulator/graph/throttling`` — change settings at run time: a JSON object with any of
  ``enabled``, ``tenant_size`` (``small``/``medium``/``large``/``null``),
  ``retry_after_absent_fraction``, ``seed``.
* ``DELETE /_emulator/graph/throttling`` — forget counters and bucket levels.
* ``POST /_emulator/graph/reviews/{definition_id}/rollover`` — a recurring review moves on to its
  next recurrence now (:meth:`emulator.tenant.Tenant.roll_over`); answers the new instance.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from emulator.graph.throttling import ThrottleSettings
from emulator.tenant import TenantError

if TYPE_CHECKING:
    from emulator.graph import GraphApi

__all__ = ["ADMIN_PREFIX", "install_admin_routes"]

ADMIN_PREFIX = "/_emulator/graph"


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"code": "BadRequest", "message": message}}, status=status)


def install_admin_routes(app: web.Application, graph: GraphApi) -> None:
    """Add the admin routes for ``graph`` to its web app."""

    async def get_throttling(request: web.Request) -> web.Response:
        body: dict[str, Any] = graph.throttle.describe()
        try:
            count = int(request.query.get("records", "0"))
        except ValueError:
            return _error(400, "records must be a whole number")
        if count > 0:
            body["records"] = [dataclasses.asdict(r) for r in graph.throttle.records()[-count:]]
        return web.json_response(body)

    async def set_throttling(request: web.Request) -> web.Response:
        try:
            changes = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "the body must be a JSON object")
        allowed = {f.name for f in dataclasses.fields(ThrottleSettings)}
        if not isinstance(changes, dict) or set(changes) - allowed:
            return _error(400, f"the body must be a JSON object with fields from {sorted(allowed)}")
        try:
            settings = dataclasses.replace(graph.throttle.settings, **changes)
        except (TypeError, ValueError) as exc:
            return _error(400, str(exc))
        graph.throttle.configure(settings)
        return web.json_response(graph.throttle.describe())

    async def reset_throttling(request: web.Request) -> web.Response:
        graph.throttle.reset()
        return web.Response(status=204)

    async def roll_over(request: web.Request) -> web.Response:
        try:
            instance = graph.tenant.roll_over(request.match_info["definition_id"])
        except TenantError as error:
            return web.json_response(
                {"error": {"code": error.code, "message": error.message}}, status=error.status
            )
        return web.json_response(graph.instance_json(instance), status=201)

    app.router.add_get(f"{ADMIN_PREFIX}/throttling", get_throttling)
    app.router.add_post(f"{ADMIN_PREFIX}/throttling", set_throttling)
    app.router.add_delete(f"{ADMIN_PREFIX}/throttling", reset_throttling)
    app.router.add_post(f"{ADMIN_PREFIX}/reviews/{{definition_id}}/rollover", roll_over)
