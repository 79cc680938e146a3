"""The directory part of an emulated tenant: users, groups (with nested membership), service
principals, app registrations, the Teams app catalog and the apps installed for users.

:class:`emulator.tenant.Tenant` builds on it with access reviews.
"""

from __future__ import annotations

import base64
import itertools
from typing import Any

from emulator.model import (
    Application,
    Group,
    Installation,
    ServicePrincipal,
    TeamsApp,
    TenantError,
    User,
)

__all__ = ["Directory"]


class Directory:
    """Directory objects and Teams installations of one tenant."""

    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self._users_by_upn: dict[str, User] = {}
        self.groups: dict[str, Group] = {}
        self.service_principals: dict[str, ServicePrincipal] = {}
        self.applications: dict[str, Application] = {}
        self.teams_apps: dict[str, TeamsApp] = {}
        self.installations: dict[str, dict[str, Installation]] = {}  # user id → id → install
        # Bumped on every directory change so cached reviewer resolutions stay right.
        self._directory_version = 0
        self._transitive_cache: dict[str, tuple[int, frozenset[str]]] = {}
        self._install_counter = itertools.count(1)

    # ------------------------------------------------------------------ directory mutation
    def directory_changed(self) -> None:
        """Invalidate cached reviewer resolutions (call after editing directory objects)."""
        self._directory_version += 1

    def add_user(self, user: User) -> User:
        """Add (or replace) a user."""
        self.users[user.id] = user
        self._users_by_upn[user.user_principal_name.lower()] = user
        self.directory_changed()
        return user

    def add_group(self, group: Group) -> Group:
        """Add (or replace) a group."""
        self.groups[group.id] = group
        self.directory_changed()
        return group

    def add_service_principal(self, sp: ServicePrincipal) -> ServicePrincipal:
        """Add (or replace) a service principal."""
        self.service_principals[sp.id] = sp
        self.directory_changed()
        return sp

    def add_application(self, app: Application) -> Application:
        """Add (or replace) an app registration."""
        self.applications[app.id] = app
        self.directory_changed()
        return app

    def add_teams_app(self, app: TeamsApp) -> TeamsApp:
        """Add an app to the Teams catalog."""
        self.teams_apps[app.id] = app
        return app

    def find_user(self, id_or_upn: str) -> User | None:
        """Look a user up by object id or UPN (case-insensitive), as ``/users/{id}`` does."""
        return self.users.get(id_or_upn) or self._users_by_upn.get(id_or_upn.lower())

    def user_summary(self, id_or_upn: str) -> dict[str, Any] | None:
        """``{"id", "userPrincipalName", "displayName", "accountEnabled"}`` or None (the
        Identity's user lookup)."""
        user = self.find_user(id_or_upn)
        if user is None:
            return None
        return {
            "id": user.id,
            "userPrincipalName": user.user_principal_name,
            "displayName": user.display_name,
            "accountEnabled": user.account_enabled,
        }

    def directory_object(self, object_id: str) -> User | Group | ServicePrincipal | None:
        """Any directory object by id."""
        return (
            self.users.get(object_id)
            or self.groups.get(object_id)
            or self.service_principals.get(object_id)
        )

    def transitive_members(self, group_id: str) -> frozenset[str]:
        """Ids of every non-group member of a group, through nested groups (cycle-safe)."""
        cached = self._transitive_cache.get(group_id)
        if cached is not None and cached[0] == self._directory_version:
            return cached[1]
        seen_groups: set[str] = set()
        members: set[str] = set()
        stack = [group_id]
        while stack:
            gid = stack.pop()
            if gid in seen_groups:
                continue
            seen_groups.add(gid)
            group = self.groups.get(gid)
            if group is None:
                continue
            for member_id in group.member_ids:
                if member_id in self.groups:
                    stack.append(member_id)
                else:
                    members.add(member_id)
        result = frozenset(members)
        self._transitive_cache[group_id] = (self._directory_version, result)
        return result

    def transitive_member_objects(self, group_id: str) -> list[str]:
        """Ids of all transitive members including nested groups themselves (Graph's
        ``transitiveMembers`` lists groups too)."""
        seen: set[str] = set()
        ordered: list[str] = []
        stack = list(reversed(self.groups[group_id].member_ids)) if group_id in self.groups else []
        while stack:
            member_id = stack.pop()
            if member_id in seen:
                continue
            seen.add(member_id)
            ordered.append(member_id)
            nested = self.groups.get(member_id)
            if nested is not None:
                stack.extend(reversed(nested.member_ids))
        return ordered

    # ------------------------------------------------------------------ Teams installs
    def installations_for(self, user_id: str) -> dict[str, Installation]:
        """The user's personal-scope installations by installation id."""
        return self.installations.setdefault(user_id, {})

    def install_app(self, user_id: str, teams_app_id: str, chat_id: str) -> Installation:
        """Install a catalog app for a user (409 if already installed, like Graph)."""
        installs = self.installations_for(user_id)
        for existing in installs.values():
            if existing.teams_app_id == teams_app_id:
                raise TenantError(409, "Conflict", "App is already installed for this user.")
        # Graph's installation ids are base64 of "{userId}##{teamsAppId}" (URL-safe here,
        # plus a counter so a reinstall after removal gets a new id).
        raw = f"{user_id}##{teams_app_id}##{next(self._install_counter)}"
        install_id = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
        install = Installation(
            id=install_id, user_id=user_id, teams_app_id=teams_app_id, chat_id=chat_id
        )
        installs[install_id] = install
        return install
