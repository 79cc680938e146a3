"""The domain: who must decide what (discovery, reviewer resolution) and the events it emits."""

from bot.reviews.discovery import CycleReport, Discovery, DiscoveryConfig, DiscoveryMetrics
from bot.reviews.events import (
    Assigned,
    DomainEvent,
    EventHandler,
    InstanceEnded,
    ItemDecidedElsewhere,
    ReviewerDone,
)
from bot.reviews.poller import POLL_LEASE, Poller, PollerConfig, request_targeted_poll
from bot.reviews.resolver import Resolution, ReviewerResolver, scope_kind

__all__ = [
    "POLL_LEASE",
    "Assigned",
    "CycleReport",
    "Discovery",
    "DiscoveryConfig",
    "DiscoveryMetrics",
    "DomainEvent",
    "EventHandler",
    "InstanceEnded",
    "ItemDecidedElsewhere",
    "Poller",
    "PollerConfig",
    "Resolution",
    "ReviewerDone",
    "ReviewerResolver",
    "request_targeted_poll",
    "scope_kind",
]
