"""Every translation has every key English has, with the same placeholders and the plural forms its
language needs; command words and help texts agree.

These are the tests that fail when a key is added to ``cards/strings.py`` (English) without its
translations: the failure names the language and the keys.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

import pytest
from babel import Locale

from cards.i18n import TABLE_LOCALES
from cards.strings import EN, S, tables
from cards.translations import TRANSLATIONS

Entry = str | Mapping[str, str]
LANGUAGES = sorted(TRANSLATIONS)

# Translations that may read exactly like the English: the word is the same in that language.
SAME_AS_ENGLISH = {
    ("fr", S.APPLICATION),
    ("it", S.GUEST),  # Microsoft's Italian says "utente guest"
    ("nl", S.COMMAND_HELP),  # "help" is Dutch too
    ("nl", S.REVIEW_RESOURCE),  # "Resource" in Microsoft's Dutch
}


def _fields(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}


def _specs(template: str) -> set[str]:
    """Format specs and conversions ("{n:02d}", "{x!r}"): translations must not need any."""
    return {
        f"{field}:{spec}!{conversion}"
        for _, field, spec, conversion in string.Formatter().parse(template)
        if field is not None and (spec or conversion)
    }


def _templates(entry: Entry) -> list[str]:
    return [entry] if isinstance(entry, str) else list(entry.values())


def _placeholders(entry: Entry) -> set[str]:
    return set().union(*(_fields(template) for template in _templates(entry)))


def test_the_tables_are_the_locales_the_cards_announce() -> None:
    assert set(tables()) == set(TABLE_LOCALES)
    assert set(TRANSLATIONS) == set(TABLE_LOCALES) - {"en"}


def test_english_defines_every_key() -> None:
    missing = sorted(key.value for key in S if key not in EN)
    assert not missing, f"English lacks {missing}"
    unknown = sorted(str(key) for key in EN if key not in {k.value for k in S})
    assert not unknown, f"English defines keys S does not know: {unknown}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_english_key_is_translated(language: str) -> None:
    table = TRANSLATIONS[language]
    missing = sorted(str(key) for key in EN if key not in table)
    assert not missing, f"{language} has no translation for {missing}"
    extra = sorted(str(key) for key in table if key not in EN)
    assert not extra, f"{language} translates keys English does not have: {extra}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_placeholders_match_english(language: str) -> None:
    table = TRANSLATIONS[language]
    wrong: list[str] = []
    for key, english in EN.items():
        translated = table.get(key)
        if translated is None:
            continue  # reported by test_every_english_key_is_translated
        if isinstance(english, str) != isinstance(translated, str):
            wrong.append(f"{key}: plural in one table, plain in the other")
            continue
        expected = _placeholders(english)
        if isinstance(translated, str):
            if _fields(translated) != expected:
                wrong.append(f"{key}: {sorted(_fields(translated))} != {sorted(expected)}")
            continue
        # The 'other' form carries every placeholder; a form for one number may leave {n} out
        # ("einen Tag"), never add one.
        if _fields(translated["other"]) != expected:
            wrong.append(
                f"{key}/other: {sorted(_fields(translated['other']))} != {sorted(expected)}"
            )
        for category, template in translated.items():
            if not _fields(template) <= expected:
                wrong.append(f"{key}/{category}: {sorted(_fields(template) - expected)} unknown")
    assert not wrong, f"{language}: " + "; ".join(wrong)


@pytest.mark.parametrize("language", ["en", *LANGUAGES])
def test_plural_forms_are_the_languages_own(language: str) -> None:
    table = tables()[language]
    categories = set(Locale.parse(language.replace("-", "_")).plural_form.tags) | {"other"}
    wrong: list[str] = []
    for key, entry in table.items():
        if isinstance(entry, str):
            continue
        if "other" not in entry:
            wrong.append(f"{key}: no 'other' form")
        if not set(entry) <= categories:
            wrong.append(f"{key}: {sorted(set(entry) - categories)} is not a category here")
        if "one" in categories and "one" not in entry:
            wrong.append(f"{key}: no 'one' form")
    assert not wrong, f"{language}: " + "; ".join(wrong)


@pytest.mark.parametrize("language", ["en", *LANGUAGES])
def test_templates_are_well_formed(language: str) -> None:
    wrong: list[str] = []
    for key, entry in tables()[language].items():
        for template in _templates(entry):
            if template.count("**") % 2:
                wrong.append(f"{key}: unbalanced ** in {template!r}")
            if _specs(template):
                wrong.append(f"{key}: format specs {sorted(_specs(template))}")
            if template != template.strip():
                wrong.append(f"{key}: leading or trailing space")
            if not template:
                wrong.append(f"{key}: empty")
    assert not wrong, f"{language}: " + "; ".join(wrong)


@pytest.mark.parametrize("language", LANGUAGES)
def test_nothing_is_left_in_english(language: str) -> None:
    """A translation identical to the English is a string someone forgot, unless it has no words
    (only placeholders and punctuation) or the word is the same in that language."""
    table = TRANSLATIONS[language]
    untranslated = sorted(
        str(key)
        for key, english in EN.items()
        if table.get(key) == english
        and (language, key) not in SAME_AS_ENGLISH
        and any(
            character.isalpha()
            for template in _templates(english)
            for character in string.Formatter().vformat(
                template, (), {field: "" for field in _fields(template)}
            )
        )
    )
    assert not untranslated, f"{language} leaves {untranslated} in English"


def _word(language: str, key: S) -> str:
    entry = tables()[language][key]
    assert isinstance(entry, str)
    return entry


@pytest.mark.parametrize("key", [S.COMMAND_PENDING, S.COMMAND_HELP, S.COMMAND_SNOOZE])
def test_command_words_do_not_collide(key: S) -> None:
    """A word means the same command in every language, so one parser serves everyone."""
    others = [k for k in (S.COMMAND_PENDING, S.COMMAND_HELP, S.COMMAND_SNOOZE) if k != key]
    mine = {_word(language, key).casefold() for language in tables()}
    theirs = {_word(language, k).casefold() for language in tables() for k in others}
    assert not mine & theirs


@pytest.mark.parametrize("language", ["en", *LANGUAGES])
def test_help_texts_name_the_languages_own_command_words(language: str) -> None:
    pending, help_word, snooze, tomorrow = (
        _word(language, key)
        for key in (S.COMMAND_PENDING, S.COMMAND_HELP, S.COMMAND_SNOOZE, S.COMMAND_TOMORROW)
    )
    chat_help = _word(language, S.CHAT_HELP)
    assert f"**{pending}**" in chat_help
    assert f"**{help_word}**" in chat_help
    assert f"**{snooze} 4h**" in chat_help
    assert f"**{snooze} {tomorrow}**" in chat_help
    assert f"**{snooze} {tomorrow}**" in _word(language, S.CHAT_SNOOZE_USAGE)
    assert _word(language, S.HELP_PENDING).startswith(f"**{pending}**")
    assert _word(language, S.HELP_SNOOZE).startswith(f"**{snooze}**")
    assert _word(language, S.HELP_HELP).startswith(f"**{help_word}**")
    assert f"**{help_word}**" in _word(language, S.CHAT_WELCOME)
    assert f"**{help_word}**" in _word(language, S.MSG_UNKNOWN_COMMAND)
