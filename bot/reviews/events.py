"""Domain events that discovery emits and notifications/reminders consume."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "Assigned",
    "DomainEvent",
    "EventHandler",
    "InstanceEnded",
    "ItemDecidedElsewhere",
    "ReviewerDone",
]


@dataclass(frozen=True, slots=True)
class Assigned:
    """A reviewer has new items to decide in an instance."""

    reviewer_oid: str
    instance_id: str
    item_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ItemDecidedElsewhere:
    """An item was decided outside the bot (My Access, another reviewer, an admin)."""

    instance_id: str
    item_id: str
    decision: str
    decided_by: str  # user object id, or "" when Graph names nobody (automatic decisions)
    decided_by_name: str
    decided_at: datetime | None


@dataclass(frozen=True, slots=True)
class InstanceEnded:
    """An instance is no longer in progress (completed, stopped, applied …).

    Also sent when an instance that had ended moves on (``Completing`` → ``Completed`` →
    ``Applied``): ``previous_status`` is then the status it ended with, so the cards follow it.
    """

    instance_id: str
    status: str
    previous_status: str = "InProgress"


@dataclass(frozen=True, slots=True)
class ReviewerDone:
    """A reviewer has nothing left to decide in an instance."""

    reviewer_oid: str
    instance_id: str


DomainEvent = Assigned | ItemDecidedElsewhere | InstanceEnded | ReviewerDone
EventHandler = Callable[[DomainEvent], Awaitable[None]]
