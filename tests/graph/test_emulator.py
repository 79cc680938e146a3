"""The typed Graph calls against the emulator over https on loopback (demo tenant)."""

from __future__ import annotations

from typing import Any

import pytest

from bot.graph import (
    PENDING_DECISIONS,
    AccessReviewsApi,
    BatchRequest,
    DecisionWrite,
    DirectoryApi,
    GraphBadRequest,
    GraphForbidden,
    GraphNotFound,
    Query,
    TeamsAppsApi,
)
from bot.graph.models import Decision, ReviewStatus
from emulator.faults import FaultRule
from emulator.seeds import demo_id
from tests.graph.support import GraphStack


def uid(key: str) -> str:
    return demo_id("user", key)


def rid(key: str) -> str:
    return demo_id("review", key)


def did(review: str, principal: str) -> str:
    return demo_id("decision", f"{review}:{uid(principal)}")


def stored(stack: GraphStack, review: str, principal: str) -> Any:
    return stack.cloud.tenant.instances[rid(review)].decisions[did(review, principal)]


async def test_app_only_discovery_definitions_instances_pending_decisions(demo: GraphStack) -> None:
    reviews = AccessReviewsApi(demo.graph)
    definitions = [d async for d in reviews.list_definitions(Query(top=3))]
    by_id = {d.id: d for d in definitions}
    assert rid("finance") in by_id and rid("marketing") in by_id
    assert by_id[rid("finance")].justification_required
    assert by_id[rid("engineering")].is_multi_stage
    marketing = by_id[rid("marketing")]
    assert [r.query for r in marketing.reviewers] == ["./manager"]
    assert marketing.reviewers[0].query_root == "decisions"

    instances = [i async for i in reviews.list_instances(rid("marketing"))]
    assert [i.id for i in instances] == [rid("marketing")]
    assert instances[0].status == ReviewStatus.IN_PROGRESS
    assert instances[0].definition_id == rid("marketing")
    assert instances[0].end is not None and instances[0].end.tzinfo is not None

    pending = [
        d
        async for d in reviews.list_decisions(
            rid("marketing"),
            rid("marketing"),
            Query(
                filter=PENDING_DECISIONS, select=("id", "decision", "principal", "recommendation")
            ),
        )
    ]
    assert {d.id for d in pending} == {did("marketing", p) for p in ("adele", "isaiah", "nestor")}
    assert all(d.is_pending for d in pending)
    assert {d.principal.id for d in pending} == {uid("adele"), uid("isaiah"), uid("nestor")}


async def test_instances_of_many_definitions_in_one_batch(demo: GraphStack) -> None:
    reviews = AccessReviewsApi(demo.graph)
    ids = [d.id async for d in reviews.list_definitions()]
    before = (
        demo.registry.get_sample_value(
            "graph_http_requests_total", {"method": "POST", "status": "200"}
        )
        or 0
    )
    by_definition = await reviews.list_instances_for_definitions(ids)
    after = demo.registry.get_sample_value(
        "graph_http_requests_total", {"method": "POST", "status": "200"}
    )
    assert after == before + 1  # one $batch for all of them (fewer than 20)
    assert set(by_definition) == set(ids)
    assert [i.id for i in by_definition[rid("finance")]] == [rid("finance")]


async def test_an_app_only_decision_patch_is_a_typed_forbidden_error(demo: GraphStack) -> None:
    reviews = AccessReviewsApi(demo.graph)
    write = DecisionWrite(rid("marketing"), rid("marketing"), did("marketing", "adele"), "Deny")
    with pytest.raises(GraphForbidden) as caught:
        await reviews.record_decision(write)
    assert caught.value.status == 403
    assert caught.value.code == "Forbidden"
    assert caught.value.request_id
    with pytest.raises(GraphForbidden):
        await reviews.accept_recommendations(rid("marketing"), rid("marketing"))
    assert stored(demo, "marketing", "adele").decision == Decision.NOT_REVIEWED
    # Forbidden is never retried.
    assert demo.registry.get_sample_value("graph_retries_total", {"reason": "403"}) is None


