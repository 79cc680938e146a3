"""Adaptive Cards for the access review bot: pure functions from view models to card dicts.

Each ``render_*`` function takes one frozen view model (:mod:`cards.models`) and returns the card
as a JSON-ready ``dict`` (Adaptive Card 1.5, built with ``microsoft-teams-cards``). No I/O, no
clock, no globals: the view carries ``now``, the viewer's time zone and locale. Every card stays
under :data:`CARD_BUDGET_BYTES` (24 KB, leaving room for the activity within Teams' ~28 KB limit).

Cards
=====

========================================  ============================================================
``render_review_card(ReviewCardView)``    per review and reviewer: items with evidence and buttons,
                                          progress, due date, paging, bulk, accept recommendations
``render_reminder_card(ReviewCardView)``  the same items, headed "6 of 18 left, due tomorrow",
                                          plus two ``snooze`` buttons
``render_accept_preview_card(ReviewCardView)``  who would be denied before accepting recommendations
``render_escalation_card(EscalationCardView)``  to a manager: "Alex has 14 decisions due Friday"
``render_pending_list_card(PendingListView)``   the viewer's open reviews, each with "Open"
``render_help_card(HelpCardView)``        what the bot does; commands ``pending``, ``snooze``, ``help``
``render_message_card(MessageCardView)``  one outcome or error from :class:`MessageKey`
``render_signin_card(SignInCardView)``    non-SSO sign-in for consent / MFA
``review_page_count(ReviewCardView)``     number of pages of the review card
========================================  ============================================================

Review card states follow from the view: pending (no item decided), partly decided, all done
("Thanks — nothing left": no item pending, failed or saving), review ended
(``status=ReviewStatus.ENDED``: no buttons, what happened to undecided items), saving (items in
``ItemState.SAVING`` show "Saving…" and no buttons) and error (``ItemState.FAILED`` items show why
and offer the buttons again; ``notice`` puts a banner on top).

Action contract (what comes back to the bot)
============================================

Every button is an ``Action.Execute``; Teams sends an ``adaptiveCard/action`` invoke whose
``value.action.verb`` is the verb and ``value.action.data`` is the data below merged with the
card's input values (only for actions that collect inputs). All data is untrusted: the bot checks
the clicking user against the store for every instance and item named.

=================================  ==================================================================
verb                               data
=================================  ==================================================================
``refresh``                        ``{"card": "review"|"reminder", "instanceId", "page"}``;
                                   ``{"card": "escalation", "instanceId", "reviewerId"}``;
                                   ``{"card": "pending_list"}``; ``{"card": "help"}``.
                                   Sent automatically (``trigger: automatic``) for the users in
                                   ``refresh.userIds`` and by "Cancel" / "Back to the review" /
                                   "I've signed in". Answer with the current card of that kind.
                                   Message, sign-in and preview cards refresh to the review card
                                   they came from (or to the pending list).
``page``                           ``{"card": "review"|"reminder", "instanceId", "page"}`` —
                                   ``page`` is zero-based; render that page (it is clamped).
``decide``                         ``{"instanceId", "itemId", "decision", "stageId"?, "page"}`` —
                                   ``decision`` is ``"Approve"|"Deny"|"DontKnow"`` (Graph's
                                   values); ``stageId`` only in multi-stage reviews. When the review
                                   requires a reason, the buttons have ``associatedInputs: auto``,
                                   the client refuses to send without ``justification`` (input id
                                   ``justification``, ≤ 500 chars — enforce it again), and the
                                   inputs (reason and ``select_*``) arrive merged into data.
                                   Otherwise the buttons have ``associatedInputs: none``.
``decide_bulk``                    ``{"instanceId", "decision", "page"}`` plus inputs
                                   ``select_<itemId>: "true"|"false"`` for the open items of the
                                   page and ``justification`` when required. Decide the items
                                   whose toggle is ``"true"`` (:func:`selected_item_ids`).
``accept_recommendations_preview`` ``{"instanceId", "page"}`` — answer with
                                   ``render_accept_preview_card``.
``accept_recommendations``         ``{"instanceId", "page"}`` — the confirmed accept.
``snooze``                         ``{"instanceId", "until": "tomorrow_0900"|"4h"}`` (reminder card).
``nudge``                          ``{"instanceId", "reviewerId"}`` (escalation card; ``reviewerId``
                                   is the reviewer's Entra object id).
``open_review``                    ``{"instanceId"}`` (pending list) — answer with the review card
                                   with ``back_to_list``: it offers "Back to my reviews"
                                   (``refresh`` ``{"card": "pending_list"}``), and each of its
                                   actions' data carries ``"back": "pending_list"`` so the card
                                   the bot answers with offers it again.
=================================  ==================================================================

Every card has ``refresh: {action: Action.Execute refresh, userIds: [context.user_id]}`` where
``user_id`` is the viewer's Teams user id (MRI). Navigation and other actions that need no input
carry ``associatedInputs: none`` so a required reason never blocks them.

Text and safety
===============

Strings come from :mod:`cards.strings` (English, where keys are added) and
:mod:`cards.translations` (German, French, Spanish, Brazilian Portuguese, Italian, Dutch, Japanese,
Simplified Chinese; per-key fallback to English); :mod:`cards.i18n` reads the viewer's locale tag
(any region of those languages) and holds Babel's data for dates, times, relative days, plurals
and numbers, shown in the viewer's zone. A card's ``lang`` is the locale it was rendered in. Text
that came from people (names, UPNs, review and resource
names, reasons) is put into ``RichTextBlock``/``TextRun``, which no host parses as markdown, and
shown exactly (:mod:`cards.rich`); ``TextBlock`` text is only ever our own strings.
"""

