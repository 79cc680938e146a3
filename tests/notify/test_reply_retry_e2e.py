"""Replies inside a turn that the Bot Connector refused for now (429, 503) are delivered later by
the outbox instead of being dropped (issue 14, defect 6). Over loopback on the emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.web.keys import OUTBOX, STORE
from cards.strings import S, Strings
from emulator.faults import FaultRule
from emulator.seeds import demo_id
from tests.bot_harness import BotOnEmulator, bot_on_emulator

ALEX = demo_id("user", "alex")


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[BotOnEmulator]:
    async with bot_on_emulator(tmp_path) as running:
        connector = running.cloud.connector
        connector.note_app_installed(user_oid=ALEX, user_name="Alex", installation_id="i-alex")
        await connector.drain_deliveries()
        yield running


def _texts_to(harness: BotOnEmulator, user: str) -> list[str]:
    return [str(m.activity.get("text") or "") for m in harness.cloud.connector.messages_to(user)]


@pytest.mark.parametrize(("status", "retry_after"), [(429, False), (429, True), (503, True)])
async def test_a_reply_the_connector_refused_is_delivered_by_the_outbox(
    harness: BotOnEmulator, status: int, retry_after: bool
) -> None:
    # The in-turn reply (POST …/activities/{id}) is refused; msrest retries a 503 three times
    # by itself, so the rule refuses those too.
    rule = harness.cloud.faults.add(
        FaultRule(
            kind="status",
            service="connector",
            method="POST",
            path_regex=r"^/v3/conversations/[^/]+/activities/[^/]+$",
            status=status,
            omit_retry_after=not retry_after,
            retry_after_s=(0, 0) if retry_after else None,
            remaining=1 if status == 429 else 4,
        )
    )
    response = await harness.teams.message(ALEX, "help")
    assert response.status == 201
    assert harness.cloud.faults.fired(rule) >= 1
    help_text = Strings("en-US").text(S.CHAT_HELP)
    assert not any(help_text in text for text in _texts_to(harness, ALEX))
    queued = await harness.app[STORE].list_outbox(status="pending", kinds=["card"])
    assert [m.payload["card"] for m in queued] == ["reply"]

    await harness.app[OUTBOX].run_once()
    assert sum(help_text in text for text in _texts_to(harness, ALEX)) == 1
    # Nothing else went out: no apology for an error the user never needed to see.
    assert not any("something went wrong" in text.lower() for text in _texts_to(harness, ALEX))
    assert await harness.app[STORE].count_outbox(status="pending") == 0


async def test_a_reply_refused_for_good_is_not_queued(harness: BotOnEmulator) -> None:
    harness.cloud.connector.set_blocked(ALEX)
    await harness.teams.message(ALEX, "help")
    assert await harness.app[STORE].list_outbox(status="pending", kinds=["card"]) == []
