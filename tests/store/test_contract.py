"""The Store contract: every backend must behave exactly like this (run on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.clock import ManualClock
from bot.store import (
    AuditEvent,
    InstanceRecord,
    ItemRecord,
    OnceWork,
    OutboxCompletion,
    PersonRecord,
    QueuedMessage,
    SentMessage,
    SqlStore,
    open_store,
)
from bot.store.schema import LATEST_VERSION

TENANT = "11111111-1111-1111-1111-111111111111"
ALEX = "aaaaaaaa-0000-0000-0000-000000000001"
MEGAN = "aaaaaaaa-0000-0000-0000-000000000002"


def _reference(conversation_id: str, service_url: str = "https://smba.example/teams/") -> dict:
    return {
        "serviceUrl": service_url,
        "channelId": "msteams",
        "conversation": {"id": conversation_id, "conversationType": "personal", "tenantId": TENANT},
        "user": {"id": "29:alex", "aadObjectId": ALEX},
        "bot": {"id": "28:bot"},
    }


async def test_migrations_are_applied_and_reported(any_store: SqlStore) -> None:
    assert await any_store.schema_version() == LATEST_VERSION
    # Running them again is a no-op.
    assert await any_store.migrate() == LATEST_VERSION
    await any_store.ping()


async def test_conversation_reference_round_trip_and_refresh(any_store: SqlStore) -> None:
    assert await any_store.get_conversation_reference(tenant_id=TENANT, user_oid=ALEX) is None
    assert await any_store.save_conversation_reference(
        tenant_id=TENANT, user_oid=ALEX, reference=_reference("a:1")
    )
    # The same reference again changes nothing.
    assert not await any_store.save_conversation_reference(
        tenant_id=TENANT, user_oid=ALEX, reference=_reference("a:1")
    )
    # A new serviceUrl replaces the old one.
    assert await any_store.save_conversation_reference(
        tenant_id=TENANT, user_oid=ALEX, reference=_reference("a:1", "https://smba.example/emea/")
    )
    stored = await any_store.get_conversation_reference(tenant_id=TENANT, user_oid=ALEX)
    assert stored is not None and stored["serviceUrl"] == "https://smba.example/emea/"
    assert await any_store.get_conversation_reference(tenant_id=TENANT, user_oid=MEGAN) is None
    await any_store.delete_conversation_reference(tenant_id=TENANT, user_oid=ALEX)
    assert await any_store.get_conversation_reference(tenant_id=TENANT, user_oid=ALEX) is None


async def test_conversation_reference_needs_service_url_and_conversation(
    any_store: SqlStore,
) -> None:
    with pytest.raises(ValueError, match="serviceUrl"):
        await any_store.save_conversation_reference(
            tenant_id=TENANT, user_oid=ALEX, reference={"conversation": {"id": "x"}}
        )


async def test_instances_and_items_upsert(any_store: SqlStore, clock: ManualClock) -> None:
    start = clock.now()
    instance = InstanceRecord(
        instance_id="i1",
        definition_id="d1",
        display_name="Sales group members",
        status="InProgress",
        start_at=start,
        end_at=start + timedelta(days=14),
        data={"justificationRequired": True},
    )
    await any_store.upsert_instances(instances=[instance])
    assert await any_store.get_instance(instance_id="i1") == instance
    await any_store.upsert_instances(
        instances=[
            InstanceRecord(
                instance_id="i1",
                definition_id="d1",
                display_name="Sales group members",
                status="Completed",
                start_at=start,
                end_at=start + timedelta(days=14),
            )
        ]
    )
    assert [i.status for i in await any_store.list_instances()] == ["Completed"]
    assert await any_store.list_instances(status="InProgress") == []
    assert await any_store.get_instance(instance_id="nope") is None

    items = [
        ItemRecord(instance_id="i1", item_id=f"item{n:04d}", recommendation="Deny", data={"n": n})
        for n in range(1200)  # more than one statement's worth of rows
    ]
    await any_store.upsert_items(items=items)
    listed = await any_store.list_items(instance_id="i1")
    assert len(listed) == 1200 and listed[5].data == {"n": 5}
    decided = ItemRecord(
        instance_id="i1",
        item_id="item0005",
        decision="Deny",
        recommendation="Deny",
        reviewed_by=ALEX,
        reviewed_at=start,
        justification="left the company",
    )
    await any_store.upsert_items(items=[decided])
    assert await any_store.get_item(instance_id="i1", item_id="item0005") == decided
    picked = await any_store.list_items(instance_id="i1", item_ids=["item0007", "item0005", "zz"])
    assert [i.item_id for i in picked] == ["item0005", "item0007"]


async def test_a_reviewers_items_are_read_in_one_call(any_store: SqlStore) -> None:
    """``list_reviewer_items`` gives what ``list_assignments`` then ``list_items`` give."""
    await any_store.upsert_items(
        items=[
            ItemRecord(instance_id=inst, item_id=f"item{n:03d}", data={"n": n, "in": inst})
            for inst in ("i1", "i2")
            for n in range(30)
        ]
    )
    mine = [f"item{n:03d}" for n in range(0, 30, 3)]
    await any_store.replace_assignments(
        instance_id="i1",
        # An assignment whose item is not stored (yet) has nothing to show.
        pairs=[*((ALEX, i) for i in [*mine, "missing"]), (MEGAN, "item001"), (MEGAN, "item003")],
    )
    await any_store.replace_assignments(instance_id="i2", pairs=[(ALEX, "item001")])

    async def two_reads(reviewer: str, instance: str, ids: list[str] | None) -> list[ItemRecord]:
        rows = await any_store.list_assignments(instance_id=instance, reviewer_oid=reviewer)
        assigned = [i for _r, _n, i in rows if ids is None or i in ids]
        return await any_store.list_items(instance_id=instance, item_ids=assigned)

    cases: list[tuple[str, str, list[str] | None]] = [
        (ALEX, "i1", None),
        (MEGAN, "i1", None),
        (ALEX, "i2", None),
        (MEGAN, "i2", None),
        (ALEX, "i1", ["item003", "item000", "item001", "missing", "nope"]),
        (MEGAN, "i1", ["item003", "item003"]),
        (ALEX, "i1", []),
        # More names than one statement takes: still only the reviewer's.
        (ALEX, "i1", ["item027", *(f"none-{n}" for n in range(700))]),
    ]
    for reviewer, instance, ids in cases:
        found = await any_store.list_reviewer_items(
            instance_id=instance, reviewer_oid=reviewer, item_ids=ids
        )
        assert found == await two_reads(reviewer, instance, ids), (reviewer, instance, ids)
    alex = await any_store.list_reviewer_items(instance_id="i1", reviewer_oid=ALEX)
    assert [i.item_id for i in alex] == mine and alex[1].data == {"n": 3, "in": "i1"}
    assert [
        i.data["in"]
        for i in await any_store.list_reviewer_items(instance_id="i2", reviewer_oid=ALEX)
    ] == ["i2"]


async def test_items_read_again_show_what_another_writer_changed(any_store: SqlStore) -> None:
    """Item reads keep decoded records by the row's content: a change made outside this store
    object (another process, another replica: here a statement on its engine) is read."""
    import sqlalchemy as sa

    from bot.store import schema

    await any_store.upsert_items(
        items=[ItemRecord(instance_id="i1", item_id=f"x{n}", data={"v": 1}) for n in range(3)]
    )
    await any_store.replace_assignments(instance_id="i1", pairs=[(ALEX, f"x{n}") for n in range(3)])
    for _ in range(2):
        assert [
            i.data for i in await any_store.list_reviewer_items(instance_id="i1", reviewer_oid=ALEX)
        ] == [{"v": 1}] * 3
        assert (await any_store.list_items(instance_id="i1", item_ids=["x1"]))[0].data == {"v": 1}
    async with any_store._engine.begin() as conn:
        await conn.execute(
            sa.update(schema.items)
            .where(schema.items.c.item_id == "x1")
            .values(data='{"v": 2}', decision="Deny", reviewed_by=MEGAN)
        )
    [changed] = await any_store.list_items(instance_id="i1", item_ids=["x1"])
    assert (changed.data, changed.decision, changed.reviewed_by) == ({"v": 2}, "Deny", MEGAN)
    [named] = await any_store.list_reviewer_items(
        instance_id="i1", reviewer_oid=ALEX, item_ids=["x1"]
    )
    assert named == changed
    mine = await any_store.list_reviewer_items(instance_id="i1", reviewer_oid=ALEX)
    assert [i.data for i in mine] == [{"v": 1}, {"v": 2}, {"v": 1}]


async def test_naive_datetimes_are_refused(any_store: SqlStore) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await any_store.upsert_instances(
            instances=[
                InstanceRecord(
                    instance_id="i",
                    definition_id="d",
                    display_name="x",
                    status="InProgress",
                    start_at=datetime(2026, 1, 1),
                    end_at=None,
                )
            ]
        )


async def test_replace_assignments_reports_the_diff(any_store: SqlStore) -> None:
    change = await any_store.replace_assignments(
        instance_id="i1", pairs=[(ALEX, "a"), (ALEX, "b"), (MEGAN, "b")]
    )
    assert change.added == {(ALEX, "a"), (ALEX, "b"), (MEGAN, "b")} and not change.removed
    change = await any_store.replace_assignments(
        instance_id="i1", pairs=[(ALEX, "a"), (MEGAN, "b"), (MEGAN, "c")]
    )
    assert change.added == {(MEGAN, "c")} and change.removed == {(ALEX, "b")}
    # Other instances are untouched.
    await any_store.replace_assignments(instance_id="i2", pairs=[(ALEX, "x")])
    assert await any_store.list_assignments(reviewer_oid=ALEX) == [
        (ALEX, "i1", "a"),
        (ALEX, "i2", "x"),
    ]
    assert await any_store.list_assignments(instance_id="i1") == [
        (ALEX, "i1", "a"),
        (MEGAN, "i1", "b"),
        (MEGAN, "i1", "c"),
    ]
    # Who reviews given items (the card edits after a decision), also past one statement's
    # worth of parameters.
    assert await any_store.list_assignments(instance_id="i1", item_ids=["b", "c"]) == [
        (MEGAN, "i1", "b"),
        (MEGAN, "i1", "c"),
    ]
    many = ["a", *(f"none-{n}" for n in range(700))]
    assert await any_store.list_assignments(instance_id="i1", item_ids=many) == [(ALEX, "i1", "a")]
    assert await any_store.list_assignments(instance_id="i1", item_ids=[]) == []
    assert await any_store.is_reviewer(reviewer_oid=MEGAN, instance_id="i1", item_ids=["b", "c"])
    # Every named item must be the reviewer's: one foreign item refuses the whole request.
    assert not await any_store.is_reviewer(
        reviewer_oid=MEGAN, instance_id="i1", item_ids=["a", "b"]
    )
    assert not await any_store.is_reviewer(reviewer_oid=ALEX, instance_id="i2", item_ids=[])
    assert not await any_store.is_reviewer(reviewer_oid=ALEX, instance_id="i1", item_ids=["x"])


async def test_outbox_is_idempotent_by_key(any_store: SqlStore) -> None:
    assert await any_store.enqueue_outbox(key="alex|i1|card|0", kind="card", payload={"a": 1})
    assert not await any_store.enqueue_outbox(key="alex|i1|card|0", kind="card", payload={"a": 2})
    message = await any_store.get_outbox(key="alex|i1|card|0")
    assert message is not None and message.payload == {"a": 1} and message.status == "pending"
    assert await any_store.count_outbox(status="pending") == 1


async def test_outbox_claim_complete_retry_fail(any_store: SqlStore, clock: ManualClock) -> None:
    for n in range(5):
        await any_store.enqueue_outbox(key=f"k{n}", kind="card", payload={"n": n})
    await any_store.enqueue_outbox(
        key="later", kind="card", payload={}, not_before=clock.now() + timedelta(minutes=5)
    )
    first = await any_store.claim_outbox(worker="w1", limit=3, lease_s=30)
    assert [m.key for m in first] == ["k0", "k1", "k2"]
    assert all(m.status == "in_flight" and m.attempts == 1 for m in first)
    second = await any_store.claim_outbox(worker="w2", limit=10, lease_s=30)
    assert [m.key for m in second] == ["k3", "k4"]  # not the claimed ones, not the future one
    assert await any_store.claim_outbox(worker="w3", limit=10, lease_s=30) == []

    assert await any_store.complete_outbox(
        message_id=first[0].id, worker="w1", result={"id": "act1"}
    )
    # Another worker cannot finish a claim that is not its own.
    assert not await any_store.complete_outbox(message_id=first[1].id, worker="w2")
    assert await any_store.retry_outbox(
        message_id=first[1].id,
        worker="w1",
        error="429",
        not_before=clock.now() + timedelta(seconds=2),
    )
    assert await any_store.fail_outbox(message_id=first[2].id, worker="w1", error="403 blocked")
    done = await any_store.get_outbox(key="k0")
    assert done is not None and done.status == "done" and done.result == {"id": "act1"}
    failed = await any_store.get_outbox(key="k2")
    assert failed is not None and failed.status == "failed" and failed.last_error == "403 blocked"

    # A claim whose worker died expires and is taken again, with the attempt counted.
    clock.advance(timedelta(seconds=31))
    again = await any_store.claim_outbox(worker="w4", limit=10, lease_s=30)
    assert {m.key for m in again} == {"k1", "k3", "k4"}
    assert {m.key: m.attempts for m in again} == {"k1": 2, "k3": 2, "k4": 2}
    # The old worker's late completion is refused: its claim was lost.
    assert not await any_store.complete_outbox(message_id=second[0].id, worker="w2")
    for message in again:
        assert await any_store.complete_outbox(message_id=message.id, worker="w4")
    clock.advance(timedelta(minutes=5))
    assert [m.key for m in await any_store.claim_outbox(worker="w4", limit=10, lease_s=30)] == [
        "later"
    ]


async def test_concurrent_claims_never_hand_out_a_message_twice(any_store: SqlStore) -> None:
    for n in range(60):
        await any_store.enqueue_outbox(key=f"m{n}", kind="card", payload={})

    async def worker(name: str) -> list[str]:
        taken: list[str] = []
        while batch := await any_store.claim_outbox(worker=name, limit=4, lease_s=60):
            taken.extend(m.key for m in batch)
        return taken

    results = await asyncio.gather(*(worker(f"w{n}") for n in range(4)))
    every = [key for taken in results for key in taken]
    assert sorted(every) == sorted(f"m{n}" for n in range(60))
    assert len(every) == len(set(every))


async def test_one_message_can_be_claimed_by_key(any_store: SqlStore, clock: ManualClock) -> None:
    await any_store.enqueue_outbox(key="d1", kind="decision", payload={"x": 1})
    claimed = await any_store.claim_outbox_key(key="d1", worker="inline", lease_s=10)
    assert claimed is not None and claimed.status == "in_flight" and claimed.attempts == 1
    assert await any_store.claim_outbox_key(key="d1", worker="other", lease_s=10) is None
    assert await any_store.claim_outbox(worker="other", limit=10, lease_s=10) == []
    assert await any_store.claim_outbox_key(key="missing", worker="inline", lease_s=10) is None
    clock.advance(timedelta(seconds=11))
    again = await any_store.claim_outbox_key(key="d1", worker="other", lease_s=10)
    assert again is not None and again.attempts == 2


async def test_claim_can_be_limited_to_kinds(any_store: SqlStore) -> None:
    await any_store.enqueue_outbox(key="c", kind="card", payload={})
    await any_store.enqueue_outbox(key="d", kind="decision", payload={})
    claimed = await any_store.claim_outbox(worker="w", limit=10, lease_s=10, kinds=["decision"])
    assert [m.key for m in claimed] == ["d"]


async def test_sent_messages_are_kept_per_reviewer_instance_kind(
    any_store: SqlStore, clock: ManualClock
) -> None:
    message = SentMessage(
        reviewer_oid=ALEX,
        instance_id="i1",
        kind="review",
        conversation_id="a:1",
        activity_id="act-1",
        sent_at=clock.now(),
        data={"page": 0},
    )
    await any_store.record_sent_message(message=message)
    assert (
        await any_store.get_sent_message(reviewer_oid=ALEX, instance_id="i1", kind="review")
        == message
    )
    assert (
        await any_store.get_sent_message(reviewer_oid=ALEX, instance_id="i1", kind="reminder")
        is None
    )
    moved = SentMessage(
        reviewer_oid=ALEX,
        instance_id="i1",
        kind="review",
        conversation_id="a:2",
        activity_id="act-2",
        sent_at=clock.now(),
    )
    await any_store.record_sent_message(message=moved)
    assert (
        await any_store.get_sent_message(reviewer_oid=ALEX, instance_id="i1", kind="review")
        == moved
    )


async def test_reminders_and_once_keys_are_first_caller_wins(
    any_store: SqlStore, clock: ManualClock
) -> None:
    results = await asyncio.gather(
        *(
            any_store.mark_reminder_sent(
                reminder_id="alex|i1|halfway", recipient_oid=ALEX, instance_id="i1", kind="reminder"
            )
            for _ in range(5)
        )
    )
    assert sorted(results) == [False, False, False, False, True]
    assert await any_store.remember_once(key="invoke:abc", ttl_s=60)
    assert not await any_store.remember_once(key="invoke:abc", ttl_s=60)
    clock.advance(timedelta(seconds=61))
    assert await any_store.remember_once(key="invoke:abc", ttl_s=60)


async def test_audit_trail_appends_in_order(any_store: SqlStore, clock: ManualClock) -> None:
    first = await any_store.append_audit(
        event=AuditEvent(
            action="decision",
            actor=ALEX,
            instance_id="i1",
            item_id="a",
            detail={"decision": "Deny", "justification": "left"},
            request_id="req-1",
        )
    )
    clock.advance(timedelta(minutes=1))
    second = await any_store.append_audit(
        event=AuditEvent(action="notified", actor="bot", instance_id="i2", result="sent")
    )
    assert second > first
    events = await any_store.list_audit()
    assert [e.action for e in events] == ["decision", "notified"]
    assert events[0].detail == {"decision": "Deny", "justification": "left"}
    assert events[0].at == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    assert [e.action for e in await any_store.list_audit(instance_id="i2")] == ["notified"]
    assert [e.id for e in await any_store.list_audit(after_id=first)] == [second]
    assert [e.id for e in await any_store.list_audit(newest_first=True)] == [second, first]
    assert [e.action for e in await any_store.list_audit(actions=["notified"])] == ["notified"]


async def test_lease_is_exclusive_until_it_expires(any_store: SqlStore, clock: ManualClock) -> None:
    lease = await any_store.acquire_lease(name="poll", holder="r1", ttl_s=30)
    assert lease is not None and lease.fence == 1
    assert await any_store.acquire_lease(name="poll", holder="r2", ttl_s=30) is None
    # Renewal by the holder keeps the fence.
    clock.advance(timedelta(seconds=20))
    renewed = await any_store.acquire_lease(name="poll", holder="r1", ttl_s=30)
    assert renewed is not None and renewed.fence == 1
    clock.advance(timedelta(seconds=31))
    taken = await any_store.acquire_lease(name="poll", holder="r2", ttl_s=30)
    assert taken is not None and taken.holder == "r2" and taken.fence == 2
    current = await any_store.get_lease(name="poll")
    assert current == taken
    await any_store.release_lease(name="poll", holder="r2")
    again = await any_store.acquire_lease(name="poll", holder="r1", ttl_s=30)
    assert again is not None and again.fence == 3


async def test_concurrent_lease_acquisition_has_one_winner(any_store: SqlStore) -> None:
    results = await asyncio.gather(
        *(any_store.acquire_lease(name="sched", holder=f"r{n}", ttl_s=30) for n in range(6))
    )
    assert len([lease for lease in results if lease is not None]) == 1


async def test_token_cache_round_trip(any_store: SqlStore) -> None:
    assert await any_store.get_token_cache(key="obo:t:u") is None
    await any_store.put_token_cache(key="obo:t:u", blob=b"\x00secret\xff")
    await any_store.put_token_cache(key="obo:t:u", blob=b"\x01newer")
    assert await any_store.get_token_cache(key="obo:t:u") == b"\x01newer"


async def test_sqlite_store_survives_a_restart(tmp_path: Path, clock: ManualClock) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'dir' / 'bot.db'}"
    store = await open_store(url, clock=clock)
    await store.enqueue_outbox(key="k", kind="card", payload={"x": 1})
    await store.save_conversation_reference(
        tenant_id=TENANT, user_oid=ALEX, reference=_reference("c")
    )
    await store.close()

    reopened = await open_store(url, clock=clock)
    try:
        message = await reopened.get_outbox(key="k")
        assert message is not None and message.payload == {"x": 1}
        assert await reopened.get_conversation_reference(tenant_id=TENANT, user_oid=ALEX)
        assert await reopened.schema_version() == LATEST_VERSION
    finally:
        await reopened.close()


async def test_two_processes_on_one_sqlite_file_share_claims(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first, second = await open_store(url), await open_store(url)
    try:
        for n in range(20):
            await first.enqueue_outbox(key=f"k{n}", kind="card", payload={})
        a, b = await asyncio.gather(
            first.claim_outbox(worker="a", limit=20, lease_s=60),
            second.claim_outbox(worker="b", limit=20, lease_s=60),
        )
        keys = [m.key for m in a] + [m.key for m in b]
        assert sorted(keys) == sorted(f"k{n}" for n in range(20))
    finally:
        await first.close()
        await second.close()


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    import sqlalchemy as sa

    from bot.store import StoreError
    from bot.store.schema import schema_migrations

    url = f"sqlite:///{tmp_path / 'bot.db'}"
    store = await open_store(url)
    async with store._engine.begin() as conn:
        await conn.execute(
            sa.insert(schema_migrations).values(
                version=LATEST_VERSION + 1, name="future", applied_at=datetime.now(UTC)
            )
        )
    await store.close()
    with pytest.raises(StoreError, match="newer than this program"):
        await open_store(url)


async def test_first_assignment_time_is_kept(any_store: SqlStore, clock: ManualClock) -> None:
    await any_store.replace_assignments(instance_id="i1", pairs=[(ALEX, "a")])
    first = clock.now()
    clock.advance(timedelta(days=1))
    await any_store.replace_assignments(instance_id="i1", pairs=[(ALEX, "a"), (ALEX, "b")])
    assert await any_store.first_assigned_at(instance_id="i1", reviewer_oid=ALEX) == first
    assert await any_store.first_assigned_at(instance_id="i1", reviewer_oid=MEGAN) is None


async def test_snoozes_replace_each_other(any_store: SqlStore, clock: ManualClock) -> None:
    assert await any_store.get_snooze(reviewer_oid=ALEX, instance_id="i1") is None
    await any_store.set_snooze(
        reviewer_oid=ALEX, instance_id="i1", until=clock.now() + timedelta(hours=4)
    )
    await any_store.set_snooze(
        reviewer_oid=ALEX, instance_id="i1", until=clock.now() + timedelta(hours=8)
    )
    assert await any_store.get_snooze(
        reviewer_oid=ALEX, instance_id="i1"
    ) == clock.now() + timedelta(hours=8)


async def test_escalation_recipients_are_recorded_once(any_store: SqlStore) -> None:
    assert await any_store.record_escalation(
        instance_id="i1", reviewer_oid=ALEX, recipient_oid=MEGAN
    )
    assert not await any_store.record_escalation(
        instance_id="i1", reviewer_oid=ALEX, recipient_oid=MEGAN
    )
    assert await any_store.escalation_recipients(instance_id="i1", reviewer_oid=ALEX) == [MEGAN]
    assert await any_store.escalation_recipients(instance_id="i1", reviewer_oid=MEGAN) == []


async def test_a_lease_check_fails_once_the_lease_moved_or_expired(
    any_store: SqlStore, clock: ManualClock
) -> None:
    lease = await any_store.acquire_lease(name="poll", holder="r1", ttl_s=30)
    assert lease is not None
    assert await any_store.check_lease(name="poll", holder="r1", fence=lease.fence)
    assert not await any_store.check_lease(name="poll", holder="r2", fence=lease.fence)
    clock.advance(timedelta(seconds=31))
    assert not await any_store.check_lease(name="poll", holder="r1", fence=lease.fence)
    taken = await any_store.acquire_lease(name="poll", holder="r2", ttl_s=30)
    assert taken is not None
    # Even renewing under the old fence is no use to r1 now.
    assert not await any_store.check_lease(name="poll", holder="r1", fence=lease.fence)
    assert await any_store.check_lease(name="poll", holder="r2", fence=taken.fence)


async def test_completion_writes_its_outcome_in_the_same_transaction(
    any_store: SqlStore, clock: ManualClock
) -> None:
    added, message = await any_store.enqueue_and_claim_outbox(
        key="d|1", kind="decision", payload={"x": 1}, worker="w", lease_s=30
    )
    assert added and message is not None and message.status == "in_flight"
    again, none = await any_store.enqueue_and_claim_outbox(
        key="d|1", kind="decision", payload={"x": 2}, worker="w2", lease_s=30
    )
    assert not again and none is None  # claimed already: nobody else gets it
    sent = SentMessage(
        reviewer_oid=ALEX,
        instance_id="i1",
        kind="review",
        conversation_id="a:1",
        activity_id="act",
        sent_at=clock.now(),
    )
    assert await any_store.complete_outbox(
        message_id=message.id,
        worker="w",
        result={"ok": True},
        items=[ItemRecord(instance_id="i1", item_id="a", decision="Deny", reviewed_by=ALEX)],
        audit=[AuditEvent(action="decision", actor=ALEX, instance_id="i1", item_id="a")],
        sent=sent,
    )
    item = await any_store.get_item(instance_id="i1", item_id="a")
    assert item is not None and item.decision == "Deny"
    assert [e.action for e in await any_store.list_audit()] == ["decision"]
    assert (
        await any_store.get_sent_message(reviewer_oid=ALEX, instance_id="i1", kind="review") == sent
    )
    done = await any_store.get_outbox(key="d|1")
    assert done is not None and done.status == "done" and done.result == {"ok": True}
    await any_store.append_audits(
        events=[AuditEvent(action="a", actor="x"), AuditEvent(action="b", actor="x")]
    )
    assert [e.action for e in await any_store.list_audit()] == ["decision", "a", "b"]


async def test_many_messages_are_enqueued_once_each(
    any_store: SqlStore, clock: ManualClock
) -> None:
    assert await any_store.enqueue_outbox(key="m0", kind="card", payload={"n": 0})
    added = await any_store.enqueue_outbox_many(
        messages=[(f"m{n}", "card", {"n": n}) for n in range(700)]
    )
    assert added == 699  # m0 existed already
    message = await any_store.get_outbox(key="m0")
    assert message is not None and message.payload == {"n": 0}
    await any_store.record_sent_message(
        message=SentMessage(
            reviewer_oid=ALEX,
            instance_id="i1",
            kind="review",
            conversation_id="c",
            activity_id="a",
            sent_at=clock.now(),
        )
    )
    assert await any_store.sent_recipients(instance_id="i1", kind="review") == {ALEX}
    assert await any_store.sent_recipients(instance_id="i1", kind="reminder") == set()


async def test_batch_reads_return_what_single_reads_do(
    any_store: SqlStore, clock: ManualClock
) -> None:
    """The delivery worker reads a whole wave at once: references, sent cards, assignments."""
    users = [f"aaaaaaaa-0000-0000-0001-{n:012d}" for n in range(620)]
    for n, oid in enumerate(users[:3]):
        await any_store.save_conversation_reference(
            tenant_id=TENANT, user_oid=oid, reference=_reference(f"a:{n}")
        )
    # Past one statement's worth of parameters (500), and users without a reference.
    references = await any_store.get_conversation_references(tenant_id=TENANT, user_oids=users)
    assert set(references) == set(users[:3])
    assert references[users[1]] == await any_store.get_conversation_reference(
        tenant_id=TENANT, user_oid=users[1]
    )
    assert await any_store.get_conversation_references(tenant_id="other", user_oids=users) == {}

    sent = [
        SentMessage(
            reviewer_oid=oid,
            instance_id="i1",
            kind="review",
            conversation_id=f"a:{n}",
            activity_id=f"act-{n}",
            sent_at=clock.now(),
            data={"page": n},
        )
        for n, oid in enumerate(users[:2])
    ]
    for message in sent:
        await any_store.record_sent_message(message=message)
    assert await any_store.get_sent_messages(
        instance_id="i1", kind="review", reviewer_oids=users
    ) == {users[0]: sent[0], users[1]: sent[1]}
    assert (
        await any_store.get_sent_messages(instance_id="i1", kind="reminder", reviewer_oids=users)
        == {}
    )

    await any_store.replace_assignments(
        instance_id="i1", pairs=[(users[0], "a"), (users[1], "b"), (users[2], "c")]
    )
    assert await any_store.list_assignments(
        instance_id="i1", reviewer_oids=[users[0], users[2]]
    ) == [(users[0], "i1", "a"), (users[2], "i1", "c")]
    assert await any_store.list_assignments(instance_id="i1", reviewer_oids=users[2:]) == [
        (users[2], "i1", "c")
    ]


async def test_group_completion_keeps_each_claim_apart(
    any_store: SqlStore, clock: ManualClock
) -> None:
    for n in range(3):
        await any_store.enqueue_outbox(key=f"g{n}", kind="card", payload={})
    mine = await any_store.claim_outbox(worker="w1", limit=2, lease_s=30)
    theirs = await any_store.claim_outbox(worker="w2", limit=5, lease_s=30)
    sent = SentMessage(
        reviewer_oid=ALEX,
        instance_id="i1",
        kind="review",
        conversation_id="a:1",
        activity_id="act",
        sent_at=clock.now(),
    )
    done = await any_store.complete_outbox_many(
        worker="w1",
        completions=[
            OutboxCompletion(
                message_id=mine[0].id,
                result={"n": 0},
                audit=[AuditEvent(action="notified", actor="bot")],
                sent=sent,
            ),
            OutboxCompletion(message_id=mine[1].id, result={"n": 1}),
            # Another worker's claim: refused, though its outcome is written (it happened).
            OutboxCompletion(
                message_id=theirs[0].id, audit=[AuditEvent(action="late", actor="bot")]
            ),
        ],
    )
    assert done == [True, True, False]
    assert [(await any_store.get_outbox(key=m.key)).status for m in mine] == ["done", "done"]  # type: ignore[union-attr]
    first = await any_store.get_outbox(key=mine[0].key)
    assert first is not None and first.result == {"n": 0}
    other = await any_store.get_outbox(key=theirs[0].key)
    assert other is not None and other.status == "in_flight"
    assert [e.action for e in await any_store.list_audit()] == ["notified", "late"]
    assert (
        await any_store.get_sent_message(reviewer_oid=ALEX, instance_id="i1", kind="review") == sent
    )
    assert await any_store.complete_outbox_many(worker="w1", completions=[]) == []


# -- work queued once, atomically (remind-now, escalations) --------------------------------------


def _once(key: str, *message_keys: str, not_before: datetime | None = None) -> OnceWork:
    return OnceWork(
        once_key=key,
        messages=[
            QueuedMessage(key=m, kind="card", payload={"m": m}, not_before=not_before)
            for m in message_keys
        ],
    )


async def test_enqueue_once_queues_and_audits_only_what_it_took(
    any_store: SqlStore, clock: ManualClock
) -> None:
    def audit(taken: Sequence[OnceWork]) -> list[AuditEvent]:
        return [
            AuditEvent(
                action="queued_once", actor="t", detail={"took": [w.once_key for w in taken]}
            )
        ]

    later = clock.now() + timedelta(hours=3)
    first = await any_store.enqueue_once(
        work=[_once("w|alex", "m1"), _once("w|megan", "m2", "m3", not_before=later)],
        ttl_s=60,
        audit=audit,
    )
    assert [w.once_key for w in first] == ["w|alex", "w|megan"]
    assert (await any_store.get_outbox(key="m3")).not_before == later  # type: ignore[union-attr]
    # Alex's key is taken: only Diego's work is queued, and the audit line says so.
    second = await any_store.enqueue_once(
        work=[_once("w|alex", "m4"), _once("w|diego", "m5")], ttl_s=60, audit=audit
    )
    assert [w.once_key for w in second] == ["w|diego"]
    assert await any_store.get_outbox(key="m4") is None
    lines = await any_store.list_audit(actions=["queued_once"])
    assert [line.detail["took"] for line in lines] == [["w|alex", "w|megan"], ["w|diego"]]
    # An expired key may be taken again; a message key that exists is left alone.
    clock.advance(timedelta(seconds=61))
    again = await any_store.enqueue_once(work=[_once("w|alex", "m1", "m6")], ttl_s=60)
    assert [w.once_key for w in again] == ["w|alex"]
    assert (await any_store.get_outbox(key="m1")).attempts == 0  # type: ignore[union-attr]
    assert await any_store.get_outbox(key="m6") is not None
    assert await any_store.count_outbox(status="pending") == 5


async def test_enqueue_once_is_all_or_nothing(any_store: SqlStore) -> None:
    def failing(taken: Sequence[OnceWork]) -> list[AuditEvent]:
        raise RuntimeError("crash before the audit line")

    with pytest.raises(RuntimeError):
        await any_store.enqueue_once(work=[_once("w|alex", "m1")], ttl_s=60, audit=failing)
    # Nothing of it happened: the key is free, no message is queued.
    assert await any_store.get_outbox(key="m1") is None
    (taken,) = await any_store.enqueue_once(work=[_once("w|alex", "m1")], ttl_s=60)
    assert taken.once_key == "w|alex" and await any_store.get_outbox(key="m1") is not None


async def test_enqueue_once_first_caller_wins(any_store: SqlStore) -> None:
    results = await asyncio.gather(
        *(
            any_store.enqueue_once(work=[_once("slot|alex", f"card|{n}")], ttl_s=60)
            for n in range(5)
        )
    )
    assert sorted(len(r) for r in results) == [0, 0, 0, 0, 1]
    assert await any_store.count_outbox(status="pending") == 1


async def test_claim_outbox_early_takes_a_waiting_message_once(
    any_store: SqlStore, clock: ManualClock
) -> None:
    tomorrow = clock.now() + timedelta(days=1)
    await any_store.enqueue_outbox(
        key="req", kind="reminder_request", payload={}, not_before=tomorrow
    )
    # Not due, so the ordinary claims leave it alone; the early claim takes it.
    assert await any_store.claim_outbox(worker="pass", limit=10, lease_s=60) == []
    assert await any_store.claim_outbox_key(key="req", worker="pass", lease_s=60) is None
    claimed = await any_store.claim_outbox_early(key="req", worker="admin", lease_s=60)
    assert claimed is not None and claimed.status == "in_flight" and claimed.attempts == 1
    assert await any_store.claim_outbox_early(key="req", worker="other", lease_s=60) is None
    assert await any_store.complete_outbox(message_id=claimed.id, worker="admin", result={"x": 1})
    assert await any_store.claim_outbox_early(key="req", worker="admin", lease_s=60) is None
    assert await any_store.claim_outbox_early(key="missing", worker="admin", lease_s=60) is None


async def test_reminder_slot_taken_reads_the_ledger(any_store: SqlStore) -> None:
    assert not await any_store.reminder_slot_taken(reminder_id="escalation|alex|i1|end-2wd")
    await any_store.mark_reminder_sent(
        reminder_id="escalation|alex|i1|end-2wd",
        recipient_oid=ALEX,
        instance_id="i1",
        kind="escalation",
    )
    assert await any_store.reminder_slot_taken(reminder_id="escalation|alex|i1|end-2wd")
    assert not await any_store.reminder_slot_taken(reminder_id="escalation|megan|i1|end-2wd")


async def test_count_outbox_due_leaves_out_what_waits(
    any_store: SqlStore, clock: ManualClock
) -> None:
    later = clock.now() + timedelta(hours=10)
    await any_store.enqueue_outbox(key="now", kind="card", payload={})
    await any_store.enqueue_outbox(key="claimed", kind="card", payload={})
    await any_store.enqueue_outbox(key="tonight", kind="card", payload={}, not_before=later)
    assert await any_store.claim_outbox_key(key="claimed", worker="w", lease_s=60) is not None
    assert await any_store.count_outbox_due() == 2
    clock.advance(timedelta(hours=10))
    assert await any_store.count_outbox_due() == 3


async def test_people_round_trip_and_replace(any_store: SqlStore, clock: ManualClock) -> None:
    assert await any_store.get_people(user_oids=[ALEX, MEGAN]) == {}
    first = PersonRecord(
        user_oid=ALEX, locale="de-DE", time_zone="Europe/Berlin", checked_at=clock.now()
    )
    await any_store.save_people(
        people=[first, PersonRecord(user_oid=MEGAN, checked_at=clock.now())]
    )
    people = await any_store.get_people(user_oids=[ALEX, MEGAN, "nobody"])
    assert people[ALEX] == first
    assert people[MEGAN].locale == "" and people[MEGAN].time_zone == ""
    assert "nobody" not in people
    clock.advance(timedelta(days=1))
    later = PersonRecord(
        user_oid=ALEX, locale="ja-JP", time_zone="Asia/Tokyo", checked_at=clock.now()
    )
    await any_store.save_people(people=[later])
    assert (await any_store.get_people(user_oids=[ALEX]))[ALEX] == later
    # Many at once: the outbox reads a wave's people with one call.
    many = [
        PersonRecord(
            user_oid=f"bbbbbbbb-0000-0000-0000-{n:012d}", locale="fr-FR", checked_at=clock.now()
        )
        for n in range(700)
    ]
    await any_store.save_people(people=many)
    read = await any_store.get_people(user_oids=[p.user_oid for p in many])
    assert len(read) == 700 and {p.locale for p in read.values()} == {"fr-FR"}
    with pytest.raises(ValueError):
        await any_store.save_people(
            people=[PersonRecord(user_oid=ALEX, checked_at=datetime(2026, 1, 1))]
        )


async def test_sent_recipients_of_items_are_the_reviewers_of_those_items_with_a_card(
    any_store: SqlStore, clock: ManualClock
) -> None:
    """Whose card to edit once items changed: reviewers of any of the items, with a sent
    message of that kind about that instance, each once, sorted; past one statement's worth."""
    sam = "aaaaaaaa-0000-0000-0000-000000000003"
    await any_store.replace_assignments(
        instance_id="i1",
        pairs=[(ALEX, "a"), (ALEX, "b"), (MEGAN, "b"), (sam, "c")]
        + [(MEGAN, f"x{n}") for n in range(600)],
    )
    await any_store.replace_assignments(instance_id="i2", pairs=[(sam, "a")])
    for reviewer, instance, kind in [
        (MEGAN, "i1", "review"),
        (ALEX, "i1", "review"),
        (sam, "i1", "reminder"),
        (sam, "i2", "review"),
    ]:
        await any_store.record_sent_message(
            message=SentMessage(
                reviewer_oid=reviewer,
                instance_id=instance,
                kind=kind,
                conversation_id="c",
                activity_id="a",
                sent_at=clock.now(),
            )
        )

    async def recipients(ids: list[str], kind: str = "review") -> list[str]:
        return await any_store.sent_recipients_of_items(instance_id="i1", item_ids=ids, kind=kind)

    assert await recipients(["a", "b"]) == [ALEX, MEGAN]
    assert await recipients(["a"]) == [ALEX]
    assert await recipients(["c"]) == []  # sam's only i1 message is a reminder
    assert await recipients(["c"], "reminder") == [sam]
    assert await recipients(["nope"]) == []
    assert await recipients([]) == []
    assert await recipients([f"x{n}" for n in range(600)] + ["a"]) == [ALEX, MEGAN]


async def test_one_message_enqueued_alone_is_added_once(any_store: SqlStore) -> None:
    """The one-message form (a click's card edit) adds a new key and leaves an existing one."""
    assert await any_store.enqueue_outbox_many(messages=[("one", "card", {"n": 1})]) == 1
    assert await any_store.enqueue_outbox_many(messages=[("one", "card", {"n": 2})]) == 0
    row = await any_store.get_outbox(key="one")
    assert row is not None and row.payload == {"n": 1} and row.status == "pending"
    assert row.kind == "card" and row.attempts == 0
