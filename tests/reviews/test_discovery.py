"""Discovery end to end: the real app, Graph client and store against the emulated tenant."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.reviews import Assigned, InstanceEnded, ItemDecidedElsewhere, ReviewerDone
from bot.web.keys import DISCOVERY, POLLER, STORE
from emulator.seeds import DEMO_EXPECTED_ASSIGNMENTS, demo_id
from tests.bot_harness import BotOnEmulator, bot_on_emulator


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[BotOnEmulator]:
    async with bot_on_emulator(tmp_path) as running:
        yield running


async def _assignment_table(harness: BotOnEmulator) -> dict[str, dict[str, frozenset[str]]]:
    """reviewer → instance → pending item ids, from the store."""
    store = harness.app[STORE]
    table: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for reviewer, instance_id, item_id in await store.list_assignments():
        item = await store.get_item(instance_id=instance_id, item_id=item_id)
        assert item is not None
        if item.decision == "NotReviewed":
            table[reviewer][instance_id].add(item_id)
    return {r: {i: frozenset(ids) for i, ids in by.items()} for r, by in table.items()}


async def test_demo_assignments_match_the_expected_table(harness: BotOnEmulator) -> None:
    report = await harness.app[DISCOVERY].run_once()
    assert report.complete, report.errors
    expected = {r: dict(by) for r, by in DEMO_EXPECTED_ASSIGNMENTS.items()}
    assert await _assignment_table(harness) == expected
    # Every assignment was announced once, per reviewer and instance.
    assigned = {
        (e.reviewer_oid, e.instance_id): set(e.item_ids)
        for e in report.events
        if isinstance(e, Assigned)
    }
    assert assigned == {(r, i): set(ids) for r, by in expected.items() for i, ids in by.items()}


async def test_a_second_cycle_changes_nothing(harness: BotOnEmulator) -> None:
    await harness.app[DISCOVERY].run_once()
    again = await harness.app[DISCOVERY].run_once()
    assert again.complete and again.events == []
    assert again.assignments_added == 0 and again.assignments_removed == 0


async def test_an_item_decided_in_my_access_is_reported_with_who_decided(
    harness: BotOnEmulator,
) -> None:
    discovery = harness.app[DISCOVERY]
    await discovery.run_once()
    reviewer = demo_id("user", "johanna")
    instance_id = demo_id("review", "user_admin_role")
    decision_id = demo_id("decision", f"user_admin_role:{demo_id('user', 'megan')}")
    harness.cloud.tenant.record_decision(
        instance_id, decision_id, "Deny", reviewer, "no longer an admin"
    )
    report = await discovery.run_once()
    decided = [e for e in report.events if isinstance(e, ItemDecidedElsewhere)]
    assert len(decided) == 1
    event = decided[0]
    assert (event.item_id, event.decision, event.decided_by) == (decision_id, "Deny", reviewer)
    assert event.decided_by_name  # the reviewer's display name from Graph
    item = await harness.app[STORE].get_item(instance_id=instance_id, item_id=decision_id)
    assert item is not None and item.decision == "Deny" and item.reviewed_by == reviewer
    assert item.justification == "no longer an admin"


async def test_a_reviewer_with_nothing_left_is_reported_done(harness: BotOnEmulator) -> None:
    discovery = harness.app[DISCOVERY]
    await discovery.run_once()
    reviewer = demo_id("user", "johanna")
    instance_id = demo_id("review", "user_admin_role")
    for principal in ("megan", "diego"):
        decision_id = demo_id("decision", f"user_admin_role:{demo_id('user', principal)}")
        harness.cloud.tenant.record_decision(instance_id, decision_id, "Approve", reviewer, "ok")
    report = await discovery.run_once()
    done = [e for e in report.events if isinstance(e, ReviewerDone)]
    assert done == [ReviewerDone(reviewer_oid=reviewer, instance_id=instance_id)]
    # The decided items stay assigned to the reviewer (cards show them as done).
    rows = await harness.app[STORE].list_assignments(reviewer_oid=reviewer, instance_id=instance_id)
    assert len(rows) == 2


async def test_a_stopped_instance_ends(harness: BotOnEmulator) -> None:
    discovery = harness.app[DISCOVERY]
    await discovery.run_once()
    instance_id = demo_id("review", "user_admin_role")
    harness.cloud.tenant.stop_instance(instance_id)
    report = await discovery.run_once()
    ended = [e for e in report.events if isinstance(e, InstanceEnded)]
    assert [e.instance_id for e in ended] == [instance_id]
    record = await harness.app[STORE].get_instance(instance_id=instance_id)
    assert record is not None and record.status != "InProgress"
    # Ending is reported once.
    assert not [e for e in (await discovery.run_once()).events if isinstance(e, InstanceEnded)]


async def test_a_failing_graph_keeps_the_previous_snapshot(harness: BotOnEmulator) -> None:
    from emulator.faults import FaultRule

    discovery = harness.app[DISCOVERY]
    await discovery.run_once()
    before = await _assignment_table(harness)
    rule = harness.cloud.faults.add(
        FaultRule(service="graph", path_regex=r".*/decisions.*", kind="status", status=500)
    )
    report = await discovery.run_once()
    assert not report.complete and report.errors
    assert await _assignment_table(harness) == before
    assert not [e for e in report.events if isinstance(e, (ItemDecidedElsewhere, ReviewerDone))]
    harness.cloud.faults.remove(rule)
    assert (await discovery.run_once()).complete


async def test_poller_runs_under_the_lease(harness: BotOnEmulator) -> None:
    poller = harness.app[POLLER]
    report = await poller.run_once()
    assert report.complete and poller.lease is not None
    lease = await harness.app[STORE].get_lease(name="discovery-poll")
    assert lease is not None and lease.holder == poller.holder
