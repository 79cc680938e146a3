"""Typed calls for the Teams app catalog and per-user app installation (proactive install).

App-only with ``AppCatalog.Read.All`` and ``TeamsAppInstallation.ReadWriteSelfForUser.All``.
"""

from __future__ import annotations

from urllib.parse import quote

from bot.graph.client import GraphClient
from bot.graph.errors import GraphConflict
from bot.graph.models import TeamsApp, TeamsAppInstallation
from bot.graph.odata import Query, odata_eq

__all__ = ["TeamsAppsApi"]


def _seg(value: str) -> str:
    if not value:
        raise ValueError("empty id in a Graph path")
    return quote(value, safe="")


class TeamsAppsApi:
    """Find the bot's app in the org catalog, install it for a user, find the 1:1 chat."""

    def __init__(self, graph: GraphClient) -> None:
        self._graph = graph

    async def find_catalog_app(self, external_id: str) -> TeamsApp | None:
        """The catalog entry whose manifest id is ``external_id`` (None if not published)."""
        async for item in self._graph.paginate(
            "/appCatalogs/teamsApps", params=Query(filter=odata_eq("externalId", external_id))
        ):
            return TeamsApp.from_graph(item)
        return None

    async def installed_apps(
        self, user_id: str, *, teams_app_id: str | None = None
    ) -> list[TeamsAppInstallation]:
        """The user's installed apps (only ``teams_app_id`` when given), with ``teamsApp`` expanded."""
        query = Query(
            expand="teamsApp",
            filter=odata_eq("teamsApp/id", teams_app_id) if teams_app_id else None,
        )
        return [
            TeamsAppInstallation.from_graph(item)
            async for item in self._graph.paginate(
                f"/users/{_seg(user_id)}/teamwork/installedApps", params=query
            )
        ]

    async def install_for_user(self, user_id: str, teams_app_id: str) -> bool:
        """Install the app for the user; ``False`` if it was already installed (409)."""
        bind = f"{self._graph.base_url}/v1.0/appCatalogs/teamsApps/{_seg(teams_app_id)}"
        try:
            # A repeat answers 409, which means "already done": safe to retry.
            await self._graph.request(
                "POST",
                f"/users/{_seg(user_id)}/teamwork/installedApps",
                json_body={"teamsApp@odata.bind": bind},
                idempotent=True,
            )
        except GraphConflict:
            return False
        return True

    async def ensure_installed(self, user_id: str, teams_app_id: str) -> TeamsAppInstallation:
        """The user's installation of the app, installing it first when missing."""
        found = await self.installed_apps(user_id, teams_app_id=teams_app_id)
        if found:
            return found[0]
        await self.install_for_user(user_id, teams_app_id)
        found = await self.installed_apps(user_id, teams_app_id=teams_app_id)
        if not found:
            raise LookupError(f"app {teams_app_id} not listed for the user right after install")
        return found[0]

    async def installation_chat_id(self, user_id: str, installation_id: str) -> str:
        """The id of the 1:1 chat between the user and the bot of that installation."""
        body = await self._graph.get(
            f"/users/{_seg(user_id)}/teamwork/installedApps/{_seg(installation_id)}/chat"
        )
        return str((body or {}).get("id") or "")
