"""The demo's time travel over HTTP: ``POST /admin/demo/clock?advance=P3D`` (and ``GET`` to read it).

Reminders, snoozes and escalations come due by the clock, days after a review starts. In demo mode
the bot and its emulated Microsoft cloud share one :class:`~bot.clock.DemoClock`; moving it
forward lets a newcomer (or a test) watch a whole review in minutes. After a move the work of the
new time is done at once instead of at the background loops' next tick: a poll of Graph is asked
for, the reminder pass runs (under the reminders lease, as the loop would) and the outbox is woken.

Refused with a one-line error whenever ``MicrosoftAppId`` is set: a real tenant's time is not ours
to move. ``python app.py demo clock +3d`` calls this route on the running demo's port.
"""

from __future__ import annotations

import logging

from aiohttp import web

from bot.clock import Clock, DemoClock, iso_duration, parse_advance
from bot.reviews.poller import request_targeted_poll
from bot.settings import Settings
from bot.web.admin_auth import may_change
from bot.web.keys import CLOCK, OUTBOX, POLLER, REMINDERS, SETTINGS, STORE
from bot.web.middleware import expect_handler
from bot.wiring import DemoShortcutRefused

__all__ = ["DEMO_CLOCK_REFUSED", "check_demo_clock", "demo_routes"]

log = logging.getLogger(__name__)

demo_routes = web.RouteTableDef()

DEMO_CLOCK_REFUSED = "the demo clock is refused: MicrosoftAppId is set, so this is not the demo"
_NOT_DEMO = (
    "this process does not run the demo clock (start the demo with: python app.py, "
    "without MicrosoftAppId)"
)


def check_demo_clock(settings: Settings, clock: Clock) -> None:
    """Refuse a movable clock for a process with real credentials (``create_app`` calls this)."""
    if isinstance(clock, DemoClock) and not settings.demo_mode:
        raise DemoShortcutRefused(DEMO_CLOCK_REFUSED)


def _demo_clock(request: web.Request) -> DemoClock | web.Response:
    if not request.app[SETTINGS].demo_mode:
        return web.json_response({"error": DEMO_CLOCK_REFUSED}, status=403)
    clock = request.app[CLOCK]
    if not isinstance(clock, DemoClock):
        return web.json_response({"error": _NOT_DEMO}, status=409)
    return clock


@demo_routes.get("/admin/demo/clock", expect_handler=expect_handler)
async def read_demo_clock(request: web.Request) -> web.Response:
    """The demo's time and how far ahead of the wall clock it runs."""
    clock = _demo_clock(request)
    if isinstance(clock, web.Response):
        return clock
    return web.json_response({"now": clock.now().isoformat(), "offset": iso_duration(clock.offset)})


@demo_routes.post("/admin/demo/clock", expect_handler=expect_handler)
async def move_demo_clock(request: web.Request) -> web.Response:
    """Move the demo's clock forward by ``?advance=`` (``P3D``, ``PT4H``, ``+3d``, ``8h``) and do
    what falls due: the reminder pass runs now, and what it queued is in the answer."""
    clock = _demo_clock(request)
    if isinstance(clock, web.Response):
        return clock
    # The demo has no token: a page of another site must still not move its clock.
    refused = may_change(request)
    if refused is not None:
        return refused.response()
    try:
        delta = parse_advance(request.query.get("advance", ""))
    except ValueError as exc:
        return web.json_response({"error": f"advance: {exc}"}, status=400)
    app = request.app
    before = clock.now()
    now = clock.advance(delta)
    log.info("demo clock moved forward %s to %s", iso_duration(delta), now.isoformat())
    if POLLER in app:
        # Reviews may have ended or moved to their next stage on the emulated side.
        await request_targeted_poll(app[STORE], clock=clock, definition_id=None, instance_id=None)
    queued: list[dict[str, str]] = []
    reminder_run = "not running"
    if REMINDERS in app:
        # Under the scheduler's own holder name, as its background loop: the two are one role.
        dues = await app[REMINDERS].run_leased()
        if dues is None:
            reminder_run = "another replica holds the reminders lease"
        else:
            reminder_run = "ran"
            queued = [
                {
                    "kind": due.kind,
                    "point": due.point,
                    "reviewer": due.reviewer_oid,
                    "instance": due.instance_id,
                }
                for due in dues
            ]
    if OUTBOX in app:
        app[OUTBOX].wake()
    return web.json_response(
        {
            "before": before.isoformat(),
            "now": now.isoformat(),
            "advancedBy": iso_duration(delta),
            "offset": iso_duration(clock.offset),
            "reminderPass": reminder_run,
            "queued": queued,
        }
    )
