"""Contract tests: the documented Graph request/response examples, replayed against the
emulator over https on loopback."""

from __future__ import annotations

import re
from datetime import timedelta

from emulator.faults import FaultRule
from emulator.seeds import DEMO_TENANT_ID

ZERO = "00000000-0000-0000-0000-000000000000"
GRAPH_META = "https://graph.microsoft.com/v1.0/$metadata#"


async def test_list_definitions_envelope_and_shape(demo_graph) -> None:
    response = await demo_graph.call("GET", f"{demo_graph.ar}/definitions", demo_graph.app_token())
    assert response.status_code == 200
    assert response.headers["request-id"]
    body = response.json()
    assert body["@odata.context"] == GRAPH_META + "identityGovernance/accessReviews/definitions"
    assert "@odata.nextLink" not in body
    by_id = {d["id"]: d for d in body["value"]}
    assert len(by_id) == 9
    finance = by_id[demo_graph.rid("finance")]
    assert finance["status"] == "InProgress"
    assert finance["reviewers"] == [
        {"query": "./owners", "queryType": "MicrosoftGraph", "queryRoot": None}
    ]
    assert finance["settings"]["justificationRequiredOnApproval"] is True
    assert finance["scope"]["@odata.type"] == "#microsoft.graph.accessReviewQueryScope"
    assert finance["fallbackReviewers"] == finance["backupReviewers"]
    assert "instances" not in finance
    assert by_id[demo_graph.rid("sales_guests")]["status"] == "Completed"
    engineering = by_id[demo_graph.rid("engineering")]
    assert [s["stageId"] for s in engineering["stageSettings"]] == ["1", "2"]


async def test_instance_id_equals_definition_id_and_follows_clock(demo_graph) -> None:
    token = demo_graph.app_token()
    review = demo_graph.rid("finance")
    response = await demo_graph.call(
        "GET", f"{demo_graph.ar}/definitions/{review}/instances", token
    )
    body = response.json()
    assert body["@odata.context"] == (
        GRAPH_META + f"identityGovernance/accessReviews/definitions('{review}')/instances"
    )
    [instance] = body["value"]
    assert instance["id"] == review
    assert instance["status"] == "InProgress"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", instance["endDateTime"])
    demo_graph.clock.advance(timedelta(days=3, hours=1))
    response = await demo_graph.call(
        "GET", demo_graph.instance_url("finance"), demo_graph.app_token()
    )  # the old token has expired
    assert response.json()["status"] == "Completed"


async def test_list_decisions_matches_documented_pending_item(demo_graph) -> None:
    response = await demo_graph.call(
        "GET", demo_graph.decisions_url("finance"), demo_graph.app_token()
    )
    assert response.status_code == 200
    body = response.json()
    review = demo_graph.rid("finance")
    assert body["@odata.context"] == GRAPH_META + (
        f"identityGovernance/accessReviews/definitions('{review}')/instances('{review}')/decisions"
    )
    items = {d["principal"]["id"]: d for d in body["value"]}
    adele = items[demo_graph.uid("adele")]
    assert "@odata.type" not in adele  # plain list items omit it
    assert adele["accessReviewId"] == review
    assert adele["decision"] == "NotReviewed"
    assert adele["justification"] == ""
    assert adele["reviewedDateTime"] is None
    assert adele["appliedDateTime"] is None
    assert adele["applyResult"] == "New"
    assert adele["recommendation"] == "Approve"
    assert adele["reviewedBy"] == {
        "id": ZERO,
        "displayName": "",
        "type": None,
        "userPrincipalName": "",
    }
    assert adele["appliedBy"] == adele["reviewedBy"]
    assert (
        adele["principalLink"]
        == f"https://graph.microsoft.com/v1.0/users/{demo_graph.uid('adele')}"
    )
    assert adele["resource"]["type"] == "group"
    assert adele["resourceLink"].endswith(adele["resource"]["id"])
    principal = adele["principal"]
    assert principal["@odata.type"] == "#microsoft.graph.userIdentity"
    assert principal["displayName"] == "Adele Vance"
    assert re.fullmatch(
        r"\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d\d:\d\d [AP]M \+00:00",
        principal["lastUserSignInDateTime"],
    )
    assert items[demo_graph.uid("jordan")]["recommendation"] == "Deny"  # guest, inactive


