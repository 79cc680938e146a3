"""View models for the card tests: one builder per card and state, deterministic."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from cards import (
    CardContext,
    Decision,
    DefaultDecision,
    EarlierDecisionView,
    EscalationCardView,
    HelpCardView,
    ItemState,
    ItemView,
    MessageCardView,
    MessageKey,
    Notice,
    NoticeKind,
    PendingListView,
    PendingReviewView,
    PrincipalKind,
    PrincipalView,
    Recommendation,
    RecommendationReason,
    ReviewCardView,
    ReviewStatus,
    SignInCardView,
    SignInReason,
    StageView,
    UserType,
    render_accept_preview_card,
    render_escalation_card,
    render_help_card,
    render_message_card,
    render_pending_list_card,
    render_reminder_card,
    render_review_card,
    render_signin_card,
)

# Wednesday 2 December 2026, 13:30 UTC = 14:30 in Berlin.
NOW = datetime(2026, 12, 2, 13, 30, tzinfo=UTC)
INSTANCE_ID = "2d56c364-5c9a-4a7e-9d6e-3f0f7c1a9b01"
VIEWER_MRI = "29:1Xk3abcDEFghiJKLmnoPQRstuVWXyz0123456789"
CONTEXT = CardContext(user_id=VIEWER_MRI, now=NOW, time_zone="Europe/Berlin", locale="en-GB")
DUE = datetime(2026, 12, 5, 16, 0, tzinfo=UTC)  # Sat 5 Dec, in 3 days


def item_id(number: int) -> str:
    return f"c7de8fba-0000-4000-8000-{number:012d}"


def user_item(number: int, name: str, **changes: Any) -> ItemView:
    """A pending member user item; ``changes`` override any field."""
    item = ItemView(
        item_id=item_id(number),
        principal=PrincipalView(
            display_name=name,
            user_principal_name=f"{name.split()[0].lower()}@contoso.com",
            user_type=UserType.MEMBER,
        ),
        resource_name="Building security",
        recommendation=Recommendation.APPROVE,
        recommendation_reason=RecommendationReason.RECENT_SIGN_IN,
        last_sign_in=NOW - timedelta(days=2, hours=3),
    )
    return replace(item, **changes)


def stale_guest(number: int, name: str, **changes: Any) -> ItemView:
    """A guest with no sign-in for 94 days, recommended for denial."""
    item = user_item(
        number,
        name,
        principal=PrincipalView(
            display_name=name,
            user_principal_name=f"{name.split()[0].lower()}_fabrikam.com#EXT#@contoso.onmicrosoft.com",
            user_type=UserType.GUEST,
        ),
        recommendation=Recommendation.DENY,
        recommendation_reason=RecommendationReason.NO_RECENT_SIGN_IN,
        last_sign_in=NOW - timedelta(days=94),
    )
    return replace(item, **changes)


def app_item(number: int, name: str, **changes: Any) -> ItemView:
    item = ItemView(
        item_id=item_id(number),
        principal=PrincipalView(
            display_name=name,
            kind=PrincipalKind.SERVICE_PRINCIPAL,
            app_id="00000003-0000-0ff1-ce00-000000000000",
        ),
        resource_name="Finance SharePoint",
        recommendation=Recommendation.NO_INFO,
    )
    return replace(item, **changes)


def decided(item: ItemView, decision: Decision, by: str | None, *, me: bool = False) -> ItemView:
    return replace(
        item,
        state=ItemState.DECIDED,
        decision=decision,
        decided_by=by,
        decided_by_viewer=me,
        decided_at=datetime(2026, 12, 2, 13, 2, tzinfo=UTC),
    )


def base_items() -> tuple[ItemView, ...]:
    return (
        user_item(1, "Adele Vance"),
        stale_guest(2, "Rob Young"),
        app_item(3, "Payroll Connector"),
        user_item(
            4,
            "Lynne Robbins",
            recommendation=Recommendation.NO_INFO,
            recommendation_reason=None,
            last_sign_in=None,
        ),
    )


def review_view(**changes: Any) -> ReviewCardView:
    view = ReviewCardView(
        context=CONTEXT,
        instance_id=INSTANCE_ID,
        review_name="Quarterly review: Building security members",
        due=DUE,
        items=base_items(),
        resource_name="Building security",
        default_decision=DefaultDecision.NONE,
        auto_apply=False,
    )
    return replace(view, **changes)


def partly_decided_items() -> tuple[ItemView, ...]:
    items = base_items()
    return (
        decided(items[0], Decision.APPROVE, "Megan Bowen", me=True),
        decided(
            replace(items[1], justification="Left the project in August."),
            Decision.DENY,
            "Megan Bowen",
        ),
        items[2],
        items[3],
    )


def multistage_items() -> tuple[ItemView, ...]:
    items = base_items()
    return tuple(
        replace(
            item,
            stage_id="2",
            earlier_decisions=(
                EarlierDecisionView(
                    stage_number=1,
                    decision=Decision.APPROVE if index % 2 == 0 else None,
                    decided_by="Alex Wilber" if index % 2 == 0 else None,
                    justification="Still on the team" if index % 2 == 0 else None,
                ),
            ),
        )
        for index, item in enumerate(items[:2])
    )


def many_items(count: int) -> tuple[ItemView, ...]:
    return tuple(
        stale_guest(number, f"Guest {number:03d}")
        if number % 3 == 0
        else user_item(number, f"Member {number:03d}")
        for number in range(count)
    )


CardFactory = Callable[[], dict[str, Any]]


def scenarios(context: CardContext = CONTEXT) -> dict[str, CardFactory]:
    """Every card and state with a golden file, by golden name; ``context`` is the viewer's (the
    goldens use :data:`CONTEXT`; other locales render the same states in other languages)."""
    items = base_items()
    review = functools.partial(review_view, context=context)
    manager = replace(context, user_id="29:manager-mri")
    return {
        "review_pending": lambda: render_review_card(review()),
        "review_partly_decided": lambda: render_review_card(review(items=partly_decided_items())),
        "review_all_done": lambda: render_review_card(
            review(
                items=tuple(
                    decided(item, Decision.APPROVE, "Megan Bowen", me=True) for item in items
                )
            )
        ),
        "review_ended": lambda: render_review_card(
            review(
                items=partly_decided_items(),
                status=ReviewStatus.ENDED,
                due=NOW - timedelta(days=1),
                default_decision=DefaultDecision.DENY,
                auto_apply=True,
            )
        ),
        "review_saving": lambda: render_review_card(
            review(
                items=(
                    replace(items[0], state=ItemState.SAVING, decision=Decision.APPROVE),
                    replace(items[1], state=ItemState.SAVING, decision=Decision.DENY),
                    items[2],
                ),
                notice=Notice(kind=NoticeKind.INFO, message=MessageKey.SAVING),
            )
        ),
        "review_error": lambda: render_review_card(
            review(
                items=(
                    replace(
                        items[0],
                        state=ItemState.FAILED,
                        decision=Decision.APPROVE,
                        error=MessageKey.THROTTLED,
                    ),
                    items[1],
                ),
                notice=Notice(kind=NoticeKind.ERROR, message=MessageKey.DECISION_FAILED),
            )
        ),
        "review_justification_required": lambda: render_review_card(
            review(
                justification_required=True,
                default_decision=DefaultDecision.DENY,
                auto_apply=True,
                instructions="Deny anyone who left the building team.",
            )
        ),
        "review_multistage": lambda: render_review_card(
            review(items=multistage_items(), stage=StageView(stage_id="2", number=2, count=3))
        ),
        "review_page_2": lambda: render_review_card(review(items=many_items(25), page=1)),
        "review_us_locale": lambda: render_review_card(
            review(
                context=replace(context, locale="en-US", time_zone="America/New_York"),
                items=partly_decided_items(),
            )
        ),
        "accept_preview": lambda: render_accept_preview_card(review()),
        "accept_preview_nothing": lambda: render_accept_preview_card(review(items=(items[2],))),
        "reminder": lambda: render_reminder_card(
            review(items=partly_decided_items(), due=NOW + timedelta(days=1))
        ),
        "escalation": lambda: render_escalation_card(escalation_view(context=manager)),
        "escalation_nudged": lambda: render_escalation_card(
            escalation_view(context=manager, nudged_at=datetime(2026, 12, 2, 13, 2, tzinfo=UTC))
        ),
        "pending_list": lambda: render_pending_list_card(pending_view(context=context)),
        "pending_list_empty": lambda: render_pending_list_card(
            PendingListView(context=context, reviews=())
        ),
        "help": lambda: render_help_card(HelpCardView(context=context)),
        "message_not_reviewer": lambda: render_message_card(
            MessageCardView(
                context=context,
                message=MessageKey.NOT_A_REVIEWER,
                kind=NoticeKind.WARNING,
                instance_id=INSTANCE_ID,
                page=0,
            )
        ),
        "message_snoozed": lambda: render_message_card(
            MessageCardView(
                context=context,
                message=MessageKey.SNOOZED,
                kind=NoticeKind.SUCCESS,
                at=datetime(2026, 12, 3, 8, 0, tzinfo=UTC),
            )
        ),
        "signin_consent": lambda: render_signin_card(
            SignInCardView(
                context=context,
                reason=SignInReason.CONSENT_REQUIRED,
                sign_in_url="https://login.microsoftonline.com/common/oauth2/v2.0/authorize?x=1",
                instance_id=INSTANCE_ID,
            )
        ),
        "signin_mfa": lambda: render_signin_card(
            SignInCardView(
                context=context,
                reason=SignInReason.MFA_REQUIRED,
                sign_in_url="https://login.microsoftonline.com/common/oauth2/v2.0/authorize?x=2",
            )
        ),
    }


def escalation_view(**changes: Any) -> EscalationCardView:
    view = EscalationCardView(
        context=replace(CONTEXT, user_id="29:manager-mri"),
        instance_id=INSTANCE_ID,
        review_name="Quarterly review: Building security members",
        reviewer_id="3b8c2f1e-1111-4a2b-9c3d-5e6f7a8b9c0d",
        reviewer_name="Alex Wilber",
        pending_count=14,
        total_count=18,
        due=DUE - timedelta(days=1, hours=-6),  # Friday
        resource_name="Building security",
    )
    return replace(view, **changes)


def pending_view(**changes: Any) -> PendingListView:
    view = PendingListView(
        context=CONTEXT,
        reviews=(
            PendingReviewView(
                instance_id=INSTANCE_ID,
                review_name="Quarterly review: Building security members",
                pending_count=2,
                total_count=4,
                due=DUE,
                resource_name="Building security",
            ),
            PendingReviewView(
                instance_id="7f3e0000-0000-4000-8000-000000000002",
                review_name="Guest access to Microsoft 365 groups",
                pending_count=6,
                total_count=6,
                due=NOW + timedelta(hours=5),
            ),
        ),
    )
    return replace(view, **changes)
