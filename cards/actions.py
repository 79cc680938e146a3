"""The card ⇄ bot contract: verbs, action data and input ids.

Every button on our cards is an ``Action.Execute`` (Universal Actions); Teams sends its ``verb`` and
``data`` (merged with the card's input values) to the bot as an ``adaptiveCard/action`` invoke.
The shapes are documented in the package docstring (``cards/__init__.py``); the bot's verb table
follows them. Card data is untrusted when it comes back: the bot validates it.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from microsoft_teams.cards import ActionStyle, AssociatedInputs, ExecuteAction, RefreshDefinition

from .models import Decision

__all__ = [
    "BACK_KEY",
    "JUSTIFICATION_INPUT_ID",
    "JUSTIFICATION_MAX_CHARS",
    "SELECT_INPUT_PREFIX",
    "SELECT_VALUE_OFF",
    "SELECT_VALUE_ON",
    "CardKind",
    "SnoozeChoice",
    "Verb",
    "decide_data",
    "execute",
    "refresh_definition",
    "select_input_id",
    "selected_item_ids",
]


class Verb(StrEnum):
    """``Action.Execute`` verbs on our cards."""

    REFRESH = "refresh"
    PAGE = "page"
    DECIDE = "decide"
    DECIDE_BULK = "decide_bulk"
    ACCEPT_RECOMMENDATIONS_PREVIEW = "accept_recommendations_preview"
    ACCEPT_RECOMMENDATIONS = "accept_recommendations"
    SNOOZE = "snooze"
    NUDGE = "nudge"
    OPEN_REVIEW = "open_review"


class CardKind(StrEnum):
    """Which card a ``refresh`` or ``page`` should render again (``data.card``)."""

    REVIEW = "review"
    REMINDER = "reminder"
    ESCALATION = "escalation"
    PENDING_LIST = "pending_list"
    HELP = "help"


class SnoozeChoice(StrEnum):
    """``data.until`` of the ``snooze`` verb."""

    TOMORROW_0900 = "tomorrow_0900"
    """Until 09:00 the next day in the reviewer's time zone."""
    FOUR_HOURS = "4h"
    """Four hours from the click."""


BACK_KEY = "back"
"""In the data of a review card's actions: ``"pending_list"`` when the card was opened from the
pending list, so the card answered keeps its "Back to my reviews" button."""

JUSTIFICATION_INPUT_ID = "justification"
"""Id of the Input.Text holding the reason; arrives in ``data`` as ``justification``."""

JUSTIFICATION_MAX_CHARS = 500
"""``maxLength`` of the reason input; the bot must still enforce it (clients may ignore it)."""

SELECT_INPUT_PREFIX = "select_"
"""Bulk selection toggles are inputs ``select_<itemId>``."""

SELECT_VALUE_ON = "true"
SELECT_VALUE_OFF = "false"


def select_input_id(item_id: str) -> str:
    """The id of the bulk-selection toggle of ``item_id``."""
    return f"{SELECT_INPUT_PREFIX}{item_id}"


def selected_item_ids(data: Mapping[str, Any]) -> list[str]:
    """The item ids whose bulk toggle is on in a ``decide_bulk`` invoke's ``data``.

    Only the shape is read here; the bot must still check every id against the store.
    """
    return [
        key.removeprefix(SELECT_INPUT_PREFIX)
        for key, value in data.items()
        if key.startswith(SELECT_INPUT_PREFIX)
        and len(key) > len(SELECT_INPUT_PREFIX)
        and value == SELECT_VALUE_ON
    ]


def execute(
    title: str,
    verb: Verb,
    data: dict[str, Any],
    *,
    style: ActionStyle | None = None,
    uses_inputs: bool = False,
) -> ExecuteAction:
    """An ``Action.Execute`` of ``verb`` carrying ``data``.

    ``uses_inputs=False`` sets ``associatedInputs: none``: navigation and other actions then neither
    send nor validate the card's inputs, so a required reason never blocks "Next" or "Refresh".
    Actions that need the inputs say ``auto`` explicitly, which makes required inputs (the reason)
    validated before the click is sent.
    """
    associated: AssociatedInputs = "auto" if uses_inputs else "none"
    return ExecuteAction(
        title=title,
        verb=verb.value,
        data=data,
        style=style,
        associated_inputs=associated,
    )


def decide_data(
    instance_id: str, item_id: str, decision: Decision, stage_id: str | None, page: int
) -> dict[str, Any]:
    """``data`` of a per-item ``decide`` action."""
    data: dict[str, Any] = {
        "instanceId": instance_id,
        "itemId": item_id,
        "decision": decision.value,
    }
    if stage_id is not None:
        data["stageId"] = stage_id
    data["page"] = page
    return data


def refresh_definition(user_id: str, data: dict[str, Any]) -> RefreshDefinition:
    """The card's ``refresh``: an ``Action.Execute`` ``refresh`` run automatically for ``user_id``."""
    return RefreshDefinition(
        action=ExecuteAction(verb=Verb.REFRESH.value, data=data),
        user_ids=[user_id],
    )
