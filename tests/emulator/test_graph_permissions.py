"""Who may do what: app-only vs delegated, reviewer checks, time, justification, stages."""

from __future__ import annotations

from datetime import timedelta

import pytest

from emulator.tenant import TenantError


async def test_app_only_token_cannot_patch_a_decision(demo_graph) -> None:
    url = f"{demo_graph.decisions_url('finance')}/{demo_graph.did('finance', 'adele')}"
    response = await demo_graph.call(
        "PATCH",
        url,
        demo_graph.app_token(roles=["AccessReview.ReadWrite.All"]),
        json={"decision": "Deny"},
    )
    assert response.status_code == 403
    body = response.json()["error"]
    assert body["code"] == "Forbidden"
    assert {"date", "request-id"} <= set(body["innerError"])
    accept = await demo_graph.call(
        "POST",
        demo_graph.instance_url("finance") + "/acceptRecommendations",
        demo_graph.app_token(roles=["AccessReview.ReadWrite.All"]),
    )
    assert accept.status_code == 403


async def test_delegated_non_reviewer_is_refused(demo_graph) -> None:
    url = f"{demo_graph.decisions_url('finance')}/{demo_graph.did('finance', 'adele')}"
    response = await demo_graph.call(
        "PATCH", url, demo_graph.user_token("alex"), json={"decision": "Deny"}
    )
    assert response.status_code == 403
    assert (
        demo_graph.tenant.instances[demo_graph.rid("finance")]
        .decisions[demo_graph.did("finance", "adele")]
        .decision
        == "NotReviewed"
    )


async def test_delegated_token_without_write_scope_is_refused(demo_graph) -> None:
    url = f"{demo_graph.decisions_url('marketing')}/{demo_graph.did('marketing', 'adele')}"
    response = await demo_graph.call(
        "PATCH",
        url,
        demo_graph.user_token("alex", scopes=("AccessReview.Read.All",)),
        json={"decision": "Deny"},
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("reviewer", "review", "principal"),
    [
        ("alex", "marketing", "adele"),  # ./manager
        ("megan", "marketing", "nestor"),  # fallback (no manager)
        ("lee", "falcon", "lee"),  # self-review
        ("lidia", "expense_portal", "build_agent"),  # app owner, service principal as principal
        ("henrietta", "azure_contributor", "sam"),  # nested group member
        ("johanna", "user_admin_role", "megan"),  # specific user
    ],
)
async def test_every_reviewer_kind_can_write_and_is_stamped(
    demo_graph, reviewer, review, principal
) -> None:
    url = f"{demo_graph.decisions_url(review)}/{demo_graph.did(review, principal)}"
    response = await demo_graph.call(
        "PATCH",
        url,
        demo_graph.user_token(reviewer),
        json={"decision": "Deny", "justification": "not needed"},
    )
    assert response.status_code == 204, response.text
    item = demo_graph.tenant.instances[demo_graph.iid(review)].decisions[
        demo_graph.did(review, principal)
    ]
    assert item.decision == "Deny"
    assert item.reviewed_by is not None and item.reviewed_by[0] == demo_graph.uid(reviewer)
    assert item.reviewed_at == demo_graph.clock.now()


async def test_justification_required_on_approval(demo_graph) -> None:
    url = f"{demo_graph.decisions_url('finance')}/{demo_graph.did('finance', 'lee')}"
    patti = demo_graph.user_token("patti")
    missing = await demo_graph.call("PATCH", url, patti, json={"decision": "Approve"})
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "BadRequest"
    deny = await demo_graph.call("PATCH", url, patti, json={"decision": "Deny"})
    assert deny.status_code == 204  # the setting is about approvals only
    bad_value = await demo_graph.call("PATCH", url, patti, json={"decision": "Maybe"})
    assert bad_value.status_code == 400
    bad_json = await demo_graph.client.patch(
        demo_graph.base_url + url,
        content=b'{"decision": "Deny",}',
        headers={"Authorization": f"Bearer {patti}", "Content-Type": "application/json"},
    )
    assert bad_json.status_code == 400


async def test_writes_after_the_end_are_refused(demo_graph) -> None:
    url = f"{demo_graph.decisions_url('finance')}/{demo_graph.did('finance', 'lee')}"
    demo_graph.clock.advance(timedelta(days=4))
    response = await demo_graph.call(
        "PATCH", url, demo_graph.user_token("patti"), json={"decision": "Deny"}
    )
    assert response.status_code == 400
    assert "Completed" in response.json()["error"]["message"]


async def test_not_started_instance_is_not_writable(demo_graph) -> None:
    demo_graph.clock.set(demo_graph.clock.now() - timedelta(days=30))
    with pytest.raises(TenantError) as error:
        demo_graph.tenant.record_decision(
            demo_graph.rid("falcon"),
            demo_graph.did("falcon", "lee"),
            "Approve",
            demo_graph.uid("lee"),
        )
    assert error.value.status == 400