async def test_a_reviewer_writes_on_behalf_of_themselves(demo: GraphStack) -> None:
    as_alex = AccessReviewsApi(demo.as_user(uid("alex")))
    mine = [
        d
        async for d in as_alex.list_decisions(
            rid("marketing"), rid("marketing"), current_reviewer=True
        )
    ]
    reports = {
        d.principal_id
        for d in demo.cloud.tenant.instances[rid("marketing")].decisions.values()
        if demo.cloud.tenant.users[d.principal_id].manager_id == uid("alex")
    }
    assert uid("adele") in reports
    assert {d.principal.id for d in mine} == reports  # ./manager: only his reports' items
    await as_alex.record_decision(
        DecisionWrite(
            rid("marketing"),
            rid("marketing"),
            did("marketing", "adele"),
            "Approve",
            justification="still in the team",
        )
    )
    item = stored(demo, "marketing", "adele")
    assert item.decision == "Approve"
    assert item.reviewed_by[0] == uid("alex")
    # A second write of the same decision is harmless (at-least-once delivery).
    await as_alex.record_decision(
        DecisionWrite(rid("marketing"), rid("marketing"), did("marketing", "adele"), "Approve")
    )
    # Not his item: the reviewer check is Graph's, surfaced as forbidden.
    with pytest.raises(GraphForbidden):
        await as_alex.record_decision(
            DecisionWrite(rid("marketing"), rid("marketing"), did("marketing", "nestor"), "Deny")
        )
    # A justification is required in the finance review; Graph says 400 and it is not retried.
    as_patti = AccessReviewsApi(demo.as_user(uid("patti")))
    with pytest.raises(GraphBadRequest):
        await as_patti.record_decision(
            DecisionWrite(rid("finance"), rid("finance"), did("finance", "lee"), "Approve")
        )


async def test_decisions_in_a_batch_keep_their_own_errors(demo: GraphStack) -> None:
    as_alex = AccessReviewsApi(demo.as_user(uid("alex")))
    answers = await as_alex.record_decisions(
        [
            DecisionWrite(rid("marketing"), rid("marketing"), did("marketing", "adele"), "Deny"),
            DecisionWrite(rid("marketing"), rid("marketing"), did("marketing", "nestor"), "Deny"),
        ]
    )
    assert answers[did("marketing", "adele")].status == 204
    assert isinstance(answers[did("marketing", "nestor")].error, GraphForbidden)
    assert stored(demo, "marketing", "adele").decision == "Deny"
    assert stored(demo, "marketing", "nestor").decision == "NotReviewed"


async def test_bulk_actions_as_the_reviewer(demo: GraphStack) -> None:
    as_lee = AccessReviewsApi(demo.as_user(uid("lee")))
    await as_lee.accept_recommendations(rid("falcon"), rid("falcon"))
    assert stored(demo, "falcon", "lee").decision in ("Approve", "Deny")
    as_alex = AccessReviewsApi(demo.as_user(uid("alex")))
    await as_alex.batch_record_decisions(
        rid("marketing"),
        rid("marketing"),
        decision="Approve",
        justification="ok",
        principal_id=uid("adele"),
    )
    assert stored(demo, "marketing", "adele").decision == "Approve"
    assert stored(demo, "marketing", "nestor").decision == "NotReviewed"


async def test_multi_stage_decision_is_written_on_the_stage_path(demo: GraphStack) -> None:
    reviews = AccessReviewsApi(demo.graph)
    stages = [s async for s in reviews.list_stages(rid("engineering"), rid("engineering"))]
    active = [s for s in stages if s.status == ReviewStatus.IN_PROGRESS]
    assert len(active) == 1
    stage = active[0]
    items = [
        d
        async for d in reviews.list_decisions(
            rid("engineering"), rid("engineering"), stage_id=stage.id
        )
    ]
    lee_item = next(d for d in items if d.principal.id == uid("lee"))
    manager = demo.cloud.tenant.users[uid("lee")].manager_id
    as_manager = AccessReviewsApi(demo.as_user(manager))
    await as_manager.record_decision(
        DecisionWrite(
            rid("engineering"), rid("engineering"), lee_item.id, "Approve", stage_id=stage.id
        )
    )
    again = await reviews.get_decision(
        rid("engineering"), rid("engineering"), lee_item.id, stage_id=stage.id
    )
    assert again.decision == "Approve"
    assert again.reviewed_by.id == manager


async def test_contacted_reviewers_and_reminder(demo: GraphStack) -> None:
    reviews = AccessReviewsApi(demo.graph)
    contacted = [r async for r in reviews.contacted_reviewers(rid("finance"), rid("finance"))]
    assert [r.id for r in contacted] == [uid("patti")]
    # sendReminder needs AccessReview.ReadWrite.All; the bot is granted only Read.All app-only.
    with pytest.raises(GraphForbidden):
        await reviews.send_reminder(rid("finance"), rid("finance"))


