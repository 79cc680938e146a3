"""Chat commands, read in every language the cards speak and routed by a table.

A command is ``pending``, ``snooze`` or ``help``; each language adds its own word for it from the
string tables (``offen``, ``reporter``, ``ヘルプ``, …, see ``S.COMMAND_*``), and the English words
always work. The words of every language are accepted from everyone (a reviewer reading Teams in
English may still type ``hilfe``); the tests keep them from colliding. Matching ignores case,
accents and width (``spater`` is ``später``), and a command written without a space before its
argument in Japanese or Chinese (``再通知明日``) is still found.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from cards.strings import S, tables

__all__ = ["Command", "ParsedCommand", "normalize_command", "parse_command", "snooze_argument"]

_MENTION = re.compile(r"<at>.*?</at>", re.IGNORECASE)
# Punctuation a chat client or a habit may put around a command ("/help", "help!", "?").
_TRIM = "/!.?¿¡。！？、,，:;"


class Command(StrEnum):
    """What a chat message asks for."""

    PENDING = "pending"
    SNOOZE = "snooze"
    HELP = "help"
    UNKNOWN = ""


@dataclass(frozen=True)
class ParsedCommand:
    """A command and what was typed after it (``snooze 4h`` → ``SNOOZE``, ``["4h"]``)."""

    command: Command
    arguments: tuple[str, ...] = ()


# English words the bot has always understood besides the table words.
_ENGLISH_SYNONYMS = {"reviews": Command.PENDING, "hi": Command.HELP, "hello": Command.HELP}
_COMMAND_KEYS = {
    S.COMMAND_PENDING: Command.PENDING,
    S.COMMAND_SNOOZE: Command.SNOOZE,
    S.COMMAND_HELP: Command.HELP,
}


def _fold(text: str) -> str:
    """Case, accents and full-width forms folded away: what two spellings of a word share."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@functools.cache
def _vocabulary() -> tuple[dict[tuple[str, ...], Command], frozenset[str]]:
    """Command phrases (as folded word tuples) of every language, and every word for "tomorrow"."""
    phrases: dict[tuple[str, ...], Command] = {
        (word,): command for word, command in _ENGLISH_SYNONYMS.items()
    }
    tomorrow: set[str] = set()
    for table in tables().values():
        for key, command in _COMMAND_KEYS.items():
            entry = table.get(key)
            if isinstance(entry, str):
                phrases[tuple(_fold(entry).split())] = command
        word = table.get(S.COMMAND_TOMORROW)
        if isinstance(word, str):
            tomorrow.add(_fold(word))
    return phrases, frozenset(tomorrow)


def parse_command(text: str | None) -> ParsedCommand:
    """The command of a chat message: mentions stripped, longest known phrase first."""
    cleaned = _MENTION.sub(" ", text or "")
    words = [w for w in (word.strip(_TRIM) for word in _fold(cleaned).split()) if w]
    if not words:
        return ParsedCommand(Command.UNKNOWN)
    phrases, _ = _vocabulary()
    for length in (2, 1):
        command = phrases.get(tuple(words[:length]))
        if command is not None and len(words) >= length:
            return ParsedCommand(command, tuple(words[length:]))
    # Japanese and Chinese need no space between a command and its argument.
    first = words[0]
    for phrase, command in phrases.items():
        word = phrase[0]
        if len(phrase) == 1 and not word.isascii() and first.startswith(word) and first != word:
            return ParsedCommand(command, (first[len(word) :], *words[1:]))
    return ParsedCommand(Command.UNKNOWN, tuple(words))


def snooze_argument(arguments: tuple[str, ...]) -> str:
    """The argument of ``snooze`` as the schedule reads it: "tomorrow" in any language (and
    nothing at all) is ``tomorrow``; anything else ("4h") is passed on as typed."""
    if not arguments:
        return "tomorrow"
    _, tomorrow = _vocabulary()
    first = arguments[0]
    return "tomorrow" if _fold(first) in tomorrow else first


def normalize_command(text: str | None) -> str:
    """The command of a chat message as its English word ("" when there is none)."""
    return parse_command(text).command.value