async def test_withdrawn_permission_gives_403(demo_graph) -> None:
    adele = demo_graph.uid("adele")
    ok = await demo_graph.call("GET", f"/v1.0/users/{adele}", demo_graph.app_token())
    assert ok.status_code == 200
    withdrawn = demo_graph.app_token(roles=["AccessReview.Read.All"])
    for path in (
        f"/v1.0/users/{adele}",
        f"/v1.0/users/{adele}/manager",
        f"/v1.0/users/{adele}/mailboxSettings",
        f"/v1.0/groups/{demo_graph.tenant.definitions[demo_graph.rid('finance')].scope['query'].split('/')[2]}/members",
        "/v1.0/appCatalogs/teamsApps",
    ):
        response = await demo_graph.call("GET", path, withdrawn)
        assert response.status_code == 403, path
        assert response.json()["error"]["code"] == "Authorization_RequestDenied"
    no_reviews = demo_graph.app_token(roles=["User.Read.All"])
    response = await demo_graph.call("GET", f"{demo_graph.ar}/definitions", no_reviews)
    assert response.status_code == 403


async def test_admin_actions_need_write_permission(demo_graph) -> None:
    url = demo_graph.instance_url("marketing")
    read_only = demo_graph.app_token()
    assert (await demo_graph.call("POST", url + "/stop", read_only)).status_code == 403
    writer = demo_graph.app_token(roles=["AccessReview.ReadWrite.All"])
    assert (await demo_graph.call("POST", url + "/sendReminder", writer)).status_code == 204
    assert demo_graph.tenant.sent_reminders
    assert (await demo_graph.call("POST", url + "/applyDecisions", writer)).status_code == 400
    assert (await demo_graph.call("POST", url + "/stop", writer)).status_code == 204

    async def status() -> str:
        body = (await demo_graph.call("GET", url, read_only)).json()
        return str(body["status"])

    # stop takes effect through Completing; applyDecisions only once Completed.
    assert await status() == "Completing"
    assert (await demo_graph.call("POST", url + "/applyDecisions", writer)).status_code == 400
    demo_graph.clock.advance(timedelta(minutes=1))
    assert await status() == "Completed"
    assert (await demo_graph.call("POST", url + "/applyDecisions", writer)).status_code == 204
    assert await status() == "Applying"
    demo_graph.clock.advance(timedelta(minutes=1))
    assert await status() == "Applied"


async def test_reset_decisions(demo_graph) -> None:
    demo_graph.tenant.record_decision(
        demo_graph.rid("falcon"), demo_graph.did("falcon", "lee"), "Approve", demo_graph.uid("lee")
    )
    writer = demo_graph.app_token(roles=["AccessReview.ReadWrite.All"])
    response = await demo_graph.call(
        "POST", demo_graph.instance_url("falcon") + "/resetDecisions", writer
    )
    assert response.status_code == 204
    item = demo_graph.tenant.instances[demo_graph.rid("falcon")].decisions[
        demo_graph.did("falcon", "lee")
    ]
    assert item.decision == "NotReviewed" and item.reviewed_by is None


async def test_delegated_reader_without_role_uses_filter_by_current_user(demo_graph) -> None:
    alex = demo_graph.user_token("alex", scopes=("AccessReview.Read.All",))
    assert (await demo_graph.call("GET", f"{demo_graph.ar}/definitions", alex)).status_code == 403
    megan = demo_graph.user_token("megan", scopes=("AccessReview.Read.All",))
    assert (await demo_graph.call("GET", f"{demo_graph.ar}/definitions", megan)).status_code == 200


async def test_default_decisions_and_auto_apply_at_the_end(demo_graph) -> None:
    values = (
        await demo_graph.call(
            "GET", demo_graph.decisions_url("sales_guests"), demo_graph.app_token()
        )
    ).json()["value"]
    [item] = values
    assert item["decision"] == "Approve"
    assert item["reviewedBy"] == {
        "id": "00000000-0000-0000-0000-000000000000",
        "displayName": "AAD Access Reviews",
        "type": None,
        "userPrincipalName": "",
    }
    assert item["applyResult"] == "AppliedSuccessfully"
    assert item["appliedBy"]["displayName"] == "AAD Access Reviews"


