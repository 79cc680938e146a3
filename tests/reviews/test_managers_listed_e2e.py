"""Managers through the tenant's user list (``GET /users?$expand=manager``), on the emulator.

A generated tenant where many principals are reviewed by their managers: discovery counts the
users (``/users/$count``), finds that listing them with their managers costs fewer requests than
asking for each principal's manager, reads the list, and assigns every such item to the
principal's manager exactly as the emulated directory says — with no per-user manager request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.web.keys import DISCOVERY, STORE
from emulator.server import EmulatorConfig
from tests.bot_harness import BotOnEmulator, bot_on_emulator

SEED = {"decisions": 3_000, "reviewers": 60, "instances": 30, "seed": 5}


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[BotOnEmulator]:
    config = EmulatorConfig(seed="generated", seed_params=SEED)
    async with bot_on_emulator(tmp_path, config=config) as running:
        yield running


def _manager_reviewed(harness: BotOnEmulator) -> dict[tuple[str, str], str | None]:
    """(instance, item) → the principal's manager, for running instances reviewed by managers."""
    tenant = harness.cloud.tenant
    expected: dict[tuple[str, str], str | None] = {}
    for instance in tenant.instances.values():
        if tenant.instance_status(instance) != "InProgress":
            continue
        if not any(scope.query in ("./manager", "manager") for scope in instance.reviewers):
            continue
        for decision in instance.decisions.values():
            if decision.decision != "NotReviewed" or decision.principal_kind != "user":
                continue
            user = tenant.users.get(decision.principal_id)
            expected[(instance.id, decision.id)] = user.manager_id if user else None
    return expected


async def test_managers_come_from_the_user_list_and_match_the_directory(
    harness: BotOnEmulator,
) -> None:
    expected = _manager_reviewed(harness)
    with_manager = {key: manager for key, manager in expected.items() if manager}
    assert len(with_manager) > 100  # the tenant really has many manager-reviewed items
    since = len(harness.cloud.graph.request_log)

    report = await harness.app[DISCOVERY].run_once()

    assert report.complete, report.errors
    assert report.manager_mode == "list"
    paths = [entry[2] for entry in list(harness.cloud.graph.request_log)[since:]]
    assert "/users/$count" in paths
    assert any(path == "/users" for path in paths)
    assert not [path for path in paths if path.endswith("/manager")]
    # Far fewer requests than one per principal.
    assert report.manager_requests < len(set(with_manager.values())) + 10
    assignments = set(await harness.app[STORE].list_assignments())
    for (instance_id, item_id), manager in with_manager.items():
        assert (manager, instance_id, item_id) in assignments
