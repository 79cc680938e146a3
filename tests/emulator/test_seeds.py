"""Seeds are deterministic, and the demo's hand-derived reviewer table matches both the
tenant's reviewer resolution and what Graph answers each reviewer."""

from __future__ import annotations

from datetime import UTC, datetime

from emulator.clock import ManualClock
from emulator.seeds import (
    DEMO_EXPECTED_ASSIGNMENTS,
    DEMO_TENANT_ID,
    build_seed,
    demo,
    demo_id,
    generate,
)
from emulator.tenant import Tenant

START = datetime(2026, 11, 29, 13, 0, tzinfo=UTC)


def _resolved(tenant: Tenant) -> dict[str, dict[str, frozenset[str]]]:
    resolved: dict[str, dict[str, frozenset[str]]] = {}
    for instance in tenant.instances.values():
        if tenant.instance_status(instance) != "InProgress":
            continue
        stage = tenant.active_stage(instance)
        for reviewer, ids in tenant.assignments(instance, stage.index if stage else None).items():
            resolved.setdefault(reviewer, {})[instance.id] = frozenset(ids)
    return resolved


def test_demo_expected_assignments_match_reviewer_resolution() -> None:
    tenant = demo(ManualClock(START))
    assert _resolved(tenant) == {k: dict(v) for k, v in DEMO_EXPECTED_ASSIGNMENTS.items()}
    # Every kind is represented: 9 reviewers over 8 running reviews.
    assert len(DEMO_EXPECTED_ASSIGNMENTS) == 9
    running = {i for reviews in DEMO_EXPECTED_ASSIGNMENTS.values() for i in reviews}
    assert len(running) == 8


def test_demo_is_deterministic_and_covers_every_resource_kind() -> None:
    first, second = demo(ManualClock(START)), demo(ManualClock(START))
    assert first.tenant_id == DEMO_TENANT_ID
    assert sorted(first.users) == sorted(second.users)
    assert sorted(first.instances) == sorted(second.instances)
    assert [sorted(i.decisions) for i in first.instances.values()] == [
        sorted(i.decisions) for i in second.instances.values()
    ]
    kinds = {
        d.resource.type
        for i in first.instances.values()
        for d in i.decisions.values()
        if d.resource
    }
    assert kinds == {
        "group",
        "Group",
        "ServicePrincipal",
        "DirectoryRole",
        "AzureRole",
        "AccessPackageAssignmentPolicy",
    }
    assert {u.user_type for u in first.users.values()} == {"Member", "Guest"}
    principals = {d.principal_kind for i in first.instances.values() for d in i.decisions.values()}
    assert principals == {"user", "servicePrincipal"}
    recommendations = {
        d.recommendation for i in first.instances.values() for d in i.decisions.values()
    }
    assert recommendations == {"Approve", "Deny", "NoInfoAvailable"}


async def test_graph_answers_each_reviewer_with_the_expected_items(demo_graph) -> None:
    for reviewer_id, expected in DEMO_EXPECTED_ASSIGNMENTS.items():
        token = demo_graph.identity.issue_user_token(
            user_oid=reviewer_id,
            client_id=demo_graph.graph.bot_app_id,
            scopes=["AccessReview.Read.All"],
        )
        items = await demo_graph.get_all(
            "/beta/identityGovernance/accessReviews/decisions/filterByCurrentUser(on='reviewer')",
            token,
        )
        got: dict[str, set[str]] = {}
        for item in items:
            got.setdefault(item["accessReviewId"], set()).add(item["id"])
        assert got == {k: set(v) for k, v in expected.items()}, reviewer_id


def test_generate_is_deterministic_and_sized() -> None:
    clock = ManualClock(START)
    first = generate(clock, decisions=2_000, reviewers=100, instances=7, seed=3)
    second = generate(clock, decisions=2_000, reviewers=100, instances=7, seed=3)
    other = generate(clock, decisions=2_000, reviewers=100, instances=7, seed=4)
    assert first.stats()["decisions"] == 2_000
    assert first.pending_count() == 2_000
    assert len(first.instances) == 7
    assert [(i.id, list(i.decisions), i.reviewers) for i in first.instances.values()] == [
        (i.id, list(i.decisions), i.reviewers) for i in second.instances.values()
    ]
    assert [i.reviewers for i in first.instances.values()] != [
        i.reviewers for i in other.instances.values()
    ]
    # Every pending item has at least one reviewer (fallbacks cover the rest).
    for instance in first.instances.values():
        assigned = {d for ids in first.assignments(instance).values() for d in ids}
        assert assigned == set(instance.decisions)


def test_build_seed_by_name() -> None:
    tenant = build_seed(
        "generated", ManualClock(START), params={"decisions": 50, "reviewers": 5, "instances": 2}
    )
    assert tenant.stats()["decisions"] == 50
    assert demo_id("user", "adele") in build_seed("demo", ManualClock(START)).users


def test_items_added_later_get_reviewers() -> None:
    from emulator.tenant import Decision

    tenant = demo(ManualClock(START))
    marketing = demo_id("review", "marketing")
    instance = tenant.instances[marketing]
    assert demo_id("user", "diego") in tenant.assignments(instance)
    resource = next(iter(instance.decisions.values())).resource
    added = tenant.add_decision(
        marketing,
        Decision(
            id=demo_id("decision", "marketing:late"),
            principal_id=demo_id("user", "grady"),
            principal_kind="user",
            resource=resource,
            recommendation="Approve",
        ),
    )
    # Grady's manager is Diego: the cached assignment must include the new item.
    assert added.id in tenant.assignments(instance)[demo_id("user", "diego")]
