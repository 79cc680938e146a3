"""Escalation cards: refresh for the manager, Nudge once a day, nobody else may nudge."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.web.keys import DISCOVERY, OUTBOX, STORE
from emulator.seeds import demo_id
from tests.bot_harness import BotOnEmulator, bot_on_emulator
from tests.cardtools import card_text

ALEX, MEGAN, PATTI = (demo_id("user", k) for k in ("alex", "megan", "patti"))
PARTNERS = demo_id("review", "partner_portal")


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[BotOnEmulator]:
    async with bot_on_emulator(tmp_path) as running:
        await running.app[DISCOVERY].run_once()
        await running.app[OUTBOX].run_once()
        # The scheduler escalated Alex's pending partner-portal work to Megan.
        await running.app[STORE].record_escalation(
            instance_id=PARTNERS, reviewer_oid=ALEX, recipient_oid=MEGAN
        )
        yield running


async def _deliver_until(harness: BotOnEmulator, done: Callable[[], bool]) -> None:
    """Run the outbox until ``done`` (a Teams 429 makes a message wait for its Retry-After)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while not done():
        assert loop.time() < deadline, "the message was never delivered"
        await harness.app[OUTBOX].run_once()
        await asyncio.sleep(0.1)  # between passes; the limiter and Retry-After do the pacing


def _reminders_to(harness: BotOnEmulator, user: str) -> list[Any]:
    return [
        m
        for m in harness.cloud.connector.messages_to(user)
        if str(m.activity.get("summary", "")).startswith("Reminder:")
    ]


async def test_the_manager_refreshes_and_nudges_once_a_day(harness: BotOnEmulator) -> None:
    refresh = await harness.teams.card_action(
        MEGAN, "refresh", {"card": "escalation", "instanceId": PARTNERS, "reviewerId": ALEX}
    )
    assert refresh.status == 200 and refresh.body["statusCode"] == 200
    assert "Nudge" in card_text(refresh.body["value"])

    nudge = await harness.teams.card_action(
        MEGAN, "nudge", {"instanceId": PARTNERS, "reviewerId": ALEX}
    )
    assert nudge.body["statusCode"] == 200
    await _deliver_until(harness, lambda: len(_reminders_to(harness, ALEX)) == 1)

    again = await harness.teams.card_action(
        MEGAN, "nudge", {"instanceId": PARTNERS, "reviewerId": ALEX}
    )
    assert again.body["statusCode"] == 200
    await harness.app[OUTBOX].run_once()
    assert len(_reminders_to(harness, ALEX)) == 1  # at most once a day per reviewer and review
    nudges = [a for a in await harness.app[STORE].list_audit(actions=["nudge"])]
    assert [(a.actor, a.detail["reviewer"]) for a in nudges] == [(MEGAN, ALEX)]


async def test_only_the_escalation_recipient_may_nudge(harness: BotOnEmulator) -> None:
    answer = await harness.teams.card_action(
        PATTI, "nudge", {"instanceId": PARTNERS, "reviewerId": ALEX}
    )
    assert answer.body["statusCode"] == 200
    await harness.app[OUTBOX].run_once()
    assert _reminders_to(harness, ALEX) == []
    refresh = await harness.teams.card_action(
        PATTI, "refresh", {"card": "escalation", "instanceId": PARTNERS, "reviewerId": ALEX}
    )
    assert "Nudge" not in card_text(refresh.body["value"])
