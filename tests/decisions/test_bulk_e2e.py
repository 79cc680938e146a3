"""Bulk decisions: 60 items in one click go through $batch (≤ 20 a call) and survive per-item 429s."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.web.keys import DECISION_WORKER, DISCOVERY, STORE
from emulator.faults import FaultRule
from emulator.server import EmulatorConfig
from tests.bot_harness import BotOnEmulator, bot_on_emulator

ITEMS = 60


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[BotOnEmulator]:
    config = EmulatorConfig(
        seed="generated", seed_params={"decisions": ITEMS, "reviewers": 1, "instances": 1}
    )
    async with bot_on_emulator(tmp_path, config=config) as running:
        await running.app[DISCOVERY].run_once()
        yield running


async def test_bulk_approve_of_60_items_uses_batch_and_survives_throttling(
    harness: BotOnEmulator,
) -> None:
    store = harness.app[STORE]
    [(reviewer, instance_id, _item)] = (await store.list_assignments())[:1]
    item_ids = [i for _r, _n, i in await store.list_assignments(reviewer_oid=reviewer)]
    assert len(item_ids) == ITEMS
    # Graph throttles ten of the item writes once each, inside the $batch answers.
    throttled = item_ids[5:15]
    harness.cloud.faults.add(
        FaultRule(
            service="graph",
            method="PATCH",
            path_regex=".*/decisions/(" + "|".join(throttled) + ")$",
            kind="status",
            status=429,
            retry_after_s=(1, 1),
            remaining=len(throttled),
        )
    )
    data = {"instanceId": instance_id, "decision": "Approve", "page": 0}
    data.update({f"select_{item}": "true" for item in item_ids})
    log_start = len(harness.cloud.graph.request_log)
    answer = await harness.teams.card_action(reviewer, "decide_bulk", data, sso=True)
    assert answer.status == 200 and answer.body["statusCode"] == 200

    # Whatever the click could not finish in time, the worker does.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        items = await store.list_items(instance_id=instance_id)
        if all(i.decision == "Approve" for i in items):
            break
        assert loop.time() < deadline, "bulk decisions were not all written"
        await harness.app[DECISION_WORKER].run_once()
        await asyncio.sleep(0.2)  # throttled items wait out their Retry-After

    log = list(harness.cloud.graph.request_log)[log_start:]
    batches = [e for e in log if e[0] == "POST" and e[2].endswith("/$batch")]
    patches = Counter(e[3] for e in log if e[0] == "PATCH")
    assert patches[429] == len(throttled)  # each throttled once, inside a batch
    assert patches[204] == ITEMS  # and every item written exactly once in the end
    assert len(batches) >= 3  # 60 items need at least three $batch calls of ≤ 20
    for item in item_ids:
        decision = await harness.app[DECISION_WORKER]._service._graph.get(
            f"/identityGovernance/accessReviews/definitions/{instance_id}/instances/{instance_id}/decisions/{item}"
        )
        assert decision["decision"] == "Approve" and decision["reviewedBy"]["id"] == reviewer
