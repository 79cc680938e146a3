"""Localized strings and date formatting for the cards.

Every user-visible word comes from a table keyed by locale. English (``en``) is complete; other
tables may hold any subset and the rest falls back per key: ``de-AT`` → ``de`` → ``en``. A table
entry is either a ``str.format`` template or, for counted phrases, a mapping from CLDR plural
category (``one``, ``other``, …) to template; the language's plural rule picks the category.

Templates are trusted text and may use ``**bold**``. Lines that hold text from people are built with
:meth:`Strings.runs`: the template's words become runs (its ``**`` as bold) and each value from
people (:class:`~cards.rich.UserText`) a run of its own, shown exactly (see :mod:`cards.rich`).

Dates are shown in the viewer's time zone (:mod:`zoneinfo`) with names and patterns from the same
tables, so adding a locale needs no code: add a table with the date keys and phrases.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, tzinfo
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .rich import Run, runs_from

__all__ = ["TABLES", "S", "Strings", "resolve_zone"]

logger = logging.getLogger(__name__)


class S(StrEnum):
    """String keys. The English table must define every one (a test checks)."""

    # Date and time formatting.
    WEEKDAYS_SHORT = "date.weekdays_short"  # seven names, Monday first, separated by "|"
    WEEKDAYS_LONG = "date.weekdays_long"
    MONTHS_SHORT = "date.months_short"  # twelve names, January first, separated by "|"
    DATE = "date.date"  # {weekday} {day} {month} {year}
    DATE_WITH_YEAR = "date.date_with_year"
    TIME = "date.time"  # {hour24} {hour12} {minute} {ampm}
    AM = "date.am"
    PM = "date.pm"
    DATE_TIME = "date.date_time"  # {date} {time}
    TODAY_AT = "date.today_at"  # {time}

    # Due dates.
    DUE_TODAY = "due.today"
    DUE_TOMORROW = "due.tomorrow"
    DUE_IN_DAYS = "due.in_days"  # plural, {n}
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
    ACCEPT_RECOMMENDATIONS = "review.accept_recommendations"  # {approve} {deny}
    OPEN_MY_ACCESS = "review.open_my_access"
    BULK_HINT = "review.bulk_hint"
    APPROVE_SELECTED = "review.approve_selected"
    DENY_SELECTED = "review.deny_selected"
    DONT_KNOW_SELECTED = "review.dont_know_selected"
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
    REASON_RECENT_SIGN_IN = "item.reason_recent_sign_in"  # plural, {n}
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


Entry = str | Mapping[str, str]

EN: Mapping[str, Entry] = {
    S.WEEKDAYS_SHORT: "Mon|Tue|Wed|Thu|Fri|Sat|Sun",
    S.WEEKDAYS_LONG: "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday",
    S.MONTHS_SHORT: "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec",
    S.DATE: "{weekday} {day} {month}",
    S.DATE_WITH_YEAR: "{weekday} {day} {month} {year}",
    S.TIME: "{hour24:02d}:{minute:02d}",
    S.AM: "AM",
    S.PM: "PM",
    S.DATE_TIME: "{date}, {time}",
    S.TODAY_AT: "{time}",
    S.DUE_TODAY: "today",
    S.DUE_TOMORROW: "tomorrow",
    S.DUE_IN_DAYS: {"one": "in {n} day", "other": "in {n} days"},
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
    S.ACCEPT_RECOMMENDATIONS: "Accept recommendations ({approve} approve, {deny} deny)",
    S.OPEN_MY_ACCESS: "Open My Access",
    S.BULK_HINT: "Or select several items above and decide them together:",
    S.APPROVE_SELECTED: "Approve selected",
    S.DENY_SELECTED: "Deny selected",
    S.DONT_KNOW_SELECTED: "Don't know",
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
    S.REASON_RECENT_SIGN_IN: {
        "one": "signed in {n} day ago",
        "other": "signed in {n} days ago",
    },
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
    S.SNOOZE_TOMORROW: "Snooze until tomorrow 9:00",
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
    S.HELP_SNOOZE: "**snooze** — pause reminders until tomorrow 9:00",
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
}

# US English: only what differs from `en`; everything else falls back.
EN_US: Mapping[str, Entry] = {
    S.DATE: "{weekday}, {month} {day}",
    S.DATE_WITH_YEAR: "{weekday}, {month} {day}, {year}",
    S.TIME: "{hour12}:{minute:02d} {ampm}",
    S.SNOOZE_TOMORROW: "Snooze until tomorrow 9:00 AM",
    S.HELP_SNOOZE: "**snooze** — pause reminders until tomorrow 9:00 AM",
}

TABLES: dict[str, Mapping[str, Entry]] = {"en": EN, "en-US": EN_US}

PluralRule = Callable[[int], str]


def _plural_one_other(n: int) -> str:
    return "one" if n == 1 else "other"


# CLDR plural rules per language; languages without an entry use the one/other rule.
PLURAL_RULES: dict[str, PluralRule] = {"en": _plural_one_other}

FALLBACK_LOCALE = "en"


def _locale_chain(locale: str) -> tuple[str, ...]:
    """``de-AT`` → (``de-AT``, ``de``, ``en``), with case normalized to the table keys."""
    tag = locale.replace("_", "-").strip()
    parts = [part for part in tag.split("-") if part]
    chain: list[str] = []
    if parts:
        language = parts[0].lower()
        if len(parts) > 1:
            chain.append(
                "-".join([language, *(p.upper() if len(p) == 2 else p for p in parts[1:])])
            )
        chain.append(language)
    if FALLBACK_LOCALE not in chain:
        chain.append(FALLBACK_LOCALE)
    return tuple(chain)


def resolve_zone(name: str) -> tzinfo:
    """Return the IANA zone ``name``; unknown or malformed names fall back to UTC (logged)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        logger.warning("unknown time zone %r; showing times in UTC", name)
        return ZoneInfo("UTC")


