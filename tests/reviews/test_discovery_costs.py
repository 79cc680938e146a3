"""What discovery spends on Graph beyond the facts: the reviewer cross-check and the manager way.

Against the emulator (demo tenant): the ``contactedReviewers`` cross-check runs for a few
instances a cycle, once per instance and only where reviewers come from directory relations; a
Graph that answers no ``/users/$count`` still gets every manager, one by one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from bot.web.keys import DISCOVERY, REGISTRY, STORE
from emulator.seeds import DEMO_EXPECTED_ASSIGNMENTS
from tests.bot_harness import BotOnEmulator, bot_on_emulator


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[BotOnEmulator]:
    async with bot_on_emulator(tmp_path) as running:
        yield running


def _contacted_reads(harness: BotOnEmulator, since: int) -> Counter[str]:
    return Counter(
        entry[2].split("/instances/")[1].split("/")[0]
        for entry in list(harness.cloud.graph.request_log)[since:]
        if entry[2].endswith("/contactedReviewers")
    )


async def test_the_cross_check_runs_a_few_instances_a_cycle_each_once(
    harness: BotOnEmulator,
) -> None:
    discovery = harness.app[DISCOVERY]
    discovery._config = replace(discovery._config, crosscheck_limit_per_cycle=2)
    checked: Counter[str] = Counter()
    for _cycle in range(8):
        since = len(harness.cloud.graph.request_log)
        report = await discovery.run_once()
        assert report.complete, report.errors
        reads = _contacted_reads(harness, since)
        assert sum(reads.values()) <= 2
        checked.update(reads)
    # Each instance whose reviewers come from the directory was checked, and only once.
    assert set(checked) == _relational_instances(harness) and set(checked.values()) == {1}


def _relational_instances(harness: BotOnEmulator) -> set[str]:
    """Running instances whose (active stage's) reviewers are not only named users."""
    tenant = harness.cloud.tenant
    found = set()
    for instance in tenant.instances.values():
        if tenant.instance_status(instance) != "InProgress":
            continue
        definition = tenant.definitions[instance.definition_id]
        stage = tenant.active_stage(instance)
        if stage is not None:
            scopes = (*stage.settings.reviewers, *stage.settings.fallback_reviewers)
        else:
            scopes = (
                *(instance.reviewers or definition.reviewers),
                *(instance.fallback_reviewers or definition.fallback_reviewers),
            )
        if any(not s.query.startswith("/users/") for s in scopes):
            found.add(instance.id)
    assert len(found) >= 3
    return found


async def test_managers_one_by_one_when_graph_answers_no_user_count(
    harness: BotOnEmulator,
) -> None:
    from emulator.faults import FaultRule

    harness.cloud.faults.add(
        FaultRule(kind="status", service="graph", status=400, path_regex=r"/users/\$count$")
    )
    report = await harness.app[DISCOVERY].run_once()
    assert report.complete, report.errors
    assert report.manager_mode == "per_user" and report.manager_requests >= 2
    store = harness.app[STORE]
    table: dict[str, dict[str, set[str]]] = {}
    for reviewer, instance_id, item_id in await store.list_assignments():
        item = await store.get_item(instance_id=instance_id, item_id=item_id)
        if item is not None and item.decision == "NotReviewed":
            table.setdefault(reviewer, {}).setdefault(instance_id, set()).add(item_id)
    expected = {
        r: {i: set(ids) for i, ids in by.items()} for r, by in DEMO_EXPECTED_ASSIGNMENTS.items()
    }
    assert table == expected


async def test_a_poll_under_429s_without_retry_after_completes(harness: BotOnEmulator) -> None:
    """Graph throttles a third of the requests and their $batch items, naming no wait: every
    one is retried after a jittered backoff, the cycle completes and sees everything."""
    from emulator.faults import FaultRule

    harness.cloud.faults.add(
        FaultRule(
            kind="status",
            service="graph",
            status=429,
            omit_retry_after=True,
            probability=0.33,
            seed=19,
        )
    )
    report = await harness.app[DISCOVERY].run_once()
    assert report.complete, report.errors
    registry = harness.app[REGISTRY]
    throttled = sum(
        registry.get_sample_value("graph_throttled_total", {"priority": p}) or 0.0
        for p in ("low", "normal", "high")
    )
    assert throttled >= 5
    store = harness.app[STORE]
    pending = {
        (instance_id, item_id) for _reviewer, instance_id, item_id in await store.list_assignments()
    }
    expected = {
        (instance_id, item_id)
        for by_instance in DEMO_EXPECTED_ASSIGNMENTS.values()
        for instance_id, items in by_instance.items()
        for item_id in items
    }
    assert expected <= pending
