"""Reading Adaptive Cards in tests: their texts and their Action.Execute buttons."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def _nodes(node: object) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes(value)


def card_text(card: dict[str, Any]) -> str:
    """Every text and button title of the card, one per line."""
    return "\n".join(
        str(node[key])
        for node in _nodes(card)
        for key in ("text", "title")
        if isinstance(node.get(key), str)
    )


def execute_actions(card: dict[str, Any], verb: str) -> list[dict[str, Any]]:
    """The card's Action.Execute buttons with ``verb``."""
    return [n for n in _nodes(card) if n.get("type") == "Action.Execute" and n.get("verb") == verb]


def decide_item_ids(card: dict[str, Any]) -> set[str]:
    """Item ids named by the card's decide buttons."""
    return {a["data"]["itemId"] for a in execute_actions(card, "decide")}
