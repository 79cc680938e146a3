"""Directory and Teams routes: users, managers, mailbox settings, groups, owners, the Teams
app catalog and per-user app installation."""

from __future__ import annotations

from emulator.seeds import DEFAULT_BOT_APP_ID, demo_id


async def test_user_by_id_and_upn_with_select(demo_graph) -> None:
    token = demo_graph.app_token()
    by_id = await demo_graph.call("GET", f"/v1.0/users/{demo_graph.uid('adele')}", token)
    assert by_id.status_code == 200
    body = by_id.json()
    assert body["@odata.context"] == "https://graph.microsoft.com/v1.0/$metadata#users/$entity"
    assert body["displayName"] == "Adele Vance"
    assert "accountEnabled" not in body  # not a default property
    by_upn = await demo_graph.call(
        "GET",
        "/v1.0/users/adelev@contoso.onmicrosoft.com",
        token,
        params={"$select": "id,displayName,accountEnabled,userType"},
    )
    selected = by_upn.json()
    assert selected["@odata.context"].endswith(
        "#users(id,displayName,accountEnabled,userType)/$entity"
    )
    assert {k for k in selected if not k.startswith("@")} == {
        "id",
        "displayName",
        "accountEnabled",
        "userType",
    }
    assert selected["id"] == demo_graph.uid("adele")
    unknown_property = await demo_graph.call(
        "GET", f"/v1.0/users/{demo_graph.uid('adele')}", token, params={"$select": "shoeSize"}
    )
    assert unknown_property.status_code == 400
    missing = await demo_graph.call("GET", "/v1.0/users/nobody@contoso.onmicrosoft.com", token)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "Request_ResourceNotFound"


async def test_me_and_self_read_with_user_read(demo_graph) -> None:
    token = demo_graph.user_token("lee", scopes=("User.Read",))
    me = await demo_graph.call("GET", "/v1.0/me", token)
    assert me.json()["id"] == demo_graph.uid("lee")
    other = await demo_graph.call("GET", f"/v1.0/users/{demo_graph.uid('adele')}", token)
    assert other.status_code == 403


async def test_manager_and_missing_manager(demo_graph) -> None:
    token = demo_graph.app_token()
    manager = await demo_graph.call("GET", f"/v1.0/users/{demo_graph.uid('adele')}/manager", token)
    body = manager.json()
    assert body["@odata.type"] == "#microsoft.graph.user"
    assert body["id"] == demo_graph.uid("alex")
    none = await demo_graph.call("GET", f"/v1.0/users/{demo_graph.uid('nestor')}/manager", token)
    assert none.status_code == 404
    assert none.json()["error"]["code"] == "Request_ResourceNotFound"


async def test_mailbox_settings(demo_graph) -> None:
    token = demo_graph.app_token()
    response = await demo_graph.call(
        "GET", f"/v1.0/users/{demo_graph.uid('diego')}/mailboxSettings", token
    )
    body = response.json()
    assert body["timeZone"] == "W. Europe Standard Time"
    hours = body["workingHours"]
    assert hours["daysOfWeek"][0] == "monday" and len(hours["daysOfWeek"]) == 5
    assert hours["startTime"] == "08:00:00.0000000"
    assert hours["timeZone"]["name"] == "W. Europe Standard Time"
    guest = await demo_graph.call(
        "GET", f"/v1.0/users/{demo_graph.uid('jordan')}/mailboxSettings", token
    )
    assert guest.status_code == 404
    assert guest.json()["error"]["code"] == "MailboxNotEnabledForRESTAPI"


async def test_group_members_transitive_and_owners(demo_graph) -> None:
    token = demo_graph.app_token()
    auditors = demo_id("group", "auditors")
    direct = (await demo_graph.call("GET", f"/v1.0/groups/{auditors}/members", token)).json()
    assert direct["@odata.context"].endswith("#directoryObjects")
    assert {(m["@odata.type"], m["id"]) for m in direct["value"]} == {
        ("#microsoft.graph.user", demo_graph.uid("grady")),
        ("#microsoft.graph.group", demo_id("group", "interns")),
    }
    transitive = await demo_graph.get_all(f"/v1.0/groups/{auditors}/transitiveMembers", token)
    assert {m["id"] for m in transitive} == {
        demo_graph.uid("grady"),
        demo_graph.uid("henrietta"),
        demo_id("group", "interns"),
    }
    owners = (await demo_graph.call("GET", f"/v1.0/groups/{auditors}/owners", token)).json()
    assert [o["id"] for o in owners["value"]] == [demo_graph.uid("megan")]
    no_owner = (
        await demo_graph.call("GET", f"/v1.0/groups/{demo_id('group', 'falcon')}/owners", token)
    ).json()
    assert no_owner["value"] == []
    guests = (
        await demo_graph.call(
            "GET",
            f"/v1.0/groups/{demo_id('group', 'finance')}/members",
            token,
            params={"$filter": "userType eq 'Guest'"},
        )
    ).json()["value"]
    assert [g["id"] for g in guests] == [demo_graph.uid("jordan")]
    skip = await demo_graph.call(
        "GET", f"/v1.0/groups/{auditors}/members", token, params={"$skip": "1"}
    )
    assert skip.status_code == 400  # directory collections page with $skiptoken


