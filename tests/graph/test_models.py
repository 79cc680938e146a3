"""Models tolerate what Graph really sends: unknown statuses, missing and extra fields."""

from __future__ import annotations

from datetime import UTC, datetime

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
