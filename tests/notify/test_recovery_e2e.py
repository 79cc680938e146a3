"""Cards delayed by a Bot Connector outage go out as soon as it answers again, over loopback on
the emulator; messages waiting for anything else keep their time. A failed card's row and its
audit line are written together.

The outbox's time is the bot's injected clock (a :class:`ManualClock`): during the outage each
pass moves it past the longest backoff, so the backoffs grow to their cap in no real time. After
the outage the clock stands still: a card can then go out only if recovery makes it due, and the
test waits (with a deadline) for the running worker to deliver it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import Counter

from bot.clock import ManualClock
from bot.notify.delivery import (
    CARD_KIND,
    CONNECTOR_UNAVAILABLE,
    RETRY_CAP_S,
    DeliveryMetrics,
    OutboxWorker,
)
from bot.notify.ratelimit import RateLimiter
from bot.notify.reminders import enqueue_reminder
from bot.store import AuditEvent, Store
from bot.web.keys import CLOCK, CONNECTOR, DISCOVERY, MICROSOFT, OUTBOX, REGISTRY, STORE
from emulator.faults import FaultRule
from emulator.seeds import DEMO_EXPECTED_ASSIGNMENTS, demo_id
from tests.bot_harness import BotOnEmulator, bot_on_emulator

JOHANNA = demo_id("user", "johanna")
ROLE_REVIEW = demo_id("review", "user_admin_role")
#: Has no review of her own: her chat carries only the throttled reply.
ADELE = demo_id("user", "adele")
HELD_ESCALATION = "escalation|held-for-working-hours"
#: Outage passes: after this many tries a card's backoff is drawn from the whole 15 minutes.
OUTAGE_PASSES = 10
#: "Promptly once Teams works again", in real seconds, for every delayed card.
RECOVERY_DEADLINE_S = 5.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC))


@pytest.fixture
async def harness(tmp_path: Path, clock: ManualClock) -> AsyncIterator[BotOnEmulator]:
    async with bot_on_emulator(tmp_path, clock=clock) as running:
        connector = running.cloud.connector
        for user in (*DEMO_EXPECTED_ASSIGNMENTS, ADELE):
            connector.note_app_installed(user_oid=user, user_name="R", installation_id=f"i-{user}")
        await connector.drain_deliveries()
        yield running


def _review_cards_to(harness: BotOnEmulator, user: str) -> int:
    return sum(
        1
        for m in harness.cloud.connector.messages_to(user)
        if str(m.activity.get("summary", "")).startswith("Access review")
    )


def _every_review_card_arrived(harness: BotOnEmulator) -> bool:
    return all(
        _review_cards_to(harness, reviewer) == len(reviews)
        for reviewer, reviews in DEMO_EXPECTED_ASSIGNMENTS.items()
    )


def _sample(harness: BotOnEmulator, name: str) -> float:
    return harness.app[REGISTRY].get_sample_value(name) or 0.0


async def _pending_by_key(store: Store) -> dict[str, Any]:
    return {m.key: m for m in await store.list_outbox(status="pending", limit=1000)}


async def _long_outage(harness: BotOnEmulator, clock: ManualClock) -> str:
    """The connector answers 503 to every send for hours, from the first discovery on: each
    card's backoff grows to its cap. Returns the fault's id (still on); from here the clock stands
    still."""
    outage = harness.cloud.faults.add(
        FaultRule(
            kind="status",
            service="connector",
            method="POST",
            path_regex=r"^/v3/conversations",
            status=503,
        )
    )
    await harness.app[DISCOVERY].run_once()
    for _ in range(OUTAGE_PASSES):
        await harness.app[OUTBOX].run_once()
        clock.advance(timedelta(seconds=RETRY_CAP_S + 60))
    await harness.app[OUTBOX].run_once()  # the outage's last tries
    return outage


async def test_cards_delayed_by_a_connector_outage_go_out_within_seconds_of_recovery(
    harness: BotOnEmulator, clock: ManualClock
) -> None:
    app = harness.app
    store = app[STORE]
    faults = harness.cloud.faults
    # An escalation held for its recipient's working hours (as the reminder loop queues one).
    held_until = clock.now() + timedelta(hours=20)
    await store.enqueue_outbox(
        key=HELD_ESCALATION,
        kind=CARD_KIND,
        payload={
            "tenantId": harness.cloud.tenant_id,
            "reviewerOid": ADELE,
            "instanceId": ROLE_REVIEW,
            "card": "escalation",
            "mode": "new",
            "subjectOid": JOHANNA,
            "subjectName": "Johanna",
        },
        not_before=held_until,
    )

    outage = await _long_outage(harness, clock)
    delayed = {k: m for k, m in (await _pending_by_key(store)).items() if k != HELD_ESCALATION}
    assert len(delayed) == sum(len(r) for r in DEMO_EXPECTED_ASSIGNMENTS.values())
    assert min(m.attempts for m in delayed.values()) == OUTAGE_PASSES + 1
    assert all(m.last_error.startswith(CONNECTOR_UNAVAILABLE) for m in delayed.values())
    assert min(m.not_before for m in delayed.values()) > clock.now()
    # Backoffs drawn from up to 15 minutes: some card would wait minutes without recovery.
    assert max(m.not_before for m in delayed.values()) > clock.now() + timedelta(minutes=2)
    assert not any(_review_cards_to(harness, r) for r in DEMO_EXPECTED_ASSIGNMENTS)

    faults.remove(outage)
    # Just then a reply to Adele is throttled: a 429 proves nothing about recovery, and its
    # Retry-After holds. (Her in-turn reply is refused first, so the outbox carries it.)
    faults.add(
        FaultRule(
            kind="status",
            service="connector",
            method="POST",
            path_regex=r"^/v3/conversations/[^/]+/activities/[^/]+$",
            status=429,
            retry_after_s=(0, 0),
            remaining=1,
        )
    )
    adele_chat = re.escape(harness.cloud.connector.conversation_id_for(ADELE))
    throttle = faults.add(
        FaultRule(
            kind="status",
            service="connector",
            method="POST",
            path_regex=rf"^/v3/conversations/{adele_chat}/activities$",
            status=429,
            retry_after_s=(60, 60),
            remaining=1,
        )
    )
    assert (await harness.teams.message(ADELE, "help")).status == 201
    await app[OUTBOX].run_once()
    assert faults.fired(throttle) == 1
    [reply] = [m for m in (await _pending_by_key(store)).values() if m.payload["card"] == "reply"]
    assert reply.not_before == clock.now() + timedelta(seconds=60)
    assert not any(_review_cards_to(harness, r) for r in DEMO_EXPECTED_ASSIGNMENTS)
    assert _sample(harness, "delivery_recoveries_total") == 0

    # The next send that gets through (a reminder queued now) ends the outage for the worker.
    await enqueue_reminder(
        store,
        tenant_id=harness.cloud.tenant_id,
        reviewer_oid=JOHANNA,
        instance_id=ROLE_REVIEW,
        key="reminder|after-the-outage",
        reason="halfway",
    )
    stop = asyncio.Event()
    worker = asyncio.create_task(app[OUTBOX].run_forever(stop, idle_s=0.1))
    try:
        await harness.eventually(
            lambda: _every_review_card_arrived(harness),
            timeout_s=RECOVERY_DEADLINE_S,
            what="every card the outage delayed",
        )
    finally:
        stop.set()
        await worker
    assert all(
        _review_cards_to(harness, reviewer) == len(reviews)
        for reviewer, reviews in DEMO_EXPECTED_ASSIGNMENTS.items()
    )
    waiting = await _pending_by_key(store)
    assert set(waiting) == {HELD_ESCALATION, reply.key}
    assert waiting[HELD_ESCALATION].not_before == held_until
    assert waiting[reply.key].not_before == reply.not_before
    assert CONNECTOR_UNAVAILABLE not in (waiting[reply.key].last_error or "")
    # Once for this recovery, however many sends got through after it.
    assert _sample(harness, "delivery_recoveries_total") == 1
    assert _sample(harness, "delivery_expedited_total") == len(delayed)


async def test_one_chat_failing_among_sends_that_get_through_keeps_its_backoff(
    harness: BotOnEmulator, clock: ManualClock
) -> None:
    """A 503 for one chat while the others' sends get through is no outage: that card waits out
    its backoff instead of being retried with every success."""
    app = harness.app
    store = app[STORE]
    johanna_chat = re.escape(harness.cloud.connector.conversation_id_for(JOHANNA))
    harness.cloud.faults.add(
        FaultRule(
            kind="status",
            service="connector",
            method="POST",
            path_regex=rf"^/v3/conversations/{johanna_chat}/activities$",
            status=503,
            remaining=1,
        )
    )
    await app[DISCOVERY].run_once()
    await app[OUTBOX].run_once()
    # More sends get through after the failure (a reminder for someone else).
    alex = demo_id("user", "alex")
    await enqueue_reminder(
        store,
        tenant_id=harness.cloud.tenant_id,
        reviewer_oid=alex,
        instance_id=next(iter(DEMO_EXPECTED_ASSIGNMENTS[alex])),
        key="reminder|alex",
        reason="halfway",
    )
    await app[OUTBOX].run_once()
    [waiting] = (await _pending_by_key(store)).values()
    assert waiting.payload["reviewerOid"] == JOHANNA and waiting.not_before > clock.now()
    assert _review_cards_to(harness, JOHANNA) == 0
    assert _sample(harness, "delivery_recoveries_total") == 0


class _CrashesOnSeparateAudit:
    """The store, except that an audit line written on its own "crashes the process": what a
    failure whose audit line needs a second transaction would lose."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def append_audit(self, *, event: AuditEvent) -> int:
        raise ConnectionError("the process died before the audit line was written")

    async def append_audits(self, *, events: Sequence[AuditEvent]) -> None:
        raise ConnectionError("the process died before the audit lines were written")


