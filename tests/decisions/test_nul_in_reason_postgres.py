"""A reason holding a control character (U+0000 among them) is refused before anything is written.

PostgreSQL's ``text`` cannot hold U+0000: a reason with one, once written to Graph, could never be
recorded in the store. The click is answered with a 4xx-style card error and Graph is untouched.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.web.keys import DISCOVERY, OUTBOX, STORE
from emulator.seeds import demo_id
from tests.bot_harness import BotOnEmulator, bot_on_emulator
from tests.decisions.test_decide_e2e import graph_decision
from tests.replicas.cluster import fresh_database

JOHANNA = demo_id("user", "johanna")
ROLE_REVIEW = demo_id("review", "user_admin_role")
MEGAN_ITEM = demo_id("decision", f"user_admin_role:{demo_id('user', 'megan')}")


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[BotOnEmulator]:
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(fresh_database())
        running = await stack.enter_async_context(bot_on_emulator(tmp_path, database_url=url))
        await running.app[DISCOVERY].run_once()
        await running.app[OUTBOX].run_once()
        yield running


async def test_a_reason_with_a_nul_character_is_answered_not_an_error(
    harness: BotOnEmulator,
) -> None:
    data = {
        "instanceId": ROLE_REVIEW,
        "itemId": MEGAN_ITEM,
        "decision": "Deny",
        "justification": "left\u0000the company",
        "page": 0,
    }
    answer = await harness.teams.card_action(JOHANNA, "decide", data, sso=True)
    assert answer.status == 200, (answer.status, answer.body)
    assert answer.body["statusCode"] == 400, answer.body
    # Nothing reached Graph or the store: the item is still to decide, in both.
    graph = await graph_decision(harness, ROLE_REVIEW, MEGAN_ITEM)
    assert graph["decision"] == "NotReviewed", graph
    item = await harness.app[STORE].get_item(instance_id=ROLE_REVIEW, item_id=MEGAN_ITEM)
    assert item is not None and item.decision == "NotReviewed", item
