"""Chat commands, routed by a table (not a cascade of string tests)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

__all__ = ["HELP_TEXT", "normalize_command"]

HELP_TEXT = (
    "I help you finish your Microsoft Entra access reviews without leaving Teams.\n\n"
    "- **pending**: your open reviews and how much is left in each\n"
    "- **snooze 4h** or **snooze tomorrow**: fewer reminders for a while\n"
    "- **help**: this message\n\n"
    "When a review needs you, I send you a card: approve, deny or say you don't know, one click each."
)

Handler = Callable[..., Awaitable[None]]

_MENTION = re.compile(r"<at>.*?</at>", re.IGNORECASE)


def normalize_command(text: str | None) -> str:
    """The command word of a chat message: mentions stripped, lower case, first word only."""
    cleaned = _MENTION.sub(" ", text or "").strip().lower()
    return cleaned.split()[0].strip("/!.") if cleaned else ""
