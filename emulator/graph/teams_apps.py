"""Emulated Graph Teams apps: the tenant's app catalog and apps installed for users (with the
1:1 chat of an installed bot).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

from emulator.graph.core import (
    GraphBase,
    GraphFailure,
    GraphRequest,
    GraphResponse,
    ListSpec,
    bad_request,
    forbidden,
)
from emulator.tenant import Installation, TeamsApp, User

__all__ = ["APP_CATALOG_READ", "INSTALL_ANY", "INSTALL_READ", "INSTALL_SELF", "TeamsAppRoutes"]

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------- permissions
APP_CATALOG_READ = frozenset(
    {
        "AppCatalog.Read.All",
        "AppCatalog.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)
INSTALL_SELF = frozenset(
    {
        "TeamsAppInstallation.ReadWriteSelfForUser.All",
        "TeamsAppInstallation.ReadWriteAndConsentSelfForUser.All",
    }
)
INSTALL_ANY = frozenset(
    {
        "TeamsAppInstallation.ReadWriteForUser.All",
        "TeamsAppInstallation.ReadWriteAndConsentForUser.All",
    }
)
INSTALL_READ = (
    INSTALL_SELF
    | INSTALL_ANY
    | {"TeamsAppInstallation.ReadForUser.All", "TeamsAppInstallation.ReadForUser"}
)


class TeamsAppRoutes(GraphBase):
    """The Teams app catalog and installation routes."""

    # ------------------------------------------------------------------ routes
    def _register_teams_app_routes(self) -> None:
        add = self._add
        # Teams.
        add("GET", "/appCatalogs/teamsApps", self._list_teams_apps)
        add("GET", "/users/{user}/teamwork/installedApps", self._list_installed_apps)
        add("POST", "/users/{user}/teamwork/installedApps", self._install_app)
        add("GET", "/users/{user}/teamwork/installedApps/{installation}", self._get_installed_app)
        add(
            "GET",
            "/users/{user}/teamwork/installedApps/{installation}/chat",
            self._installed_app_chat,
        )

    @staticmethod
    def _teams_app_json(app: TeamsApp) -> dict[str, Any]:
        return {
            "id": app.id,
            "externalId": app.external_id,
            "displayName": app.display_name,
            "distributionMethod": app.distribution_method,
        }

    @staticmethod
    def _app_definition_json(app: TeamsApp) -> dict[str, Any]:
        return {
            "id": app.definition_id,
            "teamsAppId": app.id,
            "displayName": app.display_name,
            "version": app.version,
            "publishingState": "published",
            "description": app.description,
            "lastModifiedDateTime": None,
            "azureADAppId": app.azure_ad_app_id,
        }

    async def _list_teams_apps(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        self._require(
            request, app=APP_CATALOG_READ, delegated=APP_CATALOG_READ | {"AppCatalog.Submit"}
        )
        expand = request.query_map().get("$expand")
        if expand not in {None, "appDefinitions"}:
            raise bad_request(f"Unsupported $expand '{expand}'.")

        def serialize(app: TeamsApp) -> dict[str, Any]:
            body = self._teams_app_json(app)
            if expand:
                body["appDefinitions"] = [self._app_definition_json(app)]
            return body

        spec = ListSpec(
            context="appCatalogs/teamsApps",
            allowed=frozenset({"$filter", "$expand", "$select", "$top", "$skip"}),
            filter_fields={
                "externalId": lambda a: a.external_id,
                "distributionMethod": lambda a: a.distribution_method,
                "id": lambda a: a.id,
                "displayName": lambda a: a.display_name,
            },
        )
        return self._collection(request, list(self.tenant.teams_apps.values()), serialize, spec)

    def _installations_caller(
        self, request: GraphRequest, m: Mapping[str, str], *, write: bool
    ) -> tuple[User, bool]:
        """The target user and whether the caller may only see/manage its own app."""
        caller = self._caller(request)
        allowed = (INSTALL_SELF | INSTALL_ANY) if write else INSTALL_READ
        held = caller.scopes if caller.is_delegated else caller.roles
        if not held & allowed:
            raise forbidden(code="Forbidden")
        self_only = not (
            held
            & (
                INSTALL_ANY
                | (
                    {"TeamsAppInstallation.ReadForUser.All", "TeamsAppInstallation.ReadForUser"}
                    if not write
                    else set()
                )
            )
        )
        user = self.tenant.find_user(unquote(m["user"]))
        if user is None:
            raise GraphFailure(404, "NotFound", f"User '{m['user']}' not found.")
        return user, self_only

    def _installed_json(self, install: Installation, expand: set[str]) -> dict[str, Any]:
        body: dict[str, Any] = {"id": install.id}
        app = self.tenant.teams_apps.get(install.teams_app_id)
        if app is not None:
            if "teamsApp" in expand:
                body["teamsApp"] = self._teams_app_json(app)
            if "teamsAppDefinition" in expand:
                body["teamsAppDefinition"] = self._app_definition_json(app)
        return body

    async def _list_installed_apps(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        user, self_only = self._installations_caller(request, m, write=False)
        caller = self._caller(request)
        expand = {
            part.strip()
            for part in request.query_map().get("$expand", "").split(",")
            if part.strip()
        }
        if expand - {"teamsApp", "teamsAppDefinition"}:
            raise bad_request(f"Unsupported $expand '{request.query_map()['$expand']}'.")
        installs = list(self.tenant.installations_for(user.id).values())
        if self_only:
            # Emulator choice: a "Self" permission sees only the caller's own app.
            installs = [
                i
                for i in installs
                if (app := self.tenant.teams_apps.get(i.teams_app_id)) is not None
                and app.azure_ad_app_id == caller.app_id
            ]

        def app_field(name: str) -> Callable[[Installation], Any]:
            def get(install: Installation) -> Any:
                app = self.tenant.teams_apps.get(install.teams_app_id)
                return getattr(app, name) if app else None

            return get

        spec = ListSpec(
            context=f"users('{user.id}')/teamwork/installedApps",
            allowed=frozenset({"$filter", "$expand", "$select", "$top", "$skip"}),
            filter_fields={
                "teamsApp/id": lambda i: i.teams_app_id,
                "teamsApp/externalId": app_field("external_id"),
                "teamsApp/displayName": app_field("display_name"),
                "teamsAppDefinition/teamsAppId": lambda i: i.teams_app_id,
            },
        )
        return self._collection(request, installs, lambda i: self._installed_json(i, expand), spec)

    async def _install_app(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        user, self_only = self._installations_caller(request, m, write=True)
        body = request.json()
        bind = body.get("teamsApp@odata.bind") if isinstance(body, dict) else None
        if not isinstance(bind, str) or "/appCatalogs/teamsApps/" not in bind:
            raise bad_request(
                "The 'teamsApp@odata.bind' property is required and must point "
                "to /appCatalogs/teamsApps/{id}."
            )
        app_id = unquote(bind.rstrip("/").rsplit("/", 1)[-1])
        app = self.tenant.teams_apps.get(app_id)
        if app is None:
            raise GraphFailure(
                404, "NotFound", f"Teams app '{app_id}' was not found in the app catalog."
            )
        caller = self._caller(request)
        if self_only and app.azure_ad_app_id != caller.app_id:
            raise forbidden(
                "The 'Self' permission allows an app to install only itself.", code="Forbidden"
            )
        is_bot = self.bot_app_id is not None and app.azure_ad_app_id == self.bot_app_id
        chat_id = f"19:{user.id}_{app.azure_ad_app_id or app.id}@unq.gbl.spaces"
        install = self.tenant.install_app(user.id, app.id, chat_id)
        log.info("Teams app %s installed for user %s", app.id, user.id)
        if is_bot and self.on_bot_installed is not None:
            self.on_bot_installed(user.id, user.display_name, install.id)
        return GraphResponse(201)

    def _installation(
        self, request: GraphRequest, m: Mapping[str, str]
    ) -> tuple[User, Installation]:
        user, self_only = self._installations_caller(request, m, write=False)
        install = self.tenant.installations_for(user.id).get(unquote(m["installation"]))
        caller = self._caller(request)
        if install is not None and self_only:
            app = self.tenant.teams_apps.get(install.teams_app_id)
            if app is None or app.azure_ad_app_id != caller.app_id:
                install = None
        if install is None:
            raise GraphFailure(404, "NotFound", "The app installation was not found.")
        return user, install

    async def _get_installed_app(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        user, install = self._installation(request, m)
        expand = {
            part.strip()
            for part in request.query_map().get("$expand", "").split(",")
            if part.strip()
        }
        return self._entity(
            request,
            self._installed_json(install, expand),
            f"users('{user.id}')/teamwork/installedApps/$entity",
            allowed=frozenset({"$select", "$expand"}),
        )

    async def _installed_app_chat(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        user, install = self._installation(request, m)
        chat_id = install.chat_id
        app = self.tenant.teams_apps.get(install.teams_app_id)
        if (
            self.chat_id_for is not None
            and app is not None
            and self.bot_app_id is not None
            and app.azure_ad_app_id == self.bot_app_id
        ):
            chat_id = self.chat_id_for(user.id) or chat_id
        entity = {
            "id": chat_id,
            "topic": None,
            "createdDateTime": None,
            "lastUpdatedDateTime": None,
            "chatType": "oneOnOne",
            "webUrl": None,
            "tenantId": self.tenant.tenant_id,
        }
        return self._entity(request, entity, "chats/$entity")
