"""The manager's escalation card and the reviewer's pending-list card."""

from __future__ import annotations

from typing import Any

from microsoft_teams.cards import (
    Action,
    ActionSet,
    CardElement,
    Column,
    ColumnSet,
    OpenUrlAction,
)

from .actions import CardKind, Verb, execute, refresh_definition
from .layout import CARD_BUDGET_BYTES, build_card, card_size_bytes, dump, pack, text
from .models import EscalationCardView, PendingListView, PendingReviewView
from .rich import Run, rich, user_text
from .strings import S, Strings

__all__ = ["render_escalation_card", "render_pending_list_card"]

# Entra's limits for these names are 256 characters: real names are never cut. The byte bounds
# keep a card of pathological text (all emoji) under Teams' size limit.
NAME_MAX_CHARS = 256
REVIEW_NAME_MAX_CHARS = 256
RESOURCE_MAX_CHARS = 256
NAME_MAX_JSON_BYTES = 1536

# Reviews listed on the pending card; more are summarised with a pointer to My Access.
PENDING_MAX_LISTED = 25
_PACKING_SLACK_BYTES = 512


def render_escalation_card(view: EscalationCardView) -> dict[str, Any]:
    """ "Alex has 14 decisions due Friday": who, which review, how many, when, and a Nudge button.

    Once ``view.nudged_at`` is set the button gives way to "Nudge sent to Alex · 14:02".
    """
    st = Strings(view.context.locale, view.context.time_zone)
    now = view.context.now
    # A reviewer whose name the directory did not give is "a reviewer", in the manager's words.
    who: str = (
        user_text(view.reviewer_name, max_chars=NAME_MAX_CHARS, max_json_bytes=NAME_MAX_JSON_BYTES)
        if view.reviewer_name.strip()
        else st.text(S.UNKNOWN_REVIEWER)
    )
    review_name = user_text(
        view.review_name, max_chars=REVIEW_NAME_MAX_CHARS, max_json_bytes=NAME_MAX_JSON_BYTES
    )
    body: list[CardElement | dict[str, Any]] = [
        text(st.text(S.ESCALATION_TITLE), size="Medium", weight="Bolder"),
        rich(
            st.plural_runs(
                S.ESCALATION_LINE, view.pending_count, who=who, due=st.due_short(view.due, now)
            )
        ),
        rich(st.runs(S.ESCALATION_REVIEW, name=review_name), spacing="Small"),
    ]
    if view.resource_name:
        resource = user_text(
            view.resource_name, max_chars=RESOURCE_MAX_CHARS, max_json_bytes=NAME_MAX_JSON_BYTES
        )
        body.append(
            rich(st.runs(S.REVIEW_RESOURCE, resource=resource), subtle=True, spacing="None")
        )
    decided = max(view.total_count - view.pending_count, 0)
    body.append(
        text(
            st.text(S.ESCALATION_PROGRESS, decided=decided, total=view.total_count), spacing="None"
        )
    )
    days_left = st.days_between(now, view.due)
    body.append(
        text(
            st.text(
                S.ESCALATION_DUE, date=st.date(view.due), relative=st.due_relative(view.due, now)
            ),
            weight="Bolder" if days_left <= 1 else None,
            spacing="None",
        )
    )
    actions: list[Action] = []
    if view.nudged_at is not None:
        body.append(
            rich(
                st.runs(S.NUDGED_AT, who=who, when=st.when(view.nudged_at, now)),
                weight="Bolder",
            )
        )
    else:
        actions.append(
            execute(
                st.text(S.NUDGE),
                Verb.NUDGE,
                {"instanceId": view.instance_id, "reviewerId": view.reviewer_id},
                style="positive",
            )
        )
    return build_card(
        body=body,
        actions=actions,
        refresh=refresh_definition(
            view.context.user_id,
            {
                "card": CardKind.ESCALATION.value,
                "instanceId": view.instance_id,
                "reviewerId": view.reviewer_id,
            },
        ),
        lang=st.locale,
        fallback_text=st.plural(
            S.ESCALATION_LINE, view.pending_count, who=who, due=st.due_short(view.due, now)
        ),
    )


def _pending_entry(st: Strings, review: PendingReviewView, view: PendingListView) -> ColumnSet:
    name = user_text(
        review.review_name, max_chars=REVIEW_NAME_MAX_CHARS, max_json_bytes=NAME_MAX_JSON_BYTES
    )
    lines: list[CardElement] = [rich([Run(name, bold=True)])]
    if review.resource_name:
        resource = user_text(
            review.resource_name, max_chars=RESOURCE_MAX_CHARS, max_json_bytes=NAME_MAX_JSON_BYTES
        )
        lines.append(
            rich(
                st.runs(S.REVIEW_RESOURCE, resource=resource),
                size="Small",
                subtle=True,
                spacing="None",
            )
        )
    days_left = st.days_between(view.context.now, review.due)
    lines.append(
        text(
            st.text(
                S.PENDING_LINE,
                pending=review.pending_count,
                total=review.total_count,
                due=st.due_short(review.due, view.context.now),
            ),
            size="Small",
            weight="Bolder" if days_left <= 1 else None,
            spacing="None",
        )
    )
    open_button = execute(
        st.text(S.PENDING_OPEN), Verb.OPEN_REVIEW, {"instanceId": review.instance_id}
    )
    # The text stretches; the button sits on the right of it.
    return ColumnSet(
        separator=True,
        columns=[
            Column(width="stretch", items=lines),
            Column(
                width="auto",
                vertical_content_alignment="Center",
                items=[ActionSet(actions=[open_button])],
            ),
        ],
    )


def render_pending_list_card(view: PendingListView) -> dict[str, Any]:
    """The viewer's open reviews with counts, each with an Open button (``open_review``)."""
    st = Strings(view.context.locale, view.context.time_zone)
    body: list[CardElement | dict[str, Any]] = [
        text(st.text(S.PENDING_TITLE), size="Medium", weight="Bolder")
    ]
    actions: list[Action] = [OpenUrlAction(title=st.text(S.OPEN_MY_ACCESS), url=view.my_access_url)]
    refresh = refresh_definition(view.context.user_id, {"card": CardKind.PENDING_LIST.value})
    if not view.reviews:
        body.append(text(st.text(S.PENDING_NONE)))
    else:
        entries = [dump(_pending_entry(st, review, view)) for review in view.reviews]
        more_line = text(st.plural(S.PENDING_MORE, len(entries)), size="Small", subtle=True)
        fixed = card_size_bytes(
            build_card(
                body=[*body, more_line],
                actions=actions,
                refresh=refresh,
                lang=st.locale,
                fallback_text=st.text(S.PENDING_TITLE),
                check_size=False,
            )
        )
        listed = pack(
            [card_size_bytes(entry) for entry in entries],
            budget_bytes=CARD_BUDGET_BYTES - fixed - _PACKING_SLACK_BYTES,
            max_per_page=PENDING_MAX_LISTED,
        )[0]
        body.extend(entries[index] for index in listed)
        if len(listed) < len(entries):
            body.append(
                text(
                    st.plural(S.PENDING_MORE, len(entries) - len(listed)), size="Small", subtle=True
                )
            )
    return build_card(
        body=body,
        actions=actions,
        refresh=refresh,
        lang=st.locale,
        fallback_text=st.text(S.PENDING_TITLE),
    )
