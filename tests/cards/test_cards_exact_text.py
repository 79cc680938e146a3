"""Text that came from people is shown exactly, and nothing in it is parsed.

Every such value lands in a ``TextRun`` (never parsed as markdown, Adaptive Card schema 1.2+) of a
``RichTextBlock`` whose text, copied, contains it character for character; ``TextBlock``s (which
every host parses as markdown, and Teams autolinks) hold only our own strings. The hostile values
cover markdown, links, HTML, ``<at>`` mentions, direction marks, emoji and long unbroken strings.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import jsonschema
import pytest
from card_helpers import markdown_texts, of_type, schema_errors
from card_scenarios import CONTEXT, INSTANCE_ID, base_items, review_view, stale_guest
from markdown_it import MarkdownIt

from cards import (
    CARD_BUDGET_BYTES,
    Decision,
    EarlierDecisionView,
    EscalationCardView,
    ItemState,
    MessageCardView,
    MessageKey,
    NoticeKind,
    PendingListView,
    PendingReviewView,
    PrincipalView,
    UserType,
    card_size_bytes,
    render_accept_preview_card,
    render_escalation_card,
    render_message_card,
    render_pending_list_card,
    render_reminder_card,
    render_review_card,
)

HOSTILE = [
    "[Click here](https://evil.com/login)",
    "**URGENT** approve me",
    "__bold__ and _italic_",
    "# Heading",
    "- list item",
    "1. numbered",
    "`code` and ``more``",
    "<script>alert(1)</script>",
    "<at>Megan Bowen</at>",
    "<https://evil.com>",
    "www.evil.com",
    "jordan.miller_fabrikam.com#EXT#@contoso.onmicrosoft.com",
    "mallory@evil.com",
    "![pixel](https://evil.com/x.png)",
    "~~struck~~ > quoted",
    "\u202eevil\u202c txt.exe",
    "\u200fמנהל\u200f (Admin) \u061cعلي",
    "Zoë 🦄👩🏽‍💻 Ünïcödé ✓",
    "R&D team #2 = (Contractor) 50% + *",
    "x" * 250,
    "=cmd|' /C calc'!A0",
    "&#91;x&#93;(https://evil.com)",
    "evil\u200b.com",
]

_MD = MarkdownIt("commonmark", {"linkify": True, "html": True}).enable(
    ["linkify", "strikethrough", "table"]
)
_TAG = re.compile(r"<(/?)([a-zA-Z0-9]+)")


def _tags(markdown: str) -> set[str]:
    return {match.group(2).lower() for match in _TAG.finditer(_MD.render(markdown))}


def copied_lines(card: dict[str, Any]) -> list[str]:
    """What copying each RichTextBlock gives: its runs' text, joined."""
    return [
        "".join(run["text"] for run in block["inlines"]) for block in of_type(card, "RichTextBlock")
    ]


def _item_view(hostile: str, index: int) -> Any:
    item = replace(
        stale_guest(index, "Guest"),
        principal=PrincipalView(display_name=hostile, user_principal_name=f"{hostile}@contoso.com"),
        resource_name=hostile,
        earlier_decisions=(
            EarlierDecisionView(
                stage_number=1, decision=Decision.APPROVE, decided_by=hostile, justification=hostile
            ),
        ),
    )
    decided = replace(
        item,
        item_id=f"{item.item_id}-d",
        state=ItemState.DECIDED,
        decision=Decision.DENY,
        decided_by=hostile,
        justification=hostile,
    )
    return review_view(
        review_name=hostile,
        resource_name=f"{hostile} (the review's resource)",
        instructions=hostile,
        items=(item, decided),
    )


def _cards_for(hostile: str, index: int) -> list[dict[str, Any]]:
    view = _item_view(hostile, index)
    escalation = EscalationCardView(
        context=CONTEXT,
        instance_id=INSTANCE_ID,
        review_name=hostile,
        reviewer_id="r-1",
        reviewer_name=hostile,
        pending_count=3,
        total_count=4,
        due=CONTEXT.now,
        resource_name=hostile,
    )
    pending = PendingListView(
        context=CONTEXT,
        reviews=(
            PendingReviewView(
                instance_id=INSTANCE_ID,
                review_name=hostile,
                pending_count=1,
                total_count=1,
                due=CONTEXT.now,
                resource_name=hostile,
            ),
        ),
    )
    message = MessageCardView(
        context=CONTEXT,
        message=MessageKey.ALREADY_DECIDED,
        kind=NoticeKind.INFO,
        detail=hostile,
        instance_id=INSTANCE_ID,
    )
    return [
        render_review_card(view),
        render_reminder_card(view),
        render_accept_preview_card(view),
        render_escalation_card(escalation),
        render_pending_list_card(pending),
        render_message_card(message),
    ]