class Strings:
    """Strings and date formatting for one locale and time zone."""

    def __init__(
        self,
        locale: str,
        time_zone: str = "UTC",
        *,
        tables: Mapping[str, Mapping[str, Entry]] | None = None,
    ) -> None:
        self.locale = locale
        self.zone = resolve_zone(time_zone)
        source = TABLES if tables is None else tables
        self._tables = [source[name] for name in _locale_chain(locale) if name in source]
        language = _locale_chain(locale)[0].split("-")[0]
        self._plural = PLURAL_RULES.get(language, _plural_one_other)

    def _entry(self, key: S) -> Entry:
        for table in self._tables:
            entry = table.get(key)
            if entry is not None:
                return entry
        raise KeyError(f"string {key!s} is missing from every table, including {FALLBACK_LOCALE}")

    def text(self, key: S, **params: object) -> str:
        """The template for ``key`` with ``params`` substituted."""
        entry = self._entry(key)
        if not isinstance(entry, str):
            raise TypeError(f"string {key!s} is a plural entry; use plural()")
        return entry.format(**params) if params else entry

    def runs(self, key: S, **params: object) -> list[Run]:
        """The template for ``key`` as runs, values from people kept exact (:mod:`cards.rich`)."""
        entry = self._entry(key)
        if not isinstance(entry, str):
            raise TypeError(f"string {key!s} is a plural entry; use plural_runs()")
        return runs_from(entry, params)

    def plural_runs(self, key: S, n: int, **params: object) -> list[Run]:
        """:meth:`plural` as runs."""
        return runs_from(self._plural_template(key, n), {"n": n, **params})

    def _plural_template(self, key: S, n: int) -> str:
        entry = self._entry(key)
        if isinstance(entry, str):
            return entry
        category = self._plural(n)
        template = entry.get(category, entry.get("other"))
        if template is None:
            raise KeyError(f"string {key!s} has neither {category!r} nor 'other'")
        return template

    def plural(self, key: S, n: int, **params: object) -> str:
        """The plural form of ``key`` for count ``n`` (``{n}`` is available to the template)."""
        return self._plural_template(key, n).format(n=n, **params)

    # Dates -----------------------------------------------------------------------------------

    def local(self, moment: datetime) -> datetime:
        """``moment`` in the viewer's zone."""
        return moment.astimezone(self.zone)

    def _names(self, key: S) -> list[str]:
        return self.text(key).split("|")

    def date(self, moment: datetime, *, with_year: bool = False) -> str:
        """ "Fri 5 Dec" (or with the year) in the viewer's zone."""
        local = self.local(moment)
        return self.text(
            S.DATE_WITH_YEAR if with_year else S.DATE,
            weekday=self._names(S.WEEKDAYS_SHORT)[local.weekday()],
            day=local.day,
            month=self._names(S.MONTHS_SHORT)[local.month - 1],
            year=local.year,
        )

    def weekday(self, moment: datetime) -> str:
        """The full weekday name of ``moment`` in the viewer's zone."""
        return self._names(S.WEEKDAYS_LONG)[self.local(moment).weekday()]

    def time(self, moment: datetime) -> str:
        """ "14:02" (or "2:02 PM") in the viewer's zone."""
        local = self.local(moment)
        hour12 = local.hour % 12 or 12
        return self.text(
            S.TIME,
            hour24=local.hour,
            hour12=hour12,
            minute=local.minute,
            ampm=self.text(S.AM if local.hour < 12 else S.PM),
        )

    def days_between(self, now: datetime, moment: datetime) -> int:
        """Calendar days from ``now`` to ``moment`` in the viewer's zone (negative if past)."""
        return (self.local(moment).date() - self.local(now).date()).days

    def when(self, moment: datetime, now: datetime) -> str:
        """A time for "decided at": "14:02" today, "Fri 5 Dec, 14:02" otherwise."""
        if self.days_between(now, moment) == 0:
            return self.text(S.TODAY_AT, time=self.time(moment))
        with_year = self.local(moment).year != self.local(now).year
        return self.text(
            S.DATE_TIME, date=self.date(moment, with_year=with_year), time=self.time(moment)
        )

    def due_relative(self, due: datetime, now: datetime) -> str:
        """ "today", "tomorrow", "in 3 days" or "2 days overdue"."""
        days = self.days_between(now, due)
        if days == 0:
            return self.text(S.DUE_TODAY)
        if days == 1:
            return self.text(S.DUE_TOMORROW)
        if days > 1:
            return self.plural(S.DUE_IN_DAYS, days)
        return self.plural(S.DUE_OVERDUE, -days)

    def due_line(self, due: datetime, now: datetime) -> str:
        """ "Due Fri 5 Dec, in 3 days"."""
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
