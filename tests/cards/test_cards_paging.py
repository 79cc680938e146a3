"""Long reviews page inside the card and every page stays under the size budget."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import jsonschema
import pytest
from card_helpers import executes, schema_errors, texts
from card_scenarios import CONTEXT, NOW, many_items, review_view, stale_guest

from cards import (
    CARD_BUDGET_BYTES,
    MAX_CARD_BYTES,
    CardTooLargeError,
    Decision,
    EarlierDecisionView,
    ItemState,
    MessageKey,
    Notice,
    NoticeKind,
    PendingListView,
    PendingReviewView,
    PrincipalView,
    ReviewCardView,
    ReviewStatus,
    card_size_bytes,
    render_accept_preview_card,
    render_pending_list_card,
    render_reminder_card,
    render_review_card,
    review_page_count,
)
from cards.actions import refresh_definition
from cards.layout import build_card, pack, text
from cards.review import CardKind, _ReviewCard


def _item_ids_on(card: dict[str, object]) -> list[str]:
    ids: list[str] = []
    for action in executes(card, "decide"):
        item_id = action["data"]["itemId"]  # type: ignore[index]
        if item_id not in ids:
            ids.append(item_id)
    return ids


def _all_pages(view: ReviewCardView) -> list[dict[str, object]]:
    return [render_review_card(replace(view, page=page)) for page in range(review_page_count(view))]


def test_300_items_page_under_the_budget_and_cover_every_item_once(
    schema_validator: jsonschema.protocols.Validator,
) -> None:
    view = review_view(items=many_items(300), justification_required=True)
    pages = _all_pages(view)
    assert len(pages) == 30
    seen: list[str] = []
    for card in pages:
        size = card_size_bytes(card)
        assert size <= CARD_BUDGET_BYTES < MAX_CARD_BYTES
        assert schema_errors(schema_validator, card) == []
        on_page = _item_ids_on(card)
        assert 1 <= len(on_page) <= view.page_size
        seen.extend(on_page)
    assert seen == [item.item_id for item in view.items]


def test_reminder_and_review_cards_page_alike() -> None:
    # A click on a reminder may be answered with the review card: page n must hold the same items.
    view = _worst_case_view(40)
    for page in range(review_page_count(view)):
        paged = replace(view, page=page)
        assert _item_ids_on(render_reminder_card(paged)) == _item_ids_on(render_review_card(paged))


def test_navigation_moves_one_page_and_stops_at_the_ends() -> None:
    view = review_view(items=many_items(25))
    first, middle, last = (render_review_card(replace(view, page=p)) for p in (0, 1, 2))
    assert [a["title"] for a in executes(first, "page")] == ["Next"]
    assert [a["data"]["page"] for a in executes(middle, "page")] == [0, 2]
    assert [a["title"] for a in executes(last, "page")] == ["Previous"]
    assert executes(first, "page")[0]["data"] == {
        "card": "review",
        "instanceId": view.instance_id,
        "page": 1,
    }
    assert "Page 3 · items 21–25 of 25" in texts(last)
    # The page travels in the data of every action that answers with this card again.
    assert {a["data"]["page"] for a in executes(middle, "decide")} == {1}
    assert {a["data"]["page"] for a in executes(middle, "decide_bulk")} == {1}
    assert middle["refresh"]["action"]["data"]["page"] == 1


def test_a_page_past_the_end_shows_the_last_page() -> None:
    # Items were decided elsewhere and the list shrank under the reviewer's feet.
    view = review_view(items=many_items(12), page=7)
    card = render_review_card(view)
    assert _item_ids_on(card) == [item.item_id for item in view.items[10:]]
    assert card["refresh"]["action"]["data"]["page"] == 1


def test_short_review_has_no_navigation() -> None:
    card = render_review_card(review_view())
    assert executes(card, "page") == []
    assert review_page_count(review_view()) == 1
    assert review_page_count(review_view(items=())) == 1


def _worst_case_view(count: int) -> ReviewCardView:
    # Every user field at (and past) its length cap, made only of characters that escaping
    # replaces and JSON then writes as \\uXXXX escapes: the largest an item can get.
    nasty = "*_[]()<>&`~" * 60
    items = tuple(
        replace(
            stale_guest(index, "x"),
            principal=PrincipalView(display_name=nasty, user_principal_name=nasty),
            resource_name=nasty,
            earlier_decisions=tuple(
                EarlierDecisionView(
                    stage_number=s, decision=Decision.DENY, decided_by=nasty, justification=nasty
                )
                for s in (1, 2)
            ),
            stage_id="3",
            state=ItemState.FAILED,
            decision=Decision.DENY,
            error=MessageKey.DECISION_FAILED,
        )
        for index in range(count)
    )
    return review_view(
        review_name=nasty,
        resource_name=nasty + "!",
        instructions=nasty,
        items=items,
        justification_required=True,
        notice=Notice(kind=NoticeKind.ERROR, message=MessageKey.ALREADY_DECIDED, detail=nasty),
    )


def test_worst_case_items_still_fit_every_page(
    schema_validator: jsonschema.protocols.Validator,
) -> None:
    view = _worst_case_view(300)
    page_count = review_page_count(view)
    assert page_count > 30  # the byte budget, not the item count, cut these pages
    for page in (0, 1, page_count // 2, page_count - 1):
        card = render_review_card(replace(view, page=page))
        assert card_size_bytes(card) <= CARD_BUDGET_BYTES
        assert _item_ids_on(card)
    assert schema_errors(schema_validator, render_review_card(view)) == []
    reminder = render_reminder_card(replace(view, page=page_count - 1))
    assert card_size_bytes(reminder) <= CARD_BUDGET_BYTES


def test_accept_preview_of_300_denials_lists_what_fits_and_counts_the_rest() -> None:
    items = tuple(stale_guest(index, f"Guest {index:03d} " + "y" * 60) for index in range(300))
    card = render_accept_preview_card(review_view(items=items))
    assert card_size_bytes(card) <= CARD_BUDGET_BYTES
    listed = [value for value in texts(card) if value.startswith("• ")]
    assert 0 < len(listed) < 300
    assert f"…and {300 - len(listed)} more" in texts(card)
    assert "**300 people or apps will be denied** and lose access:" in texts(card)


def test_pending_list_of_many_reviews_stays_under_budget() -> None:
    reviews = tuple(
        PendingReviewView(
            instance_id=f"i-{index}",
            review_name=f"Review {index} " + "z" * 100,
            pending_count=index,
            total_count=index + 3,
            due=NOW + timedelta(days=index % 9),
            resource_name="Resource " + "r" * 70,
        )
        for index in range(200)
    )
    card = render_pending_list_card(PendingListView(context=CONTEXT, reviews=reviews))
    assert card_size_bytes(card) <= CARD_BUDGET_BYTES
    opened = [a["data"]["instanceId"] for a in executes(card, "open_review")]
    assert opened == [f"i-{index}" for index in range(len(opened))]
    assert f"…and {200 - len(opened)} more reviews. Open My Access to see all." in texts(card)


def test_pack_is_greedy_in_order_and_isolates_oversized_blocks() -> None:
    assert pack([40, 40, 40, 40], budget_bytes=100, max_per_page=10) == [range(0, 2), range(2, 4)]
    assert pack([10] * 5, budget_bytes=1000, max_per_page=2) == [
        range(0, 2),
        range(2, 4),
        range(4, 5),
    ]
    assert pack([500, 10, 10], budget_bytes=100, max_per_page=10) == [range(0, 1), range(1, 3)]
    assert pack([], budget_bytes=100, max_per_page=10) == [range(0, 0)]


def test_build_card_refuses_a_card_over_the_budget() -> None:
    body = [text("x" * 1000) for _ in range(CARD_BUDGET_BYTES // 1000 + 1)]
    with pytest.raises(CardTooLargeError):
        build_card(
            body=body,
            actions=[],
            refresh=refresh_definition("29:u", {}),
            lang="en",
            fallback_text="x",
        )


def _paged(view: ReviewCardView, kind: CardKind) -> dict[str, object]:
    """The card as paging alone builds it (the one-page shortcut turned off)."""
    card = _ReviewCard(view, kind)
    card.single_page_card = lambda: None  # type: ignore[method-assign]
    return card.card()


@pytest.mark.parametrize("kind", [CardKind.REVIEW, CardKind.REMINDER])
def test_the_one_page_shortcut_builds_exactly_the_paged_card(kind: CardKind) -> None:
    """Wherever the shortcut answers, paging would have built the very same card."""
    views = [
        review_view(),
        review_view(items=()),
        review_view(items=many_items(10)),
        review_view(items=many_items(11)),
        review_view(items=many_items(3), page=2),
        review_view(items=many_items(10), justification_required=True),
        review_view(items=many_items(10), status=ReviewStatus.ENDED),
        *(_worst_case_view(count) for count in (1, 2, 3, 4, 5, 8, 10)),
        *(replace(_worst_case_view(count), page=1) for count in (1, 3, 10)),
        # Longer than a page: page 0 by the shortcut, later pages by paging alone.
        review_view(items=many_items(45)),
        review_view(items=many_items(45), page=1),
        review_view(items=many_items(45), page_size=4),
        review_view(items=many_items(300), justification_required=True),
        _worst_case_view(45),
    ]
    taken = 0
    for view in views:
        shortcut = _ReviewCard(view, kind).single_page_card()
        paged = _paged(view, kind)
        if shortcut is not None:
            taken += 1
            assert shortcut == paged
        assert (render_review_card if kind is CardKind.REVIEW else render_reminder_card)(
            view
        ) == paged
    # It answers for ordinary cards (and declines near the budget, where paging must decide).
    assert _ReviewCard(review_view(items=many_items(10)), kind).single_page_card() is not None
    assert _ReviewCard(review_view(items=many_items(45)), kind).single_page_card() is not None
    assert _ReviewCard(_worst_case_view(10), kind).single_page_card() is None
    assert taken >= 8
