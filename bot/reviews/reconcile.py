"""Decision values: where the store and Graph disagree about an item, Graph wins — unless a write
of the bot to that item is queued, in flight, or ended after Graph was read.

Discovery (:mod:`bot.reviews.discovery`) asks this module, for each instance it processes:

1. :meth:`DecisionValues.hold_writes_in_flight` — of the items Graph listed as pending, those
   the store holds as decided: keep the store's decision where a write of the bot may be newer
   than the listing (the listing then predates it); elsewhere Graph wins and the item is open
   again (the decision was reset, or the bot's write never landed).
2. :meth:`DecisionValues.corrections` — the items the store holds as decided and the cycle has
   not read: their current value in Graph, read the cheaper way (one GET per item in
   ``$batch``, or the instance's decision list page by page), and the corrections to make where
   the value or the decider differs and no write is in flight: the corrected items, one audit
   line per item (``decision_corrected``: from what to what) and an event per item, so that the
   cards showing it are edited.

"In flight" is the store's record of the bot's own writes (``Store.busy_items``: the newest
click's write not settled, a write claim held, or a write that ended after the read began,
with :data:`CLOCK_SLACK` for replicas' clocks).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from bot.graph import BatchRequest, GraphClient, GraphNotFound, Query
from bot.graph.models import AccessReviewDecision
from bot.reviews.events import DomainEvent, ItemDecidedElsewhere
from bot.store import AuditEvent, ItemRecord, Store

__all__ = ["CLOCK_SLACK", "Corrections", "DecisionValues"]

log = logging.getLogger(__name__)

#: How far apart two replicas' clocks may be when a write's end is compared with a Graph read.
CLOCK_SLACK = timedelta(seconds=5)
PENDING = "NotReviewed"
_DECIDED = frozenset({"Approve", "Deny", "DontKnow"})


@dataclass
class Corrections:
    """What reconciling one instance changes: items to write, audit lines, events to hand on,
    and the reads that failed (the cycle is then incomplete)."""

    items: list[ItemRecord] = field(default_factory=list)
    audit: list[AuditEvent] = field(default_factory=list)
    events: list[DomainEvent] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class DecisionValues:
    """Reconciles the decision values of one instance's items with Graph (see the module)."""

    def __init__(self, *, store: Store, graph: GraphClient, page_size: int) -> None:
        self._store = store
        self._graph = graph
        self._page_size = page_size

    async def hold_writes_in_flight(
        self,
        instance_id: str,
        items: list[ItemRecord],
        stored: Mapping[str, ItemRecord],
        read_began: datetime,
    ) -> tuple[list[ItemRecord], list[ItemRecord]]:
        """Returns the items to write (the store's own where a write may be newer than the
        listing) and the items reopened (Graph wins: pending again)."""
        flipped = {
            item.item_id
            for item in items
            if (previous := stored.get(item.item_id)) is not None
            and previous.decision in _DECIDED
            and previous.stage_id == item.stage_id
        }
        if not flipped:
            return items, []
        busy = await self._store.busy_items(
            instance_id=instance_id, item_ids=sorted(flipped), since=read_began - CLOCK_SLACK
        )
        kept = [stored[i.item_id] if i.item_id in busy else i for i in items]
        return kept, [i for i in items if i.item_id in flipped - busy]

    async def corrections(
        self,
        *,
        instance_id: str,
        stage_id: str | None,
        decisions_path: str,
        stored: Mapping[str, ItemRecord],
        seen: set[str],
        reopened: Sequence[ItemRecord],
        read_began: datetime,
    ) -> Corrections:
        """The corrections Graph calls for (see the module): ``stored`` is the store's items of
        the instance as the cycle began, ``seen`` the items the cycle has read already, and
        ``reopened`` what :meth:`hold_writes_in_flight` reopened."""
        out = Corrections()
        candidates = [
            item
            for item_id, item in stored.items()
            if item_id not in seen and item.decision in _DECIDED and item.stage_id == stage_id
        ]
        current = await self._current(decisions_path, candidates, len(stored), out)
        differing = {
            item.item_id: (item, decision)
            for item in candidates
            if (decision := current.get(item.item_id)) is not None
            and (
                decision.decision != item.decision
                or _decider(decision) != (item.reviewed_by or "").lower()
            )
        }
        busy = (
            await self._store.busy_items(
                instance_id=instance_id, item_ids=sorted(differing), since=read_began - CLOCK_SLACK
            )
            if differing
            else set()
        )
        for item_id, (item, decision) in sorted(differing.items()):
            if item_id in busy:
                continue
            by = decision.reviewed_by
            out.items.append(
                replace(
                    item,
                    decision=decision.decision,
                    reviewed_by=None if by.is_nobody else by.id,
                    reviewed_at=decision.reviewed_at,
                    justification=decision.justification or None,
                    data={
                        **{k: v for k, v in item.data.items() if k not in ("saving", "writeError")},
                        "reviewedByName": by.display_name,
                    },
                )
            )
            out.audit.append(_audit(item, decision.decision, _decider(decision), by.display_name))
            out.events.append(
                ItemDecidedElsewhere(
                    instance_id=item.instance_id,
                    item_id=item_id,
                    decision=decision.decision,
                    decided_by="" if by.is_nobody else by.id,
                    decided_by_name=by.display_name,
                    decided_at=decision.reviewed_at,
                )
            )
        for item in reopened:
            out.audit.append(_audit(stored[item.item_id], PENDING, "", ""))
            out.events.append(
                ItemDecidedElsewhere(
                    instance_id=item.instance_id,
                    item_id=item.item_id,
                    decision=PENDING,
                    decided_by="",
                    decided_by_name="",
                    decided_at=None,
                )
            )
        if out.events:
            log.warning(
                "store corrected from Graph",
                extra={"instance_id": instance_id, "items": len(out.events)},
            )
        return out

    async def _current(
        self,
        decisions_path: str,
        items: Sequence[ItemRecord],
        known_items: int,
        out: Corrections,
    ) -> dict[str, AccessReviewDecision]:
        """What Graph holds now for ``items``, the cheaper way: one GET per item (each counts
        against Graph's limits, batched 20 to a ``$batch``) while that is no more requests than
        listing the instance's decisions (about ``known_items``) at the largest page size."""
        if not items:
            return {}
        found: dict[str, AccessReviewDecision] = {}
        pages = -(-max(known_items, 1) // self._page_size)
        if len(items) <= pages:
            answers = await self._graph.batch(
                [
                    BatchRequest(id=str(n), method="GET", url=f"{decisions_path}/{item.item_id}")
                    for n, item in enumerate(items)
                ]
            )
            for n, item in enumerate(items):
                answer = answers[str(n)]
                if answer.error is None:
                    found[item.item_id] = AccessReviewDecision.from_graph(answer.body or {})
                elif not isinstance(answer.error, GraphNotFound):
                    # (Gone from the review: the next pending listing handles removals.)
                    out.errors.append(f"decision {item.item_id}: {answer.error}")
            return found
        wanted = {item.item_id for item in items}
        query = Query(
            top=self._page_size,
            select=("id", "decision", "reviewedBy", "reviewedDateTime", "justification"),
        )
        async for raw in self._graph.paginate(decisions_path, params=query):
            decision = AccessReviewDecision.from_graph(raw)
            if decision.id in wanted:
                found[decision.id] = decision
        return found


def _decider(decision: AccessReviewDecision) -> str:
    """Who decided, as the store keeps it ("" for nobody: an automatic decision)."""
    by = decision.reviewed_by
    return "" if by.is_nobody else (by.id or "").lower()


def _audit(item: ItemRecord, graph_decision: str, by_id: str, by_name: str) -> AuditEvent:
    return AuditEvent(
        action="decision_corrected",
        actor="discovery",
        instance_id=item.instance_id,
        item_id=item.item_id,
        result="graph_wins",
        detail={
            "store": item.decision,
            "storeBy": item.reviewed_by or "",
            "graph": graph_decision,
            "graphBy": by_id,
            "graphByName": by_name,
        },
    )