async def test_directory_lookups(demo: GraphStack) -> None:
    directory = DirectoryApi(demo.graph)
    adele = await directory.get_user(uid("adele"))
    assert adele.display_name.startswith("Adele")
    manager = await directory.get_manager(uid("adele"))
    assert manager is not None and manager.id == uid("alex")
    assert await directory.get_manager(uid("nestor")) is None
    members = [m async for m in directory.group_members(demo_id("group", "auditors"))]
    assert uid("henrietta") in {m.id for m in members if m.is_user}  # through Audit Interns
    direct = [
        m async for m in directory.group_members(demo_id("group", "auditors"), transitive=False)
    ]
    assert uid("henrietta") not in {m.id for m in direct}
    owners = [o async for o in directory.group_owners(demo_id("group", "finance"))]
    assert [o.id for o in owners] == [uid("patti")]
    app_owners = [
        o async for o in directory.service_principal_owners(demo_id("sp", "expense_portal"))
    ]
    assert [o.id for o in app_owners] == [uid("lidia")]
    mailbox = await directory.mailbox_settings(uid("adele"))
    assert mailbox is not None and mailbox.time_zone
    users = await directory.get_users(
        [uid("adele"), uid("alex"), "00000000-0000-4000-8000-000000000bad"]
    )
    assert users[uid("alex")] is not None and users[uid("alex")].id == uid("alex")
    assert users["00000000-0000-4000-8000-000000000bad"] is None
    with pytest.raises(GraphNotFound):
        await directory.get_user("00000000-0000-4000-8000-000000000bad")


async def test_install_the_bot_for_a_user_and_find_the_chat(demo: GraphStack) -> None:
    teams = TeamsAppsApi(demo.graph)
    app = await teams.find_catalog_app(demo.cloud.bot_app_id)
    assert app is not None and app.external_id == demo.cloud.bot_app_id
    assert await teams.find_catalog_app("6f4b1c2d-0000-4000-8000-00000000cafe") is None
    user = uid("isaiah")
    assert await teams.installed_apps(user, teams_app_id=app.id) == []
    installation = await teams.ensure_installed(user, app.id)
    assert installation.teams_app is not None and installation.teams_app.id == app.id
    assert await teams.install_for_user(user, app.id) is False  # already there
    assert (await teams.ensure_installed(user, app.id)).id == installation.id
    chat_id = await teams.installation_chat_id(user, installation.id)
    assert chat_id
    assert demo.cloud.connector.is_installed(user)


async def test_an_expired_token_is_refreshed_once(demo: GraphStack) -> None:
    reviews = AccessReviewsApi(demo.graph)
    await reviews.get_definition(rid("finance"))  # token acquired
    demo.cloud.faults.add(FaultRule(service="graph", kind="expired_token", remaining=1))
    definition = await reviews.get_definition(rid("finance"))
    assert definition.id == rid("finance")
    assert demo.registry.get_sample_value("graph_retries_total", {"reason": "unauthorized"}) == 1


async def test_unknown_ids_and_raw_batch_items(demo: GraphStack) -> None:
    answers = await demo.graph.batch(
        [
            BatchRequest("a", "GET", f"/users/{uid('adele')}?$select=id,displayName"),
            BatchRequest("b", "GET", "/identityGovernance/accessReviews/definitions/nope"),
        ]
    )
    assert answers["a"].body["id"] == uid("adele")
    assert isinstance(answers["b"].error, GraphNotFound)


async def test_a_dropped_connection_is_retried_for_a_read(demo: GraphStack) -> None:
    reviews = AccessReviewsApi(demo.graph)
    await reviews.get_definition(rid("finance"))  # token and connection warm
    demo.cloud.faults.add(FaultRule(service="graph", kind="drop", remaining=1))
    assert (await reviews.get_definition(rid("finance"))).id == rid("finance")
    assert demo.registry.get_sample_value("graph_retries_total", {"reason": "transport"}) == 1


async def test_a_throttled_write_waits_and_lands_once(demo: GraphStack) -> None:
    as_alex = AccessReviewsApi(demo.as_user(uid("alex")))
    demo.cloud.faults.add(
        FaultRule(
            service="graph",
            kind="status",
            status=429,
            method="PATCH",
            retry_after_s=(1, 1),
            remaining=1,
        )
    )
    await as_alex.record_decision(
        DecisionWrite(rid("marketing"), rid("marketing"), did("marketing", "adele"), "Deny")
    )
    assert stored(demo, "marketing", "adele").decision == "Deny"
    assert demo.registry.get_sample_value("graph_retries_total", {"reason": "429"}) == 1
