"""A retried decision write that only changes the reason still reaches Graph.

A retry first asks Graph whether an earlier attempt already landed (so nothing is written twice).
That check compares the reason too: a second click with the same decision and a new reason that
meets a transient failure is written on its retry, so store and Graph agree on the reason.
"""

from __future__ import annotations

from datetime import timedelta

from bot.clock import ManualClock
from bot.reviews.decisions import DECISION_KIND
from bot.web.keys import DECISION_WORKER, REVIEWS_API, STORE
from emulator.faults import FaultRule
from tests.bot_harness import BotOnEmulator
from tests.decisions.conftest import JOHANNA, MEGAN_ITEM, ROLE_REVIEW


def _data(reason: str) -> dict[str, object]:
    return {
        "instanceId": ROLE_REVIEW,
        "itemId": MEGAN_ITEM,
        "decision": "Approve",
        "justification": reason,
        "page": 0,
    }


async def test_a_new_reason_retried_after_a_transient_failure_reaches_graph(
    harness: tuple[BotOnEmulator, ManualClock],
) -> None:
    bot, clock = harness
    first = await bot.teams.card_action(JOHANNA, "decide", _data("still on the team"), sso=True)
    assert first.body["statusCode"] == 200
    # The reviewer corrects the reason; Graph is unavailable for that write (every attempt the
    # Graph client makes, answered at once).
    rule = bot.cloud.faults.add(
        FaultRule(
            kind="status", service="graph", method="PATCH", status=503, retry_after_header="0"
        )
    )
    second = await bot.teams.card_action(JOHANNA, "decide", _data("owns the payroll system"))
    assert second.body["statusCode"] == 200
    store = bot.app[STORE]
    assert await store.list_outbox(status="pending", kinds=[DECISION_KIND])
    bot.cloud.faults.remove(rule)
    clock.advance(timedelta(minutes=10))
    await bot.app[DECISION_WORKER].run_once()
    assert not await store.list_outbox(status="pending", kinds=[DECISION_KIND])
    in_graph = await bot.app[REVIEWS_API].get_decision(ROLE_REVIEW, ROLE_REVIEW, MEGAN_ITEM)
    item = await store.get_item(instance_id=ROLE_REVIEW, item_id=MEGAN_ITEM)
    assert item is not None
    assert item.justification == "owns the payroll system"
    assert in_graph.justification == item.justification