async def test_auto_applied_deny_removes_membership(demo_graph) -> None:
    tenant = demo_graph.tenant
    definition = tenant.definitions[demo_graph.rid("finance")]
    definition.settings.default_decision_enabled = True
    definition.settings.default_decision = "Recommendation"
    definition.settings.auto_apply_decisions_enabled = True
    finance_group = tenant.groups[definition.scope["query"].split("/")[2]]
    assert demo_graph.uid("jordan") in finance_group.member_ids
    # The end, then Completing, AutoReviewing, AutoReviewed, Completed, Applying: a minute each.
    demo_graph.clock.advance(timedelta(days=3, minutes=5))
    tenant.refresh()
    item = tenant.instances[demo_graph.rid("finance")].decisions[
        demo_graph.did("finance", "jordan")
    ]
    assert item.decision == "Deny" and item.reviewed_by is not None
    assert item.reviewed_by[1] == "AAD Access Reviews"
    assert demo_graph.uid("jordan") not in finance_group.member_ids
    assert demo_graph.uid("adele") in finance_group.member_ids  # approved by recommendation


async def test_multi_stage_review(demo_graph) -> None:
    tenant, clock = demo_graph.tenant, demo_graph.clock
    review = "engineering"
    instance_url = demo_graph.instance_url(review)
    stages = (
        await demo_graph.call("GET", instance_url + "/stages", demo_graph.app_token())
    ).json()["value"]
    assert [s["status"] for s in stages] == ["InProgress"]  # stage 2 does not exist yet
    stage1 = stages[0]["id"]
    # Stage 1: managers. Alex approves Lee, Diego denies Isaiah, Grady and Nestor stay open.
    alex, diego = demo_graph.user_token("alex"), demo_graph.user_token("diego")
    stage1_url = f"{instance_url}/stages/{stage1}/decisions"
    assert (
        await demo_graph.call(
            "PATCH",
            f"{stage1_url}/{demo_graph.did(review, 'lee')}",
            alex,
            json={"decision": "Approve", "justification": "Active"},
        )
    ).status_code == 204
    assert (
        await demo_graph.call(
            "PATCH",
            f"{stage1_url}/{demo_graph.did(review, 'isaiah')}",
            diego,
            json={"decision": "Deny"},
        )
    ).status_code == 204
    johanna_early = await demo_graph.call(
        "PATCH",
        f"{stage1_url}/{demo_graph.did(review, 'grady')}",
        demo_graph.user_token("johanna"),
        json={"decision": "Approve"},
    )
    assert johanna_early.status_code == 403
    # Stage 1 ends after three days; Approve and NotReviewed move on, Deny is final.
    clock.advance(timedelta(days=2, hours=1))
    app = demo_graph.app_token()
    stages = (await demo_graph.call("GET", instance_url + "/stages", app)).json()["value"]
    assert [s["status"] for s in stages] == ["Completed", "InProgress"]
    stage2 = stages[1]["id"]
    johanna = demo_graph.user_token("johanna")
    mine = (
        await demo_graph.call(
            "GET",
            f"{instance_url}/stages/{stage2}/decisions/filterByCurrentUser(on='reviewer')",
            johanna,
        )
    ).json()["value"]
    assert {d["principal"]["id"] for d in mine} == {
        demo_graph.uid(p) for p in ("lee", "grady", "nestor")
    }
    lee = next(d for d in mine if d["principal"]["id"] == demo_graph.uid("lee"))
    assert lee["decision"] == "NotReviewed"
    assert lee["decisionHistory"][0]["decision"] == "Approve"
    assert lee["decisionHistory"][0]["reviewedBy"]["id"] == demo_graph.uid("alex")
    # Only the active stage is writable: the stage-1 path and stage-1 reviewers are refused.
    alex = demo_graph.user_token("alex")
    late = await demo_graph.call(
        "PATCH",
        f"{stage1_url}/{demo_graph.did(review, 'grady')}",
        alex,
        json={"decision": "Approve", "justification": "x"},
    )
    assert late.status_code == 400
    stage2_url = f"{instance_url}/stages/{stage2}/decisions"
    assert (
        await demo_graph.call(
            "PATCH",
            f"{stage2_url}/{demo_graph.did(review, 'grady')}",
            alex,
            json={"decision": "Approve"},
        )
    ).status_code == 403
    assert (
        await demo_graph.call(
            "PATCH",
            f"{stage2_url}/{demo_graph.did(review, 'grady')}",
            johanna,
            json={"decision": "Approve"},
        )
    ).status_code == 204
    # Isaiah was denied in stage 1 and did not move: not in stage 2.
    missing = await demo_graph.call("GET", f"{stage2_url}/{demo_graph.did(review, 'isaiah')}", app)
    assert missing.status_code == 404
    # Stage 1 still shows what happened in stage 1.
    stage1_view = (
        await demo_graph.call("GET", f"{stage1_url}/{demo_graph.did(review, 'lee')}", app)
    ).json()
    assert stage1_view["decision"] == "Approve"
    assert tenant.instance_status(tenant.instances[demo_graph.rid(review)]) == "InProgress"