from .actions import (
    BACK_KEY,
    JUSTIFICATION_INPUT_ID,
    JUSTIFICATION_MAX_CHARS,
    SELECT_INPUT_PREFIX,
    SELECT_VALUE_OFF,
    SELECT_VALUE_ON,
    CardKind,
    SnoozeChoice,
    Verb,
    select_input_id,
    selected_item_ids,
)
from .escalation import render_escalation_card, render_pending_list_card
from .info import render_help_card, render_message_card, render_signin_card
from .layout import (
    CARD_BUDGET_BYTES,
    CARD_VERSION,
    MAX_CARD_BYTES,
    CardTooLargeError,
    card_size_bytes,
)
from .models import (
    DEFAULT_PAGE_SIZE,
    MY_ACCESS_REVIEWS_URL,
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
)
from .review import (
    render_accept_preview_card,
    render_reminder_card,
    render_review_card,
    review_page_count,
)

__all__ = [
    "BACK_KEY",
    "CARD_BUDGET_BYTES",
    "CARD_VERSION",
    "DEFAULT_PAGE_SIZE",
    "JUSTIFICATION_INPUT_ID",
    "JUSTIFICATION_MAX_CHARS",
    "MAX_CARD_BYTES",
    "MY_ACCESS_REVIEWS_URL",
    "SELECT_INPUT_PREFIX",
    "SELECT_VALUE_OFF",
    "SELECT_VALUE_ON",
    "CardContext",
    "CardKind",
    "CardTooLargeError",
    "Decision",
    "DefaultDecision",
    "EarlierDecisionView",
    "EscalationCardView",
    "HelpCardView",
    "ItemState",
    "ItemView",
    "MessageCardView",
    "MessageKey",
    "Notice",
    "NoticeKind",
    "PendingListView",
    "PendingReviewView",
    "PrincipalKind",
    "PrincipalView",
    "Recommendation",
    "RecommendationReason",
    "ReviewCardView",
    "ReviewStatus",
    "SignInCardView",
    "SignInReason",
    "SnoozeChoice",
    "StageView",
    "UserType",
    "Verb",
    "card_size_bytes",
    "render_accept_preview_card",
    "render_escalation_card",
    "render_help_card",
    "render_message_card",
    "render_pending_list_card",
    "render_reminder_card",
    "render_review_card",
    "render_signin_card",
    "review_page_count",
    "select_input_id",
    "selected_item_ids",
]
