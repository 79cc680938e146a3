"""Emulated Microsoft Graph, organised as Graph's documentation is: the shared machinery
(:mod:`emulator.graph.core`), one module per resource family — access reviews
(``access_reviews``, ``reviews_json``), users, the rest of the directory, Teams apps, ``$batch``
and subscriptions — Graph's own throttling (``throttling``) and the emulator's admin surface
(``admin``).

Shapes follow ``shared/reference/graph-access-reviews.md`` (the spec); choices where Microsoft
documents nothing are marked "emulator choice" beside the code.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from emulator.graph.access_reviews import AccessReviewRoutes
from emulator.graph.admin import install_admin_routes
from emulator.graph.batch import BatchRoutes
from emulator.graph.core import (
    DECISIONS_MAX_TOP,
    DEFAULT_PAGE_SIZE,
    GRAPH_HOST,
    MAX_BATCH_REQUESTS,
    MAX_PAGE_SIZE,
    GraphFailure,
    GraphRequest,
    GraphResponse,
    InstallListener,
    iso,
    parse_filter,
)
from emulator.graph.directory import DirectoryRoutes
from emulator.graph.subscriptions import SubscriptionRoutes
from emulator.graph.teams_apps import TeamsAppRoutes
from emulator.graph.throttling import Charge, GraphThrottle, ThrottleRecord, ThrottleSettings
from emulator.tenant import Instance

__all__ = [
    "DECISIONS_MAX_TOP",
    "DEFAULT_PAGE_SIZE",
    "GRAPH_HOST",
    "MAX_BATCH_REQUESTS",
    "MAX_PAGE_SIZE",
    "Charge",
    "GraphApi",
    "GraphFailure",
    "GraphRequest",
    "GraphResponse",
    "GraphThrottle",
    "InstallListener",
    "ThrottleRecord",
    "ThrottleSettings",
    "iso",
    "parse_filter",
]


class GraphApi(
    AccessReviewRoutes, DirectoryRoutes, TeamsAppRoutes, SubscriptionRoutes, BatchRoutes
):
    """The emulated Graph service for one tenant.

    ``validate_token(raw)`` returns the validated token (``Identity.validate_access_token``
    bound to the Graph audience) or raises :class:`emulator.identity.TokenError`.
    ``on_bot_installed(user_oid, user_name, installation_id)`` is called when the bot's own
    Teams app is installed for a user; ``chat_id_for(user_oid)`` gives the bot's 1:1 chat id.
    ``throttle`` (:class:`GraphThrottle`, on by default) meters every request; its counters and
    records are what tests and benchmarks read.
    """

    def make_app(self) -> web.Application:
        """The Graph web app, with faults and the emulator's admin routes installed."""
        app = super().make_app()
        install_admin_routes(app, self)
        return app

    def instance_json(self, instance: Instance) -> dict[str, Any]:
        """An instance as Graph shows it (for the admin surface and tests)."""
        return self._instance_json(instance)

    def _register_routes(self) -> None:
        # Order matters only where two patterns could match one path; families do not overlap.
        self._register_access_review_routes()
        self._register_user_routes()
        self._register_directory_routes()
        self._register_teams_app_routes()
        self._register_subscription_routes()
        self._register_batch_routes()
