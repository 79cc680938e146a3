"""The garbage collector of a serving process, set for a long-lived server.

CPython's cycle collector traverses every tracked object of a generation when it collects it. In
a serving bot most of them were made at start-up and live as long as the process: modules,
functions and classes, botbuilder's and SQLAlchemy's machinery, Babel's locale data. A full
(generation 2) collection walked them all again, every few seconds under load: 80-175 ms of CPU
each in ``python -m bench decide``, during which no click is answered (the open-loop p99).

Once the application has started, :func:`settle_heap` collects what start-up left behind and
*freezes* the rest (:func:`gc.freeze`: moved to a permanent generation the collector never
walks; freed as usual when its reference count drops). It also raises the first generation's
threshold (700 → 3,000), so that a request's short-lived objects are mostly freed by reference
counting before a collection looks at them; a young collection then pauses a few milliseconds.
Cyclic garbage is still collected; it waits a little longer. ``bot_heap_frozen_objects`` in
``/metrics`` shows what was frozen.
"""

from __future__ import annotations

import gc
import logging

from aiohttp import web

from bot.web.keys import METRICS

__all__ = ["GEN0_THRESHOLD", "freeze_after_startup", "settle_heap"]

log = logging.getLogger(__name__)

#: Allocations (net of frees) between two young collections; CPython's default is 700.
GEN0_THRESHOLD = 3_000


def settle_heap() -> int:
    """Collect, then freeze what is left; returns how many objects were frozen."""
    gc.collect()
    gc.freeze()
    _gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
    frozen = gc.get_freeze_count()
    log.debug("heap settled: %d objects frozen", frozen)
    return frozen


def freeze_after_startup(app: web.Application) -> None:
    """Settle the heap once ``app`` has started (its resources open): for serving processes
    only, not for tests that build many applications in one process."""

    async def settle(app: web.Application) -> None:
        frozen = settle_heap()
        metrics = app.get(METRICS)  # an app without the bot's metrics (the benchmark's floor)
        if metrics is not None:
            metrics.heap_frozen.set(frozen)

    app.on_startup.append(settle)
