"""What the review, reminder and preview cards show and send, state by state."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from card_helpers import body_actions, executes, of_type, texts
from card_scenarios import (
    INSTANCE_ID,
    NOW,
    VIEWER_MRI,
    app_item,
    base_items,
    decided,
    item_id,
    multistage_items,
    partly_decided_items,
    review_view,
    stale_guest,
    user_item,
)

from cards import (
    JUSTIFICATION_INPUT_ID,
    Decision,
    DefaultDecision,
    ItemState,
    MessageKey,
    Notice,
    NoticeKind,
    Recommendation,
    ReviewStatus,
    StageView,
    render_accept_preview_card,
    render_reminder_card,
    render_review_card,
    selected_item_ids,
)


def test_pending_card_shows_review_due_progress_and_evidence() -> None:
    card = render_review_card(review_view())
    shown = texts(card)
    assert "Access review: Quarterly review: Building security members" in shown
    assert "Resource: Building security" in shown
    assert "Due Sat 5 Dec, in 3 days" in shown
    assert "0 of 4 decided" in shown
    assert "Rob Young · Guest" in shown
    assert "Adele Vance · Member" in shown
    assert "Payroll Connector · Application" in shown
    assert "App ID 00000003-0000-0ff1-ce00-000000000000 · Access to Finance SharePoint" in shown
    assert "Recommended: **deny** — no sign-in for 94 days" in shown
    assert "Last sign-in: Sun 30 Aug" in shown
    assert "Last sign-in: never" in shown
    assert (
        "If nobody decides an item by the due date, access stays as it is. "
        "Results are applied by the review owner after the review ends."
    ) in shown


def test_every_open_item_has_approve_deny_dont_know_with_its_ids() -> None:
    card = render_review_card(review_view())
    decides = executes(card, "decide")
    assert [(a["title"], a["data"]["itemId"], a["data"]["decision"]) for a in decides[:3]] == [
        ("Approve", item_id(1), "Approve"),
        ("Deny", item_id(1), "Deny"),
        ("Don't know", item_id(1), "DontKnow"),
    ]
    assert len(decides) == 3 * 4
    assert all(a["data"]["instanceId"] == INSTANCE_ID for a in decides)
    assert all("stageId" not in a["data"] for a in decides)
    # Without a required reason the buttons neither collect nor validate inputs.
    assert {a["associatedInputs"] for a in decides} == {"none"}
    assert of_type(card, "Input.Text") == []


def test_required_justification_adds_the_input_and_marks_decide_actions() -> None:
    card = render_review_card(review_view(justification_required=True))
    (reason,) = of_type(card, "Input.Text")
    assert reason["id"] == JUSTIFICATION_INPUT_ID
    assert reason["isRequired"] is True
    assert reason["maxLength"] == 500
    assert isinstance(reason["maxLength"], int)
    assert {a["associatedInputs"] for a in executes(card, "decide")} == {"auto"}
    assert {a["associatedInputs"] for a in executes(card, "decide_bulk")} == {"auto"}
    # Actions that must work without a reason do not collect inputs, so validation can't block them.
    for verb in ("accept_recommendations_preview",):
        assert {a["associatedInputs"] for a in executes(card, verb)} == {"none"}


def test_bulk_mode_toggles_and_actions() -> None:
    card = render_review_card(review_view())
    toggles = of_type(card, "Input.Toggle")
    assert [t["id"] for t in toggles] == [f"select_{item_id(n)}" for n in (1, 2, 3, 4)]
    assert {(t["valueOn"], t["valueOff"], t["value"]) for t in toggles} == {
        ("true", "false", "false")
    }
    bulk = executes(card, "decide_bulk")
    assert [a["data"] for a in bulk] == [
        {"instanceId": INSTANCE_ID, "decision": decision, "page": 0}
        for decision in ("Approve", "Deny", "DontKnow")
    ]
    # One open item left: no point in selecting it.
    single = render_review_card(review_view(items=partly_decided_items()[:3]))
    assert of_type(single, "Input.Toggle") == []
    assert executes(single, "decide_bulk") == []


def test_selected_item_ids_reads_the_toggles_back() -> None:
    # What Teams sends for decide_bulk: the action data merged with every input's value.
    card = render_review_card(review_view())
    (approve_selected, *_) = executes(card, "decide_bulk")
    toggles = of_type(card, "Input.Toggle")
    inputs = {t["id"]: t["valueOff"] for t in toggles}
    inputs[toggles[1]["id"]] = toggles[1]["valueOn"]
    inputs[toggles[3]["id"]] = toggles[3]["valueOn"]
    data = {**approve_selected["data"], **inputs, "select_": "true", "selectx": "true"}
    assert selected_item_ids(data) == [item_id(2), item_id(4)]
    assert selected_item_ids(approve_selected["data"]) == []


def test_accept_recommendations_counts_open_items_only() -> None:
    card = render_review_card(review_view(items=(*partly_decided_items(), stale_guest(9, "Ann X"))))
    (accept,) = executes(card, "accept_recommendations_preview")
    # Rob (deny) is decided already; Ann is open with a deny recommendation.
    assert accept["title"] == "Accept recommendations"
    assert "Recommendations: 0 approve, 1 deny" in texts(card)
    assert accept["data"] == {"instanceId": INSTANCE_ID, "page": 0}
    none_left = render_review_card(review_view(items=(app_item(3, "Connector"),)))
    assert executes(none_left, "accept_recommendations_preview") == []


def test_my_access_link_and_refresh_for_the_viewer() -> None:
    card = render_review_card(review_view(page=0))
    (link,) = [a for a in body_actions(card) if a["type"] == "Action.OpenUrl"]
    assert link["url"] == "https://myaccess.microsoft.com/#/access-reviews"
    assert card["refresh"] == {
        "action": {
            "type": "Action.Execute",
            "verb": "refresh",
            "data": {"card": "review", "instanceId": INSTANCE_ID, "page": 0},
        },
        "userIds": [VIEWER_MRI],
    }


def test_decided_items_show_outcome_who_and_when_without_buttons() -> None:
    card = render_review_card(review_view(items=partly_decided_items()))
    shown = texts(card)
    assert "✓ Approved by you · 14:02" in shown
    assert "✗ Denied by Megan Bowen · 14:02" in shown
    assert "Reason: Left the project in August." in shown
    assert "2 of 4 decided" in shown
    decided_ids = {item_id(1), item_id(2)}
    assert not decided_ids & {a["data"]["itemId"] for a in executes(card, "decide")}


def test_decided_on_an_earlier_day_shows_the_date() -> None:
    item = replace(
        decided(base_items()[1], Decision.DENY, "Megan Bowen"),
        decided_at=datetime(2026, 11, 27, 9, 15, tzinfo=UTC),
    )
    card = render_review_card(review_view(items=(item,)))
    assert "✗ Denied by Megan Bowen · Fri 27 Nov, 10:15" in texts(card)


def test_all_done_thanks_and_offers_nothing_to_click() -> None:
    items = tuple(decided(i, Decision.APPROVE, "Megan", me=True) for i in base_items())
    card = render_review_card(review_view(items=items))
    assert "Thanks — nothing left" in texts(card)
    assert [a["type"] for a in body_actions(card)] == ["Action.OpenUrl"]


def test_ended_review_says_what_happened_to_undecided_items() -> None:
    view = review_view(
        items=partly_decided_items(),
        status=ReviewStatus.ENDED,
        due=NOW - timedelta(days=1),
        default_decision=DefaultDecision.DENY,
        auto_apply=True,
    )
    card = render_review_card(view)
    shown = texts(card)
    assert "This review ended on Tue 1 Dec." in shown
    assert (
        "This review has ended. Decisions can no longer be changed. "
        "Items nobody decided were denied."
    ) in shown
    assert shown.count("Not decided") == 2
    assert [a["type"] for a in body_actions(card)] == ["Action.OpenUrl"]
    assert of_type(card, "Input.Toggle") == []
    # Refresh is kept: the card must still update itself when opened.
    assert card["refresh"]["action"]["verb"] == "refresh"


def test_default_deny_with_auto_apply_is_a_warning() -> None:
    card = render_review_card(review_view(default_decision=DefaultDecision.DENY, auto_apply=True))
    (policy,) = [
        block for block in of_type(card, "TextBlock") if block["text"].startswith("If nobody")
    ]
    assert policy["text"] == (
        "If nobody decides an item by the due date, it is **denied**. "
        "Results are applied automatically when the review ends."
    )
    # Bold, in the default colour (Teams' warning yellow is unreadable on its light theme).
    assert policy["weight"] == "Bolder" and "color" not in policy
    calm = render_review_card(review_view(default_decision=DefaultDecision.APPROVE))
    assert (
        "If nobody decides an item by the due date, it is approved. "
        "Results are applied by the review owner after the review ends."
    ) in texts(calm)


def test_saving_items_show_saving_and_no_buttons() -> None:
    items = base_items()
    view = review_view(
        items=(replace(items[0], state=ItemState.SAVING, decision=Decision.DENY), items[1]),
        notice=Notice(kind=NoticeKind.INFO, message=MessageKey.SAVING),
    )
    card = render_review_card(view)
    shown = texts(card)
    assert "Saving… (deny)" in shown
    assert "0 of 2 decided · 1 saving" in shown
    assert "Saving your decisions… This card updates when they are recorded." in shown
    assert {a["data"]["itemId"] for a in executes(card, "decide")} == {item_id(2)}


def test_failed_items_show_why_and_offer_the_buttons_again() -> None:
    items = base_items()
    failed = replace(
        items[0], state=ItemState.FAILED, decision=Decision.APPROVE, error=MessageKey.NOT_A_REVIEWER
    )
    card = render_review_card(
        review_view(
            items=(failed,),
            notice=Notice(kind=NoticeKind.ERROR, message=MessageKey.DECISION_FAILED),
        )
    )
    shown = texts(card)
    assert "Not saved: You are not a reviewer of this item any more." in shown
    assert "Your decision could not be saved. Please try again." in shown
    (banner,) = [c for c in of_type(card, "Container") if c.get("style") == "attention"]
    assert banner["items"][0]["inlines"][0]["text"] == (
        "Your decision could not be saved. Please try again."
    )
    assert {a["data"]["itemId"] for a in executes(card, "decide")} == {item_id(1)}


def test_multistage_items_carry_stage_and_earlier_decisions() -> None:
    card = render_review_card(
        review_view(items=multistage_items(), stage=StageView(stage_id="2", number=2, count=3))
    )
    shown = texts(card)
    assert "Due Sat 5 Dec, in 3 days · Stage 2 of 3" in shown
    assert "Stage 1: approved by Alex Wilber — “Still on the team”" in shown
    assert "Stage 1: not reviewed" in shown
    assert {a["data"]["stageId"] for a in executes(card, "decide")} == {"2"}


def test_due_tomorrow_is_highlighted() -> None:
    card = render_review_card(review_view(due=NOW + timedelta(days=1)))
    (due,) = [b for b in of_type(card, "TextBlock") if b["text"].startswith("Due ")]
    assert due["text"] == "Due Thu 3 Dec, tomorrow"
    assert due["weight"] == "Bolder" and "color" not in due
    later = render_review_card(review_view(due=NOW + timedelta(days=3)))
    (calm,) = [b for b in of_type(later, "TextBlock") if b["text"].startswith("Due ")]
    assert "weight" not in calm


def test_reminder_says_what_is_left_and_offers_snooze() -> None:
    view = review_view(items=partly_decided_items(), due=NOW + timedelta(days=1))
    card = render_reminder_card(view)
    shown = texts(card)
    assert "Reminder: Quarterly review: Building security members" in shown
    assert "2 of 4 left, due tomorrow" in shown
    snoozes = executes(card, "snooze")
    assert [(a["title"], a["data"]) for a in snoozes] == [
        ("Snooze until tomorrow", {"instanceId": INSTANCE_ID, "until": "tomorrow_0900"}),
        ("Snooze 4 hours", {"instanceId": INSTANCE_ID, "until": "4h"}),
    ]
    assert {a["associatedInputs"] for a in snoozes} == {"none"}
    # The same decide actions as the review card, and it refreshes as a reminder.
    assert len(executes(card, "decide")) == 6
    assert card["refresh"]["action"]["data"]["card"] == "reminder"
    assert render_reminder_card(replace(view, page=0))["body"] == card["body"]


def test_preview_lists_who_would_be_denied_and_confirms_or_cancels() -> None:
    items = (
        user_item(1, "Adele Vance"),
        stale_guest(2, "Rob Young"),
        stale_guest(5, "Ann Smith"),
        decided(stale_guest(6, "Decided Dan"), Decision.APPROVE, "Megan"),
        app_item(3, "Payroll Connector"),
    )
    card = render_accept_preview_card(review_view(items=items, page=2))
    shown = texts(card)
    assert "**2 people or apps will be denied** and lose access:" in shown
    denied = [line for line in shown if line.startswith("• ")]
    assert len(denied) == 2
    assert denied[0].startswith("• Rob Young · Guest")
    assert denied[0].endswith("— no sign-in for 94 days")
    assert "1 item will be approved." in shown
    assert "1 item has no recommendation and stays undecided." in shown
    (confirm,) = executes(card, "accept_recommendations")
    assert confirm["data"] == {"instanceId": INSTANCE_ID, "page": 2}
    assert confirm["style"] == "destructive"
    (cancel,) = executes(card, "refresh")
    assert cancel["title"] == "Cancel"
    assert cancel["data"] == {"card": "review", "instanceId": INSTANCE_ID, "page": 2}
    assert card["refresh"]["action"]["data"] == cancel["data"]


def test_preview_without_denials_is_a_positive_confirm() -> None:
    card = render_accept_preview_card(review_view(items=(user_item(1, "Adele Vance"),)))
    assert "Nobody will be denied." in texts(card)
    (confirm,) = executes(card, "accept_recommendations")
    assert confirm["style"] == "positive"


def test_preview_when_nothing_is_left_only_goes_back() -> None:
    items = (replace(user_item(1, "A B"), recommendation=Recommendation.NO_INFO),)
    card = render_accept_preview_card(review_view(items=items))
    assert "There are no recommendations left to accept." in texts(card)
    assert executes(card, "accept_recommendations") == []
    assert [a["verb"] for a in body_actions(card)] == ["refresh"]


def test_empty_review_says_so() -> None:
    card = render_review_card(review_view(items=()))
    assert "You have no items in this review." in texts(card)
    assert "0 of 0 decided" in texts(card)
