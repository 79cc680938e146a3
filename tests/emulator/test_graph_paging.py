"""Paging over generated tenants: every item exactly once, absolute nextLinks, $top/$skip."""

from __future__ import annotations

import time

import pytest

from emulator.clock import ManualClock
from emulator.seeds import generate
from emulator.tenant import Instance, Tenant

AR = "/v1.0/identityGovernance/accessReviews"


def _decisions_path(instance: Instance) -> str:
    return f"{AR}/definitions/{instance.definition_id}/instances/{instance.id}/decisions"


def _current(tenant: Tenant) -> list[Instance]:
    """The running instances (recurring reviews also list their earlier recurrences)."""
    return [i for i in tenant.instances.values() if tenant.instance_status(i) == "InProgress"]


async def test_decision_paging_default_and_top(graph_server, emu_clock: ManualClock) -> None:
    tenant = generate(emu_clock, decisions=1_530, reviewers=60, instances=3, seed=5)
    harness = await graph_server(tenant, emu_clock)
    token = harness.app_token()
    running = _current(tenant)
    assert len(running) == 3
    for instance in running:
        path = _decisions_path(instance)
        first = await harness.call("GET", path, token)
        assert len(first.json()["value"]) == 100  # default page size
        default_pages = await harness.get_all(path, token)
        ids = [d["id"] for d in default_pages]
        assert len(ids) == len(set(ids)) == len(instance.decisions) == 510
        assert set(ids) == set(instance.decisions)
        small_pages = await harness.get_all(path, token, params={"$top": "37"})
        assert [d["id"] for d in small_pages] == ids  # stable order, nothing skipped
    # $skip past the end → empty page without nextLink.
    last = await harness.call("GET", path, token, params={"$skip": "510"})
    assert last.json()["value"] == [] and "@odata.nextLink" not in last.json()
    bad_top = await harness.call("GET", path, token, params={"$top": "0"})
    assert bad_top.status_code == 400


async def test_filtered_paging_and_reviewer_view(graph_server, emu_clock: ManualClock) -> None:
    tenant = generate(emu_clock, decisions=1_200, reviewers=40, instances=2, seed=9)
    harness = await graph_server(tenant, emu_clock)
    token = harness.app_token()
    instance = _current(tenant)[0]
    denies = await harness.get_all(
        _decisions_path(instance),
        token,
        params={"$filter": "decision eq 'NotReviewed' and recommendation eq 'Deny'", "$top": "25"},
    )
    expected = {d.id for d in instance.decisions.values() if d.recommendation == "Deny"}
    assert {d["id"] for d in denies} == expected and len(denies) == len(expected)
    # A reviewer's own view pages too, and covers exactly their assignments.
    reviewer, assigned = max(tenant.assignments(instance).items(), key=lambda kv: len(kv[1]))
    user_token = harness.identity.issue_user_token(
        user_oid=reviewer, client_id=harness.graph.bot_app_id, scopes=["AccessReview.Read.All"]
    )
    mine = await harness.get_all(
        _decisions_path(instance) + "/filterByCurrentUser(on='reviewer')",
        user_token,
        params={"$top": "50"},
    )
    assert sorted(d["id"] for d in mine) == sorted(assigned)


@pytest.mark.slow
async def test_100k_pending_decisions_seed_fast_and_page_exactly_once(
    graph_server, emu_clock: ManualClock
) -> None:
    started = time.perf_counter()
    tenant = generate(emu_clock, decisions=100_000, reviewers=5_000, instances=500, seed=1)
    seeded_s = time.perf_counter() - started
    assert seeded_s < 30, f"seeding took {seeded_s:.1f} s"
    assert tenant.pending_count() == 100_000
    harness = await graph_server(tenant, emu_clock)
    token = harness.app_token()
    definitions = await harness.get_all(f"{AR}/definitions", token, params={"$select": "id"})
    assert len(definitions) == 500
    seen: set[str] = set()
    total = 0
    for definition in definitions:
        running = await harness.get_all(
            f"{AR}/definitions/{definition['id']}/instances",
            token,
            params={"$filter": "status eq 'InProgress'", "$select": "id"},
        )
        assert len(running) == 1
        path = f"{AR}/definitions/{definition['id']}/instances/{running[0]['id']}/decisions"
        items = await harness.get_all(
            path,
            token,
            params={
                "$top": "100",  # the largest page of decisions
                "$select": "id,decision",
                "$filter": "decision eq 'NotReviewed'",
            },
        )
        total += len(items)
        seen.update(d["id"] for d in items)
    assert total == len(seen) == 100_000
