"""A decision write throttled by Graph is tried again within the write backoff cap.

However long Graph's ``Retry-After`` (``inf``, ``1e12``, thirty days), the write's next try is at
most ``WRITE_RETRY_CAP_S`` away: no answer can park it past its review or overflow a date.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.reviews.decisions import DECISION_KIND, WRITE_RETRY_CAP_S
from bot.web.keys import CLOCK, DISCOVERY, OUTBOX, STORE
from emulator.faults import FaultRule
from emulator.seeds import demo_id
from tests.bot_harness import BotOnEmulator, bot_on_emulator

JOHANNA = demo_id("user", "johanna")
ROLE_REVIEW = demo_id("review", "user_admin_role")
MEGAN_ITEM = demo_id("decision", f"user_admin_role:{demo_id('user', 'megan')}")
DIEGO_ITEM = demo_id("decision", f"user_admin_role:{demo_id('user', 'diego')}")


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[BotOnEmulator]:
    async with bot_on_emulator(tmp_path) as running:
        await running.app[DISCOVERY].run_once()
        await running.app[OUTBOX].run_once()
        yield running


@pytest.mark.parametrize("retry_after", ["inf", "1e12", "2592000"], ids=["inf", "huge", "30-days"])
async def test_a_throttled_decision_write_is_tried_again_within_the_cap(
    harness: BotOnEmulator, retry_after: str
) -> None:
    data = {"instanceId": ROLE_REVIEW, "itemId": DIEGO_ITEM, "decision": "Approve", "page": 0}
    signed_in = await harness.teams.card_action(JOHANNA, "decide", data, sso=True)
    assert signed_in.body["statusCode"] == 200
    harness.cloud.faults.add(
        FaultRule(
            kind="status",
            service="graph",
            method="PATCH",
            status=429,
            retry_after_header=retry_after,
            remaining=1,
        )
    )
    now = harness.app[CLOCK].now()
    data = {"instanceId": ROLE_REVIEW, "itemId": MEGAN_ITEM, "decision": "Deny", "page": 0}
    answer = await harness.teams.card_action(JOHANNA, "decide", data)
    assert answer.status == 200 and answer.body["statusCode"] == 200, answer.body
    pending = await harness.app[STORE].list_outbox(status="pending", kinds=[DECISION_KIND])
    assert len(pending) == 1, "the throttled write should wait for its next try"
    assert pending[0].not_before <= now + timedelta(seconds=WRITE_RETRY_CAP_S + 5)
