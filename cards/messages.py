"""Text of the fixed outcome and error messages (:class:`~cards.models.MessageKey`)."""

from __future__ import annotations

import string
from datetime import datetime

from .models import MessageKey
from .rich import Run, runs_from, user_text
from .strings import S, Strings

__all__ = ["MESSAGE_STRINGS", "message_runs", "message_text"]

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

# A detail is a person's name: Entra allows 256 characters.
DETAIL_MAX_CHARS = 256


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _params(
    strings: Strings,
    key: MessageKey,
    *,
    now: datetime,
    detail: str | None,
    at: datetime | None,
) -> tuple[str, dict[str, object]]:
    template = strings.text(MESSAGE_STRINGS[key])
    fields = _fields(template)
    params: dict[str, object] = {}
    if "detail" in fields:
        if not detail:
            raise ValueError(f"message {key} needs a detail")
        params["detail"] = user_text(detail, max_chars=DETAIL_MAX_CHARS, max_json_bytes=1024)
    if "at" in fields:
        if at is None:
            raise ValueError(f"message {key} needs a time")
        params["at"] = strings.when(at, now)
    return template, params


def message_runs(
    strings: Strings,
    key: MessageKey,
    *,
    now: datetime,
    detail: str | None = None,
    at: datetime | None = None,
) -> list[Run]:
    """The localized text of ``key`` as runs; ``detail`` (a name, from people) shown exactly.

    Raises ``ValueError`` when the template needs ``detail`` or ``at`` and it is missing, so a
    message never reaches a user with a hole in it.
    """
    template, params = _params(strings, key, now=now, detail=detail, at=at)
    return runs_from(template, params)


def message_text(
    strings: Strings,
    key: MessageKey,
    *,
    now: datetime,
    detail: str | None = None,
    at: datetime | None = None,
) -> str:
    """The same message as plain text (a card's ``fallbackText``), without markup."""
    return "".join(run.text for run in message_runs(strings, key, now=now, detail=detail, at=at))
