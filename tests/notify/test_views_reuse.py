"""The item views of a review card are made once per stored record, and are what a fresh view
says whatever the clock (a sign-in's reason moves with it)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from bot.notify.views import ReviewerContext, build_review_card_view, item_view
from bot.store import InstanceRecord, ItemRecord
from cards import ItemState, RecommendationReason

VIEWER = "aaaaaaaa-0000-0000-0000-000000000001"
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _instance(*, share_earlier: bool = False) -> InstanceRecord:
    return InstanceRecord(
        instance_id="i1",
        definition_id="d1",
        display_name="Finance group",
        status="InProgress",
        start_at=START - timedelta(days=1),
        end_at=START + timedelta(days=60),
        data={"settings": {"decisionHistoriesForReviewersEnabled": share_earlier}},
    )


def _items() -> list[ItemRecord]:
    signed_in = START - timedelta(days=20, hours=12)  # no item at the window's edge
    return [
        ItemRecord(
            instance_id="i1",
            item_id=f"item{n:03d}",
            recommendation="Approve" if n % 2 else "Deny",
            data={
                "principal": {"id": f"p{n}", "displayName": f"Person {n:03d}", "type": "user"},
                "lastSignIn": (signed_in - timedelta(days=n)).isoformat() if n % 3 else None,
                "neverSignedIn": n % 3 == 0,
                "earlierStages": [{"decision": "Approve", "reviewedByName": "Ann"}],
            },
        )
        for n in range(25)
    ]


def _fresh(items: list[ItemRecord], now: datetime, *, share_earlier: bool) -> tuple[object, ...]:
    ordered = sorted(items, key=lambda i: (i.data["principal"]["displayName"], i.item_id))
    return tuple(
        item_view(i, viewer_oid=VIEWER, now=now, share_earlier=share_earlier) for i in ordered
    )


def _card(items: list[ItemRecord], now: datetime, *, share_earlier: bool = False) -> object:
    viewer = ReviewerContext(reviewer_oid=VIEWER, teams_user_id="29:x")
    view = build_review_card_view(
        _instance(share_earlier=share_earlier), items, viewer=viewer, now=now
    )
    assert view is not None
    return view.items


def test_the_views_of_unchanged_records_are_made_once() -> None:
    items = _items()
    first = _card(items, START)
    again = _card(items, START + timedelta(minutes=1))
    assert isinstance(first, tuple) and isinstance(again, tuple)
    assert all(a is b for a, b in zip(first, again, strict=True))
    assert again == _fresh(items, START + timedelta(minutes=1), share_earlier=False)


def test_a_changed_record_or_setting_gets_its_own_view() -> None:
    items = _items()
    _card(items, START)
    decided = dataclasses.replace(
        items[4], decision="Deny", reviewed_by=VIEWER, reviewed_at=START, data=items[4].data
    )
    changed = [decided if i is items[4] else i for i in items]
    views = _card(changed, START)
    assert views == _fresh(changed, START, share_earlier=False)
    assert isinstance(views, tuple)
    assert [v.state for v in views if v.item_id == "item004"] == [ItemState.DECIDED]
    shared = _card(changed, START, share_earlier=True)
    assert shared == _fresh(changed, START, share_earlier=True)
    assert isinstance(shared, tuple) and all(v.earlier_decisions for v in shared)


def test_a_kept_view_follows_the_clock_past_the_look_back() -> None:
    items = _items()
    early = _card(items, START)
    assert isinstance(early, tuple)
    assert {v.recommendation_reason for v in early} >= {RecommendationReason.RECENT_SIGN_IN}
    for days in (5, 10, 15, 40):
        now = START + timedelta(days=days)
        assert _card(items, now) == _fresh(items, now, share_earlier=False)
    late = _card(items, START + timedelta(days=40))
    assert isinstance(late, tuple)
    assert RecommendationReason.RECENT_SIGN_IN not in {v.recommendation_reason for v in late}
