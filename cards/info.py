"""The help card, the message card and the sign-in card."""

from __future__ import annotations

from typing import Any

from microsoft_teams.cards import Action, ActionSet, CardElement, OpenUrlAction

from .actions import CardKind, Verb, execute, refresh_definition
from .layout import build_card, notice_container, text
from .messages import message_runs, message_text
from .models import (
    HelpCardView,
    MessageCardView,
    NoticeKind,
    SignInCardView,
    SignInReason,
)
from .strings import S, Strings

__all__ = ["render_help_card", "render_message_card", "render_signin_card"]

_MESSAGE_TITLES = {
    NoticeKind.INFO: S.MESSAGE_TITLE_INFO,
    NoticeKind.SUCCESS: S.MESSAGE_TITLE_SUCCESS,
    NoticeKind.WARNING: S.MESSAGE_TITLE_WARNING,
    NoticeKind.ERROR: S.MESSAGE_TITLE_ERROR,
}

_SIGNIN_TEXT = {
    SignInReason.SIGN_IN_REQUIRED: S.SIGNIN_SIGN_IN_REQUIRED,
    SignInReason.CONSENT_REQUIRED: S.SIGNIN_CONSENT_REQUIRED,
    SignInReason.MFA_REQUIRED: S.SIGNIN_MFA_REQUIRED,
}


def _return_data(instance_id: str | None, page: int) -> dict[str, Any]:
    """Where a transient card goes back to: the review it is about, else the pending list."""
    if instance_id is None:
        return {"card": CardKind.PENDING_LIST.value}
    return {"card": CardKind.REVIEW.value, "instanceId": instance_id, "page": page}


def render_help_card(view: HelpCardView) -> dict[str, Any]:
    """What the bot does and its chat commands: ``pending``, ``snooze``, ``help``."""
    st = Strings(view.context.locale, view.context.time_zone)
    body: list[CardElement | dict[str, Any]] = [
        text(st.text(S.HELP_TITLE), size="Medium", weight="Bolder"),
        text(st.text(S.HELP_INTRO)),
        text(st.text(S.HELP_PENDING), spacing="Small"),
        text(st.text(S.HELP_SNOOZE), spacing="None"),
        text(st.text(S.HELP_HELP), spacing="None"),
        text(st.text(S.HELP_CARDS), size="Small", subtle=True),
    ]
    return build_card(
        body=body,
        actions=[OpenUrlAction(title=st.text(S.OPEN_MY_ACCESS), url=view.my_access_url)],
        refresh=refresh_definition(view.context.user_id, {"card": CardKind.HELP.value}),
        lang=st.locale,
        fallback_text=st.text(S.HELP_TITLE),
    )


def render_message_card(view: MessageCardView) -> dict[str, Any]:
    """One outcome or error ("You are not a reviewer of this item any more").

    With ``instance_id`` the card offers "Back to the review" and its refresh shows the review
    card again; without, the refresh shows the pending list.
    """
    st = Strings(view.context.locale, view.context.time_zone)
    message = message_runs(st, view.message, detail=view.detail, at=view.at, now=view.context.now)
    body: list[CardElement | dict[str, Any]] = [
        text(st.text(_MESSAGE_TITLES[view.kind]), weight="Bolder"),
        notice_container(view.kind, message),
    ]
    back = _return_data(view.instance_id, view.page)
    actions: list[Action] = []
    if view.instance_id is not None:
        actions.append(execute(st.text(S.BACK_TO_REVIEW), Verb.REFRESH, back))
    return build_card(
        body=body,
        actions=actions,
        refresh=refresh_definition(view.context.user_id, back),
        lang=st.locale,
        fallback_text=message_text(
            st, view.message, detail=view.detail, at=view.at, now=view.context.now
        ),
    )


def render_signin_card(view: SignInCardView) -> dict[str, Any]:
    """The non-SSO sign-in card for consent or MFA: a sign-in link, then "try again".

    "Try again" is a ``refresh`` back to the review (or the pending list), which makes the bot
    look for the reviewer's token again.
    """
    st = Strings(view.context.locale, view.context.time_zone)
    back = _return_data(view.instance_id, view.page)
    # One button per row: "I've signed in — try again" is long in most languages, and two
    # buttons side by side would not fit a phone.
    body: list[CardElement | dict[str, Any]] = [
        text(st.text(S.SIGNIN_TITLE), size="Medium", weight="Bolder"),
        text(st.text(_SIGNIN_TEXT[view.reason])),
        ActionSet(
            actions=[
                OpenUrlAction(
                    title=st.text(S.SIGNIN_BUTTON), url=view.sign_in_url, style="positive"
                )
            ]
        ),
        text(st.text(S.SIGNIN_NOTE), size="Small", subtle=True),
        ActionSet(actions=[execute(st.text(S.SIGNIN_DONE), Verb.REFRESH, back)]),
    ]
    return build_card(
        body=body,
        actions=[],
        refresh=refresh_definition(view.context.user_id, back),
        lang=st.locale,
        fallback_text=st.text(_SIGNIN_TEXT[view.reason]),
    )
