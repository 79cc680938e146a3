"""The botbuilder boundary: the only package that imports botbuilder."""

from bot.teams.adapter import (
    BotAdapter,
    InboundAuthError,
    activity_problem,
    create_adapter,
    process_request,
)
from bot.teams.bot import ReviewBot

__all__ = [
    "BotAdapter",
    "InboundAuthError",
    "ReviewBot",
    "activity_problem",
    "create_adapter",
    "process_request",
]
