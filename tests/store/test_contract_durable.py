"""Store contract, part two: ordered decision writes and failed-card bookkeeping.

Run on SQLite and PostgreSQL (the ``any_store`` fixture), like ``test_contract.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from bot.clock import ManualClock
from bot.store import AuditEvent, DecisionStart, ItemRecord, SqlStore, WriteClaim

ALEX = "aaaaaaaa-0000-0000-0000-000000000001"
MEGAN = "aaaaaaaa-0000-0000-0000-000000000002"
TENANT = "11111111-1111-1111-1111-111111111111"
WINDOW_S = 60.0


async def _click(
    store: SqlStore,
    key: str,
    decisions: Mapping[str, str],
    *,
    actor: str = ALEX,
    reason: str = "r0",
    worker: str = "w",
) -> DecisionStart:
    return await store.begin_decision(
        key=key,
        kind="decision",
        payload={"decisions": dict(decisions)},
        instance_id="i1",
        actor_oid=actor,
        decisions=decisions,
        reason_digest=reason,
        worker=worker,
        lease_s=30,
        repeat_window_s=WINDOW_S,
    )


async def test_a_first_click_adds_a_claimed_intent_and_holds_its_items(any_store: SqlStore) -> None:
    start = await _click(any_store, "k1", {"a": "Approve", "b": "Approve"})
    assert start.added and start.message is not None
    assert start.message.status == "in_flight" and start.message.attempts == 1
    assert start.claims is not None and start.claims.held == {"a", "b"}
    assert not start.claims.waiting and not start.repeats
    # The same click again (a redelivered invoke) adds nothing and finds it claimed.
    again = await _click(any_store, "k1", {"a": "Approve", "b": "Approve"})
    assert not again.added and again.message is None and again.claims is None


async def test_a_later_click_waits_for_the_write_in_flight_then_supersedes(
    any_store: SqlStore,
) -> None:
    first = await _click(any_store, "k1", {"a": "Approve"})
    second = await _click(any_store, "k2", {"a": "Deny"}, actor=MEGAN)
    assert second.added and second.claims is not None
    assert second.claims.waiting == {"a"} and not second.claims.held
    # Only the newest click may write: the first one is superseded now, whatever it held.
    claims = await any_store.claim_item_writes(
        key="k1", instance_id="i1", item_ids=["a"], lease_s=30
    )
    assert claims.superseded == {"a"} and not claims.held
    # Letting go of its claim (the first intent ends) lets the newest one write.
    assert first.message is not None
    await any_store.complete_outbox(
        message_id=first.message.id,
        worker="w",
        result={},
        claims=WriteClaim(key="k1", instance_id="i1", item_ids=("a",)),
    )
    claims = await any_store.claim_item_writes(
        key="k2", instance_id="i1", item_ids=["a"], lease_s=30
    )
    assert claims.held == {"a"}


async def test_a_holder_that_died_loses_its_claim_when_it_expires(
    any_store: SqlStore, clock: ManualClock
) -> None:
    await _click(any_store, "k1", {"a": "Approve"})
    await _click(any_store, "k2", {"a": "Deny"})
    claims = await any_store.claim_item_writes(
        key="k2", instance_id="i1", item_ids=["a"], lease_s=30
    )
    assert claims.waiting == {"a"}
    clock.advance(timedelta(seconds=31))
    claims = await any_store.claim_item_writes(
        key="k2", instance_id="i1", item_ids=["a"], lease_s=30
    )
    assert claims.held == {"a"}


async def test_the_same_decision_again_within_the_window_is_a_repeat(
    any_store: SqlStore, clock: ManualClock
) -> None:
    first = await _click(any_store, "k1", {"a": "Approve"})
    assert first.message is not None
    repeat = await _click(any_store, "k2", {"a": "Approve"})
    assert not repeat.added and repeat.message is None
    assert repeat.repeats == {"a": "k1"} and repeat.repeat_status == {"k1": "in_flight"}
    assert await any_store.get_outbox(key="k2") is None  # no intent of its own
    # Another reason, another decision or another reviewer is not a repeat.
    assert (await _click(any_store, "k3", {"a": "Approve"}, reason="r1")).added
    assert (await _click(any_store, "k4", {"a": "Deny"}, reason="r1")).added
    assert (await _click(any_store, "k5", {"a": "Deny"}, actor=MEGAN, reason="r1")).added
    # Once the window has passed, the same decision is written again.
    clock.advance(timedelta(seconds=WINDOW_S + 1))
    assert (await _click(any_store, "k6", {"a": "Deny"}, actor=MEGAN, reason="r1")).added


async def test_a_bulk_click_that_partly_repeats_writes_only_the_rest(any_store: SqlStore) -> None:
    await _click(any_store, "k1", {"a": "Approve"})
    start = await _click(any_store, "k2", {"a": "Approve", "b": "Approve"})
    assert start.added and start.message is not None
    assert start.repeats == {"a": "k1"}
    assert start.claims is not None and start.claims.held == {"b"}
    assert start.claims.superseded == {"a"}
    # The intent itself remembers what it only repeats (for a retry by another worker).
    stored = await any_store.get_outbox(key="k2")
    assert stored is not None and stored.payload["repeats"] == ["a"]


async def test_busy_items_are_open_held_or_settled_recently(
    any_store: SqlStore, clock: ManualClock
) -> None:
    start = await _click(any_store, "k1", {"a": "Approve", "b": "Deny"})
    read_began = clock.now()
    assert start.message is not None
    assert await any_store.busy_items(
        instance_id="i1", item_ids=["a", "b", "c"], since=read_began
    ) == {
        "a",
        "b",
    }
    clock.advance(timedelta(seconds=1))
    await any_store.complete_outbox(
        message_id=start.message.id,
        worker="w",
        claims=WriteClaim(key="k1", instance_id="i1", item_ids=("a", "b")),
    )
    # Settled after the read began: that read may predate the write.
    assert await any_store.busy_items(instance_id="i1", item_ids=["a", "b"], since=read_began) == {
        "a",
        "b",
    }
    # A read that began later sees them settled.
    clock.advance(timedelta(seconds=1))
    assert not await any_store.busy_items(instance_id="i1", item_ids=["a", "b"], since=clock.now())


async def test_a_transient_retry_releases_the_claim_but_keeps_the_item_open(
    any_store: SqlStore, clock: ManualClock
) -> None:
    start = await _click(any_store, "k1", {"a": "Approve"})
    assert start.message is not None
    claim = WriteClaim(key="k1", instance_id="i1", item_ids=("a",))
    await any_store.retry_outbox(
        message_id=start.message.id,
        worker="w",
        error="503",
        not_before=clock.now() + timedelta(seconds=5),
        claims=claim,
    )
    clock.advance(timedelta(seconds=10))
    assert await any_store.busy_items(instance_id="i1", item_ids=["a"], since=clock.now()) == {"a"}
    [again] = await any_store.claim_outbox(worker="w2", limit=5, lease_s=30)
    assert (
        await any_store.claim_item_writes(key="k1", instance_id="i1", item_ids=["a"], lease_s=30)
    ).held == {"a"}
    await any_store.fail_outbox(
        message_id=again.id, worker="w2", error="403", result={"why": "forbidden"}, claims=claim
    )
    clock.advance(timedelta(seconds=1))
    assert not await any_store.busy_items(instance_id="i1", item_ids=["a"], since=clock.now())
    failed = await any_store.get_outbox(key="k1")
    assert (
        failed is not None and failed.status == "failed" and failed.result == {"why": "forbidden"}
    )


async def test_concurrent_conflicting_clicks_leave_one_newest_and_one_holder(
    any_store: SqlStore,
) -> None:
    starts = await asyncio.gather(
        *(
            _click(
                any_store, f"k{n}", {"a": ("Approve", "Deny")[n % 2], "b": "Approve"}, reason=str(n)
            )
            for n in range(8)
        )
    )
    holders = [s for s in starts if s.claims is not None and s.claims.held]
    # Exactly one click holds each item; every other one waits.
    assert len(holders) == 1 and holders[0].claims is not None
    assert holders[0].claims.held == {"a", "b"}
    waiting = [s for s in starts if s.claims is not None and s.claims.waiting == {"a", "b"}]
    assert len(waiting) == 7


async def test_failed_cards_are_listed_read_by_key_and_queued_again(
    any_store: SqlStore, clock: ManualClock
) -> None:
    for n in range(3):
        await any_store.enqueue_outbox(key=f"c{n}", kind="card", payload={"n": n})
    await any_store.enqueue_outbox(key="d0", kind="decision", payload={})
    claimed = {m.key: m for m in await any_store.claim_outbox(worker="w", limit=10, lease_s=30)}
    await any_store.fail_outbox(
        message_id=claimed["c0"].id, worker="w", error="403", result={"reason": "blocked"}
    )
    clock.advance(timedelta(seconds=1))
    await any_store.fail_outbox(message_id=claimed["c2"].id, worker="w", error="404")
    await any_store.fail_outbox(message_id=claimed["d0"].id, worker="w", error="x")
    await any_store.complete_outbox(message_id=claimed["c1"].id, worker="w", result={"ok": 1})

    failed = await any_store.list_outbox(status="failed", kinds=["card"])
    assert [m.key for m in failed] == ["c2", "c0"]  # most recent first
    assert failed[1].result == {"reason": "blocked"} and failed[1].updated_at is not None
    assert set(await any_store.get_outbox_many(keys=["c0", "c1", "zz"])) == {"c0", "c1"}

    # A failure is re-checked only once it is old enough; done rows (skipped ones) at once.
    assert await any_store.requeue_outbox(keys=["c0", "c1", "c2"], failed_for_s=60) == ["c1"]
    clock.advance(timedelta(seconds=60))
    assert await any_store.requeue_outbox(keys=["c0", "c1", "zz"], failed_for_s=60) == ["c0"]
    assert await any_store.requeue_outbox(keys=["c0"]) == []  # pending already
    requeued = await any_store.get_outbox(key="c0")
    assert requeued is not None and requeued.status == "pending" and requeued.attempts == 0
    assert {m.key for m in await any_store.claim_outbox(worker="w", limit=10, lease_s=30)} == {
        "c0",
        "c1",
    }


async def test_reference_times_say_when_each_was_stored(
    any_store: SqlStore, clock: ManualClock
) -> None:
    reference = {
        "serviceUrl": "https://smba.example/teams/",
        "conversation": {"id": "a:1", "conversationType": "personal", "tenantId": TENANT},
    }
    await any_store.save_conversation_reference(
        tenant_id=TENANT, user_oid=ALEX, reference=reference
    )
    first = clock.now()
    clock.advance(timedelta(minutes=5))
    times = await any_store.get_conversation_reference_times(
        tenant_id=TENANT, user_oids=[ALEX, MEGAN]
    )
    assert times == {ALEX: first}


# -- recovery after an outage, failures with their audit line ----------------------------------

MARK = "connector unavailable: "


async def _given_back(
    store: SqlStore, clock: ManualClock, key: str, *, kind: str, error: str, wait_s: float
) -> None:
    """Queue ``key``, claim it, and give it back to wait ``wait_s`` with ``error``."""
    await store.enqueue_outbox(key=key, kind=kind, payload={})
    [message] = [m for m in await store.claim_outbox(worker="w", limit=50, lease_s=30)]
    assert message.key == key
    await store.retry_outbox(
        message_id=message.id,
        worker="w",
        error=error,
        not_before=clock.now() + timedelta(seconds=wait_s),
    )


async def test_expediting_makes_due_only_what_waits_for_the_marked_failure(
    any_store: SqlStore, clock: ManualClock
) -> None:
    start = clock.now()
    await _given_back(
        any_store, clock, "outage-1", kind="card", error=f"{MARK}POST /v3: 503", wait_s=700
    )
    await _given_back(
        any_store, clock, "outage-2", kind="card", error=f"{MARK}POST /v3: 504", wait_s=40
    )
    # Waiting for other reasons: a 429, Graph, working hours, another kind with the same mark.
    await _given_back(any_store, clock, "throttled", kind="card", error="POST: 429", wait_s=60)
    await _given_back(
        any_store, clock, "graph", kind="card", error="app install: 503 Unavailable", wait_s=60
    )
    await _given_back(
        any_store,
        clock,
        "hours",
        kind="reminder_request",
        error="outside working hours",
        wait_s=3600,
    )
    await _given_back(any_store, clock, "decision", kind="decision", error=f"{MARK}x", wait_s=60)
    # Scheduled for later (an escalation in its recipient's working hours): no error at all.
    await any_store.enqueue_outbox(
        key="scheduled", kind="card", payload={}, not_before=start + timedelta(hours=8)
    )
    # Marked, but a worker holds it (a reminder sent ahead of its time takes its row early).
    await _given_back(any_store, clock, "in-flight", kind="card", error=f"{MARK}503", wait_s=600)
    assert await any_store.claim_outbox_early(key="in-flight", worker="w2", lease_s=30)
    clock.advance(timedelta(seconds=5))
    before = {
        key: m.not_before
        for key, m in (
            await any_store.get_outbox_many(
                keys=["throttled", "graph", "hours", "decision", "scheduled"]
            )
        ).items()
    }

    assert await any_store.expedite_outbox(kinds=["card"], error_prefix=MARK) == 2
    rows = await any_store.get_outbox_many(keys=["outage-1", "outage-2", *before, "in-flight"])
    for key in ("outage-1", "outage-2"):
        assert rows[key].status == "pending" and rows[key].not_before == clock.now(), key
        # Why it waited and how often it was tried stay for the status page and the backoff.
        assert rows[key].last_error is not None and rows[key].last_error.startswith(MARK)
        assert rows[key].attempts == 1
    assert {key: rows[key].not_before for key in before} == before
    assert rows["in-flight"].status == "in_flight"
    due = await any_store.claim_outbox(worker="w3", limit=10, lease_s=30, kinds=["card"])
    assert sorted(m.key for m in due) == ["outage-1", "outage-2"]

    # Idempotent: again (another replica, the same recovery) moves nothing.
    assert await any_store.expedite_outbox(kinds=["card"], error_prefix=MARK) == 0
    with pytest.raises(ValueError, match="prefix"):
        await any_store.expedite_outbox(kinds=["card"], error_prefix="")


async def test_expediting_from_two_replicas_at_once_moves_each_message_once(
    any_store: SqlStore, clock: ManualClock
) -> None:
    for n in range(30):
        await any_store.enqueue_outbox(key=f"m{n}", kind="card", payload={})
    for message in await any_store.claim_outbox(worker="w", limit=50, lease_s=30):
        await any_store.retry_outbox(
            message_id=message.id,
            worker="w",
            error=f"{MARK}503",
            not_before=clock.now() + timedelta(seconds=600),
        )
    moved = await asyncio.gather(
        *(any_store.expedite_outbox(kinds=["card"], error_prefix=MARK) for _ in range(3))
    )
    assert sum(moved) == 30
    assert len(await any_store.claim_outbox(worker="w", limit=50, lease_s=30)) == 30


async def test_a_failure_and_its_audit_line_are_written_together(
    any_store: SqlStore, clock: ManualClock
) -> None:
    for key in ("a", "b", "c"):
        await any_store.enqueue_outbox(key=key, kind="card", payload={})
    claimed = {m.key: m for m in await any_store.claim_outbox(worker="w", limit=5, lease_s=30)}
    line = AuditEvent(
        action="notify_failed", actor="bot", instance_id="i1", result="failed", detail={"k": "a"}
    )
    assert await any_store.fail_outbox(
        message_id=claimed["a"].id, worker="w", error="403", result={"r": 1}, audit=[line]
    )
    [written] = await any_store.list_audit(actions=["notify_failed"])
    assert (written.instance_id, written.detail, written.at) == ("i1", {"k": "a"}, clock.now())
    failed = await any_store.get_outbox(key="a")
    assert failed is not None and failed.status == "failed"

    # The audit line cannot be written (actor is required): the row is not failed either.
    broken = AuditEvent(action="notify_failed", actor=None, result="failed")  # type: ignore[arg-type]
    with pytest.raises(IntegrityError):
        await any_store.fail_outbox(
            message_id=claimed["b"].id, worker="w", error="403", audit=[broken]
        )
    row = await any_store.get_outbox(key="b")
    assert row is not None and row.status == "in_flight" and row.last_error is None

    # A claim lost to another worker fails nothing, and audits nothing.
    assert not await any_store.fail_outbox(
        message_id=claimed["c"].id, worker="someone-else", error="403", audit=[line]
    )
    assert len(await any_store.list_audit(actions=["notify_failed"])) == 1
    row = await any_store.get_outbox(key="c")
    assert row is not None and row.status == "in_flight"


async def test_a_failed_write_marks_its_items_with_the_failure_in_the_same_transaction(
    any_store: SqlStore,
) -> None:
    """An intent that ends failed (its review ended before Graph took it) writes its items' error
    and its audit lines with the failure; an item a later click took over keeps that click's
    state; a lost claim writes none of it."""
    await any_store.upsert_items(
        items=[ItemRecord(instance_id="i1", item_id=i, data={"saving": "Approve"}) for i in "abc"]
    )
    first = await _click(any_store, "k1", {"a": "Approve", "b": "Approve"})
    assert first.message is not None
    # A later click on b supersedes the first intent's claim on it.
    await _click(any_store, "k2", {"b": "Deny"}, actor=MEGAN)
    failed = [
        ItemRecord(instance_id="i1", item_id=i, data={"writeError": "unavailable"}) for i in "ab"
    ]
    line = AuditEvent(action="decision", actor=ALEX, instance_id="i1", item_id="a", result="failed")
    claim = WriteClaim(key="k1", instance_id="i1", item_ids=("a", "b"))

    # Another worker's claim: nothing is written.
    assert not await any_store.fail_outbox(
        message_id=first.message.id,
        worker="other",
        error="x",
        claims=claim,
        items=failed,
        audit=[line],
    )
    stored = {i.item_id: i for i in await any_store.list_items(instance_id="i1")}
    assert stored["a"].data == {"saving": "Approve"}
    assert not await any_store.list_audit(actions=["decision"])

    assert await any_store.fail_outbox(
        message_id=first.message.id,
        worker="w",
        error="x",
        claims=claim,
        items=failed,
        audit=[line],
    )
    stored = {i.item_id: i for i in await any_store.list_items(instance_id="i1")}
    assert stored["a"].data == {"writeError": "unavailable"}
    assert stored["b"].data == {"saving": "Approve"}  # the later click's, untouched
    assert stored["c"].data == {"saving": "Approve"}
    assert [e.item_id for e in await any_store.list_audit(actions=["decision"])] == ["a"]


async def test_expediting_can_be_limited_to_what_was_marked_before_a_moment(
    any_store: SqlStore, clock: ManualClock
) -> None:
    """A worker that saw no outage itself moves only what an earlier process marked."""
    for key in ("old", "new"):
        await any_store.enqueue_outbox(key=key, kind="card", payload={})
    [old] = await any_store.claim_outbox(worker="w", limit=1, lease_s=30)
    later = clock.now() + timedelta(seconds=600)
    await any_store.retry_outbox(
        message_id=old.id, worker="w", error=f"{MARK}503", not_before=later
    )
    clock.advance(timedelta(seconds=5))
    started = clock.now()
    [new] = await any_store.claim_outbox(worker="w", limit=1, lease_s=30)
    await any_store.retry_outbox(
        message_id=new.id, worker="w", error=f"{MARK}503", not_before=later
    )
    assert (
        await any_store.expedite_outbox(kinds=["card"], error_prefix=MARK, marked_before=started)
        == 1
    )
    rows = {m.key: m for m in await any_store.list_outbox(status="pending")}
    assert rows["old"].not_before == clock.now()
    assert rows["new"].not_before == later
