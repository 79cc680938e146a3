"""Running discovery: one poller at a time across replicas, plus targeted polls on request.

The replica holding the ``poll`` lease in the store runs a full cycle every ``interval_s`` and
the targeted polls others asked for. The lease lasts ``lease_ttl_s`` and is renewed on every tick
and while a cycle runs, so when its holder dies another replica takes over after at most one lease
period plus one tick.

Targeted polls (``POST /api/notifications``) arrive at any replica. They are written to the store's
outbox as ``poll`` messages keyed by review and a short time bucket, so a burst collapses to one
poll, and the lease holder runs them — never two polls of the same review at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from dataclasses import dataclass

from bot.clock import Clock
from bot.reviews.discovery import CycleReport, Discovery, LeaseLost
from bot.store import Lease, Store

__all__ = ["POLL_LEASE", "Poller", "PollerConfig", "request_targeted_poll"]

log = logging.getLogger(__name__)

POLL_LEASE = "discovery-poll"
_POLL_KIND = "poll"


@dataclass(frozen=True)
class PollerConfig:
    interval_s: float = 300.0
    lease_ttl_s: float = 60.0
    # How often a replica checks for the lease and for targeted polls.
    tick_s: float = 5.0
    # Targeted requests for one review within this window collapse into one poll.
    coalesce_s: float = 5.0
    # After an incomplete cycle, try again this soon rather than after a full interval.
    retry_s: float = 30.0


async def request_targeted_poll(
    store: Store,
    *,
    clock: Clock,
    definition_id: str | None,
    instance_id: str | None,
    coalesce_s: float = 5.0,
) -> bool:
    """Ask the lease holder for an immediate poll of one review. False if one is already queued."""
    bucket = math.floor(clock.now().timestamp() / coalesce_s)
    key = f"poll|{definition_id or '*'}|{instance_id or '*'}|{bucket}"
    return await store.enqueue_outbox(
        key=key,
        kind=_POLL_KIND,
        payload={"definitionId": definition_id, "instanceId": instance_id},
    )


class Poller:
    """Leases the poll role and runs discovery on schedule and on request."""

    def __init__(
        self,
        *,
        discovery: Discovery,
        store: Store,
        clock: Clock,
        config: PollerConfig | None = None,
        holder: str | None = None,
    ) -> None:
        self._discovery = discovery
        self._store = store
        self._clock = clock
        self._config = config or PollerConfig()
        self.holder = holder or f"poller-{uuid.uuid4().hex[:12]}"
        self._next_full_at = 0.0  # monotonic time of the next full cycle
        self._lease: Lease | None = None
        # The fence of the lease under which the last complete full cycle ran.
        self._reconciled_fence: int | None = None
        self._review_locks: dict[str, asyncio.Lock] = {}
        self.last_report: CycleReport | None = None
        self.cycles_run = 0
        self.leases_lost = 0

    async def _guard(self) -> None:
        """Fencing: discovery writes only while this replica still holds the lease it started with."""
        lease = self._lease
        if lease is None or not await self._store.check_lease(
            name=POLL_LEASE, holder=self.holder, fence=lease.fence
        ):
            raise LeaseLost("the poll lease moved to another replica or expired")

    @property
    def lease(self) -> Lease | None:
        return self._lease

    async def tick(self) -> bool:
        """One scheduling step: take/renew the lease; if held, run what is due. True if held."""
        self._lease = await self._store.acquire_lease(
            name=POLL_LEASE, holder=self.holder, ttl_s=self._config.lease_ttl_s
        )
        if self._lease is None:
            return False
        try:
            await self._run_targeted()
            if time.monotonic() >= self._next_full_at:
                fence = self._lease.fence
                report = await self._while_renewing(
                    self._discovery.run_once(
                        guard=self._guard, reconcile=fence != self._reconciled_fence
                    )
                )
                if report.complete:
                    self._reconciled_fence = fence
                self.last_report = report
                self.cycles_run += 1
                delay = self._config.interval_s if report.complete else self._config.retry_s
                self._next_full_at = time.monotonic() + delay
        except LeaseLost as exc:
            self.leases_lost += 1
            self._lease = None
            log.warning("stopped polling: %s", exc)
            return False
        return True

    async def run_once(self) -> CycleReport:
        """A full cycle now, if this replica holds (or can take) the lease; for tests and CLI."""
        self._next_full_at = 0.0
        if not await self.tick() or self.last_report is None:
            raise RuntimeError("another replica holds the poll lease")
        return self.last_report

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Tick until ``stop`` is set; errors are logged and the loop goes on."""
        while not stop.is_set():
            try:
                await self.tick()
            except Exception:
                log.exception("poller tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._config.tick_s)
        if self._lease is not None:
            await self._store.release_lease(name=POLL_LEASE, holder=self.holder)

    async def _run_targeted(self) -> None:
        claimed = await self._store.claim_outbox(
            worker=self.holder, limit=20, lease_s=self._config.lease_ttl_s, kinds=[_POLL_KIND]
        )
        for message in claimed:
            definition_id = message.payload.get("definitionId")
            instance_id = message.payload.get("instanceId")
            key = f"{definition_id}|{instance_id}"
            lock = self._review_locks.setdefault(key, asyncio.Lock())
            async with lock:
                try:
                    report = await self._while_renewing(
                        self._discovery.run_once(
                            definition_id=definition_id or None,
                            instance_id=instance_id or None,
                            guard=self._guard,
                        )
                    )
                except (ValueError, LookupError) as exc:
                    await self._store.fail_outbox(
                        message_id=message.id, worker=self.holder, error=str(exc)
                    )
                    continue
                await self._store.complete_outbox(
                    message_id=message.id,
                    worker=self.holder,
                    result={"complete": report.complete, "pendingItems": report.pending_items},
                )

    async def _while_renewing(self, work: asyncio.Future[CycleReport] | object) -> CycleReport:
        """Run ``work`` while renewing the lease every third of its lifetime."""
        task: asyncio.Task[CycleReport] = asyncio.ensure_future(work)  # type: ignore[arg-type]
        renew_every_s = self._config.lease_ttl_s / 3
        while True:
            done, _ = await asyncio.wait({task}, timeout=renew_every_s)
            if done:
                return task.result()
            renewed = await self._store.acquire_lease(
                name=POLL_LEASE, holder=self.holder, ttl_s=self._config.lease_ttl_s
            )
            if renewed is None or (self._lease is not None and renewed.fence != self._lease.fence):
                # Another replica took over: stop this cycle now rather than write under it.
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, LeaseLost):
                    await task
                raise LeaseLost("the poll lease was lost during a cycle")
            self._lease = renewed