async def test_filter_by_current_user_and_patch_204(demo_graph) -> None:
    patti = demo_graph.user_token("patti")
    url = demo_graph.decisions_url("finance") + "/filterByCurrentUser(on='reviewer')"
    response = await demo_graph.call("GET", url, patti)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["@odata.context"] == GRAPH_META + "Collection(accessReviewInstanceDecisionItem)"
    assert {d["id"] for d in body["value"]} == {
        demo_graph.did("finance", p) for p in ("adele", "lee", "jordan")
    }
    assert all(
        d["@odata.type"] == "#microsoft.graph.accessReviewInstanceDecisionItem"
        for d in body["value"]
    )
    # URL-encoded quotes work too.
    encoded = await demo_graph.call(
        "GET",
        demo_graph.decisions_url("finance") + "/filterByCurrentUser(on=%27reviewer%27)",
        patti,
    )
    assert len(encoded.json()["value"]) == 3

    decision_id = demo_graph.did("finance", "adele")
    response = await demo_graph.call(
        "PATCH",
        f"{demo_graph.decisions_url('finance')}/{decision_id}",
        patti,
        json={"decision": "Approve", "justification": "Still in Finance"},
    )
    assert response.status_code == 204
    assert response.content == b""
    item = (
        await demo_graph.call(
            "GET", f"{demo_graph.decisions_url('finance')}/{decision_id}", demo_graph.app_token()
        )
    ).json()
    assert item["decision"] == "Approve"
    assert item["justification"] == "Still in Finance"
    assert item["reviewedBy"]["id"] == demo_graph.uid("patti")
    assert item["reviewedBy"]["displayName"] == "Patti Fernandez"
    assert item["reviewedBy"]["userPrincipalName"] == "PattiF@contoso.onmicrosoft.com"
    assert item["reviewedDateTime"] == "2026-11-29T13:00:00Z"
    assert item["applyResult"] == "New"


async def test_filter_by_current_user_definitions_and_instances(demo_graph) -> None:
    diego = demo_graph.user_token("diego", scopes=("AccessReview.Read.All",))
    response = await demo_graph.call(
        "GET", f"{demo_graph.ar}/definitions/filterByCurrentUser(on='reviewer')", diego
    )
    body = response.json()
    assert body["@odata.context"] == GRAPH_META + "Collection(accessReviewScheduleDefinition)"
    assert {d["id"] for d in body["value"]} == {
        demo_graph.rid("marketing"),
        demo_graph.rid("engineering"),
    }
    marketing = demo_graph.rid("marketing")
    response = await demo_graph.call(
        "GET",
        f"{demo_graph.ar}/definitions/{marketing}/instances/filterByCurrentUser(on='reviewer')",
        diego,
    )
    assert [i["id"] for i in response.json()["value"]] == [marketing]
    bad = await demo_graph.call(
        "GET", f"{demo_graph.ar}/definitions/filterByCurrentUser(on='owner')", diego
    )
    assert bad.status_code == 400


async def test_batch_record_decisions_204(demo_graph) -> None:
    alex = demo_graph.user_token("alex")
    response = await demo_graph.call(
        "POST",
        demo_graph.instance_url("partner_portal") + "/batchRecordDecisions",
        alex,
        json={
            "decision": "Deny",
            "justification": "Partnership ended",
            "principalId": demo_graph.uid("jordan"),
        },
    )
    assert response.status_code == 204
    items = {
        d["principal"]["id"]: d
        for d in (
            await demo_graph.call(
                "GET", demo_graph.decisions_url("partner_portal"), demo_graph.app_token()
            )
        ).json()["value"]
    }
    assert items[demo_graph.uid("jordan")]["decision"] == "Deny"
    assert items[demo_graph.uid("jordan")]["reviewedBy"]["id"] == demo_graph.uid("alex")
    assert items[demo_graph.uid("sam")]["decision"] == "NotReviewed"  # filtered by principalId
    response = await demo_graph.call(
        "POST",
        demo_graph.instance_url("partner_portal") + "/batchRecordDecisions",
        alex,
        json={"decision": "Approve", "justification": "ok"},
    )
    assert response.status_code == 204
    values = (
        await demo_graph.call(
            "GET", demo_graph.decisions_url("partner_portal"), demo_graph.app_token()
        )
    ).json()["value"]
    assert {d["decision"] for d in values} == {"Approve"}


