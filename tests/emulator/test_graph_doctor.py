"""The Graph reads ``app.py doctor`` makes: service principals, applications and delegated
permission grants, derived from the Identity's app registrations, with Graph's permission rules."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from emulator.seeds import DEFAULT_BOT_APP_ID
from emulator.server import BOT_APPLICATION_PERMISSIONS as BOT_ROLES

# The harness of tests/emulator/conftest.py (demo_graph): a served GraphApi and its Identity.
GraphHarness = Any

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
BOT = DEFAULT_BOT_APP_ID
READ_APPS = ["Application.Read.All"]
READ_GRANTS = ["Directory.Read.All"]


@pytest.fixture
def graph(demo_graph: GraphHarness) -> GraphHarness:
    demo_graph.graph.app_registrations = demo_graph.identity
    return demo_graph


async def get(
    graph: GraphHarness,
    path: str,
    roles: list[str] | frozenset[str],
    params: dict[str, str] | None = None,
) -> Any:
    response = await graph.call("GET", path, graph.app_token(roles=roles), params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_bot_service_principal_by_app_id_filter_is_the_app_tokens_oid(
    graph: GraphHarness,
) -> None:
    body = await get(graph, "/v1.0/servicePrincipals", READ_APPS, {"$filter": f"appId eq '{BOT}'"})
    assert body["@odata.context"].endswith("$metadata#servicePrincipals")
    [sp] = body["value"]
    assert sp["appId"] == BOT and sp["displayName"] == "Access Review Bot"
    assert sp["servicePrincipalType"] == "Application"
    # In Entra the oid claim of an app-only token is the service principal's object id.
    claims = jwt.decode(graph.app_token(), options={"verify_signature": False})
    assert sp["id"] == claims["oid"]


async def test_service_principal_by_alternate_key_and_select(graph: GraphHarness) -> None:
    body = await get(graph, f"/v1.0/servicePrincipals(appId='{BOT}')", READ_APPS)
    assert body["appId"] == BOT
    assert f"api://botid-{BOT}" in body["servicePrincipalNames"]
    selected = await get(
        graph,
        f"/v1.0/servicePrincipals(appId='{GRAPH_APP_ID}')",
        READ_APPS,
        {"$select": "id,displayName"},
    )
    assert set(selected) == {"@odata.context", "id", "displayName"}
    assert selected["displayName"] == "Microsoft Graph"
    assert selected["@odata.context"].endswith("servicePrincipals(id,displayName)/$entity")


async def test_unknown_app_id_is_404(graph: GraphHarness) -> None:
    for path in (
        "/v1.0/servicePrincipals(appId='00000000-dead-4000-8000-000000000000')",
        "/v1.0/applications(appId='00000000-dead-4000-8000-000000000000')",
    ):
        response = await graph.call("GET", path, graph.app_token(roles=READ_APPS))
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "Request_ResourceNotFound"
    empty = await get(
        graph,
        "/v1.0/servicePrincipals",
        READ_APPS,
        {"$filter": "appId eq '00000000-dead-4000-8000-000000000000'"},
    )
    assert empty["value"] == []


async def test_unfiltered_list_keeps_seeded_principals_and_adds_graph_and_the_bot(
    graph: GraphHarness,
) -> None:
    body = await get(graph, "/v1.0/servicePrincipals", READ_APPS)
    by_app = {sp["appId"]: sp for sp in body["value"]}
    assert {BOT, GRAPH_APP_ID} <= set(by_app)
    for sp in graph.tenant.service_principals.values():
        assert by_app[sp.app_id]["id"] == sp.id
    # The existing /servicePrincipals/{id} route answers seeded principals as before.
    seeded = next(iter(graph.tenant.service_principals.values()))
    one = await get(graph, f"/v1.0/servicePrincipals/{seeded.id}", READ_APPS)
    assert one["appId"] == seeded.app_id


async def test_application_identifier_uris_follow_the_registration(graph: GraphHarness) -> None:
    path = f"/v1.0/applications(appId='{BOT}')"
    body = await get(graph, path, READ_APPS, {"$select": "identifierUris"})
    assert body["identifierUris"] == [f"api://botid-{BOT}"]
    assert body["@odata.context"].endswith("applications(identifierUris)/$entity")
    graph.identity.app(BOT).identifier_uri = None  # "Expose an API" undone
    body = await get(graph, path, READ_APPS, {"$select": "identifierUris"})
    assert body["identifierUris"] == []
    listed = await get(graph, "/v1.0/applications", READ_APPS, {"$filter": f"appId eq '{BOT}'"})
    assert [a["appId"] for a in listed["value"]] == [BOT]
    assert listed["value"][0]["identifierUris"] == []


async def test_permission_grant_of_the_bot_to_graph(graph: GraphHarness) -> None:
    sp = (await get(graph, f"/v1.0/servicePrincipals(appId='{BOT}')", READ_APPS))["id"]
    graph_sp = (await get(graph, f"/v1.0/servicePrincipals(appId='{GRAPH_APP_ID}')", READ_APPS))[
        "id"
    ]
    body = await get(
        graph,
        "/v1.0/oauth2PermissionGrants",
        READ_GRANTS,
        {"$filter": f"clientId eq '{sp}' and consentType eq 'AllPrincipals'"},
    )
    assert body["@odata.context"].endswith("$metadata#oauth2PermissionGrants")
    [grant] = body["value"]
    assert grant["clientId"] == sp and grant["resourceId"] == graph_sp
    assert grant["consentType"] == "AllPrincipals" and grant["principalId"] is None
    assert "AccessReview.ReadWrite.All" in grant["scope"].split()
    assert isinstance(grant["id"], str) and grant["id"]


async def test_withdrawn_consent_changes_the_grant(graph: GraphHarness) -> None:
    registration = graph.identity.app(BOT)
    registration.delegated_permissions.add("User.Read")
    registration.delegated_permissions.discard("AccessReview.ReadWrite.All")
    body = await get(graph, "/v1.0/oauth2PermissionGrants", READ_GRANTS)
    assert [g["scope"] for g in body["value"]] == ["User.Read"]
    registration.delegated_permissions.clear()
    body = await get(graph, "/v1.0/oauth2PermissionGrants", READ_GRANTS)
    assert body["value"] == []


async def test_withdrawn_application_permission_leaves_the_next_token(graph: GraphHarness) -> None:
    graph.identity.app(BOT).application_permissions = set(BOT_ROLES) - {"MailboxSettings.Read"}
    token = graph.identity.issue_app_token(client_id=BOT)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert "MailboxSettings.Read" not in claims["roles"]
    assert "User.Read.All" in claims["roles"]


async def test_grants_need_directory_read_not_application_read(graph: GraphHarness) -> None:
    # Graph documents Directory.Read.All as the least privileged permission for grants.
    response = await graph.call(
        "GET", "/v1.0/oauth2PermissionGrants", graph.app_token(roles=BOT_ROLES)
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "Authorization_RequestDenied"
    for roles in (["Directory.Read.All"], ["DelegatedPermissionGrant.ReadWrite.All"]):
        await get(graph, "/v1.0/oauth2PermissionGrants", roles)


@pytest.mark.parametrize(
    "path",
    [
        "/v1.0/servicePrincipals",
        f"/v1.0/servicePrincipals(appId='{BOT}')",
        "/v1.0/applications",
        f"/v1.0/applications(appId='{BOT}')",
    ],
)
async def test_registrations_need_application_read(graph: GraphHarness, path: str) -> None:
    response = await graph.call("GET", path, graph.app_token(roles=["User.Read.All"]))
    assert response.status_code == 403
    for roles in (["Application.Read.All"], ["Directory.Read.All"]):
        await get(graph, path, roles)


async def test_unsupported_filter_is_400(graph: GraphHarness) -> None:
    response = await graph.call(
        "GET",
        "/v1.0/oauth2PermissionGrants",
        graph.app_token(roles=READ_GRANTS),
        params={"$filter": "startswith(scope, 'Access')"},
    )
    assert response.status_code == 400


async def test_without_registrations_only_seeded_objects_are_listed(
    demo_graph: GraphHarness,
) -> None:
    assert demo_graph.graph.app_registrations is None
    body = await get(demo_graph, "/v1.0/servicePrincipals", READ_APPS)
    assert BOT not in {sp["appId"] for sp in body["value"]}
    grants = await get(demo_graph, "/v1.0/oauth2PermissionGrants", READ_GRANTS)
    assert grants["value"] == []
