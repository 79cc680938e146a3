"""Shaping the emulated tenant for the Graph-side end-to-end tests.

The emulator drives instance statuses by its clock (``NotStarted`` → ``InProgress`` →
``Completed``) and sends principals in one shape. Graph does more (every documented status;
``""`` as a sign-in date). Until the emulator does the same by itself, these helpers set what a
test needs through the emulator's own tenant: every Graph route reads an instance's status through
``Tenant.instance_status`` and a principal through ``GraphApi._principal_json``, so the bot sees
exactly what a Graph answer with that status or shape would carry.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from emulator.server import EmulatorCloud
from emulator.tenant import Decision, Instance


class StatusOverride:
    """Force instance statuses: ``override[instance_id] = "Completing"``; ``del`` to release."""

    def __init__(self, cloud: EmulatorCloud) -> None:
        self.forced: dict[str, str] = {}
        tenant = cloud.tenant
        by_clock = tenant.instance_status

        def instance_status(instance: Instance, now: datetime | None = None) -> str:
            return self.forced.get(instance.id) or by_clock(instance, now)

        tenant.instance_status = instance_status  # type: ignore[method-assign]

    def __setitem__(self, instance_id: str, status: str) -> None:
        self.forced[instance_id] = status

    def __delitem__(self, instance_id: str) -> None:
        self.forced.pop(instance_id, None)


class PrincipalShapes:
    """Change how chosen principals come out of Graph: ``shapes[user_id] = {"lastUser…": ""}``."""

    def __init__(self, cloud: EmulatorCloud) -> None:
        self.changes: dict[str, dict[str, Any]] = {}
        graph = cloud.graph
        plain: Callable[[Decision], dict[str, Any]] = graph._principal_json

        def principal_json(item: Decision) -> dict[str, Any]:
            body = plain(item)
            body.update(self.changes.get(item.principal_id, {}))
            return body

        graph._principal_json = principal_json  # type: ignore[method-assign]

    def __setitem__(self, principal_id: str, changes: dict[str, Any]) -> None:
        self.changes[principal_id] = changes
