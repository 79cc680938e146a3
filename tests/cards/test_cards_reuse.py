"""Reused item blocks: the answer card is the card rendered afresh, whatever was rendered before.

The review card keeps rendered item blocks (``cards.review._BlockCache``) and reuses them for the
same inputs. These tests render many views — pending, decided, saving and failed items, several
pages, bulk selection, ended reviews, required reasons, the way back to the list, eight languages
and several zones, the clock moving within a day, past midnight and into a new year — once by
the plain path (every part rendered, nothing reused) and twice by the reusing path (the second
time from the cache), in one long sequence so that every view meets what earlier ones left in
the cache, and require the same card every time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from card_scenarios import (
    CONTEXT,
    NOW,
    base_items,
    decided,
    many_items,
    multistage_items,
    partly_decided_items,
    review_view,
    stale_guest,
    user_item,
)

from cards import (
    Decision,
    ItemState,
    MessageKey,
    Notice,
    NoticeKind,
    ReviewCardView,
    ReviewStatus,
    render_reminder_card,
    render_review_card,
)
from cards import review as review_module
from cards.review import _ReviewCard

LOCALES = ("en-GB", "en-US", "de-DE", "fr-FR", "es-ES", "it-IT", "ja-JP", "nl-NL", "pt-BR", "zh-CN")
ZONES = ("Europe/Berlin", "America/Los_Angeles", "Asia/Tokyo", "UTC")
# The clock: now, an hour later (same day), past midnight in Berlin but not in Los Angeles, a
# week on, and into the new year (dates then show their year).
NOWS = (
    NOW,
    NOW + timedelta(hours=1),
    datetime(2026, 12, 2, 23, 30, tzinfo=UTC),
    NOW + timedelta(days=7),
    datetime(2027, 1, 1, 0, 30, tzinfo=UTC),
)


def _mixed_items(count: int) -> tuple[ReviewCardView, ...]:
    """Items in every state: decided by the viewer and by others (with reasons), saving, failed."""
    items = list(many_items(count))
    for index in range(0, count, 4):
        items[index] = decided(items[index], Decision.APPROVE, "Megan Bowen", me=index % 8 == 0)
    for index in range(1, count, 7):
        items[index] = replace(
            decided(items[index], Decision.DENY, None), justification="Moved to another team."
        )
    for index in range(2, count, 9):
        items[index] = replace(items[index], state=ItemState.SAVING, decision=Decision.DENY)
    for index in range(3, count, 11):
        items[index] = replace(items[index], state=ItemState.FAILED, error=MessageKey.FORBIDDEN)
    return tuple(items)  # type: ignore[return-value]


def _views(now: datetime, locale: str, zone: str) -> Iterator[ReviewCardView]:
    context = replace(CONTEXT, now=now, locale=locale, time_zone=zone)
    mixed = _mixed_items(45)

    def view(**changes: object) -> ReviewCardView:
        return review_view(context=context, **changes)

    yield view()
    yield view(items=partly_decided_items())
    yield view(items=multistage_items())
    yield view(items=tuple(decided(i, Decision.DENY, "Alex Wilber") for i in base_items()))
    yield view(items=many_items(3))
    yield view(items=mixed)
    yield view(items=mixed, page=1)
    yield view(items=mixed, page=4)
    yield view(items=mixed, page_size=4, page=2)
    yield view(items=mixed, justification_required=True)
    yield view(items=mixed, back_to_list=True)
    yield view(items=mixed, status=ReviewStatus.ENDED)
    yield view(items=mixed, resource_name=None)
    yield view(items=mixed, instance_id="another-instance")
    yield view(
        items=partly_decided_items(),
        notice=Notice(kind=NoticeKind.ERROR, message=MessageKey.DECISION_FAILED),
    )
    # One item decided since the last card: only its block differs.
    yield view(items=(decided(user_item(1, "Adele Vance"), Decision.APPROVE, "Me", me=True),))
    yield view(items=(user_item(1, "Adele Vance"), stale_guest(2, "Rob Young")))


def _all_views() -> Iterator[ReviewCardView]:
    for locale in LOCALES:
        full = locale in ("en-GB", "de-DE", "ja-JP")
        for now in NOWS if full else NOWS[::2]:
            for zone in ZONES if full else ZONES[:1]:
                yield from _views(now, locale, zone)


@pytest.fixture(autouse=True)
def _empty_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(review_module, "_BLOCKS", review_module._BlockCache())


def test_reused_blocks_give_the_card_rendered_afresh() -> None:
    count = 0
    for view in _all_views():
        for render in (render_review_card, render_reminder_card):
            fresh = render(view, reuse=False)
            assert render(view, reuse=True) == fresh, (view.context, view.page)
            assert render(view, reuse=True) == fresh, (view.context, view.page)
            assert render(view) == fresh
            count += 1
    assert count > 500


def test_blocks_are_rendered_once_and_then_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    rendered: list[str] = []
    plain = _ReviewCard.item_block

    def counting(self: _ReviewCard, item: object, page: int, *, bulk: bool) -> object:
        rendered.append(item.item_id)  # type: ignore[attr-defined]
        return plain(self, item, page, bulk=bulk)  # type: ignore[arg-type]

    monkeypatch.setattr(_ReviewCard, "item_block", counting)
    view = review_view(items=partly_decided_items())
    # Without reuse (first cards: every block new) nothing is kept.
    render_review_card(view)
    rendered.clear()
    first = render_review_card(view, reuse=True)
    assert len(rendered) == 4
    rendered.clear()
    # An hour later, one more item decided: that item is rendered again, and the one item still
    # open (its buttons change: with one open item there is no bulk selection any more).
    items = list(partly_decided_items())
    items[2] = decided(items[2], Decision.APPROVE, "Me", me=True)
    later = replace(
        view, items=tuple(items), context=replace(CONTEXT, now=NOW + timedelta(hours=1))
    )
    second = render_review_card(later, reuse=True)
    assert sorted(rendered) == [items[2].item_id, items[3].item_id]
    assert second == render_review_card(later, reuse=False) != first
    # Another language is another card: everything rendered.
    rendered.clear()
    render_review_card(replace(view, context=replace(CONTEXT, locale="de-DE")), reuse=True)
    assert len(rendered) == 4


def test_a_reused_block_cannot_be_changed_through_a_card() -> None:
    view = review_view(items=partly_decided_items())
    card = render_review_card(view, reuse=True)
    blocks = [part for part in card["body"] if part.get("type") == "Container"]
    assert len(blocks) >= 4
    for block in blocks:
        block["items"].clear()
    assert render_review_card(view, reuse=True) == render_review_card(view)
