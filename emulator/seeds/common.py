"""What the seeds share: fixed ids, the demo id namespace, scope and recurrence shapes, and
the Teams app catalog both tenants hold."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from emulator.tenant import TeamsApp, Tenant

__all__ = [
    "DEFAULT_BOT_APP_ID",
    "DEMO_DOMAIN",
    "DEMO_TENANT_ID",
    "GENERATED_TENANT_ID",
    "demo_id",
    "group_scope",
    "instance_scope",
    "monthly",
    "one_time",
    "teams_catalog",
]

_DEMO_NAMESPACE = uuid.UUID("6b0f7c64-3e0a-4c55-9a61-5f1a3c2e8d40")

#: The demo tenant id (a valid GUID; also used by the Agents Playground config).
DEMO_TENANT_ID = "2f5b9c1e-7a34-4d6b-8e21-c0a9d3f4b512"
GENERATED_TENANT_ID = "0e0b5a8c-1d2f-4a3b-9c4d-5e6f7a8b9c0d"
#: The bot's Entra app id unless configured otherwise.
DEFAULT_BOT_APP_ID = "00000000-0000-4000-8000-00000000b075"
DEMO_DOMAIN = "contoso.onmicrosoft.com"


def demo_id(kind: str, name: str) -> str:
    """The fixed GUID of a demo object, e.g. ``demo_id("user", "adele")``."""
    return str(uuid.uuid5(_DEMO_NAMESPACE, f"{kind}:{name}"))


def group_scope(group_id: str) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.accessReviewQueryScope",
        "query": f"/groups/{group_id}/transitiveMembers",
        "queryType": "MicrosoftGraph",
        "queryRoot": None,
    }


def instance_scope(query: str) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.accessReviewQueryScope",
        "query": query,
        "queryType": "MicrosoftGraph",
        "queryRoot": None,
    }


def monthly(first_start: datetime, months: int) -> dict[str, Any]:
    # The docs' recurrence shape (a quarterly review is absoluteMonthly with interval 3); the
    # range has no end (numbered, 0 occurrences, endDate 9999-12-31, as the weekly example).
    return {
        "pattern": {
            "type": "absoluteMonthly",
            "interval": months,
            "month": 0,
            "dayOfMonth": 0,
            "daysOfWeek": [],
            "firstDayOfWeek": "sunday",
            "index": "first",
        },
        "range": {
            "type": "numbered",
            "numberOfOccurrences": 0,
            "recurrenceTimeZone": None,
            "startDate": first_start.date().isoformat(),
            "endDate": "9999-12-31",
        },
    }


def one_time(start: datetime, end: datetime) -> dict[str, Any]:
    return {
        "pattern": None,
        "range": {
            "type": "numbered",
            "numberOfOccurrences": 0,
            "recurrenceTimeZone": None,
            "startDate": start.date().isoformat(),
            "endDate": end.date().isoformat(),
        },
    }


def teams_catalog(tenant: Tenant, bot_app_id: str) -> None:
    tenant.add_teams_app(
        TeamsApp(
            id=demo_id("teamsapp", "access-review-bot"),
            external_id=bot_app_id,
            display_name="Access Reviews",
            distribution_method="organization",
            definition_id=demo_id("teamsappdef", "access-review-bot"),
            version="1.0.0",
            description="Get your Microsoft Entra access reviews done in Teams.",
            azure_ad_app_id=bot_app_id,
        )
    )
    tenant.add_teams_app(
        TeamsApp(
            id=demo_id("teamsapp", "expenses"),
            external_id=demo_id("manifest", "expenses"),
            display_name="Contoso Expenses",
            distribution_method="organization",
            definition_id=demo_id("teamsappdef", "expenses"),
            version="2.3.1",
            description="Submit and approve expenses.",
            azure_ad_app_id=demo_id("app", "expenses"),
        )
    )
