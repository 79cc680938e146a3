"""Emulated Graph directory: groups and their members and owners, service principals,
applications and delegated permission grants (users are in :mod:`emulator.graph.users`).

Application, service principal and grant objects are derived from the Identity's app
registrations on every request, plus the tenant's seeded ones and Microsoft Graph's own service
principal.
"""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote

from emulator.graph.core import (
    GraphFailure,
    GraphRequest,
    GraphResponse,
    ListSpec,
    field_getter,
    parse_filter,
)
from emulator.graph.users import UserRoutes
from emulator.identity import GRAPH_APP_ID, AppRegistration
from emulator.tenant import Application, Group, ServicePrincipal, User

__all__ = ["APPLICATION_READ", "GRANT_READ", "GROUP_MEMBER_READ", "DirectoryRoutes"]

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------- permissions
GROUP_MEMBER_READ = frozenset(
    {
        "GroupMember.Read.All",
        "Group.Read.All",
        "Group.ReadWrite.All",
        "GroupMember.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)
APPLICATION_READ = frozenset(
    {
        "Application.Read.All",
        "Application.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)
#: Reading delegated permission grants (oauth2PermissionGrant list/get, and a service
#: principal's grants): Directory.Read.All is the least privileged permission Graph documents;
#: Application.Read.All is *not* enough (it reads applications and service principals only).
GRANT_READ = frozenset(
    {"Directory.Read.All", "DelegatedPermissionGrant.ReadWrite.All", "Directory.ReadWrite.All"}
)


class DirectoryRoutes(UserRoutes):
    """The directory routes: groups, service principals, applications, permission grants."""

    # ------------------------------------------------------------------ routes
    def _register_directory_routes(self) -> None:
        add = self._add
        # Directory.
        add("GET", "/groups/{group}", self._get_group)
        add("GET", "/groups/{group}/members", self._group_members)
        add("GET", "/groups/{group}/transitiveMembers", self._group_transitive_members)
        add("GET", "/groups/{group}/owners", self._group_owners)
        add("GET", "/servicePrincipals/{sp}", self._get_service_principal)
        add("GET", "/servicePrincipals/{sp}/owners", self._service_principal_owners)
        add("GET", "/applications/{app}/owners", self._application_owners)
        # App registrations, service principals and delegated grants (what `app.py doctor` reads).
        add("GET", "/servicePrincipals", self._list_service_principals)
        add("GET", "/servicePrincipals(appId='{app_id}')", self._service_principal_by_app_id)
        add("GET", "/applications", self._list_applications)
        add("GET", "/applications(appId='{app_id}')", self._application_by_app_id)
        add("GET", "/oauth2PermissionGrants", self._list_permission_grants)

    def _directory_object_json(self, object_id: str) -> dict[str, Any] | None:
        obj = self.tenant.directory_object(object_id)
        if isinstance(obj, User):
            return {"@odata.type": "#microsoft.graph.user", **self._user_json(obj, full=True)}
        if isinstance(obj, Group):
            return {"@odata.type": "#microsoft.graph.group", **self._group_json(obj)}
        if isinstance(obj, ServicePrincipal):
            return {
                "@odata.type": "#microsoft.graph.servicePrincipal",
                **self._service_principal_json(obj),
            }
        return None

    @staticmethod
    def _group_json(group: Group) -> dict[str, Any]:
        return {
            "id": group.id,
            "displayName": group.display_name,
            "description": group.description,
            "groupTypes": list(group.group_types),
            "securityEnabled": group.security_enabled,
            "mailEnabled": group.mail_enabled,
            "mailNickname": group.mail_nickname,
        }

    @staticmethod
    def _service_principal_json(sp: ServicePrincipal) -> dict[str, Any]:
        return {
            "id": sp.id,
            "appId": sp.app_id,
            "displayName": sp.display_name,
            "servicePrincipalType": sp.service_principal_type,
        }

    def _group(self, request: GraphRequest, m: Mapping[str, str]) -> Group:
        self._require(request, app=GROUP_MEMBER_READ, delegated=GROUP_MEMBER_READ)
        group = self.tenant.groups.get(m["group"])
        if group is None:
            raise GraphFailure(
                404,
                "Request_ResourceNotFound",
                f"Resource '{m['group']}' does not exist or one of its queried "
                "reference-property objects are not present.",
            )
        return group

    def _directory_collection(
        self, request: GraphRequest, ids: Sequence[str], context: str
    ) -> GraphResponse:
        objects = [obj for obj in (self._directory_object_json(i) for i in ids) if obj]
        spec = ListSpec(
            context=context,
            allowed=frozenset({"$top", "$select", "$count", "$filter", "$skiptoken", "$skip"}),
            filter_fields={
                "userType": lambda o: o.get("userType"),
                "accountEnabled": lambda o: str(o.get("accountEnabled")).lower(),
            },
            skiptoken_paging=True,
        )
        return self._collection(request, objects, lambda o: o, spec)

    async def _get_group(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        group = self._group(request, m)
        return self._entity(request, self._group_json(group), "groups/$entity")

    async def _group_members(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        group = self._group(request, m)
        return self._directory_collection(request, group.member_ids, "directoryObjects")

    async def _group_transitive_members(
        self, request: GraphRequest, m: dict[str, str]
    ) -> GraphResponse:
        group = self._group(request, m)
        return self._directory_collection(
            request, self.tenant.transitive_member_objects(group.id), "directoryObjects"
        )

    async def _group_owners(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        group = self._group(request, m)
        return self._directory_collection(request, group.owner_ids, "directoryObjects")

    def _sp(self, request: GraphRequest, sp_id: str) -> ServicePrincipal:
        self._require(request, app=APPLICATION_READ, delegated=APPLICATION_READ)
        sp = self.tenant.service_principals.get(sp_id)
        if sp is None:
            raise GraphFailure(
                404,
                "Request_ResourceNotFound",
                f"Resource '{sp_id}' does not exist or one of its queried "
                "reference-property objects are not present.",
            )
        return sp

    async def _get_service_principal(
        self, request: GraphRequest, m: dict[str, str]
    ) -> GraphResponse:
        sp = self._sp(request, m["sp"])
        return self._entity(request, self._service_principal_json(sp), "servicePrincipals/$entity")

    async def _service_principal_owners(
        self, request: GraphRequest, m: dict[str, str]
    ) -> GraphResponse:
        sp = self._sp(request, m["sp"])
        return self._directory_collection(request, sp.owner_ids, "directoryObjects")

    async def _application_owners(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        self._require(request, app=APPLICATION_READ, delegated=APPLICATION_READ)
        app = self.tenant.applications.get(m["app"])
        if app is None:
            raise GraphFailure(
                404,
                "Request_ResourceNotFound",
                f"Resource '{m['app']}' does not exist or one of its queried "
                "reference-property objects are not present.",
            )
        return self._directory_collection(request, app.owner_ids, "directoryObjects")

    # ------------------------------------------------------------------ app registrations
    # Applications, service principals and delegated permission grants are derived from the
    # Identity's registrations (permissions, identifier URI) on every request, plus the tenant's
    # seeded service principals/applications and Microsoft Graph's own service principal.
    def _registration(self, client_id: str) -> AppRegistration | None:
        if self.app_registrations is None or not client_id:
            return None
        try:
            return self.app_registrations.app(client_id)
        except KeyError:
            return None

    def _object_id(self, kind: str, app_id: str) -> str:
        # The same derivation the Identity uses for the ``oid`` of an app-only token ("sp"), so
        # the service principal listed here is the one the token names, as in Entra.
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}:{self.tenant.tenant_id}:{app_id}"))

    def _graph_service_principal(self) -> dict[str, Any]:
        return {
            "id": self._object_id("sp", GRAPH_APP_ID),
            "appId": GRAPH_APP_ID,
            "displayName": "Microsoft Graph",
            "appDisplayName": "Microsoft Graph",
            "accountEnabled": True,
            "servicePrincipalType": "Application",
            "servicePrincipalNames": [
                GRAPH_APP_ID,
                "https://graph.microsoft.com",
                "https://graph.microsoft.com/",
            ],
            # Emulator choice: Microsoft's own tenant id, as Graph shows for first-party apps.
            "appOwnerOrganizationId": "f8cdef31-a31e-4b4a-93e4-5f571e91255a",
            "signInAudience": "AzureADMultipleOrgs",
        }

    def _registered_service_principal(self, app: AppRegistration) -> dict[str, Any]:
        names = [app.client_id] + ([app.identifier_uri] if app.identifier_uri else [])
        return {
            "id": self._object_id("sp", app.client_id),
            "appId": app.client_id,
            "displayName": app.display_name,
            "appDisplayName": app.display_name,
            "accountEnabled": True,
            "servicePrincipalType": "Application",
            "servicePrincipalNames": names,
            "appOwnerOrganizationId": self.tenant.tenant_id,
            "signInAudience": "AzureADMyOrg",
        }

    def _seeded_service_principal(self, sp: ServicePrincipal) -> dict[str, Any]:
        return {
            **self._service_principal_json(sp),
            "appDisplayName": sp.display_name,
            "accountEnabled": True,
            "servicePrincipalNames": [sp.app_id],
            "appOwnerOrganizationId": self.tenant.tenant_id,
            "signInAudience": "AzureADMyOrg",
        }

    def _registered_application(self, app: AppRegistration) -> dict[str, Any]:
        scopes = []
        if app.identifier_uri:
            # What "Expose an API" creates for Teams SSO: one user-consentable scope.
            scopes.append(
                {
                    "id": self._object_id("scope", app.client_id),
                    "value": "access_as_user",
                    "type": "User",
                    "isEnabled": True,
                    "adminConsentDisplayName": "Teams can access the user's profile",
                    "userConsentDisplayName": "Teams can access your profile",
                }
            )
        return {
            "id": self._object_id("app", app.client_id),
            "appId": app.client_id,
            "displayName": app.display_name,
            "signInAudience": "AzureADMyOrg",
            "identifierUris": [app.identifier_uri] if app.identifier_uri else [],
            "api": {"oauth2PermissionScopes": scopes, "preAuthorizedApplications": []},
        }

    @staticmethod
    def _seeded_application(app: Application) -> dict[str, Any]:
        return {
            "id": app.id,
            "appId": app.app_id,
            "displayName": app.display_name,
            "signInAudience": "AzureADMyOrg",
            "identifierUris": [],
            "api": {"oauth2PermissionScopes": [], "preAuthorizedApplications": []},
        }

    def _filtered_app_ids(self, request: GraphRequest, fields: Iterable[str]) -> list[str]:
        """The ``appId eq '…'`` values of the request's $filter (to look registrations up)."""
        text = request.query_map().get("$filter")
        if text is None:
            return []
        return [value for name, value in parse_filter(text, fields) if name == "appId"]

    def _all_service_principals(self, extra_app_ids: Iterable[str]) -> list[dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for sp in self.tenant.service_principals.values():
            found.setdefault(sp.app_id, self._seeded_service_principal(sp))
        # Emulator choice: registrations cannot be enumerated through the Identity, so the
        # unfiltered list shows the bot's own; any other registered app appears when named.
        for app_id in [self.bot_app_id or "", *extra_app_ids]:
            registration = self._registration(app_id)
            if registration is not None:
                found.setdefault(app_id, self._registered_service_principal(registration))
        found.setdefault(GRAPH_APP_ID, self._graph_service_principal())
        return list(found.values())

    def _all_applications(self, extra_app_ids: Iterable[str]) -> list[dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for app in self.tenant.applications.values():
            found.setdefault(app.app_id, self._seeded_application(app))
        for app_id in [self.bot_app_id or "", *extra_app_ids]:
            registration = self._registration(app_id)
            if registration is not None:
                found.setdefault(app_id, self._registered_application(registration))
        return list(found.values())

    @staticmethod
    def _not_found(ref: str) -> GraphFailure:
        return GraphFailure(
            404,
            "Request_ResourceNotFound",
            f"Resource '{ref}' does not exist or one of its queried "
            "reference-property objects are not present.",
        )

    @staticmethod
    def _key_value(raw: str) -> str:
        # Alternate key literal: the route captured what is between the quotes ('' = ').
        return unquote(raw).replace("''", "'")

    _SP_FILTERS = ("appId", "id", "displayName", "servicePrincipalType")
    _APP_FILTERS = ("appId", "id", "displayName")

    async def _list_service_principals(
        self, request: GraphRequest, m: dict[str, str]
    ) -> GraphResponse:
        self._require(request, app=APPLICATION_READ, delegated=APPLICATION_READ)
        items = self._all_service_principals(self._filtered_app_ids(request, self._SP_FILTERS))
        spec = ListSpec(
            context="servicePrincipals",
            allowed=frozenset({"$filter", "$select", "$top", "$count", "$skiptoken"}),
            filter_fields={name: field_getter(name) for name in self._SP_FILTERS},
            skiptoken_paging=True,
        )
        return self._collection(request, items, lambda o: o, spec)

    async def _service_principal_by_app_id(
        self, request: GraphRequest, m: dict[str, str]
    ) -> GraphResponse:
        self._require(request, app=APPLICATION_READ, delegated=APPLICATION_READ)
        app_id = self._key_value(m["app_id"])
        entity = next(
            (sp for sp in self._all_service_principals([app_id]) if sp["appId"] == app_id), None
        )
        if entity is None:
            raise self._not_found(app_id)
        return self._entity(request, entity, "servicePrincipals/$entity")

    async def _list_applications(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        self._require(request, app=APPLICATION_READ, delegated=APPLICATION_READ)
        items = self._all_applications(self._filtered_app_ids(request, self._APP_FILTERS))
        spec = ListSpec(
            context="applications",
            allowed=frozenset({"$filter", "$select", "$top", "$count", "$skiptoken"}),
            filter_fields={name: field_getter(name) for name in self._APP_FILTERS},
            skiptoken_paging=True,
        )
        return self._collection(request, items, lambda o: o, spec)

    async def _application_by_app_id(
        self, request: GraphRequest, m: dict[str, str]
    ) -> GraphResponse:
        self._require(request, app=APPLICATION_READ, delegated=APPLICATION_READ)
        app_id = self._key_value(m["app_id"])
        entity = next((a for a in self._all_applications([app_id]) if a["appId"] == app_id), None)
        if entity is None:
            raise self._not_found(app_id)
        return self._entity(request, entity, "applications/$entity")

    def _permission_grants(self) -> list[dict[str, Any]]:
        """Tenant-wide (``AllPrincipals``) grants to Microsoft Graph: one per registration with
        admin-consented delegated permissions, as "Grant admin consent" creates it."""
        grants: list[dict[str, Any]] = []
        for sp in self._all_service_principals([]):
            registration = self._registration(sp["appId"])
            if registration is None or not registration.delegated_permissions:
                continue
            client_id = sp["id"]
            resource_id = self._object_id("sp", GRAPH_APP_ID)
            # Grant ids are opaque strings in Graph; derived from (client, resource) here.
            grant_id = (
                base64.urlsafe_b64encode(uuid.UUID(client_id).bytes + uuid.UUID(resource_id).bytes)
                .decode()
                .rstrip("=")
            )
            grants.append(
                {
                    "id": grant_id,
                    "clientId": client_id,
                    "consentType": "AllPrincipals",
                    "principalId": None,
                    "resourceId": resource_id,
                    # Graph stores the scope string space-separated (often padded).
                    "scope": " ".join(sorted(registration.delegated_permissions)),
                }
            )
        return grants

    async def _list_permission_grants(
        self, request: GraphRequest, m: dict[str, str]
    ) -> GraphResponse:
        # Emulator choice: delegated callers are not also checked for a directory role.
        self._require(request, app=GRANT_READ, delegated=GRANT_READ)
        fields = ("clientId", "consentType", "principalId", "resourceId", "id")
        spec = ListSpec(
            context="oauth2PermissionGrants",
            allowed=frozenset({"$filter", "$select", "$top", "$skiptoken"}),
            filter_fields={name: field_getter(name) for name in fields},
            skiptoken_paging=True,
        )
        return self._collection(request, self._permission_grants(), lambda o: o, spec)
