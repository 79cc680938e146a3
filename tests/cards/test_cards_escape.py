"""Hostile user text must stay text: no links, emphasis, lists, headings, code or HTML.

The check renders TextBlock text with markdown-it (CommonMark plus the linkify, strikethrough and
table extensions: a superset of what Adaptive Card hosts interpret; Teams' web and desktop
clients use a markdown-it based renderer) and inspects the HTML it produces.
"""

from __future__ import annotations

import html
import re
from dataclasses import replace
from typing import Any

import pytest
from card_helpers import of_type, texts
from card_scenarios import CONTEXT, INSTANCE_ID, base_items, review_view, stale_guest
from markdown_it import MarkdownIt

from cards import (
    Decision,
    EarlierDecisionView,
    EscalationCardView,
    ItemState,
    PendingListView,
    PendingReviewView,
    PrincipalView,
    escape_text,
    render_accept_preview_card,
    render_escalation_card,
    render_pending_list_card,
    render_review_card,
)

HOSTILE = [
    "[Click here](https://evil.com/login)",
    "**URGENT** approve me",
    "__bold__ and _italic_",
    "# Heading",
    "## Heading two",
    "- list item",
    "+ plus item",
    "* star item",
    "1. numbered",
    "12) numbered",
    "`code` and ``more``",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<https://evil.com>",
    "www.evil.com",
    "evil.com",
    "https://evil.com/path?q=1",
    "mallory@evil.com",
    "![pixel](https://evil.com/x.png)",
    "~~struck~~",
    "> quoted",
    "line one\n\n- injected\n# heading\n    code",
    "\u202eevil\u202c txt.exe",
    "&#91;x&#93;(https://evil.com)",
    "[ref]: https://evil.com",
    "evil\u3002com and evil\uff0ecom",
    "\\*escaped\\* stars",
    "| a | b |\n|---|---|\n| c | d |",
    "ftp://files.evil.com",
    "=== setext",
    "evil\u200b.com and evil.\u200bcom and evil\u00ad.com",
    "mallory@evil\u200b.com",
    "https:\u200b//evil.com",
    "javascript:alert(1)",
    "tab\tand\r\nreturns",
]

_MD = MarkdownIt("commonmark", {"linkify": True, "html": True}).enable(
    ["linkify", "strikethrough", "table"]
)
_TAG = re.compile(r"<(/?)([a-zA-Z0-9]+)")


def _tags(markdown: str) -> set[str]:
    return {match.group(2).lower() for match in _TAG.finditer(_MD.render(markdown))}


@pytest.mark.parametrize("hostile", HOSTILE)
def test_escaped_text_renders_as_one_plain_paragraph(hostile: str) -> None:
    escaped = escape_text(hostile)
    assert _tags(escaped) <= {"p"}, _MD.render(escaped)
    # And it is the same text: the paragraph holds exactly what we produced.
    rendered = _MD.render(escaped).strip()
    assert html.unescape(rendered.removeprefix("<p>").removesuffix("</p>")) == escaped


@pytest.mark.parametrize("hostile", HOSTILE)
def test_escaped_text_inside_our_bold_template_stays_one_strong(hostile: str) -> None:
    # Names go into "**{name}** · Guest": the user text must neither close nor extend the bold.
    rendered = _MD.render(f"**{escape_text(hostile)}** · Guest")
    assert _tags(rendered.replace("<strong>", "").replace("</strong>", "")) <= {"p"}
    assert rendered.count("<strong>") == 1


def test_the_checker_itself_sees_injections() -> None:
    # Without escaping, the same inputs do produce links, emphasis and lists: the test has teeth.
    assert "a" in _tags(HOSTILE[0])
    assert "strong" in _tags(HOSTILE[1])
    assert "a" in _tags("www.evil.com")
    assert "a" in _tags("evil.com")
    assert "a" in _tags("https://evil.com/path?q=1")
    assert "a" in _tags("mallory@evil.com")
    assert "a" in _tags("evil\u200b.com")
    assert "li" in _tags("- list item")
    assert "h1" in _tags("# Heading")
    assert "script" in _tags("<script>alert(1)</script>")


def test_escaping_keeps_ordinary_names_readable() -> None:
    assert escape_text("Adele Vance") == "Adele Vance"
    assert escape_text("Jean-Luc O'Brien") == "Jean-Luc O'Brien"
    assert escape_text("Smith, J. (Contractor)") == "Smith, J. ❨Contractor❩"
    assert escape_text("R&D team #2") == "R＆D team #2"


def test_escaping_collapses_lines_and_removes_direction_overrides() -> None:
    assert escape_text("a\n\nb\tc\r\nd") == "a b c d"
    assert escape_text("\u202eabc\u202c") == "abc"
    assert escape_text("x\u2028y") == "x y"


def test_escaping_truncates_to_bound_card_size() -> None:
    escaped = escape_text("x" * 500, max_chars=80)
    assert len(escaped) == 80
    assert escaped.endswith("…")
    assert escape_text("short", max_chars=80) == "short"


def _hostile_item_view() -> Any:
    items = tuple(
        replace(
            stale_guest(index, "Guest"),
            principal=PrincipalView(
                display_name=hostile,
                user_principal_name=f"{hostile}@evil.com",
            ),
            resource_name=hostile,
            earlier_decisions=(
                EarlierDecisionView(
                    stage_number=1,
                    decision=Decision.APPROVE,
                    decided_by=hostile,
                    justification=hostile,
                ),
            ),
        )
        for index, hostile in enumerate(HOSTILE)
    )
    decided = tuple(
        replace(
            item,
            state=ItemState.DECIDED,
            decision=Decision.DENY,
            decided_by=item.principal.display_name,
            justification=item.principal.display_name,
            item_id=f"{item.item_id}-d",
        )
        for item in items
    )
    return review_view(
        review_name="[Approve all](https://evil.com) **now**",
        resource_name="www.evil.com",
        instructions="Click <https://evil.com> or [here](http://x.example)",
        items=items + decided,
        page_size=len(HOSTILE) * 2,
    )


def _assert_text_blocks_inert(card: dict[str, Any]) -> None:
    for value in texts(card):
        tags = _tags(value)
        assert tags <= {"p", "strong"}, f"{value!r} renders as {_MD.render(value)!r}"


def test_review_card_with_hostile_names_has_no_markup_from_users() -> None:
    view = _hostile_item_view()
    for page in range(3):
        _assert_text_blocks_inert(render_review_card(replace(view, page=page)))


def test_accept_preview_with_hostile_names_has_no_markup_from_users() -> None:
    _assert_text_blocks_inert(render_accept_preview_card(_hostile_item_view()))


def test_escalation_and_pending_list_with_hostile_names() -> None:
    hostile = "[Nudge](https://evil.com) **me** www.evil.com"
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
    _assert_text_blocks_inert(render_escalation_card(escalation))
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
    _assert_text_blocks_inert(render_pending_list_card(pending))


def test_hostile_ids_do_not_reach_text() -> None:
    # Ids travel in action data and input ids, never in text; data is JSON, not markdown.
    item = replace(base_items()[0], item_id="x](https://evil.com)")
    card = render_review_card(review_view(items=(item, base_items()[1])))
    assert all("evil" not in value for value in texts(card))
    toggles = of_type(card, "Input.Toggle")
    assert toggles[0]["id"] == "select_x](https://evil.com)"
