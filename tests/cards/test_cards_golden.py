"""Golden files: every card and state, compared byte for byte and validated against the schema.

Regenerate after an intended change with ``UPDATE_GOLDENS=1`` and review the diff; without that
variable a missing or different golden fails the test.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from card_helpers import schema_errors
from card_scenarios import scenarios

from cards import CARD_BUDGET_BYTES, card_size_bytes

GOLDEN_DIR = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDENS") == "1"

SCENARIOS = scenarios()


def _serialize(card: dict[str, Any]) -> str:
    return json.dumps(card, indent=2, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_card_matches_golden(name: str) -> None:
    rendered = _serialize(SCENARIOS[name]())
    path = GOLDEN_DIR / f"{name}.json"
    if UPDATE:
        GOLDEN_DIR.mkdir(exist_ok=True)
        path.write_text(rendered, encoding="utf-8")
    assert path.exists(), f"no golden for {name}; run with UPDATE_GOLDENS=1 and review it"
    assert rendered == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_card_is_valid_adaptive_card(
    name: str, schema_validator: jsonschema.protocols.Validator
) -> None:
    card = SCENARIOS[name]()
    assert schema_errors(schema_validator, card) == []
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.5"
    assert card_size_bytes(card) <= CARD_BUDGET_BYTES


def test_every_golden_has_a_scenario() -> None:
    # A stale golden (scenario renamed or removed) would otherwise linger unnoticed.
    goldens = {path.stem for path in GOLDEN_DIR.glob("*.json")}
    assert goldens <= set(SCENARIOS)


def test_schema_rejects_what_teams_would_reject(
    schema_validator: jsonschema.protocols.Validator,
) -> None:
    # The validator must have teeth: an unknown property and a missing required one both fail.
    card = SCENARIOS["help"]()
    card["body"][0]["colour"] = "Good"
    assert schema_errors(schema_validator, card)
    card = SCENARIOS["help"]()
    del card["body"][0]["text"]
    assert schema_errors(schema_validator, card)
