"""The Bot Connector's ``Retry-After`` is honoured up to the outbox's backoff cap.

A huge value would overflow a date (the worker pass would fail every lease) and a merely large one
(weeks) would park a first card past the end of its review: a card throttled with either is tried
again within ``RETRY_CAP_S`` (15 minutes).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.clock import ManualClock
from bot.notify.delivery import RETRY_CAP_S, DeliveryMetrics, OutboxWorker
from bot.notify.ratelimit import RateLimiter
from bot.web.keys import CLOCK, CONNECTOR, DISCOVERY, MICROSOFT, STORE
from emulator.faults import FaultRule
from emulator.seeds import DEMO_EXPECTED_ASSIGNMENTS
from tests.bot_harness import BotOnEmulator, bot_on_emulator


class FakeTime:
    """A monotonic clock that only ``sleep`` moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[BotOnEmulator]:
    async with bot_on_emulator(tmp_path, clock=ManualClock(datetime.now(UTC))) as running:
        yield running


@pytest.mark.parametrize("retry_after", ["1000000000000", "2592000"], ids=["huge", "30-days"])
async def test_a_429s_retry_after_is_capped_like_every_other_backoff(
    harness: BotOnEmulator, retry_after: str
) -> None:
    app = harness.app
    time = FakeTime()
    limiter = RateLimiter(monotonic=time.monotonic, sleep=time.sleep, rng=random.Random(3))
    side = app[MICROSOFT]
    worker = OutboxWorker(
        store=app[STORE],
        connector=app[CONNECTOR],
        limiter=limiter,
        clock=app[CLOCK],
        tenant_id=side.tenant_id,
        service_url=side.service_url,
        metrics=DeliveryMetrics(None),
    )
    await app[DISCOVERY].run_once()
    connector = harness.cloud.connector
    for reviewer in DEMO_EXPECTED_ASSIGNMENTS:
        connector.note_app_installed(user_oid=reviewer, user_name="R", installation_id=reviewer)
    await connector.drain_deliveries()
    harness.cloud.faults.add(
        FaultRule(
            kind="status",
            service="connector",
            method="POST",
            path_regex=r"/activities$",
            status=429,
            retry_after_header=retry_after,
            remaining=1,
        )
    )
    now = app[CLOCK].now()
    await worker.run_once()  # uncapped, "huge" would overflow a date here
    pending = await app[STORE].list_outbox(status="pending")
    assert pending, "the throttled card should be queued again"
    latest = max(m.not_before for m in pending)
    assert latest <= now + timedelta(seconds=RETRY_CAP_S + 1)