@pytest.mark.parametrize("index", range(len(HOSTILE)))
def test_text_from_people_is_copied_exactly_and_never_parsed(
    index: int, schema_validator: jsonschema.protocols.Validator
) -> None:
    hostile = HOSTILE[index]
    for card in _cards_for(hostile, index):
        lines = copied_lines(card)
        assert any(hostile in line for line in lines), (hostile, lines)
        for value in markdown_texts(card):
            # Our own strings only: no piece of the hostile value, and nothing they render to
            # beyond paragraphs and our bold.
            assert hostile not in value
            assert _tags(value) <= {"p", "strong"}, value
        assert schema_errors(schema_validator, card) == []
        assert card_size_bytes(card) <= CARD_BUDGET_BYTES


def test_each_field_keeps_its_exact_value() -> None:
    """Name, UPN, resource, earlier reviewer and reason, decision reason: each copied whole."""
    name = "Zoë O'Brien [contractor] **VIP** 🦄"
    upn = "zoe.obrien_fabrikam.com#EXT#@contoso.onmicrosoft.com"
    reason = (
        "Still on <at>Project Falcon</at> until 2027-03 — see https://contoso.example/x?a=1&b=2"
    )
    item = replace(
        stale_guest(1, "x"),
        principal=PrincipalView(
            display_name=name, user_principal_name=upn, user_type=UserType.GUEST
        ),
        resource_name="Falcon (prod) & *staging*",
        state=ItemState.DECIDED,
        decision=Decision.APPROVE,
        decided_by="Megan_Bowen",
        justification=reason,
    )
    card = render_review_card(review_view(items=(item, base_items()[1])))
    lines = copied_lines(card)
    assert f"{name} · Guest" in lines
    assert f"{upn} · Access to Falcon (prod) & *staging*" in lines
    assert f"Reason: {reason}" in lines
    assert any(
        line.startswith("✗ Denied by Megan_Bowen") or "Megan_Bowen" in line for line in lines
    )
    # Bold comes from our templates as a run property, never from the user's asterisks.
    title = next(b for b in of_type(card, "RichTextBlock") if b["inlines"][0]["text"] == name)
    assert title["inlines"][0]["weight"] == "Bolder"
    assert title["inlines"][1] == {"type": "TextRun", "text": " · Guest"}


def test_pathological_text_is_bounded_but_real_names_are_whole() -> None:
    # Entra allows 256 characters in a display name: shown whole.
    longest = "Ä" * 256
    item = replace(stale_guest(1, "x"), principal=PrincipalView(display_name=longest))
    assert longest in copied_lines(render_review_card(review_view(items=(item,))))
    # Far beyond any directory limit, in the costliest characters: cut, and the card still fits.
    flood = "🦄" * 5000
    items = tuple(
        replace(
            stale_guest(n, "x"),
            principal=PrincipalView(display_name=flood, user_principal_name=flood),
            resource_name=flood,
            earlier_decisions=tuple(
                EarlierDecisionView(
                    stage_number=s, decision=Decision.DENY, decided_by=flood, justification=flood
                )
                for s in (1, 2)
            ),
            state=ItemState.DECIDED,
            decision=Decision.DENY,
            decided_by=flood,
            justification=flood,
        )
        for n in range(3)
    )
    view = review_view(review_name=flood, resource_name=flood, instructions=flood, items=items)
    for page in range(3):
        card = render_review_card(replace(view, page=page))
        assert card_size_bytes(card) <= CARD_BUDGET_BYTES
        assert any(line.endswith("…") for line in copied_lines(card))


def test_ids_never_reach_text() -> None:
    # Ids travel in action data and input ids, never in text; data is JSON, not markdown.
    item = replace(base_items()[0], item_id="x](https://evil.com)")
    card = render_review_card(review_view(items=(item, base_items()[1])))
    assert all("evil" not in value for value in markdown_texts(card) + copied_lines(card))
    toggles = of_type(card, "Input.Toggle")
    assert toggles[0]["id"] == "select_x](https://evil.com)"


def test_the_checker_itself_sees_injections() -> None:
    # TextBlock text would be parsed: the checks above have teeth.
    assert "a" in _tags(HOSTILE[0])
    assert "strong" in _tags(HOSTILE[1])
    assert "a" in _tags("www.evil.com")
    assert "a" in _tags("mallory@evil.com")
    assert "h1" in _tags("# Heading")
    assert "script" in _tags("<script>alert(1)</script>")
