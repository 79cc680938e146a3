"""Models tolerate what Graph really sends: unknown statuses, missing and extra fields."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from bot.graph.models import (
    AccessReviewDecision,
    AccessReviewDefinition,
    AccessReviewInstance,
    DirectoryObject,
    MailboxSettings,
    TeamsAppInstallation,
    parse_graph_datetime,
)


def test_a_decision_with_undocumented_values_and_extra_fields_is_kept_whole() -> None:
    raw = {
        "id": "d1",
        "accessReviewId": "i1",
        "decision": "SomethingNew",
        "applyResult": "AppliedSuccessfullyButObjectNotFound",
        "recommendation": "NoInfoAvailable",
        "reviewedBy": {
            "id": "00000000-0000-0000-0000-000000000000",
            "displayName": "",
            "userPrincipalName": "",
            "type": None,
        },
        "reviewedDateTime": None,
        "principal": {
            "@odata.type": "#microsoft.graph.userIdentity",
            "id": "u1",
            "displayName": "Adele Vance",
            "userPrincipalName": "adele@contoso.test",
            "lastUserSignInDateTime": "2/15/2022 9:35:23 AM +00:00",
        },
        "resource": None,
        "insights": [
            {"@odata.type": "#microsoft.graph.userLastSignInRecommendationInsightSetting"}
        ],
        "target": {"userId": "u1"},
    }
    item = AccessReviewDecision.from_graph(raw)
    assert item.decision == "SomethingNew" and not item.is_pending
    assert item.reviewed_by.is_nobody
    assert item.reviewed_at is None
    assert item.resource is None
    assert item.principal.user_principal_name == "adele@contoso.test"
    assert item.principal_last_sign_in == "2/15/2022 9:35:23 AM +00:00"
    assert item.raw["target"] == {"userId": "u1"}


def test_an_instance_with_an_undocumented_status_and_dotnet_timestamps() -> None:
    instance = AccessReviewInstance.from_graph(
        {
            "id": "i1",
            "status": "Applied",
            "startDateTime": "2022-02-11T17:35:25.1234567Z",
            "endDateTime": "2022-02-16T08:00:00Z",
            "reviewers": [
                {"query": "./manager", "queryType": "MicrosoftGraph", "queryRoot": "decisions"}
            ],
            "errors": [],
        },
        definition_id="d1",
    )
    assert instance.status == "Applied"
    assert instance.start == datetime(2022, 2, 11, 17, 35, 25, 123456, tzinfo=UTC)
    assert instance.reviewers[0].query_root == "decisions"
    assert instance.definition_id == "d1"


def test_almost_empty_objects_do_not_crash() -> None:
    definition = AccessReviewDefinition.from_graph({"id": "x"})
    assert definition.status == "" and definition.reviewers == ()
    assert not definition.justification_required
    assert (
        DirectoryObject.from_graph({"id": "g", "@odata.type": "#microsoft.graph.group"}).is_user
        is False
    )
    assert MailboxSettings.from_graph({}).working_hours is None
    assert TeamsAppInstallation.from_graph({"id": "inst"}).teams_app is None
    assert parse_graph_datetime("not a date") is None
    assert parse_graph_datetime(None) is None


# -- principals and statuses as Graph really sends them ---------------------------------------------


def test_sign_in_dates_in_every_shape_graph_uses() -> None:
    from bot.graph.models import parse_sign_in

    assert parse_sign_in("2/11/2022 5:31:37 PM +00:00") == (
        datetime(2022, 2, 11, 17, 31, 37, tzinfo=UTC),
        False,
    )
    # The offset is honoured, AM/PM too, and the offset may be missing (then UTC).
    assert parse_sign_in("12/1/2026 12:05:00 AM +02:00")[0] == datetime(
        2026, 11, 30, 22, 5, tzinfo=UTC
    )
    assert parse_sign_in("3/4/2025 1:02:03 pm")[0] == datetime(2025, 3, 4, 13, 2, 3, tzinfo=UTC)
    assert parse_sign_in("2025-03-04T13:02:03.1234567Z")[0] == datetime(
        2025, 3, 4, 13, 2, 3, 123456, tzinfo=UTC
    )
    # Never signed in: "", null, and .NET's DateTime.MinValue in both spellings.
    assert parse_sign_in("") == (None, True)
    assert parse_sign_in(None) == (None, True)
    assert parse_sign_in("1/1/0001 12:00:00 AM +00:00") == (None, True)
    assert parse_sign_in("0001-01-01T00:00:00Z") == (None, True)
    # Nothing usable: unknown, not "never".
    assert parse_sign_in("yesterday") == (None, False)
    assert parse_sign_in(1644600697) == (None, False)
    assert parse_sign_in("13/45/2022 5:31:37 PM") == (None, False)


def test_a_decision_knows_never_from_unknown_sign_ins() -> None:
    def decision(principal: dict[str, object]) -> AccessReviewDecision:
        return AccessReviewDecision.from_graph(
            {"id": "d", "decision": "NotReviewed", "principal": {"id": "u", **principal}}
        )

    never = decision({"lastUserSignInDateTime": ""})
    assert never.principal_never_signed_in and never.principal_signed_in_at is None
    null = decision({"lastUserSignInDateTime": None})
    assert null.principal_never_signed_in
    absent = decision({})
    assert not absent.principal_never_signed_in and absent.principal_signed_in_at is None
    signed = decision({"lastUserSignInDateTime": "2/11/2022 5:31:37 PM +00:00"})
    assert signed.principal_signed_in_at == datetime(2022, 2, 11, 17, 31, 37, tzinfo=UTC)


def test_guests_are_shown_by_their_real_address() -> None:
    from bot.graph.models import Identity, guest_address

    assert guest_address("adele_fabrikam.com#EXT#@contoso.onmicrosoft.com") == "adele@fabrikam.com"
    assert guest_address("first_last_fabrikam.co.uk#ext#@contoso.onmicrosoft.com") == (
        "first_last@fabrikam.co.uk"
    )
    assert guest_address("adele@contoso.com") is None
    assert guest_address("#EXT#@contoso.onmicrosoft.com") is None
    assert guest_address("nounderscore#EXT#@contoso.onmicrosoft.com") is None
    guest = Identity(id="g", user_principal_name="adele_fabrikam.com#EXT#@contoso.onmicrosoft.com")
    assert guest.is_guest and guest.address == "adele@fabrikam.com"
    member = Identity(id="m", user_principal_name="megan@contoso.com")
    assert not member.is_guest and member.address == "megan@contoso.com"


def test_resource_types_in_any_casing_are_one_kind() -> None:
    from bot.graph.models import resource_kind

    for sent, kind in [
        ("group", "group"),
        ("Group", "group"),
        ("GROUP", "group"),
        ("ServicePrincipal", "servicePrincipal"),
        ("servicePrincipal", "servicePrincipal"),
        ("DirectoryRole", "directoryRole"),
        ("directoryrole", "directoryRole"),
        ("AzureRole", "azureRole"),
        ("AccessPackageAssignmentPolicy", "accessPackageAssignmentPolicy"),
    ]:
        assert resource_kind(sent) == kind, sent
    # No type: the @odata.type or the resourceLink tells.
    assert (
        resource_kind("", "#microsoft.graph.accessReviewInstanceDecisionItemAzureRoleResource")
        == "azureRole"
    )
    assert resource_kind("", "", "https://graph.microsoft.com/v1.0/groups/g1") == "group"
    assert resource_kind("SomethingNew") == "SomethingNew"
    item = AccessReviewDecision.from_graph(
        {"id": "d", "resource": {"id": "r", "type": "Group"}, "resourceLink": None}
    )
    assert item.resource_kind == "group"


def test_principal_kinds_from_odata_type_or_type() -> None:
    from bot.graph.models import Identity

    assert Identity(id="u", odata_type="#microsoft.graph.userIdentity").kind == "user"
    assert (
        Identity(id="s", odata_type="#microsoft.graph.servicePrincipalIdentity").kind
        == "servicePrincipal"
    )
    assert Identity(id="u", type="User").kind == "user"
    assert Identity(id="s", type="ServicePrincipal").kind == "servicePrincipal"
    assert Identity(id="", type="").kind == ""


def test_statuses_in_any_casing_and_unknown_ones(caplog: pytest.LogCaptureFixture) -> None:
    from bot.graph import models
    from bot.graph.models import ReviewStatus

    models._WARNED.clear()
    with caplog.at_level(logging.WARNING):
        assert ReviewStatus.normalize("inprogress") == "InProgress"
        assert ReviewStatus.normalize("AUTOREVIEWED") == "AutoReviewed"
        assert ReviewStatus.is_open("InProgress") and not ReviewStatus.is_open("Completing")
        for _ in range(3):
            assert ReviewStatus.normalize("OnHold") == "OnHold"
            assert not ReviewStatus.is_open("OnHold")
    assert [r.getMessage() for r in caplog.records if "OnHold" in r.getMessage()] == [
        "access review status 'OnHold' is not documented: treated as not open for decisions"
    ]
    documented = {
        "NotStarted",
        "Initializing",
        "Starting",
        "InProgress",
        "Completing",
        "Completed",
        "AutoReviewing",
        "AutoReviewed",
        "Applying",
        "Applied",
    }
    assert ReviewStatus.DOCUMENTED == documented


def test_fields_of_unexpected_types_are_missing_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from bot.graph import models

    models._WARNED.clear()
    with caplog.at_level(logging.WARNING):
        for n in range(5):
            item = AccessReviewDecision.from_graph(
                {
                    "id": f"d{n}",
                    "decision": "NotReviewed",
                    "principal": {"id": "u", "displayName": 42, "userPrincipalName": ["x"]},
                    "resource": "a group",
                    "reviewedBy": None,
                }
            )
            assert item.principal.display_name == "" and item.principal.user_principal_name == ""
            assert item.resource is None and item.reviewed_by.is_nobody
    messages = [r.getMessage() for r in caplog.records]
    assert (
        messages.count("Graph sent displayName as int where a string belongs: treated as missing")
        == 1
    )
    assert (
        messages.count(
            "Graph sent userPrincipalName as list where a string belongs: treated as missing"
        )
        == 1
    )
    assert (
        messages.count("Graph sent resource as str where an object belongs: treated as missing")
        == 1
    )
