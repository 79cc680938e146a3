"""Escalation, pending list, help, message and sign-in cards; view validation; the data contract."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from card_helpers import body_actions, executes, of_type, texts, walk
from card_scenarios import (
    CONTEXT,
    INSTANCE_ID,
    NOW,
    VIEWER_MRI,
    escalation_view,
    pending_view,
    review_view,
    scenarios,
)

from cards import (
    CardContext,
    HelpCardView,
    ItemState,
    ItemView,
    MessageCardView,
    MessageKey,
    NoticeKind,
    PendingListView,
    PrincipalView,
    SignInCardView,
    SignInReason,
    Verb,
    render_escalation_card,
    render_help_card,
    render_message_card,
    render_pending_list_card,
    render_signin_card,
)


def test_escalation_names_who_how_many_which_review_and_when() -> None:
    card = render_escalation_card(escalation_view())
    shown = texts(card)
    assert "Alex Wilber has 14 decisions due Friday" in shown
    assert "Review: Quarterly review: Building security members" in shown
    assert "4 of 18 decided so far" in shown
    assert "Due Fri 4 Dec, in 2 days" in shown
    (nudge,) = executes(card, "nudge")
    assert nudge["title"] == "Nudge"
    assert nudge["data"] == {
        "instanceId": INSTANCE_ID,
        "reviewerId": "3b8c2f1e-1111-4a2b-9c3d-5e6f7a8b9c0d",
    }
    # The refresh is for the manager, not the reviewer.
    assert card["refresh"]["userIds"] == ["29:manager-mri"]
    assert card["refresh"]["action"]["data"]["card"] == "escalation"


def test_escalation_after_nudge_replaces_the_button() -> None:
    card = render_escalation_card(
        escalation_view(nudged_at=datetime(2026, 12, 2, 13, 2, tzinfo=UTC))
    )
    assert executes(card, "nudge") == []
    assert "Nudge sent to Alex Wilber · 14:02" in texts(card)


def test_escalation_one_decision_due_tomorrow() -> None:
    card = render_escalation_card(escalation_view(pending_count=1, due=NOW + timedelta(days=1)))
    assert "Alex Wilber has 1 decision due tomorrow" in texts(card)


def test_pending_list_has_counts_and_open_buttons() -> None:
    card = render_pending_list_card(pending_view())
    shown = texts(card)
    assert "Quarterly review: Building security members" in shown
    assert "2 of 4 left · due Saturday" in shown
    assert "6 of 6 left · due today" in shown
    assert [a["data"] for a in executes(card, "open_review")] == [
        {"instanceId": INSTANCE_ID},
        {"instanceId": "7f3e0000-0000-4000-8000-000000000002"},
    ]
    assert card["refresh"]["action"]["data"] == {"card": "pending_list"}


def test_empty_pending_list() -> None:
    card = render_pending_list_card(PendingListView(context=CONTEXT, reviews=()))
    assert "You have no open access reviews." in texts(card)
    assert executes(card, "open_review") == []


def test_help_lists_the_commands() -> None:
    shown = " ".join(texts(render_help_card(HelpCardView(context=CONTEXT))))
    for command in ("**pending**", "**snooze**", "**help**"):
        assert command in shown


def test_message_about_a_review_leads_back_to_it() -> None:
    card = render_message_card(
        MessageCardView(
            context=CONTEXT,
            message=MessageKey.NOT_A_REVIEWER,
            kind=NoticeKind.WARNING,
            instance_id=INSTANCE_ID,
            page=3,
        )
    )
    assert "You are not a reviewer of this item any more." in texts(card)
    back = {"card": "review", "instanceId": INSTANCE_ID, "page": 3}
    assert [a["data"] for a in executes(card, "refresh")] == [back]
    assert card["refresh"]["action"]["data"] == back
    assert of_type(card, "Container")[0]["style"] == "warning"


def test_message_parameters_are_formatted_and_escaped() -> None:
    snoozed = render_message_card(
        MessageCardView(
            context=CONTEXT, message=MessageKey.SNOOZED, at=datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
        )
    )
    assert "OK — I will remind you again: Thu 3 Dec, 09:00." in texts(snoozed)
    nudged = render_message_card(
        MessageCardView(
            context=CONTEXT, message=MessageKey.NUDGE_SENT, detail="[Alex](https://evil.com)"
        )
    )
    # The name is shown exactly, in a TextRun (never parsed): no link, no look-alike characters.
    assert "Reminder sent to [Alex](https://evil.com)." in texts(nudged)
    (block,) = of_type(nudged, "RichTextBlock")
    assert [run["text"] for run in block["inlines"]] == [
        "Reminder sent to [Alex](https://evil.com)."
    ]


@pytest.mark.parametrize(
    "key", [MessageKey.SNOOZED, MessageKey.NUDGE_SENT, MessageKey.ALREADY_DECIDED]
)
def test_message_missing_its_parameter_is_refused(key: MessageKey) -> None:
    with pytest.raises(ValueError, match="needs"):
        render_message_card(MessageCardView(context=CONTEXT, message=key))


@pytest.mark.parametrize("key", list(MessageKey))
def test_every_message_renders(key: MessageKey) -> None:
    card = render_message_card(MessageCardView(context=CONTEXT, message=key, detail="Alex", at=NOW))
    assert len(texts(card)) == 2


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        (SignInReason.SIGN_IN_REQUIRED, "sign in to Microsoft Entra ID once"),
        (SignInReason.CONSENT_REQUIRED, "needs your consent"),
        (SignInReason.MFA_REQUIRED, "multi-factor authentication"),
    ],
)
def test_signin_card_links_to_sign_in_and_retries_with_refresh(
    reason: SignInReason, words: str
) -> None:
    url = "https://login.microsoftonline.com/contoso/oauth2/v2.0/authorize?client_id=x"
    card = render_signin_card(
        SignInCardView(context=CONTEXT, reason=reason, sign_in_url=url, instance_id=INSTANCE_ID)
    )
    assert any(words in value for value in texts(card))
    (link,) = [a for a in body_actions(card) if a["type"] == "Action.OpenUrl"]
    assert link["url"] == url
    (retry,) = executes(card, "refresh")
    assert retry["data"] == {"card": "review", "instanceId": INSTANCE_ID, "page": 0}


def test_views_refuse_naive_times_and_bad_values() -> None:
    naive = datetime(2026, 12, 2, 13, 30)
    with pytest.raises(ValueError, match="timezone-aware"):
        CardContext(user_id=VIEWER_MRI, now=naive)
    with pytest.raises(ValueError, match="user_id"):
        CardContext(user_id="", now=NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        review_view(due=naive)
    with pytest.raises(ValueError, match="page"):
        review_view(page=-1)
    with pytest.raises(ValueError, match="https"):
        review_view(my_access_url="javascript:alert(1)")
    with pytest.raises(ValueError, match="https"):
        SignInCardView(
            context=CONTEXT, reason=SignInReason.MFA_REQUIRED, sign_in_url="http://login.example"
        )
    with pytest.raises(ValueError, match="needs a decision"):
        ItemView(item_id="i", principal=PrincipalView(display_name="x"), state=ItemState.DECIDED)
    with pytest.raises(ValueError, match="item_id"):
        ItemView(item_id="", principal=PrincipalView(display_name="x"))


def test_rendering_is_deterministic_and_pure() -> None:
    view = review_view()
    assert render_escalation_card(escalation_view()) == render_escalation_card(escalation_view())
    from cards import render_review_card

    first = render_review_card(view)
    assert render_review_card(view) == first
    assert view == review_view()  # the view was not changed


# The bot's verb table follows these shapes (cards/__init__.py). Every action on every card in
# every scenario must match one of them exactly.
_DATA_SHAPES: dict[str, list[set[str]]] = {
    Verb.REFRESH: [
        {"card", "instanceId", "page"},
        {"card", "instanceId", "reviewerId"},
        {"card"},
    ],
    Verb.PAGE: [{"card", "instanceId", "page"}],
    Verb.DECIDE: [
        {"instanceId", "itemId", "decision", "page"},
        {"instanceId", "itemId", "decision", "stageId", "page"},
    ],
    Verb.DECIDE_BULK: [{"instanceId", "decision", "page"}],
    Verb.ACCEPT_RECOMMENDATIONS_PREVIEW: [{"instanceId", "page"}],
    Verb.ACCEPT_RECOMMENDATIONS: [{"instanceId", "page"}],
    Verb.SNOOZE: [{"instanceId", "until"}],
    Verb.NUDGE: [{"instanceId", "reviewerId"}],
    Verb.OPEN_REVIEW: [{"instanceId"}],
}


def _executes(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [node for node in walk(card) if node.get("type") == "Action.Execute"]


def _contract_violations(card: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    refresh = card["refresh"]
    if refresh["action"]["verb"] != "refresh" or len(refresh["userIds"]) != 1:
        problems.append(f"refresh: {refresh}")
    for action in _executes(card):
        verb, data = action["verb"], action["data"]
        if set(data) not in _DATA_SHAPES.get(verb, []):
            problems.append(f"{verb}: {sorted(data)}")
        elif verb in (Verb.DECIDE, Verb.DECIDE_BULK) and data["decision"] not in {
            "Approve",
            "Deny",
            "DontKnow",
        }:
            problems.append(f"{verb}: decision {data['decision']}")
        elif "card" in data and data["card"] not in {
            "review",
            "reminder",
            "escalation",
            "pending_list",
            "help",
        }:
            problems.append(f"{verb}: card {data['card']}")
    return problems


@pytest.mark.parametrize("name", sorted(scenarios()))
def test_every_action_follows_the_documented_contract(name: str) -> None:
    assert _contract_violations(scenarios()[name]()) == []


def test_contract_check_catches_a_wrong_shape() -> None:
    card = scenarios()["review_pending"]()
    assert _contract_violations(card) == []
    decide = executes(card, "decide")[0]
    decide["data"]["decision"] = "Maybe"
    executes(card, "decide_bulk")[0]["data"]["extra"] = 1
    card["refresh"]["userIds"] = []
    assert len(_contract_violations(card)) == 3
