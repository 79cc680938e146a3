"""The cards' words: string keys, the English table, and per-viewer formatting (:class:`Strings`).

Every user-visible word comes from a table keyed by locale: English (``en``, here) is complete and
each translation (:mod:`cards.translations`, one module per language) defines every key English
has, with the same placeholders (tests check both, so a key added here without its translations
fails a test that names the language and the key). A table entry is either a ``str.format``
template or, for counted phrases, a mapping from CLDR plural category (``one``, ``other``, …) to
template; the viewer's language picks the category (Babel's plural rules).

Templates are trusted text and may use ``**bold**``. Lines that hold text from people are built with
:meth:`Strings.runs`: the template's words become runs (its ``**`` as bold) and each value from
people (:class:`~cards.rich.UserText`) a run of its own, shown exactly (see :mod:`cards.rich`).

Dates, times, weekday names, relative days ("in 3 days") and numbers come from Babel (CLDR) in the
viewer's locale and are shown in the viewer's time zone (:mod:`zoneinfo`); :mod:`cards.i18n` says
which locales are supported and how a tag is read.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .i18n import DEFAULT_LOCALE, LocaleKit, locale_kit
from .rich import Run, runs_from

__all__ = ["EN", "S", "Strings", "resolve_zone", "tables"]

logger = logging.getLogger(__name__)


class S(StrEnum):
    """String keys. The English table must define every one (a test checks)."""

    # Due dates (dates, times and "in 3 days" themselves come from Babel).
    DUE_TODAY = "due.today"
    DUE_TOMORROW = "due.tomorrow"
    DUE_OVERDUE = "due.overdue"  # plural, {n}
    DUE_LINE = "due.line"  # {date} {relative}
    DUE_SHORT_TODAY = "due.short_today"
    DUE_SHORT_TOMORROW = "due.short_tomorrow"
    DUE_SHORT_WEEKDAY = "due.short_weekday"  # {weekday}
    DUE_SHORT_DATE = "due.short_date"  # {date}
    ENDED_ON = "due.ended_on"  # {date}

    # Review card.
    REVIEW_TITLE = "review.title"  # {name}
    REVIEW_RESOURCE = "review.resource"  # {resource}
    STAGE = "review.stage"  # {number} {count}
    PROGRESS = "review.progress"  # {decided} {total}
    PROGRESS_SAVING = "review.progress_saving"  # plural, {n}
    ALL_DONE = "review.all_done"
    ALL_DONE_DETAIL = "review.all_done_detail"
    REVIEW_ENDED = "review.ended"
    # Where a review that is not open stands (Graph's instance status).
    REVIEW_NOT_STARTED = "review.status_not_started"
    REVIEW_STARTING = "review.status_starting"
    REVIEW_COMPLETING = "review.status_completing"
    REVIEW_AUTO_REVIEWING = "review.status_auto_reviewing"
    REVIEW_AUTO_REVIEWED = "review.status_auto_reviewed"
    REVIEW_APPLYING = "review.status_applying"
    REVIEW_APPLIED = "review.status_applied"
    REVIEW_NOT_OPEN = "review.status_not_open"
    # Short status labels (the status page).
    STATUS_NOT_STARTED = "status.not_started"
    STATUS_STARTING = "status.starting"
    STATUS_IN_PROGRESS = "status.in_progress"
    STATUS_COMPLETING = "status.completing"
    STATUS_COMPLETED = "status.completed"
    STATUS_AUTO_REVIEWING = "status.auto_reviewing"
    STATUS_AUTO_REVIEWED = "status.auto_reviewed"
    STATUS_APPLYING = "status.applying"
    STATUS_APPLIED = "status.applied"
    STATUS_DELETED = "status.deleted"
    STATUS_NOT_OPEN = "status.not_open"  # {status}
    NO_ITEMS = "review.no_items"
    INSTRUCTIONS = "review.instructions"  # {text}
    DEFAULT_NONE = "review.default_none"
    DEFAULT_APPROVE = "review.default_approve"
    DEFAULT_DENY = "review.default_deny"
    DEFAULT_RECOMMENDATION = "review.default_recommendation"
    AUTO_APPLY_ON = "review.auto_apply_on"
    AUTO_APPLY_OFF = "review.auto_apply_off"
    ENDED_DEFAULT_NONE = "review.ended_default_none"
    ENDED_DEFAULT_APPROVE = "review.ended_default_approve"
    ENDED_DEFAULT_DENY = "review.ended_default_deny"
    ENDED_DEFAULT_RECOMMENDATION = "review.ended_default_recommendation"
    JUSTIFICATION_LABEL = "review.justification_label"
    JUSTIFICATION_PLACEHOLDER = "review.justification_placeholder"
    JUSTIFICATION_ERROR = "review.justification_error"
    PAGE_INFO = "review.page_info"  # {page} {first} {last} {total}
    PREVIOUS = "review.previous"
    NEXT = "review.next"
    ACCEPT_RECOMMENDATIONS = "review.accept_recommendations"
    RECOMMENDATION_COUNTS = "review.recommendation_counts"  # {approve} {deny}
    OPEN_MY_ACCESS = "review.open_my_access"
    BULK_HINT = "review.bulk_hint"
    SELECT = "review.select"
    FALLBACK = "review.fallback"  # {name} {decided} {total}

    # One item.
    GUEST = "item.guest"
    MEMBER = "item.member"
    APPLICATION = "item.application"
    APP_ID = "item.app_id"  # {app_id}
    ON_RESOURCE = "item.on_resource"  # {resource}
    RECOMMENDATION_LINE = "item.recommendation_line"  # {recommendation}
    RECOMMENDATION_WITH_REASON = "item.recommendation_with_reason"  # {recommendation} {reason}
    RECOMMEND_APPROVE = "item.recommend_approve"
    RECOMMEND_DENY = "item.recommend_deny"
    NO_RECOMMENDATION = "item.no_recommendation"
    REASON_NO_RECENT_SIGN_IN = "item.reason_no_recent_sign_in"  # plural, {n}
    REASON_NEVER_SIGNED_IN = "item.reason_never_signed_in"
    REASON_RECENT_SIGN_IN = "item.reason_recent_sign_in"  # {ago}: "3 days ago"
    REASON_SIGNED_IN_TODAY = "item.reason_signed_in_today"
    REASON_PEER_OUTLIER = "item.reason_peer_outlier"
    REASON_ACCOUNT_DISABLED = "item.reason_account_disabled"
    LAST_SIGN_IN = "item.last_sign_in"  # {when}
    LAST_SIGN_IN_NEVER = "item.last_sign_in_never"
    APPROVE = "item.approve"
    DENY = "item.deny"
    DONT_KNOW = "item.dont_know"
    DECIDED_APPROVE = "item.decided_approve"  # {who}
    DECIDED_DENY = "item.decided_deny"
    DECIDED_DONT_KNOW = "item.decided_dont_know"
    DECIDED_BY_YOU = "item.decided_by_you"
    DECIDED_BY_UNKNOWN = "item.decided_by_unknown"
    WITH_TIME = "item.with_time"  # {text} {when}
    NOT_DECIDED = "item.not_decided"
    DECISION_REASON = "item.decision_reason"  # {text}
    SAVING_ITEM = "item.saving"  # {decision}
    FAILED_ITEM = "item.failed"  # {message}
    EARLIER_APPROVE = "item.earlier_approve"  # {stage} {who}
    EARLIER_DENY = "item.earlier_deny"
    EARLIER_DONT_KNOW = "item.earlier_dont_know"
    EARLIER_NOT_REVIEWED = "item.earlier_not_reviewed"  # {stage}
    EARLIER_REASON = "item.earlier_reason"  # {text}
    DECISION_NAME_APPROVE = "item.decision_name_approve"
    DECISION_NAME_DENY = "item.decision_name_deny"
    DECISION_NAME_DONT_KNOW = "item.decision_name_dont_know"

    # Accept-recommendations preview.
    PREVIEW_TITLE = "preview.title"  # {name}
    PREVIEW_DENY_INTRO = "preview.deny_intro"  # plural, {n}
    PREVIEW_NO_DENY = "preview.no_deny"
    PREVIEW_APPROVE_COUNT = "preview.approve_count"  # plural, {n}
    PREVIEW_UNCHANGED_COUNT = "preview.unchanged_count"  # plural, {n}
    PREVIEW_MORE = "preview.more"  # plural, {n}
    PREVIEW_CONFIRM = "preview.confirm"
    PREVIEW_CANCEL = "preview.cancel"
    PREVIEW_NOTHING = "preview.nothing"

    # Reminder.
    REMINDER_TITLE = "reminder.title"  # {name}
    REMINDER_LEFT = "reminder.left"  # {left} {total} {due}
    SNOOZE_TOMORROW = "reminder.snooze_tomorrow"
    SNOOZE_4H = "reminder.snooze_4h"

    # Escalation.
    ESCALATION_TITLE = "escalation.title"
    ESCALATION_LINE = "escalation.line"  # plural, {who} {n} {due}
    ESCALATION_REVIEW = "escalation.review"  # {name}
    ESCALATION_PROGRESS = "escalation.progress"  # {decided} {total}
    ESCALATION_DUE = "escalation.due"  # {date} {relative}
    NUDGE = "escalation.nudge"
    NUDGED_AT = "escalation.nudged_at"  # {who} {when}
    UNKNOWN_REVIEWER = "escalation.unknown_reviewer"

    # Pending list.
    PENDING_TITLE = "pending.title"
    PENDING_NONE = "pending.none"
    PENDING_LINE = "pending.line"  # {pending} {total} {due}
    PENDING_OPEN = "pending.open"
    PENDING_MORE = "pending.more"  # plural, {n}

    # Help.
    HELP_TITLE = "help.title"
    HELP_INTRO = "help.intro"
    HELP_PENDING = "help.pending"
    HELP_SNOOZE = "help.snooze"
    HELP_HELP = "help.help"
    HELP_CARDS = "help.cards"

    # Sign-in.
    SIGNIN_TITLE = "signin.title"
    SIGNIN_SIGN_IN_REQUIRED = "signin.sign_in_required"
    SIGNIN_CONSENT_REQUIRED = "signin.consent_required"
    SIGNIN_MFA_REQUIRED = "signin.mfa_required"
    SIGNIN_BUTTON = "signin.button"
    SIGNIN_DONE = "signin.done"
    SIGNIN_NOTE = "signin.note"

    # Messages (see models.MessageKey).
    MSG_NOT_A_REVIEWER = "msg.not_a_reviewer"
    MSG_ALREADY_DECIDED = "msg.already_decided"
    MSG_REVIEW_ENDED = "msg.review_ended"
    MSG_DECISION_SAVED = "msg.decision_saved"
    MSG_DECISION_FAILED = "msg.decision_failed"
    MSG_SAVING = "msg.saving"
    MSG_JUSTIFICATION_REQUIRED = "msg.justification_required"
    MSG_JUSTIFICATION_TOO_LONG = "msg.justification_too_long"  # {detail}: the limit
    MSG_NOTHING_SELECTED = "msg.nothing_selected"
    MSG_THROTTLED = "msg.throttled"
    MSG_SNOOZED = "msg.snoozed"
    MSG_NUDGE_SENT = "msg.nudge_sent"
    MSG_NUDGE_NOT_RECIPIENT = "msg.nudge_not_recipient"
    MSG_RECOMMENDATIONS_ACCEPTED = "msg.recommendations_accepted"
    MSG_NO_PENDING_REVIEWS = "msg.no_pending_reviews"
    MSG_UNKNOWN_COMMAND = "msg.unknown_command"
    MSG_FORBIDDEN = "msg.forbidden"
    MSG_GENERIC_ERROR = "msg.generic_error"
    MESSAGE_TITLE_INFO = "msg.title_info"
    MESSAGE_TITLE_SUCCESS = "msg.title_success"
    MESSAGE_TITLE_WARNING = "msg.title_warning"
    MESSAGE_TITLE_ERROR = "msg.title_error"
    BACK_TO_REVIEW = "msg.back_to_review"
    BACK_TO_LIST = "pending.back_to_list"

    # Notification summaries (the line a Teams notification shows for a card).
    SUMMARY_REVIEW = "summary.review"  # {name}
    SUMMARY_REMINDER = "summary.reminder"  # {name}
    SUMMARY_PENDING = "summary.pending"
    SUMMARY_ESCALATION = "summary.escalation"

    # Chat commands: the words a reviewer types, besides the English ones (which always work).
    COMMAND_PENDING = "command.pending"
    COMMAND_HELP = "command.help"
    COMMAND_SNOOZE = "command.snooze"
    COMMAND_TOMORROW = "command.tomorrow"  # the argument of snooze: "snooze tomorrow"

    # Chat replies.
    CHAT_WELCOME = "chat.welcome"
    CHAT_HELP = "chat.help"  # markdown; names this language's command words
    CHAT_NOT_UNDERSTOOD = "chat.not_understood"
    CHAT_WHO_ARE_YOU = "chat.who_are_you"
    CHAT_SNOOZE_UNAVAILABLE = "chat.snooze_unavailable"
    CHAT_SNOOZE_NOTHING_OPEN = "chat.snooze_nothing_open"
    CHAT_SNOOZE_USAGE = "chat.snooze_usage"
    CHAT_SNOOZE_NOTHING = "chat.snooze_nothing"
    CHAT_SNOOZED_UNTIL = "chat.snoozed_until"  # {until}
    CHAT_TURN_ERROR = "chat.turn_error"

    # Errors a click can get back instead of a card (Teams shows the message).
    ERROR_UNSUPPORTED_BUTTON = "error.unsupported_button"
    ERROR_MALFORMED_CARD = "error.malformed_card"
    ERROR_NOT_READY = "error.not_ready"
    ERROR_BUSY = "error.busy"
    ERROR_UNIDENTIFIED = "error.unidentified"
    ERROR_SSO_NOT_CONFIGURED = "error.sso_not_configured"
    ERROR_CONSENT_NEEDED = "error.consent_needed"
    ERROR_SIGN_IN_TO_TEAMS = "error.sign_in_to_teams"
    LOGIN_PROMPT = "login.prompt"


Entry = str | Mapping[str, str]

EN: Mapping[str, Entry] = {
    S.DUE_TODAY: "today",
    S.DUE_TOMORROW: "tomorrow",
    S.DUE_OVERDUE: {"one": "{n} day overdue", "other": "{n} days overdue"},
    S.DUE_LINE: "Due {date}, {relative}",
    S.DUE_SHORT_TODAY: "today",
    S.DUE_SHORT_TOMORROW: "tomorrow",
    S.DUE_SHORT_WEEKDAY: "{weekday}",
    S.DUE_SHORT_DATE: "{date}",
    S.ENDED_ON: "This review ended on {date}.",
    S.REVIEW_TITLE: "Access review: {name}",
    S.REVIEW_RESOURCE: "Resource: {resource}",
    S.STAGE: "Stage {number} of {count}",
    S.PROGRESS: "{decided} of {total} decided",
    S.PROGRESS_SAVING: {"one": "{n} saving", "other": "{n} saving"},
    S.ALL_DONE: "Thanks — nothing left",
    S.ALL_DONE_DETAIL: "You have decided every item in this review.",
    S.REVIEW_ENDED: "This review has ended. Decisions can no longer be changed.",
    S.REVIEW_NOT_STARTED: "This review has not started yet. You can decide once it starts.",
    S.REVIEW_STARTING: "This review is starting. You can decide in a few minutes.",
    S.REVIEW_COMPLETING: "This review is completing — no more decisions.",
    S.REVIEW_AUTO_REVIEWING: (
        "This review has ended and the items nobody decided are being decided automatically "
        "— no more decisions."
    ),
    S.REVIEW_AUTO_REVIEWED: (
        "This review has ended. The items nobody decided were decided automatically."
    ),
    S.REVIEW_APPLYING: "This review has ended and its results are being applied.",
    S.REVIEW_APPLIED: "This review has ended and its results were applied.",
    S.REVIEW_NOT_OPEN: "This review is not open for decisions.",
    S.STATUS_NOT_STARTED: "Not started",
    S.STATUS_STARTING: "Starting",
    S.STATUS_IN_PROGRESS: "In progress",
    S.STATUS_COMPLETING: "Completing — no more decisions",
    S.STATUS_COMPLETED: "Completed",
    S.STATUS_AUTO_REVIEWING: "Deciding automatically — no more decisions",
    S.STATUS_AUTO_REVIEWED: "Decided automatically",
    S.STATUS_APPLYING: "Applying results",
    S.STATUS_APPLIED: "Applied",
    S.STATUS_DELETED: "Deleted",
    S.STATUS_NOT_OPEN: "Not open for decisions ({status})",
    S.NO_ITEMS: "You have no items in this review.",
    S.INSTRUCTIONS: "Instructions: {text}",
    S.DEFAULT_NONE: "If nobody decides an item by the due date, access stays as it is.",
    S.DEFAULT_APPROVE: "If nobody decides an item by the due date, it is approved.",
    S.DEFAULT_DENY: "If nobody decides an item by the due date, it is **denied**.",
    S.DEFAULT_RECOMMENDATION: (
        "If nobody decides an item by the due date, its recommendation is taken."
    ),
    S.AUTO_APPLY_ON: "Results are applied automatically when the review ends.",
    S.AUTO_APPLY_OFF: "Results are applied by the review owner after the review ends.",
    S.ENDED_DEFAULT_NONE: "Items nobody decided keep their access.",
    S.ENDED_DEFAULT_APPROVE: "Items nobody decided were approved.",
    S.ENDED_DEFAULT_DENY: "Items nobody decided were denied.",
    S.ENDED_DEFAULT_RECOMMENDATION: "Items nobody decided took their recommendation.",
    S.JUSTIFICATION_LABEL: "Reason (required for every decision)",
    S.JUSTIFICATION_PLACEHOLDER: "Why should this access stay or go?",
    S.JUSTIFICATION_ERROR: "This review requires a reason.",
    S.PAGE_INFO: "Page {page} · items {first}–{last} of {total}",
    S.PREVIOUS: "Previous",
    S.NEXT: "Next",
    S.ACCEPT_RECOMMENDATIONS: "Accept recommendations",
    S.RECOMMENDATION_COUNTS: "Recommendations: {approve} approve, {deny} deny",
    S.OPEN_MY_ACCESS: "Open My Access",
    S.BULK_HINT: "Or select several items above and decide them together:",
    S.SELECT: "Select",
    S.FALLBACK: "Access review “{name}”: {decided} of {total} decided.",
    S.GUEST: "Guest",
    S.MEMBER: "Member",
    S.APPLICATION: "Application",
    S.APP_ID: "App ID {app_id}",
    S.ON_RESOURCE: "Access to {resource}",
    S.RECOMMENDATION_LINE: "Recommended: {recommendation}",
    S.RECOMMENDATION_WITH_REASON: "Recommended: {recommendation} — {reason}",
    S.RECOMMEND_APPROVE: "**approve**",
    S.RECOMMEND_DENY: "**deny**",
    S.NO_RECOMMENDATION: "No recommendation",
    S.REASON_NO_RECENT_SIGN_IN: {
        "one": "no sign-in for {n} day",
        "other": "no sign-in for {n} days",
    },
    S.REASON_NEVER_SIGNED_IN: "never signed in",
    S.REASON_RECENT_SIGN_IN: "signed in {ago}",
    S.REASON_SIGNED_IN_TODAY: "signed in today",
    S.REASON_PEER_OUTLIER: "access unlike their peers'",
    S.REASON_ACCOUNT_DISABLED: "account disabled",
    S.LAST_SIGN_IN: "Last sign-in: {when}",
    S.LAST_SIGN_IN_NEVER: "Last sign-in: never",
    S.APPROVE: "Approve",
    S.DENY: "Deny",
    S.DONT_KNOW: "Don't know",
    S.DECIDED_APPROVE: "✓ Approved by {who}",
    S.DECIDED_DENY: "✗ Denied by {who}",
    S.DECIDED_DONT_KNOW: "? Don't know, by {who}",
    S.DECIDED_BY_YOU: "you",
    S.DECIDED_BY_UNKNOWN: "another reviewer",
    S.WITH_TIME: "{text} · {when}",
    S.NOT_DECIDED: "Not decided",
    S.DECISION_REASON: "Reason: {text}",
    S.SAVING_ITEM: "Saving… ({decision})",
    S.FAILED_ITEM: "Not saved: {message}",
    S.EARLIER_APPROVE: "Stage {stage}: approved by {who}",
    S.EARLIER_DENY: "Stage {stage}: denied by {who}",
    S.EARLIER_DONT_KNOW: "Stage {stage}: don't know, by {who}",
    S.EARLIER_NOT_REVIEWED: "Stage {stage}: not reviewed",
    S.EARLIER_REASON: "“{text}”",
    S.DECISION_NAME_APPROVE: "approve",
    S.DECISION_NAME_DENY: "deny",
    S.DECISION_NAME_DONT_KNOW: "don't know",
    S.PREVIEW_TITLE: "Accept recommendations for {name}?",
    S.PREVIEW_DENY_INTRO: {
        "one": "**{n} person or app will be denied** and lose access:",
        "other": "**{n} people or apps will be denied** and lose access:",
    },
    S.PREVIEW_NO_DENY: "Nobody will be denied.",
    S.PREVIEW_APPROVE_COUNT: {
        "one": "{n} item will be approved.",
        "other": "{n} items will be approved.",
    },
    S.PREVIEW_UNCHANGED_COUNT: {
        "one": "{n} item has no recommendation and stays undecided.",
        "other": "{n} items have no recommendation and stay undecided.",
    },
    S.PREVIEW_MORE: {"one": "…and {n} more", "other": "…and {n} more"},
    S.PREVIEW_CONFIRM: "Accept recommendations",
    S.PREVIEW_CANCEL: "Cancel",
    S.PREVIEW_NOTHING: "There are no recommendations left to accept.",
    S.REMINDER_TITLE: "Reminder: {name}",
    S.REMINDER_LEFT: "{left} of {total} left, due {due}",
    S.SNOOZE_TOMORROW: "Snooze until tomorrow",
    S.SNOOZE_4H: "Snooze 4 hours",
    S.ESCALATION_TITLE: "Access review needs attention",
    S.ESCALATION_LINE: {
        "one": "**{who}** has {n} decision due {due}",
        "other": "**{who}** has {n} decisions due {due}",
    },
    S.ESCALATION_REVIEW: "Review: {name}",
    S.ESCALATION_PROGRESS: "{decided} of {total} decided so far",
    S.ESCALATION_DUE: "Due {date}, {relative}",
    S.NUDGE: "Nudge",
    S.NUDGED_AT: "Nudge sent to {who} · {when}",
    S.UNKNOWN_REVIEWER: "A reviewer",
    S.PENDING_TITLE: "Your open access reviews",
    S.PENDING_NONE: "You have no open access reviews.",
    S.PENDING_LINE: "{pending} of {total} left · due {due}",
    S.PENDING_OPEN: "Open",
    S.PENDING_MORE: {
        "one": "…and {n} more review. Open My Access to see all.",
        "other": "…and {n} more reviews. Open My Access to see all.",
    },
    S.HELP_TITLE: "What I can do",
    S.HELP_INTRO: (
        "I send you the access reviews you need to decide, remind you before they are due, "
        "and record your decisions in Microsoft Entra ID as you."
    ),
    S.HELP_PENDING: "**pending** — list your open access reviews",
    S.HELP_SNOOZE: "**snooze** — pause reminders until your next working day",
    S.HELP_HELP: "**help** — show this message",
    S.HELP_CARDS: (
        "On a review card, choose Approve, Deny or Don't know for each item, select several "
        "and decide them together, or accept the recommendations after checking who is denied."
    ),
    S.SIGNIN_TITLE: "Sign-in needed",
    S.SIGNIN_SIGN_IN_REQUIRED: (
        "To record decisions as you, I need you to sign in to Microsoft Entra ID once."
    ),
    S.SIGNIN_CONSENT_REQUIRED: (
        "To record decisions as you, this app needs your consent to act on access reviews "
        "on your behalf."
    ),
    S.SIGNIN_MFA_REQUIRED: (
        "Your organization requires you to verify your identity (multi-factor authentication) "
        "before decisions can be recorded."
    ),
    S.SIGNIN_BUTTON: "Sign in",
    S.SIGNIN_DONE: "I've signed in — try again",
    S.SIGNIN_NOTE: "Your decision was not recorded yet.",
    S.MSG_NOT_A_REVIEWER: "You are not a reviewer of this item any more.",
    S.MSG_ALREADY_DECIDED: "This item was already decided by {detail}.",
    S.MSG_REVIEW_ENDED: "This review has ended. Decisions can no longer be changed.",
    S.MSG_DECISION_SAVED: "Your decision was saved.",
    S.MSG_DECISION_FAILED: "Your decision could not be saved. Please try again.",
    S.MSG_SAVING: "Saving your decisions… This card updates when they are recorded.",
    S.MSG_JUSTIFICATION_REQUIRED: "This review requires a reason with every decision.",
    S.MSG_JUSTIFICATION_TOO_LONG: (
        "That reason is too long: a reason can have at most {detail} characters. "
        "Shorten it and try again."
    ),
    S.MSG_NOTHING_SELECTED: "Select at least one item first.",
    S.MSG_THROTTLED: "Microsoft Entra ID is busy. Please try again in a minute.",
    S.MSG_SNOOZED: "OK — I will remind you again: {at}.",
    S.MSG_NUDGE_SENT: "Reminder sent to {detail}.",
    S.MSG_NUDGE_NOT_RECIPIENT: (
        "You can nudge only a reviewer whose escalation was sent to you. Nothing was sent."
    ),
    S.MSG_RECOMMENDATIONS_ACCEPTED: "Recommendations accepted.",
    S.MSG_NO_PENDING_REVIEWS: "You have no open access reviews.",
    S.MSG_UNKNOWN_COMMAND: "Sorry, I didn't get that. Type **help** to see what I can do.",
    S.MSG_FORBIDDEN: "You are not allowed to do that.",
    S.MSG_GENERIC_ERROR: "Something went wrong on our side. Please try again later.",
    S.MESSAGE_TITLE_INFO: "Access reviews",
    S.MESSAGE_TITLE_SUCCESS: "Done",
    S.MESSAGE_TITLE_WARNING: "Please check",
    S.MESSAGE_TITLE_ERROR: "Something went wrong",
    S.BACK_TO_REVIEW: "Back to the review",
    S.BACK_TO_LIST: "Back to my reviews",
    S.SUMMARY_REVIEW: "Access review: {name}",
    S.SUMMARY_REMINDER: "Reminder: {name}",
    S.SUMMARY_PENDING: "Your open access reviews",
    S.SUMMARY_ESCALATION: "A review needs attention",
    S.COMMAND_PENDING: "pending",
    S.COMMAND_HELP: "help",
    S.COMMAND_SNOOZE: "snooze",
    S.COMMAND_TOMORROW: "tomorrow",
    S.CHAT_WELCOME: (
        "Hi, I'm Access Review Bot. When an access review needs your decision, I'll send it here "
        "so you can approve or deny in one click. Type **help** to see what I can do."
    ),
    S.CHAT_HELP: (
        "I help you finish your Microsoft Entra access reviews without leaving Teams.\n\n"
        "- **pending**: your open reviews and how much is left in each\n"
        "- **snooze 4h** or **snooze tomorrow**: fewer reminders for a while\n"
        "- **help**: this message\n\n"
        "When a review needs you, I send you a card: approve, deny or say you don't know, "
        "one click each."
    ),
    S.CHAT_NOT_UNDERSTOOD: "I didn't catch that.",
    S.CHAT_WHO_ARE_YOU: "I could not tell who you are, so I cannot list your reviews.",
    S.CHAT_SNOOZE_UNAVAILABLE: "Reminders are not running here, so there is nothing to snooze.",
    S.CHAT_SNOOZE_NOTHING_OPEN: "You have no open reviews, so no reminders to snooze.",
    S.CHAT_SNOOZE_USAGE: "Try **snooze 4h** or **snooze tomorrow**.",
    S.CHAT_SNOOZE_NOTHING: "Nothing to snooze right now.",
    S.CHAT_SNOOZED_UNTIL: (
        "Reminders snoozed until {until} (never past the last reminder before a deadline)."
    ),
    S.CHAT_TURN_ERROR: "Sorry, something went wrong on my side. Please try again.",
    S.ERROR_UNSUPPORTED_BUTTON: "This button is not supported.",
    S.ERROR_MALFORMED_CARD: "This card sent data I cannot read. Open the review again.",
    S.ERROR_NOT_READY: "The bot is starting. Please try again in a moment.",
    S.ERROR_BUSY: "The bot is busy and could not confirm your click. Please try again in a moment.",
    S.ERROR_UNIDENTIFIED: "Your account could not be identified.",
    S.ERROR_SSO_NOT_CONFIGURED: "Single sign-on is not configured.",
    S.ERROR_CONSENT_NEEDED: "Consent is needed before the bot can act for you.",
    S.ERROR_SIGN_IN_TO_TEAMS: "Please sign in to Teams and try again.",
    S.LOGIN_PROMPT: "Sign in so that your decision is recorded as you.",
}


# Zones by name, kept: ``ZoneInfo`` itself holds only a few strongly, and loading one reads a file.
_ZONES: dict[str, tzinfo] = {}
_ZONES_LOCK = threading.Lock()
_MAX_ZONES = 1000


def resolve_zone(name: str) -> tzinfo:
    """The IANA zone ``name``; unknown or malformed names fall back to UTC (logged once)."""
    zone = _ZONES.get(name)
    if zone is not None:
        return zone
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        logger.warning("unknown time zone %r; showing times in UTC", name[:80])
        zone = ZoneInfo("UTC")
    with _ZONES_LOCK:
        if len(_ZONES) < _MAX_ZONES:
            _ZONES[name] = zone
    return zone


@functools.cache
def tables() -> Mapping[str, Mapping[str, Entry]]:
    """Every string table by locale: English and the translations.

    Imported on first use, because the translation modules import this one for its keys.
    """
    from .translations import TRANSLATIONS

    return {"en": EN, **TRANSLATIONS}


class Strings:
    """Strings, numbers and dates for one viewer: their locale and time zone.

    ``locale`` is a BCP 47 tag; one the cards do not speak (or a malformed one) is shown in US
    English, as :data:`cards.i18n.DEFAULT_LOCALE` says. :attr:`locale` is the tag in use.
    """

    def __init__(
        self,
        locale: str,
        time_zone: str = "UTC",
        *,
        tables: Mapping[str, Mapping[str, Entry]] | None = None,
    ) -> None:
        kit = locale_kit(locale) or locale_kit(DEFAULT_LOCALE)
        assert kit is not None
        self.kit: LocaleKit = kit
        self.locale = kit.tag
        self.zone = resolve_zone(time_zone)
        source = _all_tables() if tables is None else tables
        # The exact regional table (if one exists), the language's, then English.
        self._tables = [source[name] for name in (kit.tag, *kit.tables) if name in source]

    def _entry(self, key: S) -> Entry:
        for table in self._tables:
            entry = table.get(key)
            if entry is not None:
                return entry
        raise KeyError(f"string {key!s} is missing from every table, including en")

    def _params(self, params: Mapping[str, object]) -> Mapping[str, object]:
        """Counts of 1,000 and more in the viewer's digit grouping ("1.234"); smaller ones are
        written alike in every language the cards speak, so they pass as they are (the
        common case costs one scan and no copy)."""
        for value in params.values():
            if type(value) is int and not -1000 < value < 1000:
                break
        else:
            return params
        return {
            name: self.kit.number(value) if type(value) is int else value
            for name, value in params.items()
        }

    def text(self, key: S, **params: object) -> str:
        """The template for ``key`` with ``params`` substituted."""
        entry = self._entry(key)
        if not isinstance(entry, str):
            raise TypeError(f"string {key!s} is a plural entry; use plural()")
        return entry.format(**self._params(params)) if params else entry

    def runs(self, key: S, **params: object) -> list[Run]:
        """The template for ``key`` as runs, values from people kept exact (:mod:`cards.rich`)."""
        entry = self._entry(key)
        if not isinstance(entry, str):
            raise TypeError(f"string {key!s} is a plural entry; use plural_runs()")
        return runs_from(entry, self._params(params))

    def plural_runs(self, key: S, n: int, **params: object) -> list[Run]:
        """:meth:`plural` as runs."""
        return runs_from(self._plural_template(key, n), self._params({"n": n, **params}))

    def _plural_template(self, key: S, n: int) -> str:
        entry = self._entry(key)
        if isinstance(entry, str):
            return entry
        category = self.kit.plural_category(n)
        template = entry.get(category, entry.get("other"))
        if template is None:
            raise KeyError(f"string {key!s} has neither {category!r} nor 'other'")
        return template

    def plural(self, key: S, n: int, **params: object) -> str:
        """The plural form of ``key`` for count ``n`` (``{n}`` is available to the template)."""
        return self._plural_template(key, n).format(**self._params({"n": n, **params}))

    def join_sentences(self, sentences: Sequence[str]) -> str:
        """Sentences on one line, spaced as the language spaces them (not at all in Japanese)."""
        return self.kit.sentence_separator.join(sentences)

    # Dates -----------------------------------------------------------------------------------

    def local(self, moment: datetime) -> datetime:
        """``moment`` in the viewer's zone."""
        return moment.astimezone(self.zone)

    def date(self, moment: datetime, *, with_year: bool = False) -> str:
        """Weekday, day and month ("Fri, Dec 4", "Fr., 4. Dez.", "12月4日(金)") in the viewer's
        zone, with the year if asked."""
        return self.kit.date(self.local(moment), with_year=with_year)

    def weekday(self, moment: datetime) -> str:
        """The full weekday name of ``moment`` in the viewer's zone."""
        return self.kit.weekday(self.local(moment))

    def time(self, moment: datetime) -> str:
        """ "14:02" (or "2:02 PM") in the viewer's zone."""
        return self.kit.time(self.local(moment))

    def days_between(self, now: datetime, moment: datetime) -> int:
        """Calendar days from ``now`` to ``moment`` in the viewer's zone (negative if past)."""
        return (self.local(moment).date() - self.local(now).date()).days

    def when(self, moment: datetime, now: datetime) -> str:
        """A time for "decided at": the time today, the date and time otherwise."""
        if self.days_between(now, moment) == 0:
            return self.time(moment)
        with_year = self.local(moment).year != self.local(now).year
        return self.kit.date_time(self.date(moment, with_year=with_year), self.time(moment))

    def ago(self, days: int) -> str:
        """ "3 days ago", in the viewer's language."""
        return self.kit.in_days(-abs(days))

    def due_relative(self, due: datetime, now: datetime) -> str:
        """ "today", "tomorrow", "in 3 days" or "2 days overdue"."""
        days = self.days_between(now, due)
        if days == 0:
            return self.text(S.DUE_TODAY)
        if days == 1:
            return self.text(S.DUE_TOMORROW)
        if days > 1:
            return self.kit.in_days(days)
        return self.plural(S.DUE_OVERDUE, -days)

    def due_line(self, due: datetime, now: datetime) -> str:
        """ "Due Fri, Dec 4, in 3 days"."""
        return self.text(S.DUE_LINE, date=self.date(due), relative=self.due_relative(due, now))

    def due_short(self, due: datetime, now: datetime) -> str:
        """ "today", "tomorrow", the weekday ("Friday") within a week, else the date."""
        days = self.days_between(now, due)
        if days == 0:
            return self.text(S.DUE_SHORT_TODAY)
        if days == 1:
            return self.text(S.DUE_SHORT_TOMORROW)
        if 1 < days < 7:
            return self.text(S.DUE_SHORT_WEEKDAY, weekday=self.weekday(due))
        return self.text(S.DUE_SHORT_DATE, date=self.date(due))


def _all_tables() -> Mapping[str, Mapping[str, Entry]]:
    return tables()