async def test_accept_recommendations(demo_graph) -> None:
    grady = demo_graph.user_token("grady")
    response = await demo_graph.call(
        "POST", demo_graph.instance_url("azure_contributor") + "/acceptRecommendations", grady
    )
    assert response.status_code == 204
    values = (
        await demo_graph.call(
            "GET", demo_graph.decisions_url("azure_contributor"), demo_graph.app_token()
        )
    ).json()["value"]
    by_principal = {d["principal"]["id"]: d for d in values}
    assert by_principal[demo_graph.uid("lee")]["decision"] == "Approve"
    assert by_principal[demo_graph.uid("isaiah")]["decision"] == "Deny"
    # Never signed in → no recommendation → stays undecided.
    assert by_principal[demo_graph.uid("sam")]["decision"] == "NotReviewed"


async def test_batch_with_throttled_item_and_dependencies(demo_graph) -> None:
    token = demo_graph.app_token()
    ar = "/identityGovernance/accessReviews"
    throttled = demo_graph.rid("marketing")
    demo_graph.faults.add(
        FaultRule(
            kind="status",
            service="graph",
            status=429,
            path_regex=f"definitions/{throttled}/instances$",
            retry_after_s=(7, 7),
        )
    )
    requests = [
        {
            "id": "1",
            "method": "GET",
            "url": f"{ar}/definitions/{demo_graph.rid('finance')}/instances",
        },
        {"id": "2", "method": "GET", "url": f"{ar}/definitions/{throttled}/instances"},
        {
            "id": "3",
            "method": "GET",
            "url": f"{ar}/definitions/{throttled}/instances",
            "dependsOn": ["2"],
        },
        {
            "id": "4",
            "method": "GET",
            "url": "/users/PattiF@contoso.onmicrosoft.com?$select=displayName",
        },
        {"id": "5", "method": "GET", "url": f"{ar}/definitions/nope"},
    ]
    response = await demo_graph.call("POST", "/v1.0/$batch", token, json={"requests": requests})
    assert response.status_code == 200
    by_id = {r["id"]: r for r in response.json()["responses"]}
    assert by_id["1"]["status"] == 200
    assert by_id["1"]["body"]["value"][0]["id"] == demo_graph.rid("finance")
    assert by_id["2"]["status"] == 429
    assert by_id["2"]["headers"]["Retry-After"] == "7"
    assert by_id["2"]["body"]["error"]["code"] == "TooManyRequests"
    assert by_id["3"]["status"] == 424
    assert by_id["4"]["body"]["displayName"] == "Patti Fernandez"
    assert by_id["5"]["status"] == 404


async def test_batch_patch_items_204_and_validation(demo_graph) -> None:
    diego = demo_graph.user_token("diego")
    base = demo_graph.decisions_url("engineering").removeprefix("/v1.0")
    requests = [
        {
            "id": str(n),
            "method": "PATCH",
            "url": f"{base}/{demo_graph.did('engineering', p)}",
            "headers": {"Content-Type": "application/json"},
            "body": {"decision": "Approve", "justification": ""},
        }
        for n, p in enumerate(("isaiah", "grady"), start=1)
    ]
    response = await demo_graph.call("POST", "/v1.0/$batch", diego, json={"requests": requests})
    assert [r["status"] for r in response.json()["responses"]] == [204, 204]
    # Over the limit, duplicate ids, a body without Content-Type: the whole batch is 400.
    too_many = [{"id": str(n), "method": "GET", "url": "/me"} for n in range(21)]
    assert (
        await demo_graph.call("POST", "/v1.0/$batch", diego, json={"requests": too_many})
    ).status_code == 400
    nested = [
        {
            "id": "1",
            "method": "POST",
            "url": "/$batch",
            "headers": {"Content-Type": "application/json"},
            "body": {"requests": []},
        }
    ]
    assert (
        await demo_graph.call("POST", "/v1.0/$batch", diego, json={"requests": nested})
    ).status_code == 400
    twins = [{"id": "1", "method": "GET", "url": "/me"}] * 2
    assert (
        await demo_graph.call("POST", "/v1.0/$batch", diego, json={"requests": twins})
    ).status_code == 400
    no_type = [
        {"id": "1", "method": "PATCH", "url": requests[0]["url"], "body": {"decision": "Deny"}}
    ]
    assert (
        await demo_graph.call("POST", "/v1.0/$batch", diego, json={"requests": no_type})
    ).status_code == 400


