"""Recurring reviews and every documented instance status, driven by the emulator's clock
(resources/accessreviewinstance.md; the order and the one-minute phases are emulator choices
written down in emulator/lifecycle.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from emulator.lifecycle import INSTANCE_STATUSES, add_months
from emulator.seeds import demo_id
from tests.emulator.conftest import GraphHarness

MINUTE = timedelta(minutes=1)


async def instances_of(harness: GraphHarness, review: str, **params: str) -> list[dict[str, Any]]:
    url = f"{harness.ar}/definitions/{harness.rid(review)}/instances"
    response = await harness.call("GET", url, harness.app_token(), params=params or None)
    assert response.status_code == 200, response.text
    return list(response.json()["value"])


async def status_of(harness: GraphHarness, review: str, instance_id: str) -> str:
    url = f"{harness.ar}/definitions/{harness.rid(review)}/instances/{instance_id}"
    response = await harness.call("GET", url, harness.app_token())
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


async def test_recurring_reviews_have_an_instance_id_per_recurrence(
    demo_graph: GraphHarness,
) -> None:
    listed = await instances_of(demo_graph, "azure_contributor")
    ids = [i["id"] for i in listed]
    assert len(ids) == len(set(ids)) == 3
    assert demo_graph.rid("azure_contributor") not in ids  # never the definition's id
    assert [i["status"] for i in listed] == ["Completed", "Applied", "InProgress"]
    assert ids[-1] == demo_graph.iid("azure_contributor")
    running = await instances_of(
        demo_graph, "azure_contributor", **{"$filter": "status eq 'InProgress'"}
    )
    assert [i["id"] for i in running] == [ids[-1]]
    # A decision's accessReviewId is its own instance, not the definition.
    decisions = await demo_graph.call(
        "GET", demo_graph.decisions_url("azure_contributor"), demo_graph.app_token()
    )
    assert {d["accessReviewId"] for d in decisions.json()["value"]} == {ids[-1]}
    # The quarterly review: both past quarters applied, no recurrence open now.
    sales = await instances_of(demo_graph, "sales_guests")
    assert [i["status"] for i in sales] == ["Applied", "Applied"]
    assert demo_graph.rid("sales_guests") not in {i["id"] for i in sales}
    # A one-time review's single instance shares the definition's id (the docs' tutorial).
    finance = await instances_of(demo_graph, "finance")
    assert [i["id"] for i in finance] == [demo_graph.rid("finance")]
    definition = await demo_graph.call(
        "GET",
        f"{demo_graph.ar}/definitions/{demo_graph.rid('azure_contributor')}",
        demo_graph.app_token(),
    )
    recurrence = definition.json()["settings"]["recurrence"]
    assert recurrence["pattern"]["type"] == "absoluteMonthly"
    assert recurrence["pattern"]["interval"] == 1


async def test_roll_over_walks_both_instances_through_their_statuses(
    demo_graph: GraphHarness,
) -> None:
    tenant, clock = demo_graph.tenant, demo_graph.clock
    old_id = demo_graph.iid("azure_contributor")
    new = tenant.roll_over(demo_graph.rid("azure_contributor"))
    assert new.id not in {old_id, demo_graph.rid("azure_contributor")}
    seen_old, seen_new = [], []
    for _ in range(5):
        seen_old.append(await status_of(demo_graph, "azure_contributor", old_id))
        seen_new.append(await status_of(demo_graph, "azure_contributor", new.id))
        clock.advance(MINUTE)
    # The old recurrence ends through Completing; the next one starts NotStarted, Initializing,
    # Starting, then InProgress.
    assert seen_old == ["Completing", "Completed", "Completed", "Completed", "Completed"]
    assert seen_new == ["NotStarted", "Initializing", "Starting", "InProgress", "InProgress"]
    # The new recurrence reviews the same people (resolved when it was created).
    principals = {d.principal_id for d in new.decisions.values()}
    assert principals == {demo_id("user", k) for k in ("lee", "isaiah", "sam", "riley")}
    assert all(d.decision == "NotReviewed" for d in new.decisions.values())
    # Decisions go only to the running instance.
    item = next(d for d in new.decisions.values() if d.principal_id == demo_id("user", "lee"))
    url = (
        f"{demo_graph.ar}/definitions/{demo_graph.rid('azure_contributor')}/instances/"
        f"{new.id}/decisions/{item.id}"
    )
    grady = demo_graph.user_token("grady")
    assert (
        await demo_graph.call("PATCH", url, grady, json={"decision": "Approve"})
    ).status_code == 204
    old_item = demo_graph.did("azure_contributor", "lee")
    old_url = f"{demo_graph.decisions_url('azure_contributor')}/{old_item}"
    refused = await demo_graph.call("PATCH", old_url, grady, json={"decision": "Approve"})
    assert refused.status_code == 400
    assert "Completed" in refused.json()["error"]["message"]


async def test_decisions_are_writable_only_in_progress(demo_graph: GraphHarness) -> None:
    tenant, clock = demo_graph.tenant, demo_graph.clock
    new = tenant.roll_over(demo_graph.rid("azure_contributor"))
    item = next(iter(new.decisions.values()))
    url = (
        f"{demo_graph.ar}/definitions/{demo_graph.rid('azure_contributor')}/instances/"
        f"{new.id}/decisions/{item.id}"
    )
    grady = demo_graph.user_token("grady")
    for expected in ("NotStarted", "Initializing", "Starting"):
        response = await demo_graph.call("PATCH", url, grady, json={"decision": "Deny"})
        assert response.status_code == 400, expected
        assert expected in response.json()["error"]["message"]
        clock.advance(MINUTE)
    assert (
        await demo_graph.call("PATCH", url, grady, json={"decision": "Deny"})
    ).status_code == 204


async def test_defaults_and_auto_apply_run_through_every_status(demo_graph: GraphHarness) -> None:
    tenant, clock = demo_graph.tenant, demo_graph.clock
    definition_id = demo_graph.rid("sales_guests")
    new = tenant.roll_over(definition_id)  # the quarterly review starts a recurrence now
    clock.advance(3 * MINUTE)
    assert await status_of(demo_graph, "sales_guests", new.id) == "InProgress"
    [item] = new.decisions.values()
    writer = demo_graph.app_token(roles=["AccessReview.ReadWrite.All"])
    url = f"{demo_graph.ar}/definitions/{definition_id}/instances/{new.id}"
    assert (await demo_graph.call("POST", url + "/stop", writer)).status_code == 204
    seen = []
    for _ in range(7):
        seen.append(await status_of(demo_graph, "sales_guests", new.id))
        if seen[-1] in {"AutoReviewing", "Completing"}:
            assert item.decision == "NotReviewed"  # the defaults come with AutoReviewed
        clock.advance(MINUTE)
    # Default decision Approve and auto-apply: Completing, AutoReviewing, AutoReviewed,
    # Completed, Applying, Applied.
    assert seen == [
        "Completing",
        "AutoReviewing",
        "AutoReviewed",
        "Completed",
        "Applying",
        "Applied",
        "Applied",
    ]
    assert item.decision == "Approve" and item.reviewed_by is not None
    assert item.reviewed_by[1] == "AAD Access Reviews"
    assert item.apply_result == "AppliedSuccessfully"


async def test_every_documented_status_is_met(demo_graph: GraphHarness) -> None:
    tenant, clock = demo_graph.tenant, demo_graph.clock
    seen: set[str] = set()
    sales = tenant.roll_over(demo_graph.rid("sales_guests"))
    azure = tenant.roll_over(demo_graph.rid("azure_contributor"))
    writer = demo_graph.app_token(roles=["AccessReview.ReadWrite.All"])
    for minute in range(12):
        for review, instance in (("sales_guests", sales), ("azure_contributor", azure)):
            status = await status_of(demo_graph, review, instance.id)
            seen.add(status)
            if status == "InProgress" and minute >= 4:
                url = f"{demo_graph.ar}/definitions/{demo_graph.rid(review)}/instances/"
                assert (
                    await demo_graph.call("POST", f"{url}{instance.id}/stop", writer)
                ).status_code == 204
                seen.add(await status_of(demo_graph, review, instance.id))  # Completing
            if status == "Completed" and review == "azure_contributor":
                url = f"{demo_graph.ar}/definitions/{demo_graph.rid(review)}/instances/"
                applied = await demo_graph.call(
                    "POST", f"{url}{instance.id}/applyDecisions", writer
                )
                assert applied.status_code == 204
        clock.advance(MINUTE)
    assert seen == set(INSTANCE_STATUSES)


async def test_the_next_recurrence_appears_on_schedule(demo_graph: GraphHarness) -> None:
    tenant, clock = demo_graph.tenant, demo_graph.clock
    current = tenant.instances[demo_graph.iid("azure_contributor")]
    next_start = add_months(current.start, 1)
    clock.set(next_start - timedelta(minutes=4))
    assert len(await instances_of(demo_graph, "azure_contributor")) == 3
    clock.advance(MINUTE)  # three minutes before its start, the next recurrence exists
    listed = await instances_of(demo_graph, "azure_contributor")
    assert len(listed) == 4 and listed[-1]["status"] == "NotStarted"
    assert listed[-1]["startDateTime"].startswith(next_start.strftime("%Y-%m-%dT%H:%M:%S"))
    clock.set(next_start)
    assert await status_of(demo_graph, "azure_contributor", listed[-1]["id"]) == "InProgress"
    # Monthly: the recurrence before it (14 days long) ended long ago.
    assert await status_of(demo_graph, "azure_contributor", current.id) == "Completed"


async def test_roll_over_over_http_and_of_a_one_time_review(demo_graph: GraphHarness) -> None:
    admin = demo_graph.base_url + "/_emulator/graph/reviews/{}/rollover"
    response = await demo_graph.client.post(admin.format(demo_graph.rid("azure_contributor")))
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "NotStarted" and body["id"] != demo_graph.rid("azure_contributor")
    refused = await demo_graph.client.post(admin.format(demo_graph.rid("finance")))
    assert refused.status_code == 400  # finance does not recur
    missing = await demo_graph.client.post(admin.format("no-such-review"))
    assert missing.status_code == 404


@pytest.mark.parametrize("review", ["azure_contributor", "sales_guests"])
async def test_definition_status_follows_its_latest_recurrence(
    demo_graph: GraphHarness, review: str
) -> None:
    response = await demo_graph.call(
        "GET", f"{demo_graph.ar}/definitions/{demo_graph.rid(review)}", demo_graph.app_token()
    )
    expected = "InProgress" if review == "azure_contributor" else "Completed"
    assert response.json()["status"] == expected
