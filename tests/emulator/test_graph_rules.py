"""Permission rules for admin writes, query limits, principals as they really come and
``GET /users?$expand=manager``, checked against Microsoft's documentation:

* includes/rbac-for-apis/rbac-access-reviews-apis-write.md (roles for delegated admin writes);
* the filterByCurrentUser pages (Application permissions listed: an app reviews nothing);
* api/accessreviewinstancedecisionitem-update.md (``Content-Type: application/json`` required)
  and the default decision page of 100;
* resources/accessreviewinstancedecisionitem.md and the list-decisions examples (principal and
  resource shapes);
* api/user-list-manager.md (``$expand=manager`` on the list, ``$levels`` on one user only).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from emulator.clock import ManualClock
from emulator.seeds import generate
from tests.emulator.conftest import GraphHarness

ACTIONS = ("stop", "sendReminder", "resetDecisions")


# ---------------------------------------------------------------------------------- roles
@pytest.mark.parametrize("action", ACTIONS)
async def test_delegated_admin_actions_need_a_documented_role(
    demo_graph: GraphHarness, action: str
) -> None:
    group_review = demo_graph.instance_url("marketing") + f"/{action}"
    role_review = demo_graph.instance_url("user_admin_role") + f"/{action}"
    # Alex holds no Entra role: refused, whatever his scopes.
    alex = await demo_graph.call("POST", group_review, demo_graph.user_token("alex"))
    assert alex.status_code == 403
    message = alex.json()["error"]["message"]
    assert "User Administrator" in message and "Identity Governance Administrator" in message
    # Diego is a User Administrator: enough for a group review, not for a review of a role.
    diego = demo_graph.user_token("diego")
    refused = await demo_graph.call("POST", role_review, diego)
    assert refused.status_code == 403
    assert "Privileged Role Administrator" in refused.json()["error"]["message"]
    assert (await demo_graph.call("POST", group_review, diego)).status_code == 204
    # Megan is an Identity Governance Administrator: enough for both.
    megan = demo_graph.user_token("megan")
    if action != "stop":  # the role review is still running
        assert (await demo_graph.call("POST", role_review, megan)).status_code == 204
    # The delegated scope is still required on top of the role.
    read_only = demo_graph.user_token("megan", scopes=("AccessReview.Read.All",))
    assert (await demo_graph.call("POST", role_review, read_only)).status_code == 403


async def test_apply_decisions_needs_a_role_too(demo_graph: GraphHarness) -> None:
    url = demo_graph.instance_url("marketing")
    app_writer = demo_graph.app_token(roles=["AccessReview.ReadWrite.All"])
    assert (await demo_graph.call("POST", url + "/stop", app_writer)).status_code == 204
    demo_graph.clock.advance(timedelta(minutes=1))
    alex = await demo_graph.call("POST", url + "/applyDecisions", demo_graph.user_token("alex"))
    assert alex.status_code == 403
    diego = await demo_graph.call("POST", url + "/applyDecisions", demo_graph.user_token("diego"))
    assert diego.status_code == 204
    instance = demo_graph.tenant.instances[demo_graph.iid("marketing")]
    assert instance.apply_requested_by is not None
    assert instance.apply_requested_by[0] == demo_graph.uid("diego")


@pytest.mark.parametrize(
    "path",
    [
        "/definitions/filterByCurrentUser(on='reviewer')",
        "/definitions/{definition}/instances/filterByCurrentUser(on='reviewer')",
        "/definitions/{definition}/instances/{instance}/decisions/filterByCurrentUser(on='reviewer')",
    ],
)
async def test_app_only_filter_by_current_user_finds_nothing(
    demo_graph: GraphHarness, path: str
) -> None:
    url = demo_graph.ar + path.format(
        definition=demo_graph.rid("finance"), instance=demo_graph.iid("finance")
    )
    response = await demo_graph.call("GET", url, demo_graph.app_token())
    # The pages list Application permissions; an application is never a reviewer.
    assert response.status_code == 200, response.text
    assert response.json()["value"] == []
    # The same call as a reviewer finds their work.
    patti = await demo_graph.call("GET", url, demo_graph.user_token("patti"))
    assert patti.status_code == 200 and patti.json()["value"]


# ---------------------------------------------------------------------------------- limits
@pytest.mark.parametrize("suffix", ["", "/filterByCurrentUser(on='reviewer')"])
async def test_decisions_top_above_100_is_refused(demo_graph: GraphHarness, suffix: str) -> None:
    url = demo_graph.decisions_url("finance") + suffix
    token = demo_graph.user_token("megan") if not suffix else demo_graph.user_token("patti")
    ok = await demo_graph.call("GET", url, token, params={"$top": "100"})
    assert ok.status_code == 200, ok.text
    refused = await demo_graph.call("GET", url, token, params={"$top": "101"})
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == (
        "The limit of '100' for Top query has been exceeded. The value from the incoming "
        "request is '101'."
    )
    # Other collections still take up to 999.
    users = await demo_graph.call(
        "GET", "/v1.0/users", demo_graph.app_token(), params={"$top": "999"}
    )
    assert users.status_code == 200


async def test_patch_without_json_content_type_is_refused(demo_graph: GraphHarness) -> None:
    url = (
        demo_graph.base_url
        + f"{demo_graph.decisions_url('finance')}/{demo_graph.did('finance', 'lee')}"
    )
    patti = demo_graph.user_token("patti")
    body = b'{"decision": "Deny"}'
    for content_type in (None, "text/plain", "application/x-www-form-urlencoded"):
        headers = {"Authorization": f"Bearer {patti}"}
        if content_type:
            headers["Content-Type"] = content_type
        response = await demo_graph.client.patch(url, content=body, headers=headers)
        assert response.status_code == 400, content_type
        assert response.json()["error"]["message"] == (
            "Unable to read JSON request payload. Please ensure Content-Type header is set and "
            "payload is of valid JSON format."
        )
    item = demo_graph.tenant.instances[demo_graph.iid("finance")].decisions[
        demo_graph.did("finance", "lee")
    ]
    assert item.decision == "NotReviewed"  # nothing was written
    accepted = await demo_graph.client.patch(
        url,
        content=body,
        headers={
            "Authorization": f"Bearer {patti}",
            "Content-Type": "application/json; charset=utf-8",
        },
    )
    assert accepted.status_code == 204 and item.decision == "Deny"


async def test_batch_items_need_json_content_type_too(demo_graph: GraphHarness) -> None:
    decision = f"{demo_graph.decisions_url('finance')}/{demo_graph.did('finance', 'lee')}"
    relative = decision.removeprefix("/v1.0")
    patti = demo_graph.user_token("patti")
    response = await demo_graph.call(
        "POST",
        "/v1.0/$batch",
        patti,
        json={
            "requests": [
                {
                    "id": "1",
                    "method": "PATCH",
                    "url": relative,
                    "headers": {"content-type": "text/plain"},
                    "body": {"decision": "Deny"},
                },
                {
                    "id": "2",
                    "method": "PATCH",
                    "url": relative,
                    "headers": {"content-type": "application/json"},  # any casing of the name
                    "body": {"decision": "Deny"},
                },
            ]
        },
    )
    statuses = {r["id"]: r["status"] for r in response.json()["responses"]}
    assert statuses == {"1": 400, "2": 204}


async def test_error_bodies_carry_the_callers_client_request_id(demo_graph: GraphHarness) -> None:
    token = demo_graph.app_token()
    cases: list[tuple[str, str, dict[str, str], int]] = [
        ("GET", "/v1.0/users/no-such-user", {"Authorization": f"Bearer {token}"}, 404),
        ("GET", "/v1.0/users/x", {}, 401),
        ("GET", f"{demo_graph.ar}/definitions?$top=0", {"Authorization": f"Bearer {token}"}, 400),
        (
            "PATCH",
            f"{demo_graph.decisions_url('finance')}/{demo_graph.did('finance', 'lee')}",
            {"Authorization": f"Bearer {token}"},
            403,  # app-only cannot write decisions
        ),
    ]
    for n, (method, path, headers, status) in enumerate(cases):
        client_id = f"bot-call-{n}"
        response = await demo_graph.client.request(
            method,
            demo_graph.base_url + path,
            headers={**headers, "client-request-id": client_id},
            json={"decision": "Deny"} if method == "PATCH" else None,
        )
        assert response.status_code == status, path
        inner = response.json()["error"]["innerError"]
        assert inner["client-request-id"] == client_id
        assert response.headers["client-request-id"] == client_id
        assert inner["request-id"] == response.headers["request-id"] != client_id
    # Without the header Graph still fills it in (with its own request id).
    response = await demo_graph.call("GET", "/v1.0/users/no-such-user", token)
    inner = response.json()["error"]["innerError"]
    assert inner["client-request-id"] == inner["request-id"]


async def test_faults_answer_with_the_callers_client_request_id(demo_graph: GraphHarness) -> None:
    from emulator.faults import FaultRule

    demo_graph.faults.add(FaultRule(kind="status", status=503, service="graph", remaining=1))
    response = await demo_graph.client.get(
        demo_graph.base_url + "/v1.0/users/x", headers={"client-request-id": "abc-123"}
    )
    assert response.status_code == 503
    assert response.json()["error"]["innerError"]["client-request-id"] == "abc-123"


# ---------------------------------------------------------------------------------- principals
async def test_principals_as_they_really_come(demo_graph: GraphHarness) -> None:
    token = demo_graph.app_token()
    items: dict[str, dict[str, Any]] = {}
    for review in ("azure_contributor", "partner_portal", "falcon", "finance", "user_admin_role"):
        response = await demo_graph.call("GET", demo_graph.decisions_url(review), token)
        for item in response.json()["value"]:
            items[f"{review}:{item['principal']['id']}"] = item
    sign_ins = {
        key.split(":")[1]: item["principal"].get("lastUserSignInDateTime", "absent")
        for key, item in items.items()
    }
    assert sign_ins[demo_graph.uid("sam")] == ""  # never signed in
    assert sign_ins[demo_graph.uid("riley")] is None  # no sign-in data
    assert sign_ins[demo_graph.uid("lee")].endswith(" +00:00")  # "2/11/2022 5:31:37 PM +00:00"
    types = {item["resource"]["type"] for item in items.values() if item["resource"]}
    assert {
        "group",
        "Group",
        "AzureRole",
        "DirectoryRole",
        "AccessPackageAssignmentPolicy",
    } <= types
    sp_items = await demo_graph.call("GET", demo_graph.decisions_url("expense_portal"), token)
    assert {i["resource"]["type"] for i in sp_items.json()["value"]} == {"ServicePrincipal"}
    guests = [
        item["principal"]["userPrincipalName"]
        for item in items.values()
        if item["principal"]["id"] in {demo_graph.uid(k) for k in ("sam", "riley", "jordan")}
    ]
    assert guests and all("#EXT#@" in upn for upn in guests)


# ---------------------------------------------------------------------------------- users
@pytest.fixture
async def people(graph_server: Any, emu_clock: ManualClock) -> GraphHarness:
    # 30 reviewers and 300 principals with managers: several pages of users.
    tenant = generate(emu_clock, decisions=300, reviewers=30, instances=3, seed=2)
    harness: GraphHarness = await graph_server(tenant, emu_clock)
    return harness


async def test_users_with_expanded_managers_page_by_100(people: GraphHarness) -> None:
    token = people.app_token()
    first = await people.call(
        "GET", "/v1.0/users", token, params={"$expand": "manager", "$top": "999"}
    )
    assert first.status_code == 200, first.text
    body = first.json()
    assert len(body["value"]) == 100  # $expand on directory objects: at most 100 per page
    assert "skiptoken=" in body["@odata.nextLink"]
    assert first.headers["x-ms-resource-unit"] == "3"  # GET users 2, $expand +1
    users = await people.get_all(
        "/v1.0/users", token, params={"$expand": "manager($select=id,displayName)", "$select": "id"}
    )
    tenant = people.tenant
    assert len(users) == len(tenant.users) == 330
    for user in users:
        manager_id = tenant.users[user["id"]].manager_id
        if manager_id is None:
            assert "manager" not in user  # an empty navigation is left out
        else:
            assert user["manager"] == {
                "@odata.type": "#microsoft.graph.user",
                "id": manager_id,
                "displayName": tenant.users[manager_id].display_name,
            }
        assert set(user) <= {"id", "manager"}  # $select honoured


async def test_expanding_managers_costs_a_fraction_of_the_single_look_ups(
    people: GraphHarness,
) -> None:
    token = people.app_token()
    listed = await people.get_all(
        "/v1.0/users", token, params={"$expand": "manager", "$select": "id"}
    )
    spent = people.graph.throttle.counters()[people.graph.bot_app_id]
    assert spent["requests"] == 4  # 330 users, 100 a page
    assert spent["units"] == 4 * 2  # GET users 2, $expand +1, $select -1
    with_manager = sum(1 for u in listed if "manager" in u)
    assert with_manager == 300  # one GET users/{id}/manager each would be 300 requests


async def test_levels_only_on_a_single_user(people: GraphHarness) -> None:
    token = people.app_token()
    refused = await people.client.get(
        people.base_url + "/v1.0/users",
        params={"$expand": "manager($levels=max)"},
        headers={"Authorization": f"Bearer {token}", "ConsistencyLevel": "eventual"},
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "Request_UnsupportedQuery"
    assert "single user" in refused.json()["error"]["message"]
    principal = next(u for u in people.tenant.users.values() if u.manager_id)
    url = people.base_url + f"/v1.0/users/{principal.id}"
    params = {"$expand": "manager($levels=max;$select=id,displayName)", "$select": "id"}
    without_header = await people.client.get(
        url, params=params, headers={"Authorization": f"Bearer {token}"}
    )
    assert without_header.status_code == 400  # $levels needs ConsistencyLevel: eventual
    response = await people.client.get(
        url,
        params=params,
        headers={"Authorization": f"Bearer {token}", "ConsistencyLevel": "eventual"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == principal.id
    assert body["manager"]["id"] == principal.manager_id
    assert set(body["manager"]) == {"@odata.type", "id", "displayName"}
    one = await people.call(
        "GET", f"/v1.0/users/{principal.id}", token, params={"$expand": "manager"}
    )
    assert one.json()["manager"]["id"] == principal.manager_id


async def test_expanding_managers_needs_user_read_all(people: GraphHarness) -> None:
    basic = people.app_token(roles=["User.ReadBasic.All"])
    assert (await people.call("GET", "/v1.0/users", basic)).status_code == 200
    refused = await people.call("GET", "/v1.0/users", basic, params={"$expand": "manager"})
    assert refused.status_code == 403
    unknown = await people.call(
        "GET", "/v1.0/users", people.app_token(), params={"$expand": "directReports"}
    )
    assert unknown.status_code == 400


async def test_user_count_is_plain_text_and_needs_eventual_consistency(
    people: GraphHarness,
) -> None:
    """``GET /users/$count`` (advanced query): a bare number as text/plain with
    ``ConsistencyLevel: eventual``, refused without it."""
    token = people.app_token()
    refused = await people.call("GET", "/v1.0/users/$count", token)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "Request_BadRequest"
    counted = await people.call(
        "GET", "/v1.0/users/$count", token, headers={"ConsistencyLevel": "eventual"}
    )
    assert counted.status_code == 200, counted.text
    assert counted.headers["Content-Type"].startswith("text/plain")
    assert counted.text == str(len(people.tenant.users)) == "330"