async def test_query_options(demo_graph) -> None:
    token = demo_graph.app_token()
    url = demo_graph.decisions_url("azure_contributor")
    response = await demo_graph.call(
        "GET",
        url,
        token,
        params={
            "$filter": "decision eq 'NotReviewed' and recommendation eq 'Deny'",
            "$select": "id,decision,principal",
        },
    )
    body = response.json()
    assert body["@odata.context"].endswith("/decisions(id,decision,principal)")
    [item] = body["value"]
    assert set(item) == {"id", "decision", "principal"}
    assert item["principal"]["id"] == demo_graph.uid("isaiah")
    unknown = await demo_graph.call("GET", url, token, params={"$foo": "1"})
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "BadRequest"
    assert {"date", "request-id", "client-request-id"} <= set(unknown.json()["error"]["innerError"])
    bad_filter = await demo_graph.call(
        "GET", url, token, params={"$filter": "startswith(decision,'A')"}
    )
    assert bad_filter.status_code == 400
    paged = await demo_graph.call("GET", url, token, params={"$top": "2"})
    assert len(paged.json()["value"]) == 2
    assert "%24skip=2" in paged.json()["@odata.nextLink"]


async def test_beta_only_routes(demo_graph) -> None:
    patti = demo_graph.user_token("patti")
    on_v1 = await demo_graph.call("GET", "/v1.0/me/pendingAccessReviewInstances", patti)
    assert on_v1.status_code == 400
    response = await demo_graph.call("GET", "/beta/me/pendingAccessReviewInstances", patti)
    assert response.status_code == 200
    assert [i["id"] for i in response.json()["value"]] == [demo_graph.rid("finance")]
    decisions = await demo_graph.call(
        "GET", f"/beta/me/pendingAccessReviewInstances/{demo_graph.rid('finance')}/decisions", patti
    )
    assert len(decisions.json()["value"]) == 3
    grady = demo_graph.user_token("grady")
    everything = await demo_graph.call(
        "GET",
        "/beta/identityGovernance/accessReviews/decisions/filterByCurrentUser(on='reviewer')",
        grady,
        params={"$expand": "instance($expand=definition)"},
    )
    values = everything.json()["value"]
    assert len(values) == 5  # falcon (self) + azure contributor (4)
    assert {v["instance"]["definition"]["displayName"] for v in values} == {
        "Project Falcon – self-review",
        "Contoso Production subscription – Contributor review",
    }
    app_only = await demo_graph.call(
        "GET", "/beta/me/pendingAccessReviewInstances", demo_graph.app_token()
    )
    assert app_only.status_code == 403


