"""Deterministic tenant seeds: the hand-made ``demo`` tenant (:mod:`.demo_tenant`) and the big
``generated`` tenant (:mod:`.generated_tenant`).

Ids are fixed: the demo derives GUIDs with uuid5 from a namespace and a readable name
(``demo_id("user", "adele")``), the generator formats counters into GUID-shaped strings; the
recurrences of recurring reviews get their own ids (:mod:`emulator.lifecycle`). Times are
relative to the clock's "now" at seeding, so the demo always has running reviews.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from emulator.clock import Clock
from emulator.seeds.common import (
    DEFAULT_BOT_APP_ID,
    DEMO_TENANT_ID,
    GENERATED_TENANT_ID,
    demo_id,
)
from emulator.seeds.demo_tenant import (
    DEMO_EXPECTED_ASSIGNMENTS,
    demo,
    demo_decision_id,
    demo_instance_id,
)
from emulator.seeds.generated_tenant import generate
from emulator.tenant import Tenant

__all__ = [
    "DEFAULT_BOT_APP_ID",
    "DEMO_EXPECTED_ASSIGNMENTS",
    "DEMO_TENANT_ID",
    "GENERATED_TENANT_ID",
    "SEEDS",
    "build_seed",
    "demo",
    "demo_decision_id",
    "demo_id",
    "demo_instance_id",
    "generate",
]

SeedBuilder = Callable[..., Tenant]
#: Named seeds for ``EmulatorConfig.seed`` / ``python -m emulator --seed``.
SEEDS: dict[str, SeedBuilder] = {"demo": demo, "generated": generate}


def build_seed(
    name: str,
    clock: Clock,
    *,
    bot_app_id: str = DEFAULT_BOT_APP_ID,
    params: Mapping[str, Any] | None = None,
) -> Tenant:
    """Build a named seed (``demo`` or ``generated``) with extra keyword ``params``."""
    try:
        builder = SEEDS[name]
    except KeyError:
        raise ValueError(f"unknown seed {name!r}; choose one of {sorted(SEEDS)}") from None
    return builder(clock, bot_app_id=bot_app_id, **dict(params or {}))