async def test_directory_paging_uses_skiptoken(demo_graph) -> None:
    token = demo_graph.app_token()
    engineering = demo_id("group", "engineering")
    first = (
        await demo_graph.call(
            "GET", f"/v1.0/groups/{engineering}/members", token, params={"$top": "3"}
        )
    ).json()
    assert len(first["value"]) == 3
    assert "%24skiptoken=" in first["@odata.nextLink"]
    everyone = await demo_graph.get_all(
        f"/v1.0/groups/{engineering}/members", token, params={"$top": "3"}
    )
    assert len({m["id"] for m in everyone}) == 4


async def test_service_principal_owners(demo_graph) -> None:
    token = demo_graph.app_token()
    sp = demo_id("sp", "expense_portal")
    owners = (await demo_graph.call("GET", f"/v1.0/servicePrincipals/{sp}/owners", token)).json()
    assert [o["id"] for o in owners["value"]] == [demo_graph.uid("lidia")]
    no_app_permission = demo_graph.app_token(roles=["User.Read.All"])
    denied = await demo_graph.call("GET", f"/v1.0/servicePrincipals/{sp}/owners", no_app_permission)
    assert denied.status_code == 403


async def test_teams_catalog_lookup(demo_graph) -> None:
    token = demo_graph.app_token()
    response = await demo_graph.call(
        "GET",
        "/v1.0/appCatalogs/teamsApps",
        token,
        params={
            "$filter": f"externalId eq '{DEFAULT_BOT_APP_ID}' and distributionMethod eq "
            "'organization'",
            "$expand": "appDefinitions",
        },
    )
    [app] = response.json()["value"]
    assert app["externalId"] == DEFAULT_BOT_APP_ID
    assert app["appDefinitions"][0]["teamsAppId"] == app["id"]
    none = await demo_graph.call(
        "GET", "/v1.0/appCatalogs/teamsApps", token, params={"$filter": "externalId eq 'nope'"}
    )
    assert none.json()["value"] == []


async def test_install_bot_for_user_then_list_and_chat(demo_graph) -> None:
    token = demo_graph.app_token()
    user = demo_graph.uid("isaiah")
    bot_app = demo_id("teamsapp", "access-review-bot")
    path = f"/v1.0/users/{user}/teamwork/installedApps"
    before = await demo_graph.call(
        "GET", path, token, params={"$expand": "teamsApp", "$filter": f"teamsApp/id eq '{bot_app}'"}
    )
    assert before.json()["value"] == []
    bind = {
        "teamsApp@odata.bind": f"https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/{bot_app}"
    }
    installed = await demo_graph.call("POST", path, token, json=bind)
    assert installed.status_code == 201
    [(oid, name, installation_id)] = demo_graph.installs
    assert (oid, name) == (user, "Isaiah Langer")
    after = (
        await demo_graph.call(
            "GET",
            path,
            token,
            params={"$expand": "teamsAppDefinition", "$filter": f"teamsApp/id eq '{bot_app}'"},
        )
    ).json()
    [item] = after["value"]
    assert item["id"] == installation_id
    assert item["teamsAppDefinition"]["teamsAppId"] == bot_app
    chat = await demo_graph.call("GET", f"{path}/{installation_id}/chat", token)
    assert chat.json()["id"] == f"a:chat-with-{user}"  # from the connector's lookup
    again = await demo_graph.call("POST", path, token, json=bind)
    assert again.status_code == 409


async def test_self_permission_installs_only_itself(demo_graph) -> None:
    token = demo_graph.app_token()
    other_app = demo_id("teamsapp", "expenses")
    response = await demo_graph.call(
        "POST",
        f"/v1.0/users/{demo_graph.uid('lee')}/teamwork/installedApps",
        token,
        json={
            "teamsApp@odata.bind": f"https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/"
            f"{other_app}"
        },
    )
    assert response.status_code == 403
    no_permission = demo_graph.app_token(roles=["User.Read.All"])
    response = await demo_graph.call(
        "GET", f"/v1.0/users/{demo_graph.uid('lee')}/teamwork/installedApps", no_permission
    )
    assert response.status_code == 403
    assert demo_graph.installs == []
