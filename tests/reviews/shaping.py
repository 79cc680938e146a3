"""Shaping the emulated tenant for the Graph-side end-to-end tests.

The emulator drives instance statuses by its clock (``NotStarted`` → ``InProgress`` →
``Completed``) and sends principals in one shape. Graph does more (every documented status;
``""`` as a sign-in date). Until the emulator does the same by itself, these helpers set what a
test needs through the emulator's own tenant: every Graph route reads an instance's status through
``Tenant.instance_status`` and a principal through ``GraphApi._principal_json``, so the bot sees
exactly what a Graph answer with that status or shape would carry.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from emulator.server import EmulatorCloud
from emulator.tenant import Decision, Instance


class StatusOverride:
    """Force instance statuses: ``override[instance_id] = "Completing"``; ``del`` to release."""

    def __init__(self, cloud: EmulatorCloud) -> None:
        self.forced: dict[str, str] = {}
        tenant = cloud.tenant
        by_clock = tenant.instance_status

        def instance_status(instance: Instance, now: datetime | None = None) -> str:
            return self.forced.get(instance.id) or by_clock(instance, now)

        tenant.instance_status = instance_status  # type: ignore[method-assign]

    def __setitem__(self, instance_id: str, status: str) -> None:
        self.forced[instance_id] = status

    def __delitem__(self, instance_id: str) -> None:
        self.forced.pop(instance_id, None)


class PrincipalShapes:
    """Change how chosen principals come out of Graph: ``shapes[user_id] = {"lastUser…": ""}``."""

    def __init__(self, cloud: EmulatorCloud) -> None:
        self.changes: dict[str, dict[str, Any]] = {}
        graph = cloud.graph
        plain: Callable[[Decision], dict[str, Any]] = graph._principal_json

        def principal_json(item: Decision) -> dict[str, Any]:
            body = plain(item)
            body.update(self.changes.get(item.principal_id, {}))
            return body

        graph._principal_json = principal_json  # type: ignore[method-assign]

    def __setitem__(self, principal_id: str, changes: dict[str, Any]) -> None:
        self.changes[principal_id] = changes


def add_recurring_review(
    cloud: EmulatorCloud,
    *,
    definition_id: str,
    name: str,
    instances: list[tuple[str, datetime, datetime]],
    reviewer_ids: list[str],
    principal_ids: list[str],
    decision_ids: list[str],
) -> None:
    """A weekly review of a group's members by named reviewers, with the given instances.

    Every instance holds one pending decision per principal, with the **same** decision ids in
    each instance (the hardest case for a bot that mixes instances up: a write to the wrong
    instance would land instead of failing). Instance ids must differ from the definition id.
    """
    from emulator.tenant import (
        Decision,
        Definition,
        Instance,
        ReviewerScope,
        ReviewResource,
        ReviewSettings,
    )

    tenant = cloud.tenant
    assert all(instance_id != definition_id for instance_id, _s, _e in instances)
    group_id = f"{definition_id[:-4]}beef"
    scope = {
        "@odata.type": "#microsoft.graph.accessReviewQueryScope",
        "query": f"/groups/{group_id}/transitiveMembers",
        "queryType": "MicrosoftGraph",
        "queryRoot": None,
    }
    reviewers = tuple(ReviewerScope(f"/users/{r}") for r in reviewer_ids)
    first_start = min(start for _i, start, _e in instances)
    definition = Definition(
        id=definition_id,
        display_name=name,
        scope=scope,
        reviewers=reviewers,
        settings=ReviewSettings(instance_duration_in_days=7),
        created_by=(reviewer_ids[0], "Creator", ""),
        created_at=first_start,
        recurrence={
            "pattern": {"type": "weekly", "interval": 1},
            "range": {"type": "noEnd", "startDate": first_start.date().isoformat()},
        },
    )
    resource = ReviewResource(
        id=group_id,
        display_name=f"{name} group",
        type="Group",
        link=f"https://graph.microsoft.com/v1.0/groups/{group_id}",
    )
    built = []
    for instance_id, start, end in instances:
        instance = Instance(
            id=instance_id,
            definition_id=definition_id,
            start=start,
            end=end,
            scope=scope,
            reviewers=reviewers,
            fallback_reviewers=(),
        )
        for decision_id, principal_id in zip(decision_ids, principal_ids, strict=True):
            instance.decisions[decision_id] = Decision(
                id=decision_id,
                principal_id=principal_id,
                principal_kind="user",
                resource=resource,
                recommendation="Approve",
            )
        built.append(instance)
    tenant.add_review(definition, built)


def add_one_time_review(
    cloud: EmulatorCloud,
    *,
    definition_id: str,
    name: str,
    start: datetime,
    end: datetime,
    reviewers: list[str],
    fallback_reviewers: list[str],
    decisions: list[tuple[str, str, str, Any, str]],
) -> None:
    """A one-time review (its instance shares the definition's id, as Graph's docs show).

    ``reviewers``/``fallback_reviewers`` are reviewer-scope queries (``/users/{id}``,
    ``./owners``); ``decisions`` are (decision id, principal id, principal kind, ReviewResource,
    recommendation).
    """
    from emulator.tenant import (
        Decision,
        Definition,
        Instance,
        ReviewerScope,
        ReviewSettings,
    )

    scope = {
        "@odata.type": "#microsoft.graph.accessReviewQueryScope",
        "query": "/users",
        "queryType": "MicrosoftGraph",
        "queryRoot": None,
    }
    primary = tuple(ReviewerScope(q) for q in reviewers)
    fallback = tuple(ReviewerScope(q) for q in fallback_reviewers)
    definition = Definition(
        id=definition_id,
        display_name=name,
        scope=scope,
        reviewers=primary,
        settings=ReviewSettings(instance_duration_in_days=(end - start).days),
        created_by=("creator", "Creator", ""),
        created_at=start,
        fallback_reviewers=fallback,
        recurrence={"pattern": None, "range": {"type": "numbered", "numberOfOccurrences": 0}},
    )
    instance = Instance(
        id=definition_id,
        definition_id=definition_id,
        start=start,
        end=end,
        scope=scope,
        reviewers=primary,
        fallback_reviewers=fallback,
    )
    for decision_id, principal_id, kind, resource, recommendation in decisions:
        instance.decisions[decision_id] = Decision(
            id=decision_id,
            principal_id=principal_id,
            principal_kind=kind,  # type: ignore[arg-type]
            resource=resource,
            recommendation=recommendation,
        )
    cloud.tenant.add_review(definition, [instance])
