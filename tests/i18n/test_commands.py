"""Chat commands in every language: the English words keep working, each language adds its own."""

from __future__ import annotations

import pytest

from bot.notify.schedule import parse_snooze
from bot.teams.commands import Command, parse_command, snooze_argument
from cards.strings import S, tables

LANGUAGES = sorted(tables())


def _word(language: str, key: S) -> str:
    entry = tables()[language][key]
    assert isinstance(entry, str)
    return entry


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(
    ("key", "command"),
    [
        (S.COMMAND_PENDING, Command.PENDING),
        (S.COMMAND_HELP, Command.HELP),
        (S.COMMAND_SNOOZE, Command.SNOOZE),
    ],
)
def test_every_languages_command_words_are_understood(
    language: str, key: S, command: Command
) -> None:
    word = _word(language, key)
    assert parse_command(word).command is command
    assert parse_command(f"<at>Access Review Bot</at> {word.upper()}!").command is command


@pytest.mark.parametrize("language", LANGUAGES)
def test_snooze_tomorrow_in_every_language_means_tomorrow(language: str) -> None:
    text = f"{_word(language, S.COMMAND_SNOOZE)} {_word(language, S.COMMAND_TOMORROW)}"
    parsed = parse_command(text)
    assert parsed.command is Command.SNOOZE
    assert snooze_argument(parsed.arguments) == "tomorrow"
    assert parse_snooze(snooze_argument(parsed.arguments)) == "tomorrow"
    four_hours = parse_command(f"{_word(language, S.COMMAND_SNOOZE)} 4h")
    assert parse_snooze(snooze_argument(four_hours.arguments)).total_seconds() == 4 * 3600


@pytest.mark.parametrize(
    ("text", "command", "arguments"),
    [
        ("pending", Command.PENDING, ()),
        ("reviews", Command.PENDING, ()),
        ("Hello", Command.HELP, ()),
        ("/help", Command.HELP, ()),
        ("snooze", Command.SNOOZE, ()),
        ("SPÄTER", Command.UNKNOWN, ("spater",)),  # not a command word in any table
        ("pausieren MORGEN", Command.SNOOZE, ("morgen",)),
        ("Pausieren  4h", Command.SNOOZE, ("4h",)),
        ("en attente", Command.PENDING, ()),
        ("En Attente ?", Command.PENDING, ()),
        ("in sospeso", Command.PENDING, ()),
        ("reporter demain", Command.SNOOZE, ("demain",)),
        ("posponer manana", Command.SNOOZE, ("manana",)),  # without the accent
        ("再通知明日", Command.SNOOZE, ("明日",)),  # no space in Japanese
        ("推迟明天", Command.SNOOZE, ("明天",)),
        ("ヘルプ", Command.HELP, ()),
        ("ＨＥＬＰ", Command.HELP, ()),  # full-width letters
        ("", Command.UNKNOWN, ()),
        ("   ", Command.UNKNOWN, ()),
        (None, Command.UNKNOWN, ()),
        ("approve everything", Command.UNKNOWN, ("approve", "everything")),
    ],
)
def test_commands_are_read_loosely(
    text: str | None, command: Command, arguments: tuple[str, ...]
) -> None:
    parsed = parse_command(text)
    assert parsed.command is command
    assert parsed.arguments == arguments


def test_an_argument_that_is_not_tomorrow_is_passed_on() -> None:
    assert snooze_argument(()) == "tomorrow"
    assert snooze_argument(("mañana",)) == "tomorrow"
    assert snooze_argument(("manana",)) == "tomorrow"
    assert snooze_argument(("yesterday",)) == "yesterday"