async def test_subscriptions_for_access_reviews_refused(demo_graph) -> None:
    response = await demo_graph.call(
        "POST",
        "/v1.0/subscriptions",
        demo_graph.app_token(),
        json={
            "changeType": "updated",
            "notificationUrl": "https://example.invalid/hook",
            "resource": "identityGovernance/accessReviews/definitions",
            "expirationDateTime": "2026-12-01T00:00:00Z",
            "clientState": "x",
        },
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "ExtensionError"


async def test_tokens_are_checked(demo_graph) -> None:
    url = f"{demo_graph.ar}/definitions"
    missing = await demo_graph.call("GET", url, None)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "InvalidAuthenticationToken"
    garbage = await demo_graph.call("GET", url, "not-a-jwt")
    assert garbage.status_code == 401
    expired = demo_graph.app_token()
    demo_graph.clock.advance(timedelta(hours=3))
    assert (await demo_graph.call("GET", url, expired)).status_code == 401
    assert demo_graph.tenant.tenant_id == DEMO_TENANT_ID


async def test_contacted_reviewers_lists_the_people_behind_queries(demo_graph) -> None:
    response = await demo_graph.call(
        "GET", demo_graph.instance_url("marketing") + "/contactedReviewers", demo_graph.app_token()
    )
    body = response.json()
    assert body["@odata.context"].endswith("/contactedReviewers")
    people = {r["id"]: r for r in body["value"]}
    # ./manager resolves to Alex and Diego; Nestor has no manager → the fallback, Megan.
    assert set(people) == {demo_graph.uid("alex"), demo_graph.uid("diego"), demo_graph.uid("megan")}
    alex = people[demo_graph.uid("alex")]
    assert alex["displayName"] == "Alex Wilber"
    assert alex["userPrincipalName"] == "AlexW@contoso.onmicrosoft.com"
    assert alex["createdDateTime"].endswith("Z")


async def test_stages_filter_by_current_user(demo_graph) -> None:
    url = demo_graph.instance_url("engineering") + "/stages/filterByCurrentUser(on='reviewer')"
    alex = await demo_graph.call("GET", url, demo_graph.user_token("alex"))
    assert alex.json()["@odata.context"].endswith("#Collection(accessReviewStage)")
    assert [s["status"] for s in alex.json()["value"]] == ["InProgress"]
    patti = await demo_graph.call("GET", url, demo_graph.user_token("patti"))
    assert patti.json()["value"] == []


async def test_beta_record_all_and_me_batch_record(demo_graph) -> None:
    alex = demo_graph.user_token("alex")
    response = await demo_graph.call(
        "POST",
        "/beta/identityGovernance/accessReviews/decisions/"
        "filterByCurrentUser(on='reviewer')/recordAllDecisions",
        alex,
        json={"decision": "DontKnow", "justification": "on leave"},
    )
    assert response.status_code == 204
    tenant = demo_graph.tenant
    alex_items = [
        tenant.instances[i].decisions[d]
        for i, ids in [
            (demo_graph.rid("marketing"), [demo_graph.did("marketing", "adele")]),
            (
                demo_graph.rid("partner_portal"),
                [demo_graph.did("partner_portal", p) for p in ("jordan", "sam")],
            ),
            (demo_graph.rid("engineering"), [demo_graph.did("engineering", "lee")]),
        ]
        for d in ids
    ]
    assert {item.decision for item in alex_items} == {"DontKnow"}
    # Others' items are untouched.
    isaiah = tenant.instances[demo_graph.rid("marketing")].decisions[
        demo_graph.did("marketing", "isaiah")
    ]
    assert isaiah.decision == "NotReviewed"
    not_allowed = await demo_graph.call(
        "POST",
        "/beta/identityGovernance/accessReviews/decisions/"
        "filterByCurrentUser(on='reviewer')/recordAllDecisions",
        alex,
        json={"decision": "NotReviewed"},
    )
    assert not_allowed.status_code == 400
    lidia = demo_graph.user_token("lidia")
    response = await demo_graph.call(
        "POST",
        f"/beta/me/pendingAccessReviewInstances/{demo_graph.rid('expense_portal')}"
        "/batchRecordDecisions",
        lidia,
        json={
            "decision": "Approve",
            "justification": "",
            "resourceId": demo_graph.tenant.instances[demo_graph.rid("expense_portal")]
            .decisions[demo_graph.did("expense_portal", "adele")]
            .resource.id,
        },
    )
    assert response.status_code == 204
    assert {
        d.decision for d in tenant.instances[demo_graph.rid("expense_portal")].decisions.values()
    } == {"Approve"}


async def test_beta_decisions_show_insights_and_membership(demo_graph) -> None:
    unknown = demo_graph.decisions_url("finance", "beta").replace(
        demo_graph.rid("finance"), "00000000-0000-0000-0000-00000000dead"
    )
    response = await demo_graph.call("GET", unknown, demo_graph.app_token())
    assert response.status_code == 404
    auditors = await demo_graph.call(
        "GET",
        demo_graph.decisions_url("finance", "beta"),
        demo_graph.app_token(),
        params={"$expand": "insights"},
    )
    items = {d["principal"]["id"]: d for d in auditors.json()["value"]}
    adele = items[demo_graph.uid("adele")]
    assert adele["principalResourceMembership"] == {"membershipType": "direct"}
    [insight] = adele["insights"]
    assert insight["@odata.type"] == "#microsoft.graph.userSignInInsight"
    assert insight["lastSignInDateTime"].endswith("Z")
    on_v1 = await demo_graph.call(
        "GET",
        demo_graph.decisions_url("finance"),
        demo_graph.app_token(),
        params={"$expand": "insights"},
    )
    assert on_v1.status_code == 400  # beta-first, as the reference advises


async def test_malformed_batch_items_are_400_not_500(demo_graph) -> None:
    token = demo_graph.app_token()
    for bad in (
        [{"id": "1", "method": "GET", "url": "/me", "dependsOn": [["2"]]}],
        [{"id": "1", "method": "GET", "url": "/me", "headers": ["x"]}],
        [{"id": 1, "method": "GET", "url": "/me"}],
        [
            {"id": "1", "method": "GET", "url": "/me", "dependsOn": ["2"]},
            {"id": "2", "method": "GET", "url": "/me", "dependsOn": ["1"]},
        ],
    ):
        response = await demo_graph.call("POST", "/v1.0/$batch", token, json={"requests": bad})
        assert response.status_code == 400, bad
    not_json = await demo_graph.client.post(
        demo_graph.base_url + "/v1.0/$batch",
        content=b"{",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert not_json.status_code == 400
