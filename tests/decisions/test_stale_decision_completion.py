"""A decision write that outlives its item claim does not overwrite a later click's decision.

A Graph write slower than the item claim's lease (a slow answer, 429s inside the Graph client's
deadline) lets a later click take the item, write Graph and record its decision. When the first
write's answer finally comes, its completion must not overwrite the store with the older
decision: ``Store.complete_outbox`` records items only where the intent is still the newest click.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from bot.clock import ManualClock
from bot.reviews.decisions import DECISION_KIND
from bot.web.keys import REVIEWS_API, STORE
from emulator.faults import FaultRule
from tests.bot_harness import BotOnEmulator
from tests.decisions.conftest import DIEGO_ITEM, JOHANNA, MEGAN_ITEM, ROLE_REVIEW


async def _decide(harness: BotOnEmulator, item: str, decision: str, reason: str, **kw: Any) -> Any:
    data = {
        "instanceId": ROLE_REVIEW,
        "itemId": item,
        "decision": decision,
        "justification": reason,
        "page": 0,
    }
    answer = await harness.teams.card_action(JOHANNA, "decide", data, **kw)
    assert answer.status == 200 and answer.body["statusCode"] == 200, answer.body
    return answer.body


async def _in_graph(harness: BotOnEmulator) -> str:
    decision = await harness.app[REVIEWS_API].get_decision(ROLE_REVIEW, ROLE_REVIEW, MEGAN_ITEM)
    return str(decision.decision)


async def _until(check: Any, timeout_s: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await check():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.05)  # the gap between two looks


async def test_a_late_answer_of_a_superseded_write_does_not_overwrite_the_later_decision(
    harness: tuple[BotOnEmulator, ManualClock],
) -> None:
    bot, clock = harness
    await _decide(bot, DIEGO_ITEM, "Approve", "sign in", sso=True)
    store = bot.app[STORE]
    # The first write reaches Graph at once; its answer comes back slower than the inline deadline.
    bot.cloud.faults.add(
        FaultRule(
            kind="latency",
            service="graph",
            method="PATCH",
            latency_s=6.0,
            phase="response",
            remaining=1,
        )
    )
    await _decide(
        bot, MEGAN_ITEM, "Approve", "still needed"
    )  # "Saving…": goes on in the background

    async def approved() -> bool:
        return await _in_graph(bot) == "Approve"

    await _until(approved)
    # The write is still waiting for its answer when its claim's lease has passed.
    clock.advance(timedelta(seconds=bot.settings.claim_lease_s + 1))
    await _decide(bot, MEGAN_ITEM, "Deny", "left the company")
    assert await _in_graph(bot) == "Deny"

    async def settled() -> bool:
        busy = await store.list_outbox(status="in_flight", kinds=[DECISION_KIND])
        return not busy

    await _until(settled)
    item = await store.get_item(instance_id=ROLE_REVIEW, item_id=MEGAN_ITEM)
    assert item is not None
    # Graph applied Approve, then Deny: the store must say Deny too.
    assert (await _in_graph(bot), item.decision) == ("Deny", "Deny")
