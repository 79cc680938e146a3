""" "Open" on the pending list leads to the review, and the review leads back to the list."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from card_helpers import body_actions, executes
from card_scenarios import review_view

from bot.web.keys import DISCOVERY
from cards import render_accept_preview_card, render_review_card
from emulator.seeds import demo_id
from tests.bot_harness import BotOnEmulator, bot_on_emulator

ALEX = demo_id("user", "alex")


def _back_buttons(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        action
        for action in body_actions(card)
        if action.get("verb") == "refresh" and action["data"] == {"card": "pending_list"}
    ]


def test_a_review_opened_from_the_list_offers_back_and_every_action_remembers_it() -> None:
    card = render_review_card(replace(review_view(), back_to_list=True))
    (back,) = _back_buttons(card)
    assert back["title"] == "Back to my reviews" and back["associatedInputs"] == "none"
    # Every action that answers with a review card again carries the way back.
    for verb in ("decide", "decide_bulk", "accept_recommendations_preview"):
        assert executes(card, verb)
        assert all(a["data"]["back"] == "pending_list" for a in executes(card, verb))
    assert card["refresh"]["action"]["data"]["back"] == "pending_list"
    preview = render_accept_preview_card(replace(review_view(), back_to_list=True))
    (cancel,) = executes(preview, "refresh")
    assert cancel["data"]["back"] == "pending_list"


def test_a_review_card_sent_as_a_message_has_no_back() -> None:
    card = render_review_card(review_view())
    assert _back_buttons(card) == []
    assert all("back" not in a.get("data", {}) for a in body_actions(card))


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[BotOnEmulator]:
    async with bot_on_emulator(tmp_path) as running:
        await running.app[DISCOVERY].run_once()
        yield running


async def test_open_then_decide_then_back_through_the_bot(harness: BotOnEmulator) -> None:
    listed = await harness.teams.card_action(ALEX, "refresh", {"card": "pending_list"})
    pending = listed.body["value"]
    (first, *_rest) = executes(pending, "open_review")

    opened = await harness.teams.card_action(ALEX, "open_review", first["data"])
    review = opened.body["value"]
    assert review["refresh"]["action"]["data"]["instanceId"] == first["data"]["instanceId"]
    (back,) = _back_buttons(review)

    # A decision answers with the review card again: still with the way back.
    approve = next(a for a in executes(review, "decide") if a["data"]["decision"] == "Approve")
    decided = await harness.teams.card_action(ALEX, "decide", approve["data"], sso=True)
    assert decided.body["statusCode"] == 200
    assert len(_back_buttons(decided.body["value"])) == 1

    # Back shows the list again.
    again = await harness.teams.card_action(ALEX, "refresh", back["data"])
    assert executes(again.body["value"], "open_review")