async def test_a_failed_card_is_never_without_its_audit_line(harness: BotOnEmulator) -> None:
    app = harness.app
    store = app[STORE]
    await app[DISCOVERY].run_once()
    harness.cloud.connector.set_blocked(JOHANNA)  # a 403: the card fails for good
    side = app[MICROSOFT]
    worker = OutboxWorker(
        store=_CrashesOnSeparateAudit(store),
        connector=app[CONNECTOR],
        limiter=RateLimiter(),
        clock=app[CLOCK],
        tenant_id=side.tenant_id,
        service_url=side.service_url,
        metrics=DeliveryMetrics(None),
    )
    await worker.run_once()
    failed = await store.list_outbox(status="failed", kinds=[CARD_KIND])
    assert [m.payload["reviewerOid"] for m in failed] == [JOHANNA]
    [line] = await store.list_audit(actions=["notify_failed"])
    assert line.instance_id == ROLE_REVIEW and line.result == "failed"
    assert line.detail["recipient"] == JOHANNA and line.detail["reason"] == "blocked by the user"


async def test_a_worker_started_after_an_outage_sends_what_it_delayed_at_its_first_success(
    harness: BotOnEmulator, clock: ManualClock
) -> None:
    """The process that saw the outage is gone (restarted, or a standby replica took over the
    delivery lease): the cards it gave back still carry their mark, and the new worker's first
    send that gets through makes them due."""
    app = harness.app
    store = app[STORE]
    outage = await _long_outage(harness, clock)
    delayed = await _pending_by_key(store)
    assert min(m.not_before for m in delayed.values()) > clock.now()
    harness.cloud.faults.remove(outage)
    clock.advance(timedelta(seconds=1))  # the new process starts after the last mark

    side = app[MICROSOFT]
    metrics = DeliveryMetrics(None)
    restarted = OutboxWorker(
        store=store,
        connector=app[CONNECTOR],
        limiter=RateLimiter(),
        clock=app[CLOCK],
        tenant_id=side.tenant_id,
        service_url=side.service_url,
        metrics=metrics,
    )
    await enqueue_reminder(
        store,
        tenant_id=harness.cloud.tenant_id,
        reviewer_oid=JOHANNA,
        instance_id=ROLE_REVIEW,
        key="reminder|after-the-restart",
        reason="halfway",
    )
    stop = asyncio.Event()
    running = asyncio.create_task(restarted.run_forever(stop, idle_s=0.1))
    try:
        await harness.eventually(
            lambda: _every_review_card_arrived(harness),
            timeout_s=RECOVERY_DEADLINE_S,
            what="every card the earlier process's outage delayed",
        )
    finally:
        stop.set()
        await running
    assert not await _pending_by_key(store)
    assert _total(metrics.recoveries) == 1
    assert _total(metrics.expedited) == len(delayed)


def _total(counter: Counter) -> float:
    """A counter's value, read through prometheus_client's public collect()."""
    return sum(s.value for m in counter.collect() for s in m.samples if s.name.endswith("_total"))
