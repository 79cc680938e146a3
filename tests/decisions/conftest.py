"""What the decision tests share: the demo tenant's ids, and a bot whose first cards are out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.clock import ManualClock
from bot.web.keys import DISCOVERY, OUTBOX
from emulator.seeds import demo_id
from tests.bot_harness import BotOnEmulator, bot_on_emulator

JOHANNA = demo_id("user", "johanna")
ROLE_REVIEW = demo_id("review", "user_admin_role")
MEGAN_ITEM = demo_id("decision", f"user_admin_role:{demo_id('user', 'megan')}")
DIEGO_ITEM = demo_id("decision", f"user_admin_role:{demo_id('user', 'diego')}")


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[tuple[BotOnEmulator, ManualClock]]:
    """(Files that need another set-up define their own.) The bot on the demo tenant, on a manual clock, discovery run and the first cards sent."""
    clock = ManualClock(datetime.now(UTC))
    async with bot_on_emulator(tmp_path, clock=clock) as running:
        await running.app[DISCOVERY].run_once()
        await running.app[OUTBOX].run_once()
        yield running, clock
