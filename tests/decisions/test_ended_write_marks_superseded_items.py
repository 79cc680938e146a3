"""Once a review has ended, a write that fails transiently marks only its own items as failed.

A bulk click whose write meets Graph unavailable, and which the review's end catches, shows the
error on the items it still writes — not on an item a later click took over and saved.
"""

from __future__ import annotations

from datetime import timedelta

from bot.clock import ManualClock
from bot.reviews.decisions import DECISION_KIND
from bot.web.keys import DECISION_WORKER, DISCOVERY, STORE
from emulator.faults import FaultRule
from tests.bot_harness import BotOnEmulator
from tests.decisions.conftest import DIEGO_ITEM, JOHANNA, MEGAN_ITEM, ROLE_REVIEW


def _unavailable() -> FaultRule:
    return FaultRule(
        kind="status", service="graph", method="PATCH", status=503, retry_after_header="0"
    )


async def test_an_item_a_later_click_wrote_is_not_marked_failed_when_the_review_ends(
    harness: tuple[BotOnEmulator, ManualClock],
) -> None:
    bot, clock = harness
    store = bot.app[STORE]
    rule = bot.cloud.faults.add(_unavailable())
    bulk = {"instanceId": ROLE_REVIEW, "decision": "Approve", "page": 0}
    bulk.update({f"select_{item}": "true" for item in (MEGAN_ITEM, DIEGO_ITEM)})
    answer = await bot.teams.card_action(JOHANNA, "decide_bulk", bulk, sso=True)
    assert answer.body["statusCode"] == 200
    assert await store.list_outbox(status="pending", kinds=[DECISION_KIND])
    bot.cloud.faults.remove(rule)
    # The reviewer changes her mind on Megan: written at once.
    single = {"instanceId": ROLE_REVIEW, "itemId": MEGAN_ITEM, "decision": "Deny", "page": 0}
    answer = await bot.teams.card_action(JOHANNA, "decide", single)
    assert answer.body["statusCode"] == 200
    megan = await store.get_item(instance_id=ROLE_REVIEW, item_id=MEGAN_ITEM)
    assert megan is not None and megan.decision == "Deny"
    # The review ends; the bulk click's retry (now only Diego's) meets Graph unavailable again.
    bot.cloud.tenant.stop_instance(ROLE_REVIEW)
    await bot.app[DISCOVERY].run_once()
    bot.cloud.faults.add(_unavailable())
    clock.advance(timedelta(minutes=10))
    await bot.app[DECISION_WORKER].run_once()
    assert not await store.list_outbox(status="pending", kinds=[DECISION_KIND])
    megan = await store.get_item(instance_id=ROLE_REVIEW, item_id=MEGAN_ITEM)
    assert megan is not None and megan.decision == "Deny"
    assert "writeError" not in megan.data, megan.data
    lines = [
        e.result
        for e in await store.list_audit(instance_id=ROLE_REVIEW, actions=["decision"])
        if e.item_id == MEGAN_ITEM
    ]
    assert not [r for r in lines if r.startswith("failed")], lines
