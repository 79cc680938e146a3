"""Emulated Graph access reviews (``/identityGovernance/accessReviews`` and the beta
``/me/pendingAccessReviewInstances``): definitions, instances, stages, decisions and their actions.

Permissions follow each API page's table; the delegated role rules follow
``includes/rbac-for-apis/rbac-access-reviews-apis-read.md``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from emulator.graph.core import (
    COLLECTION_OPTIONS,
    DECISIONS_MAX_TOP,
    Caller,
    GraphRequest,
    GraphResponse,
    ListSpec,
    bad_request,
    forbidden,
    iso,
)
from emulator.graph.reviews_json import ReviewSerializers
from emulator.tenant import Decision, Instance, Stage, TenantError, User

__all__ = ["AR_ADMIN_ROLES", "AR_READ", "AR_WRITE", "DECISIONS_MAX_TOP", "AccessReviewRoutes"]

# ---------------------------------------------------------------------------------- permissions
AR_READ = frozenset(
    {"AccessReview.Read.All", "AccessReview.ReadWrite.All", "AccessReview.ReadWrite.Membership"}
)
AR_WRITE = frozenset({"AccessReview.ReadWrite.All", "AccessReview.ReadWrite.Membership"})
#: Delegated callers need one of these Entra roles to read reviews beyond their own
#: (rbac-access-reviews-apis-read); ordinary reviewers use filterByCurrentUser.
AR_ADMIN_ROLES = frozenset(
    {
        "Global Administrator",
        "Global Reader",
        "Security Reader",
        "Security Administrator",
        "User Administrator",
        "Identity Governance Administrator",
        "Privileged Role Administrator",
    }
)


class AccessReviewRoutes(ReviewSerializers):
    """The access-review routes."""

    # ------------------------------------------------------------------ routes
    def _register_access_review_routes(self) -> None:
        ar = "/identityGovernance/accessReviews"
        inst = f"{ar}/definitions/{{definition}}/instances/{{instance}}"
        stage = f"{inst}/stages/{{stage}}"
        fn = "filterByCurrentUser(on=...)"
        add = self._add
        # Access reviews (function segments before {id} segments: the id pattern would match).
        add("GET", f"{ar}/definitions", self._list_definitions)
        add("GET", f"{ar}/definitions/{fn}", self._definitions_for_me)
        add("GET", f"{ar}/definitions/{{definition}}", self._get_definition)
        add("GET", f"{ar}/definitions/{{definition}}/instances", self._list_instances)
        add("GET", f"{ar}/definitions/{{definition}}/instances/{fn}", self._instances_for_me)
        add("GET", inst, self._get_instance)
        add("GET", f"{inst}/decisions", self._list_decisions)
        add("GET", f"{inst}/decisions/{fn}", self._decisions_for_me)
        add("GET", f"{inst}/decisions/{{decision}}", self._get_decision)
        add("PATCH", f"{inst}/decisions/{{decision}}", self._patch_decision)
        add("GET", f"{inst}/contactedReviewers", self._contacted_reviewers)
        add("GET", f"{inst}/stages", self._list_stages)
        add("GET", f"{inst}/stages/{fn}", self._stages_for_me)
        add("GET", stage, self._get_stage)
        add("GET", f"{stage}/decisions", self._list_decisions)
        add("GET", f"{stage}/decisions/{fn}", self._decisions_for_me)
        add("GET", f"{stage}/decisions/{{decision}}", self._get_decision)
        add("PATCH", f"{stage}/decisions/{{decision}}", self._patch_decision)
        add("POST", f"{stage}/stop", self._stop_stage)
        for action, handler in (
            ("batchRecordDecisions", self._batch_record),
            ("acceptRecommendations", self._accept_recommendations),
            ("stop", self._stop),
            ("sendReminder", self._send_reminder),
            ("applyDecisions", self._apply_decisions),
            ("resetDecisions", self._reset_decisions),
        ):
            add("POST", f"{inst}/{action}", handler)
        # Beta-only views of "my" work.
        add("GET", f"{ar}/decisions/{fn}", self._all_decisions_for_me, beta=True)
        add("POST", f"{ar}/decisions/{fn}/recordAllDecisions", self._record_all, beta=True)
        add("GET", "/me/pendingAccessReviewInstances", self._pending_instances, beta=True)
        add("GET", "/me/pendingAccessReviewInstances/{instance}", self._pending_instance, beta=True)
        add(
            "GET",
            "/me/pendingAccessReviewInstances/{instance}/decisions",
            self._pending_decisions,
            beta=True,
        )
        add(
            "POST",
            "/me/pendingAccessReviewInstances/{instance}/batchRecordDecisions",
            self._batch_record,
            beta=True,
        )
        add(
            "POST",
            "/me/pendingAccessReviewInstances/{instance}/acceptRecommendations",
            self._accept_recommendations,
            beta=True,
        )

    # ------------------------------------------------------------------ permission helpers
    def _require_ar_read(self, request: GraphRequest, *, admin_view: bool) -> Caller:
        caller = self._require(request, app=AR_READ, delegated=AR_READ, code="Forbidden")
        if admin_view and caller.is_delegated:
            user = self.tenant.users.get(caller.oid or "")
            if user is None or not (user.directory_roles & AR_ADMIN_ROLES):
                # Emulator choice: a delegated caller without a governance role reads only
                # their own work, through filterByCurrentUser.
                raise forbidden(
                    "The signed-in user needs an administrator role to read all "
                    "access reviews; use filterByCurrentUser(on='reviewer').",
                    code="Forbidden",
                )
        return caller

    def _require_reviewer(self, request: GraphRequest) -> str:
        caller = self._require(request, app=None, delegated=AR_WRITE, code="Forbidden")
        if not caller.oid:
            raise forbidden("The token has no user object id.", code="Forbidden")
        return caller.oid

    def _current_user_id(self, request: GraphRequest, on: str | None) -> str:
        if on is not None and unquote(on).strip("'\"") != "reviewer":
            raise bad_request(
                f"Invalid value '{unquote(on)}' for parameter 'on'. Supported values: 'reviewer'."
            )
        caller = self._require(request, app=AR_READ, delegated=AR_READ, code="Forbidden")
        if not caller.is_delegated or not caller.oid:
            # The filterByCurrentUser pages list Application permissions as supported and return
            # what "the calling user" reviews; an application is never a reviewer, so app-only
            # calls are answered with nothing (the empty id matches no item), not refused.
            return ""
        return caller.oid

    # ------------------------------------------------------------------ access reviews: reads
    def _definition_spec(self, context: str) -> ListSpec:
        return ListSpec(
            context=context,
            allowed=COLLECTION_OPTIONS,
            filter_fields={
                "status": self.tenant.definition_status,
                "displayName": lambda d: d.display_name,
            },
        )

    def _instance_spec(self, context: str) -> ListSpec:
        return ListSpec(
            context=context,
            allowed=COLLECTION_OPTIONS | {"$expand"},
            filter_fields={"status": self.tenant.instance_status},
        )

    def _decision_spec(self, context: str) -> ListSpec:
        return ListSpec(
            context=context,
            allowed=COLLECTION_OPTIONS | {"$expand"},
            open_type=True,
            filter_fields={
                "decision": lambda d: d.decision,
                "recommendation": lambda d: d.recommendation,
                "applyResult": lambda d: d.apply_result,
                "principal/id": lambda d: d.principal_id,
                "resource/id": lambda d: d.resource.id if d.resource else "",
            },
            max_top=self.decisions_max_top,
        )

    async def _list_definitions(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        self._require_ar_read(request, admin_view=True)
        return self._collection(
            request,
            list(self.tenant.definitions.values()),
            self._definition_json,
            self._definition_spec("identityGovernance/accessReviews/definitions"),
        )

    async def _definitions_for_me(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        user_id = self._current_user_id(request, m.get("on"))
        mine = [
            d
            for d in self.tenant.definitions.values()
            if any(
                self.tenant.is_reviewer_of_instance(self.tenant.instances[iid], user_id)
                for iid in d.instance_ids
            )
        ]
        return self._collection(
            request,
            mine,
            self._definition_json,
            self._definition_spec("Collection(accessReviewScheduleDefinition)"),
        )

    async def _get_definition(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        self._require_ar_read(request, admin_view=True)
        definition = self.tenant.definition(m["definition"])
        return self._entity(
            request,
            self._definition_json(definition),
            "identityGovernance/accessReviews/definitions/$entity",
        )

    def _instance_serializer(self, request: GraphRequest) -> Callable[[Instance], dict[str, Any]]:
        expand = request.query_map().get("$expand")
        if expand is None:
            return self._instance_json
        if request.version != "beta" or expand.strip() != "definition":
            raise bad_request(f"Unsupported $expand '{expand}'.")

        def with_definition(instance: Instance) -> dict[str, Any]:
            body = self._instance_json(instance)
            body["definition"] = self._definition_json(
                self.tenant.definitions[instance.definition_id]
            )
            return body

        return with_definition

    async def _list_instances(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        self._require_ar_read(request, admin_view=True)
        definition = self.tenant.definition(m["definition"])
        instances = [self.tenant.instances[iid] for iid in definition.instance_ids]
        return self._collection(
            request,
            instances,
            self._instance_serializer(request),
            self._instance_spec(
                f"identityGovernance/accessReviews/definitions('{definition.id}')/instances"
            ),
        )

    async def _instances_for_me(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        user_id = self._current_user_id(request, m.get("on"))
        definition = self.tenant.definition(m["definition"])
        mine = [
            self.tenant.instances[iid]
            for iid in definition.instance_ids
            if self.tenant.is_reviewer_of_instance(self.tenant.instances[iid], user_id)
        ]
        return self._collection(
            request,
            mine,
            self._instance_serializer(request),
            self._instance_spec("Collection(accessReviewInstance)"),
        )

    async def _get_instance(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        self._require_ar_read(request, admin_view=True)
        instance = self.tenant.instance(m["definition"], m["instance"])
        return self._entity(
            request,
            self._instance_serializer(request)(instance),
            f"identityGovernance/accessReviews/definitions('{instance.definition_id}')/instances"
            "/$entity",
            allowed=frozenset({"$select", "$expand"}),
        )

    def _stage_of(self, instance: Instance, m: Mapping[str, str]) -> Stage | None:
        return self.tenant.stage(instance, m["stage"]) if "stage" in m else None

    def _decision_serializer(
        self, request: GraphRequest, instance: Instance | None, stage: Stage | None, *, typed: bool
    ) -> Callable[[tuple[Instance, Decision]], dict[str, Any]]:
        expand = request.query_map().get("$expand", "").replace(" ", "")
        with_insights = with_instance = False
        for part in filter(None, re.split(r",(?![^(]*\))", expand)):
            if request.version == "beta" and part == "insights":
                with_insights = True
            elif request.version == "beta" and part in {"instance", "instance($expand=definition)"}:
                with_instance = True
            else:
                raise bad_request(f"Unsupported $expand '{part}'.")

        def serialize(pair: tuple[Instance, Decision]) -> dict[str, Any]:
            owner, item = pair
            body = self._decision_json(owner, item, stage, request.version, typed=typed)
            if with_insights:
                body["insights"] = self._insights_json(item)
            if with_instance:
                instance_body = self._instance_json(owner)
                instance_body["definition"] = self._definition_json(
                    self.tenant.definitions[owner.definition_id]
                )
                body["instance"] = instance_body
            return body

        return serialize

    def _pair_spec(self, context: str) -> ListSpec:
        base = self._decision_spec(context)
        return ListSpec(
            context=context,
            allowed=base.allowed,
            open_type=True,
            filter_fields={
                name: (lambda fn: lambda pair: fn(pair[1]))(getter)
                for name, getter in base.filter_fields.items()
            },
            max_top=base.max_top,
        )

    async def _list_decisions(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        self._require_ar_read(request, admin_view=True)
        instance = self.tenant.instance(m["definition"], m["instance"])
        stage = self._stage_of(instance, m)
        items = [
            (instance, item)
            for item in instance.decisions.values()
            if stage is None or item.stage_index >= stage.index
        ]
        context = (
            f"identityGovernance/accessReviews/definitions('{instance.definition_id}')"
            f"/instances('{instance.id}')/decisions"
        )
        if stage is not None:
            context = (
                f"identityGovernance/accessReviews/definitions('{instance.definition_id}')"
                f"/instances('{instance.id}')/stages('{stage.id}')/decisions"
            )
        return self._collection(
            request,
            items,
            self._decision_serializer(request, instance, stage, typed=False),
            self._pair_spec(context),
        )

    async def _decisions_for_me(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        user_id = self._current_user_id(request, m.get("on"))
        instance = self.tenant.instance(m["definition"], m["instance"])
        stage = self._stage_of(instance, m)
        if instance.stages and stage is None:
            # Instance-level view of a multi-stage review: the items in the current stage.
            current = self.tenant.active_stage(instance)
            stage_index = current.index if current else None
        else:
            stage_index = stage.index if stage else None
        ids = self.tenant.reviewer_decision_ids(instance, user_id, stage_index)
        items = [(instance, instance.decisions[i]) for i in ids]
        return self._collection(
            request,
            items,
            self._decision_serializer(request, instance, stage, typed=True),
            self._pair_spec("Collection(accessReviewInstanceDecisionItem)"),
        )

    async def _get_decision(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        caller = self._require_ar_read(request, admin_view=False)
        instance = self.tenant.instance(m["definition"], m["instance"])
        stage = self._stage_of(instance, m)
        item = self.tenant.decision(instance, m["decision"], stage)
        if caller.is_delegated:
            user = self.tenant.users.get(caller.oid or "")
            is_admin = user is not None and bool(user.directory_roles & AR_ADMIN_ROLES)
            stage_index = stage.index if stage else None
            if not is_admin and (caller.oid or "") not in self.tenant.reviewers_of(
                instance, item, stage_index
            ):
                raise forbidden(
                    "The caller is not a reviewer of this decision item.", code="Forbidden"
                )
        serialize = self._decision_serializer(request, instance, stage, typed=False)
        return self._entity(
            request,
            serialize((instance, item)),
            f"identityGovernance/accessReviews/definitions('{instance.definition_id}')/instances("
            f"'{instance.id}')/decisions/$entity",
            allowed=frozenset({"$select", "$expand"}),
            open_type=True,
        )

    async def _contacted_reviewers(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        self._require_ar_read(request, admin_view=True)
        instance = self.tenant.instance(m["definition"], m["instance"])
        people = self.tenant.contacted_reviewers(instance)

        def serialize(pair: tuple[User, datetime]) -> dict[str, Any]:
            user, contacted_at = pair
            return {
                "id": user.id,
                "displayName": user.display_name,
                "userPrincipalName": user.user_principal_name,
                "createdDateTime": iso(contacted_at),
            }

        return self._collection(
            request,
            people,
            serialize,
            ListSpec(
                context=f"identityGovernance/accessReviews/definitions('"
                f"{instance.definition_id}')/instances('{instance.id}')/"
                "contactedReviewers",
                allowed=frozenset({"$top", "$skip", "$select", "$count"}),
            ),
        )

    def _stage_spec(self, context: str) -> ListSpec:
        return ListSpec(
            context=context,
            allowed=frozenset({"$filter", "$orderby", "$select"}),
            filter_fields={"status": self.tenant.stage_status},
        )

    async def _list_stages(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        self._require_ar_read(request, admin_view=True)
        instance = self.tenant.instance(m["definition"], m["instance"])
        return self._collection(
            request,
            self.tenant.visible_stages(instance),
            self._stage_json,
            self._stage_spec(
                f"identityGovernance/accessReviews/definitions('"
                f"{instance.definition_id}')/instances('{instance.id}')/stages"
            ),
        )

    async def _stages_for_me(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        user_id = self._current_user_id(request, m.get("on"))
        instance = self.tenant.instance(m["definition"], m["instance"])
        mine = [
            s
            for s in self.tenant.visible_stages(instance)
            if self.tenant.reviewer_decision_ids(instance, user_id, s.index)
        ]
        return self._collection(
            request, mine, self._stage_json, self._stage_spec("Collection(accessReviewStage)")
        )

    async def _get_stage(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        self._require_ar_read(request, admin_view=True)
        instance = self.tenant.instance(m["definition"], m["instance"])
        stage = self.tenant.stage(instance, m["stage"])
        return self._entity(
            request,
            self._stage_json(stage),
            f"identityGovernance/accessReviews/definitions('"
            f"{instance.definition_id}')/instances('{instance.id}')/stages"
            "/$entity",
        )

    # ------------------------------------------------------------------ beta: my work
    def _my_pending(self, user_id: str) -> list[Instance]:
        return [
            instance
            for instance in self.tenant.instances.values()
            if self.tenant.instance_status(instance) == "InProgress"
            and self.tenant.reviewer_decision_ids(instance, user_id, self._current_stage(instance))
        ]

    def _current_stage(self, instance: Instance) -> int | None:
        if not instance.stages:
            return None
        active = self.tenant.active_stage(instance)
        return active.index if active else None

    def _require_me(self, request: GraphRequest) -> str:
        caller = self._require(request, app=None, delegated=AR_READ, code="Forbidden")
        if not caller.oid:
            raise forbidden("The token has no user object id.", code="Forbidden")
        return caller.oid

    async def _pending_instances(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        user_id = self._require_me(request)
        spec = ListSpec(
            context="Collection(accessReviewInstance)",
            allowed=frozenset({"$top", "$skip", "$expand"}),
        )
        return self._collection(
            request, self._my_pending(user_id), self._instance_serializer(request), spec
        )

    def _my_instance(self, user_id: str, instance_id: str) -> Instance:
        for instance in self._my_pending(user_id):
            if instance.id == instance_id:
                return instance
        raise TenantError(
            404,
            "NotFound",
            f"Pending access review instance '{instance_id}' not found for the signed-in user.",
        )

    async def _pending_instance(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        user_id = self._require_me(request)
        instance = self._my_instance(user_id, m["instance"])
        return self._entity(
            request,
            self._instance_serializer(request)(instance),
            "me/pendingAccessReviewInstances/$entity",
            allowed=frozenset({"$expand"}),
        )

    async def _pending_decisions(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        user_id = self._require_me(request)
        instance = self._my_instance(user_id, m["instance"])
        ids = self.tenant.reviewer_decision_ids(instance, user_id, self._current_stage(instance))
        items = [(instance, instance.decisions[i]) for i in ids]
        spec = self._pair_spec("Collection(accessReviewInstanceDecisionItem)")
        spec.allowed = frozenset({"$top", "$skip", "$filter", "$select", "$expand", "$count"})
        return self._collection(
            request, items, self._decision_serializer(request, instance, None, typed=True), spec
        )

    async def _all_decisions_for_me(
        self, request: GraphRequest, m: dict[str, str]
    ) -> GraphResponse:
        user_id = self._current_user_id(request, m.get("on"))
        items: list[tuple[Instance, Decision]] = []
        for instance in self._my_pending(user_id):
            for decision_id in self.tenant.reviewer_decision_ids(
                instance, user_id, self._current_stage(instance)
            ):
                items.append((instance, instance.decisions[decision_id]))
        return self._collection(
            request,
            items,
            self._decision_serializer(request, None, None, typed=True),
            self._pair_spec("Collection(accessReviewInstanceDecisionItem)"),
        )

    # ------------------------------------------------------------------ access reviews: writes
    @staticmethod
    def _decision_body(request: GraphRequest, *, allowed: frozenset[str]) -> dict[str, Any]:
        body = request.json()
        if not isinstance(body, dict):
            raise bad_request("The request body must be a JSON object.")
        unknown = [k for k in body if k not in allowed and not k.startswith("@odata")]
        if unknown:
            raise bad_request(f"Invalid property '{unknown[0]}' in the request body.")
        decision = body.get("decision")
        if not isinstance(decision, str):
            raise bad_request("The 'decision' property is required.")
        justification = body.get("justification") or ""
        if not isinstance(justification, str):
            raise bad_request("The 'justification' property must be a string.")
        return body

    async def _patch_decision(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        user_id = self._require_reviewer(request)
        instance = self.tenant.instance(m["definition"], m["instance"])
        body = self._decision_body(request, allowed=frozenset({"decision", "justification"}))
        self.tenant.record_decision(
            instance.id,
            m["decision"],
            body["decision"],
            user_id,
            body.get("justification") or "",
            stage_id=m.get("stage"),
            by_upn=self._caller(request).upn,
        )
        return GraphResponse(204)

    def _instance_for_action(self, m: Mapping[str, str]) -> Instance:
        if "definition" in m:
            return self.tenant.instance(m["definition"], m["instance"])
        found = self.tenant.instances.get(m["instance"])
        if found is None:
            raise TenantError(
                404, "NotFound", f"Access review instance '{m['instance']}' not found."
            )
        return found

    async def _batch_record(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        # An app is never a reviewer, so app-only calls are refused (reference §2 note †).
        user_id = self._require_reviewer(request)
        instance = self._instance_for_action(m)
        body = self._decision_body(
            request, allowed=frozenset({"decision", "justification", "principalId", "resourceId"})
        )
        self.tenant.batch_record_decisions(
            instance.id,
            user_id,
            body["decision"],
            body.get("justification") or "",
            principal_id=body.get("principalId"),
            resource_id=body.get("resourceId"),
            by_upn=self._caller(request).upn,
        )
        return GraphResponse(204)

    async def _record_all(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        if unquote(m.get("on", "")).strip("'\"") != "reviewer":
            raise bad_request("Invalid value for parameter 'on'. Supported values: 'reviewer'.")
        user_id = self._require_reviewer(request)
        body = self._decision_body(
            request, allowed=frozenset({"decision", "justification", "principalId", "resourceId"})
        )
        if body["decision"] not in {"Approve", "Deny", "DontKnow"}:
            raise bad_request("Invalid decision: expected Approve, Deny or DontKnow.")
        for instance in self._my_pending(user_id):
            self.tenant.batch_record_decisions(
                instance.id,
                user_id,
                body["decision"],
                body.get("justification") or "",
                principal_id=body.get("principalId"),
                resource_id=body.get("resourceId"),
                by_upn=self._caller(request).upn,
            )
        return GraphResponse(204)

    async def _accept_recommendations(
        self, request: GraphRequest, m: dict[str, str]
    ) -> GraphResponse:
        user_id = self._require_reviewer(request)
        instance = self._instance_for_action(m)
        self.tenant.accept_recommendations(instance.id, user_id, by_upn=self._caller(request).upn)
        return GraphResponse(204)

    def _require_ar_admin_write(self, request: GraphRequest, instance: Instance) -> Caller:
        """Admin actions: AccessReview.ReadWrite.All, and for a delegated caller one of the
        Entra roles of includes/rbac-for-apis/rbac-access-reviews-apis-write.md."""
        caller = self._require(request, app=AR_WRITE, delegated=AR_WRITE, code="Forbidden")
        if caller.is_delegated:
            user = self.tenant.users.get(caller.oid or "")
            needed = self.tenant.admin_roles_for(instance)
            if user is None or not (user.directory_roles & needed):
                raise forbidden(
                    "The signed-in user needs one of these roles for this operation: "
                    + ", ".join(sorted(needed))
                    + ".",
                    code="Forbidden",
                )
        return caller

    async def _stop(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        instance = self._instance_for_action(m)
        self._require_ar_admin_write(request, instance)
        self.tenant.stop_instance(instance.id)
        return GraphResponse(204)

    async def _stop_stage(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        instance = self._instance_for_action(m)
        self._require_ar_admin_write(request, instance)
        self.tenant.stop_stage(instance.id, m["stage"])
        return GraphResponse(204)

    async def _send_reminder(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        instance = self._instance_for_action(m)
        self._require_ar_admin_write(request, instance)
        self.tenant.send_reminder(instance.id)
        return GraphResponse(204)

    async def _apply_decisions(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        instance = self._instance_for_action(m)
        caller = self._require_ar_admin_write(request, instance)
        self.tenant.apply_decisions(instance.id, caller.oid if caller.is_delegated else None)
        return GraphResponse(204)

    async def _reset_decisions(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        instance = self._instance_for_action(m)
        self._require_ar_admin_write(request, instance)
        self.tenant.reset_decisions(instance.id)
        return GraphResponse(204)
