"""The wire shapes of access reviews: definitions, instances, stages and decision items.

Shapes follow ``shared/reference/graph-access-reviews.md`` (resources/accessreview*.md in
Microsoft's docs); choices where Microsoft documents nothing are marked "emulator choice".
"""

from __future__ import annotations

import uuid
from typing import Any

from emulator.graph.core import GRAPH_HOST, GraphBase, identity_json, iso, sign_in_text
from emulator.tenant import Decision, Definition, Instance, Stage, StageSettings, User

__all__ = ["ReviewSerializers"]


class ReviewSerializers(GraphBase):
    """JSON for the access-review resources (shared by the routes and ``$expand``)."""

    def _settings_json(self, definition: Definition) -> dict[str, Any]:
        s = definition.settings
        return {
            "mailNotificationsEnabled": s.mail_notifications_enabled,
            "reminderNotificationsEnabled": s.reminder_notifications_enabled,
            "justificationRequiredOnApproval": s.justification_required_on_approval,
            "defaultDecisionEnabled": s.default_decision_enabled,
            "defaultDecision": s.default_decision,
            "instanceDurationInDays": s.instance_duration_in_days,
            "autoApplyDecisionsEnabled": s.auto_apply_decisions_enabled,
            "recommendationsEnabled": s.recommendations_enabled,
            "recommendationLookBackDuration": s.recommendation_look_back_duration,
            "decisionHistoriesForReviewersEnabled": s.decision_histories_for_reviewers_enabled,
            "recurrence": definition.recurrence,
            "applyActions": [{"@odata.type": "#microsoft.graph.removeAccessApplyAction"}]
            if s.auto_apply_decisions_enabled
            else [],
            "recommendationInsightSettings": [],
        }

    @staticmethod
    def _stage_settings_json(stage: StageSettings) -> dict[str, Any]:
        return {
            "stageId": stage.stage_id,
            "dependsOn": list(stage.depends_on),
            "durationInDays": stage.duration_in_days,
            "recommendationsEnabled": stage.recommendations_enabled,
            "decisionsThatWillMoveToNextStage": list(stage.decisions_that_will_move_to_next_stage),
            "reviewers": [r.to_graph() for r in stage.reviewers],
            "fallbackReviewers": [r.to_graph() for r in stage.fallback_reviewers],
        }

    def _definition_json(self, definition: Definition) -> dict[str, Any]:
        created_id, created_name, created_upn = definition.created_by
        fallback = [r.to_graph() for r in definition.fallback_reviewers]
        return {
            "id": definition.id,
            "displayName": definition.display_name,
            "createdDateTime": iso(definition.created_at),
            "lastModifiedDateTime": iso(definition.created_at),
            "status": self.tenant.definition_status(definition),
            "descriptionForAdmins": definition.description_for_admins,
            "descriptionForReviewers": definition.description_for_reviewers,
            "createdBy": {
                "id": created_id,
                "displayName": created_name,
                "userPrincipalName": created_upn,
            },
            "scope": definition.scope,
            "instanceEnumerationScope": definition.instance_enumeration_scope,
            "reviewers": [r.to_graph() for r in definition.reviewers],
            # Setting either fills in both (the deprecated name is still echoed).
            "backupReviewers": fallback,
            "fallbackReviewers": fallback,
            "settings": self._settings_json(definition),
            "stageSettings": [self._stage_settings_json(s) for s in definition.stage_settings],
            "additionalNotificationRecipients": [],
        }

    def _instance_json(self, instance: Instance) -> dict[str, Any]:
        definition = self.tenant.definitions[instance.definition_id]
        return {
            "id": instance.id,
            "startDateTime": iso(instance.start),
            "endDateTime": iso(instance.end),
            "status": self.tenant.instance_status(instance),
            "displayName": definition.display_name,
            "scope": instance.scope,
            "reviewers": [r.to_graph() for r in instance.reviewers],
            "fallbackReviewers": [r.to_graph() for r in instance.fallback_reviewers],
        }

    def _stage_json(self, stage: Stage) -> dict[str, Any]:
        return {
            "id": stage.id,
            "startDateTime": iso(stage.start),
            "endDateTime": iso(stage.end),
            "status": self.tenant.stage_status(stage),
            "reviewers": [r.to_graph() for r in stage.settings.reviewers],
            "fallbackReviewers": [r.to_graph() for r in stage.settings.fallback_reviewers],
        }

    def _principal_json(self, item: Decision) -> dict[str, Any]:
        if item.principal_kind == "servicePrincipal":
            sp = self.tenant.service_principals.get(item.principal_id)
            return {
                "@odata.type": "#microsoft.graph.servicePrincipalIdentity",
                "id": item.principal_id,
                "displayName": sp.display_name if sp else "",
                "appId": sp.app_id if sp else None,
            }
        user = self.tenant.users.get(item.principal_id)
        return {
            "@odata.type": "#microsoft.graph.userIdentity",
            "id": item.principal_id,
            "displayName": user.display_name if user else "",
            "type": "user",
            "userPrincipalName": user.user_principal_name if user else "",
            "lastUserSignInDateTime": self._last_sign_in(user),
        }

    @staticmethod
    def _last_sign_in(user: User | None) -> str | None:
        # Graph's text form when there is a sign-in; "" when the user never signed in; null when
        # Entra has no sign-in data for the user (both come back in real answers).
        if user is None or (user.last_sign_in is None and not user.sign_in_known):
            return None
        return sign_in_text(user.last_sign_in) or ""

    def _decision_json(
        self,
        instance: Instance,
        item: Decision,
        stage: Stage | None,
        version: str,
        *,
        typed: bool = False,
    ) -> dict[str, Any]:
        decision, justification = item.decision, item.justification
        reviewed_by, reviewed_at = item.reviewed_by, item.reviewed_at
        if stage is not None and item.history is not None and stage.index < item.stage_index:
            # Seen through an earlier stage: that stage's outcome.
            past = item.history[stage.index]
            decision, justification = past.decision, past.justification
            reviewed_by, reviewed_at = past.reviewed_by, past.reviewed_at
        principal_collection = (
            "servicePrincipals" if item.principal_kind == "servicePrincipal" else "users"
        )
        body: dict[str, Any] = {}
        if typed:
            body["@odata.type"] = "#microsoft.graph.accessReviewInstanceDecisionItem"
        body.update(
            {
                "id": item.id,
                "accessReviewId": instance.id,
                "reviewedDateTime": iso(reviewed_at),
                "decision": decision,
                "justification": justification,
                "appliedDateTime": iso(item.applied_at),
                "applyResult": item.apply_result,
                "recommendation": item.recommendation,
                "principalLink": f"{GRAPH_HOST}/v1.0/{principal_collection}/{item.principal_id}",
                "resourceLink": item.resource.link if item.resource else None,
                "reviewedBy": identity_json(reviewed_by),
                "appliedBy": identity_json(item.applied_by),
                "resource": item.resource.to_graph() if item.resource else None,
                "principal": self._principal_json(item),
            }
        )
        if version == "beta" and item.membership_type is not None:
            body["principalResourceMembership"] = {"membershipType": item.membership_type}
        definition = self.tenant.definitions[instance.definition_id]
        if (
            item.history
            and definition.settings.decision_histories_for_reviewers_enabled
            and (stage is None or stage.index == item.stage_index)
        ):
            # Emulator choice (undocumented shape): with decisionHistoriesForReviewersEnabled a
            # later stage shows the earlier stages' outcomes in an open-type property.
            body["decisionHistory"] = [
                {
                    "stageId": instance.stages[past.stage_index].settings.stage_id,
                    "decision": past.decision,
                    "justification": past.justification,
                    "reviewedBy": identity_json(past.reviewed_by),
                    "reviewedDateTime": iso(past.reviewed_at),
                }
                for past in item.history
            ]
        return body

    def _insights_json(self, item: Decision) -> list[dict[str, Any]]:
        user = self.tenant.users.get(item.principal_id)
        if user is None:
            return []
        return [
            {
                "@odata.type": "#microsoft.graph.userSignInInsight",
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"insight:{item.id}")),
                "insightCreatedDateTime": iso(self.tenant.now()),
                "lastSignInDateTime": iso(user.last_sign_in),
            }
        ]
