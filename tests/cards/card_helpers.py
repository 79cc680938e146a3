"""Helpers for walking rendered cards in tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema


def schema_errors(validator: jsonschema.protocols.Validator, card: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(str(part) for part in error.absolute_path)}: {error.message[:300]}"
        for error in validator.iter_errors(card)
    ]


def walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in a card, depth first (the card, elements, actions, refresh, …)."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def of_type(card: dict[str, Any], type_name: str) -> list[dict[str, Any]]:
    return [node for node in walk(card) if node.get("type") == type_name]


def texts(card: dict[str, Any]) -> list[str]:
    """The text of every TextBlock and RichTextBlock (its runs joined, as copying gives it), in
    card order."""
    return [
        node["text"] if node["type"] == "TextBlock" else "".join(r["text"] for r in node["inlines"])
        for node in walk(card)
        if node.get("type") in ("TextBlock", "RichTextBlock")
    ]


def markdown_texts(card: dict[str, Any]) -> list[str]:
    """The text of the TextBlocks only: what hosts parse as markdown."""
    return [node["text"] for node in of_type(card, "TextBlock")]


def body_actions(card: dict[str, Any]) -> list[dict[str, Any]]:
    """Every clickable action (excluding the refresh action)."""
    refresh_action = card.get("refresh", {}).get("action")
    return [
        node
        for node in walk(card)
        if str(node.get("type", "")).startswith("Action.") and node is not refresh_action
    ]


def executes(card: dict[str, Any], verb: str) -> list[dict[str, Any]]:
    return [action for action in body_actions(card) if action.get("verb") == verb]
