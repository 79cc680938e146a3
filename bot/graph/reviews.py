"""Typed calls for Microsoft Entra access reviews (``/identityGovernance/accessReviews``).

Reads work with app-only tokens (``AccessReview.Read.All``). Writes (:meth:`record_decision`,
:meth:`record_decisions`, :meth:`accept_recommendations`, :meth:`batch_record_decisions`) need a
client acting as the reviewer: ``AccessReviewsApi(graph.with_tokens(obo.for_user(...)))``; with an
app-only token Graph answers 403, surfaced as :class:`~bot.graph.errors.GraphForbidden`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from bot.graph.client import BatchRequest, BatchResponse, GraphClient
from bot.graph.models import (
    AccessReviewDecision,
    AccessReviewDefinition,
    AccessReviewInstance,
    AccessReviewStage,
    ContactedReviewer,
    Decision,
)
from bot.graph.odata import Query, encode_query, odata_eq

__all__ = ["PENDING_DECISIONS", "AccessReviewsApi", "DecisionWrite", "decision_writes"]

_ROOT = "/identityGovernance/accessReviews/definitions"
_CURRENT_REVIEWER = "/filterByCurrentUser(on='reviewer')"

#: The filter for decisions nobody has made yet.
PENDING_DECISIONS = odata_eq("decision", Decision.NOT_REVIEWED)


def _seg(value: str) -> str:
    """One URL path segment; ids come from Graph but also from card data, so never trust them raw."""
    if not value:
        raise ValueError("empty id in a Graph path")
    return quote(value, safe="")


def _instance_path(definition_id: str, instance_id: str) -> str:
    return f"{_ROOT}/{_seg(definition_id)}/instances/{_seg(instance_id)}"


def _decisions_path(definition_id: str, instance_id: str, stage_id: str | None) -> str:
    base = _instance_path(definition_id, instance_id)
    if stage_id:
        base += f"/stages/{_seg(stage_id)}"
    return base + "/decisions"


@dataclass(frozen=True)
class DecisionWrite:
    """One decision to record: Approve/Deny/DontKnow/NotReviewed, with optional justification."""

    definition_id: str
    instance_id: str
    decision_id: str
    decision: str
    justification: str | None = None
    stage_id: str | None = None

    def body(self) -> dict[str, Any]:
        if self.decision not in Decision.WRITABLE:
            raise ValueError(f"not a decision Graph accepts: {self.decision!r}")
        body: dict[str, Any] = {"decision": self.decision}
        if self.justification is not None:
            body["justification"] = self.justification
        return body

    def path(self) -> str:
        """Relative to the version root; the stage path for multi-stage reviews."""
        return (
            _decisions_path(self.definition_id, self.instance_id, self.stage_id)
            + "/"
            + _seg(self.decision_id)
        )


class AccessReviewsApi:
    """Definitions, instances, stages, decisions, reviewers and review actions."""

    def __init__(self, graph: GraphClient) -> None:
        self._graph = graph

    @property
    def graph(self) -> GraphClient:
        return self._graph

    # -- definitions ----------------------------------------------------------------------------

    async def list_definitions(
        self, query: Query | None = None, *, current_reviewer: bool = False
    ) -> AsyncIterator[AccessReviewDefinition]:
        """All definitions, or (delegated) those the signed-in user reviews."""
        path = _ROOT + (_CURRENT_REVIEWER if current_reviewer else "")
        async for item in self._graph.paginate(path, params=query):
            yield AccessReviewDefinition.from_graph(item)

    async def get_definition(self, definition_id: str) -> AccessReviewDefinition:
        body = await self._graph.get(f"{_ROOT}/{_seg(definition_id)}")
        return AccessReviewDefinition.from_graph(body)

    # -- instances ------------------------------------------------------------------------------

    async def list_instances(
        self, definition_id: str, query: Query | None = None, *, current_reviewer: bool = False
    ) -> AsyncIterator[AccessReviewInstance]:
        path = f"{_ROOT}/{_seg(definition_id)}/instances"
        if current_reviewer:
            path += _CURRENT_REVIEWER
        async for item in self._graph.paginate(path, params=query):
            yield AccessReviewInstance.from_graph(item, definition_id=definition_id)

    async def list_instances_for_definitions(
        self, definition_ids: Sequence[str], query: Query | None = None
    ) -> dict[str, list[AccessReviewInstance]]:
        """Instances of many definitions, fanned out through ``$batch`` (20 per HTTP call).

        A definition whose sub-request failed raises its own :class:`GraphError`; pages beyond
        the first are followed with ordinary GETs.
        """
        suffix = ("?" + encode_query(query.params())) if query else ""
        requests = [
            BatchRequest(id=str(n), method="GET", url=f"{_ROOT}/{_seg(d)}/instances{suffix}")
            for n, d in enumerate(definition_ids)
        ]
        answers = await self._graph.batch(requests)
        result: dict[str, list[AccessReviewInstance]] = {}
        for n, definition_id in enumerate(definition_ids):
            items = await self._collect(answers[str(n)])
            result[definition_id] = [
                AccessReviewInstance.from_graph(i, definition_id=definition_id) for i in items
            ]
        return result

    async def get_instance(self, definition_id: str, instance_id: str) -> AccessReviewInstance:
        body = await self._graph.get(_instance_path(definition_id, instance_id))
        return AccessReviewInstance.from_graph(body, definition_id=definition_id)

    # -- stages ---------------------------------------------------------------------------------

    async def list_stages(
        self,
        definition_id: str,
        instance_id: str,
        query: Query | None = None,
        *,
        current_reviewer: bool = False,
    ) -> AsyncIterator[AccessReviewStage]:
        path = _instance_path(definition_id, instance_id) + "/stages"
        if current_reviewer:
            path += _CURRENT_REVIEWER
        async for item in self._graph.paginate(path, params=query):
            yield AccessReviewStage.from_graph(
                item, definition_id=definition_id, instance_id=instance_id
            )

    # -- decisions ------------------------------------------------------------------------------

    async def list_decisions(
        self,
        definition_id: str,
        instance_id: str,
        query: Query | None = None,
        *,
        stage_id: str | None = None,
        current_reviewer: bool = False,
    ) -> AsyncIterator[AccessReviewDecision]:
        """Decisions of an instance (or of one stage); ``current_reviewer`` = only the caller's."""
        path = _decisions_path(definition_id, instance_id, stage_id)
        if current_reviewer:
            path += _CURRENT_REVIEWER
        async for item in self._graph.paginate(path, params=query):
            yield AccessReviewDecision.from_graph(item)

    async def list_decisions_for_instances(
        self, instances: Sequence[tuple[str, str]], query: Query | None = None
    ) -> dict[tuple[str, str], list[AccessReviewDecision]]:
        """Decisions of many ``(definition_id, instance_id)`` pairs, first pages through
        ``$batch`` (20 per HTTP call), further pages with ordinary GETs.

        Use a large ``$top`` so most instances fit in their first page.
        """
        suffix = ("?" + encode_query(query.params())) if query else ""
        requests = [
            BatchRequest(id=str(n), method="GET", url=_decisions_path(d, i, None) + suffix)
            for n, (d, i) in enumerate(instances)
        ]
        answers = await self._graph.batch(requests)
        result: dict[tuple[str, str], list[AccessReviewDecision]] = {}
        for n, pair in enumerate(instances):
            items = await self._collect(answers[str(n)])
            result[pair] = [AccessReviewDecision.from_graph(i) for i in items]
        return result

    async def get_decision(
        self, definition_id: str, instance_id: str, decision_id: str, *, stage_id: str | None = None
    ) -> AccessReviewDecision:
        path = _decisions_path(definition_id, instance_id, stage_id) + "/" + _seg(decision_id)
        return AccessReviewDecision.from_graph(await self._graph.get(path))

    async def record_decision(self, write: DecisionWrite) -> None:
        """PATCH one decision as the signed-in reviewer (204). Idempotent: safe to repeat."""
        await self._graph.request("PATCH", write.path(), json_body=write.body())

    async def record_decisions(self, writes: Sequence[DecisionWrite]) -> dict[str, BatchResponse]:
        """PATCH many decisions through ``$batch``; answers keyed by decision id.

        Each :class:`BatchResponse` carries its own error (e.g. 403 for an item the caller does
        not review); throttled items were already retried.
        """
        ids = [w.decision_id for w in writes]
        if len(set(ids)) != len(ids):
            raise ValueError("each decision may appear once per call")
        requests = [
            BatchRequest(id=w.decision_id, method="PATCH", url=w.path(), body=w.body())
            for w in writes
        ]
        return await self._graph.batch(requests)

    async def batch_record_decisions(
        self,
        definition_id: str,
        instance_id: str,
        *,
        decision: str,
        justification: str = "",
        principal_id: str | None = None,
        resource_id: str | None = None,
    ) -> None:
        """``batchRecordDecisions``: one decision for all the caller's items of the instance,
        narrowed to one principal or one resource when given."""
        if decision not in Decision.WRITABLE:
            raise ValueError(f"not a decision Graph accepts: {decision!r}")
        body: dict[str, Any] = {"decision": decision, "justification": justification}
        if principal_id:
            body["principalId"] = principal_id
        if resource_id:
            body["resourceId"] = resource_id
        # Recording the same decision twice leaves the same state: safe to repeat.
        await self._graph.request(
            "POST",
            _instance_path(definition_id, instance_id) + "/batchRecordDecisions",
            json_body=body,
            idempotent=True,
        )

    async def accept_recommendations(self, definition_id: str, instance_id: str) -> None:
        """``acceptRecommendations`` for the caller's items of the instance (delegated only)."""
        await self._graph.request(
            "POST",
            _instance_path(definition_id, instance_id) + "/acceptRecommendations",
            idempotent=True,
        )

    # -- reviewers and reminders ----------------------------------------------------------------

    async def contacted_reviewers(
        self, definition_id: str, instance_id: str, query: Query | None = None
    ) -> AsyncIterator[ContactedReviewer]:
        path = _instance_path(definition_id, instance_id) + "/contactedReviewers"
        async for item in self._graph.paginate(path, params=query):
            yield ContactedReviewer.from_graph(item)

    async def send_reminder(self, definition_id: str, instance_id: str) -> None:
        """Ask Graph to e-mail a reminder to the instance's reviewers who still have work."""
        # Not idempotent (a repeat sends another e-mail): only "not processed" answers are retried.
        await self._graph.request(
            "POST", _instance_path(definition_id, instance_id) + "/sendReminder", idempotent=False
        )

    # -- helpers --------------------------------------------------------------------------------

    async def _collect(self, answer: BatchResponse) -> list[Mapping[str, Any]]:
        """Items of a collection answered inside ``$batch``, following its nextLink pages."""
        answer.raise_for_status()
        body = answer.body if isinstance(answer.body, Mapping) else {}
        items: list[Mapping[str, Any]] = [
            i for i in body.get("value") or [] if isinstance(i, Mapping)
        ]
        link = body.get("@odata.nextLink")
        if link:
            async for item in self._graph.paginate(str(link)):
                items.append(item)
        return items


def decision_writes(
    definition_id: str,
    instance_id: str,
    decisions: Iterable[tuple[str, str]],
    *,
    justification: str | None = None,
    stage_id: str | None = None,
) -> list[DecisionWrite]:
    """``DecisionWrite`` objects for ``(decision_id, decision)`` pairs of one instance/stage."""
    return [
        DecisionWrite(
            definition_id=definition_id,
            instance_id=instance_id,
            decision_id=decision_id,
            decision=decision,
            justification=justification,
            stage_id=stage_id,
        )
        for decision_id, decision in decisions
    ]
