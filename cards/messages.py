"""Text of the fixed outcome and error messages (:class:`~cards.models.MessageKey`)."""

from __future__ import annotations

import string
from datetime import datetime

from .escape import escape_text
from .models import MessageKey
from .strings import S, Strings

__all__ = ["MESSAGE_STRINGS", "message_text"]

MESSAGE_STRINGS: dict[MessageKey, S] = {
    MessageKey.NOT_A_REVIEWER: S.MSG_NOT_A_REVIEWER,
    MessageKey.ALREADY_DECIDED: S.MSG_ALREADY_DECIDED,
    MessageKey.REVIEW_ENDED: S.MSG_REVIEW_ENDED,
    MessageKey.DECISION_SAVED: S.MSG_DECISION_SAVED,
    MessageKey.DECISION_FAILED: S.MSG_DECISION_FAILED,
    MessageKey.SAVING: S.MSG_SAVING,
    MessageKey.JUSTIFICATION_REQUIRED: S.MSG_JUSTIFICATION_REQUIRED,
    MessageKey.JUSTIFICATION_TOO_LONG: S.MSG_JUSTIFICATION_TOO_LONG,
    MessageKey.NOTHING_SELECTED: S.MSG_NOTHING_SELECTED,
    MessageKey.THROTTLED: S.MSG_THROTTLED,
    MessageKey.SNOOZED: S.MSG_SNOOZED,
    MessageKey.NUDGE_SENT: S.MSG_NUDGE_SENT,
    MessageKey.RECOMMENDATIONS_ACCEPTED: S.MSG_RECOMMENDATIONS_ACCEPTED,
    MessageKey.NO_PENDING_REVIEWS: S.MSG_NO_PENDING_REVIEWS,
    MessageKey.UNKNOWN_COMMAND: S.MSG_UNKNOWN_COMMAND,
    MessageKey.FORBIDDEN: S.MSG_FORBIDDEN,
    MessageKey.GENERIC_ERROR: S.MSG_GENERIC_ERROR,
}

DETAIL_MAX_CHARS = 120


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def message_text(
    strings: Strings,
    key: MessageKey,
    *,
    now: datetime,
    detail: str | None = None,
    at: datetime | None = None,
) -> str:
    """The localized text of ``key``; ``detail`` is escaped, ``at`` shown as a time.

    Raises ``ValueError`` when the template needs ``detail`` or ``at`` and it is missing, so a
    message never reaches a user with a hole in it.
    """
    template = strings.text(MESSAGE_STRINGS[key])
    fields = _fields(template)
    params: dict[str, str] = {}
    if "detail" in fields:
        if not detail:
            raise ValueError(f"message {key} needs a detail")
        params["detail"] = escape_text(detail, max_chars=DETAIL_MAX_CHARS)
    if "at" in fields:
        if at is None:
            raise ValueError(f"message {key} needs a time")
        params["at"] = strings.when(at, now)
    return template.format(**params) if params else template
