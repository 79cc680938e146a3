"""Discovery reconciles decision values (issue 14, defect 2): where the store and Graph disagree
and no write of the bot is in flight, Graph wins, the store is corrected, an audit line says so,
and the cards showing the item are edited. Over loopback on the emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.clock import ManualClock
from bot.web.keys import CLOCK, DECISION_WORKER, DISCOVERY, OUTBOX, REVIEWS_API, STORE
from emulator.faults import FaultRule
from emulator.seeds import demo_id
from tests.bot_harness import BotOnEmulator, bot_on_emulator
from tests.cardtools import card_text

JOHANNA = demo_id("user", "johanna")
ROLE_REVIEW = demo_id("review", "user_admin_role")
MEGAN_ITEM = demo_id("decision", f"user_admin_role:{demo_id('user', 'megan')}")
DIEGO_ITEM = demo_id("decision", f"user_admin_role:{demo_id('user', 'diego')}")


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[BotOnEmulator]:
    async with bot_on_emulator(tmp_path, clock=ManualClock(datetime.now(UTC))) as running:
        await running.app[DISCOVERY].run_once()
        await running.app[OUTBOX].run_once()
        yield running


async def _decide(harness: BotOnEmulator, item: str, decision: str, reason: str, **kw: Any) -> Any:
    data = {
        "instanceId": ROLE_REVIEW,
        "itemId": item,
        "decision": decision,
        "justification": reason,
        "page": 0,
    }
    response = await harness.teams.card_action(JOHANNA, "decide", data, **kw)
    assert response.status == 200
    return response.body


async def _poll_later(harness: BotOnEmulator) -> None:
    """The next poll, a minute on (a write that ended just before a read may be newer)."""
    harness.app[CLOCK].advance(timedelta(minutes=1))
    await harness.app[DISCOVERY].run_once()


async def _graph(harness: BotOnEmulator, item: str) -> str:
    decision = await harness.app[REVIEWS_API].get_decision(ROLE_REVIEW, ROLE_REVIEW, item)
    return str(decision.raw["decision"])


async def _stored(harness: BotOnEmulator, item: str) -> str:
    record = await harness.app[STORE].get_item(instance_id=ROLE_REVIEW, item_id=item)
    assert record is not None
    return record.decision


def _card(harness: BotOnEmulator) -> Any:
    [message] = [
        m for m in harness.cloud.connector.messages_to(JOHANNA) if m.activity.get("attachments")
    ]
    return message


async def test_a_decision_changed_in_graph_corrects_the_store_and_the_card(
    harness: BotOnEmulator,
) -> None:
    await _decide(harness, MEGAN_ITEM, "Approve", "still needed", sso=True)
    await harness.app[OUTBOX].run_once()
    edits = _card(harness).update_count
    # Changed elsewhere (My Access): Graph holds Deny, the store still Approve.
    harness.cloud.tenant.record_decision(ROLE_REVIEW, MEGAN_ITEM, "Deny", JOHANNA, "not any more")
    assert await _stored(harness, MEGAN_ITEM) == "Approve"

    await _poll_later(harness)
    assert await _stored(harness, MEGAN_ITEM) == await _graph(harness, MEGAN_ITEM) == "Deny"
    [line] = await harness.app[STORE].list_audit(actions=["decision_corrected"])
    assert line.item_id == MEGAN_ITEM and line.result == "graph_wins"
    assert (line.detail["store"], line.detail["graph"]) == ("Approve", "Deny")
    await harness.app[OUTBOX].run_once()
    card = _card(harness)
    assert card.update_count > edits
    assert "not any more" in card_text(card.activity["attachments"][0]["content"])
    # Nothing differs any more: the next cycle corrects nothing.
    await _poll_later(harness)
    assert len(await harness.app[STORE].list_audit(actions=["decision_corrected"])) == 1


async def test_decisions_reset_in_graph_reopen_the_items(harness: BotOnEmulator) -> None:
    await _decide(harness, MEGAN_ITEM, "Deny", "left", sso=True)
    harness.cloud.tenant.reset_decisions(ROLE_REVIEW)
    await _poll_later(harness)
    assert await _stored(harness, MEGAN_ITEM) == "NotReviewed"
    lines = await harness.app[STORE].list_audit(actions=["decision_corrected"])
    assert [(e.item_id, e.detail["store"], e.detail["graph"]) for e in lines] == [
        (MEGAN_ITEM, "Deny", "NotReviewed")
    ]


async def test_an_item_with_a_write_in_flight_is_left_to_that_write(harness: BotOnEmulator) -> None:
    await _decide(harness, DIEGO_ITEM, "Approve", "sign in", sso=True)
    await _decide(harness, MEGAN_ITEM, "Approve", "first")
    harness.cloud.tenant.record_decision(ROLE_REVIEW, MEGAN_ITEM, "Deny", JOHANNA, "elsewhere")
    # The reviewer approves again (a new reason) while Graph refuses writes for now.
    rule = harness.cloud.faults.add(
        FaultRule(service="graph", method="PATCH", kind="status", status=503, retry_after_s=(0, 0))
    )
    answer = await _decide(harness, MEGAN_ITEM, "Approve", "second thoughts")
    assert "saving" in card_text(answer["value"]).lower()
    # Store Approve, Graph Deny, and the bot's write is queued: discovery keeps its hands off.
    await _poll_later(harness)
    assert await _stored(harness, MEGAN_ITEM) == "Approve"
    assert await harness.app[STORE].list_audit(actions=["decision_corrected"]) == []
    # Graph comes back; the queued write lands; both hold the reviewer's last click.
    harness.cloud.faults.remove(rule)
    store = harness.app[STORE]
    for _ in range(20):
        await harness.app[DECISION_WORKER].run_once()
        if not await store.list_outbox(status="pending", kinds=["decision"]):
            break
        harness.app[CLOCK].advance(timedelta(minutes=5))  # past the write's backoff
    assert await _graph(harness, MEGAN_ITEM) == await _stored(harness, MEGAN_ITEM) == "Approve"
    await _poll_later(harness)
    assert await harness.app[STORE].list_audit(actions=["decision_corrected"]) == []
