"""Text that came from people, shown exactly: ``RichTextBlock``s of ``TextRun``s.

A ``TextBlock``'s text is markdown in every Adaptive Card host (and Teams links bare addresses in
it); a ``TextRun``'s text is never parsed (Adaptive Card schema, since 1.2). So any line holding
text that came from people — names, UPNs, review and resource names, reasons — is a
``RichTextBlock``: the template's own words, with its ``**bold**`` turned into ``weight: Bolder``,
and each value from people a run of its own, character for character. Copying an address or a
reason from a card gives back what was typed; ``[x](https://evil)`` stays those characters.

Lines with nothing from people stay ``TextBlock``s (:func:`cards.layout.text`).

The only change made to text from people is a cut to a length bound (:func:`user_text`), far
above what the directory allows for those fields, and, for text of unusual characters, a bound on
its JSON size: a card must fit Teams' message limit whatever a name holds.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from microsoft_teams.cards import (
    CardElement,
    RichTextBlock,
    Spacing,
    TextColor,
    TextRun,
    TextSize,
    TextWeight,
)

__all__ = [
    "Run",
    "UserText",
    "join_runs",
    "plain",
    "rich",
    "runs_from",
    "user_text",
]

_ELLIPSIS = "\u2026"


class UserText(str):
    """A value that came from people: inserted as its own run, never parsed for markup."""

    __slots__ = ()


def _json_bytes(value: str) -> int:
    return len(json.dumps(value)) - 2


def user_text(value: str | None, *, max_chars: int, max_json_bytes: int | None = None) -> UserText:
    """``value`` as :class:`UserText`, cut (ending in ``…``) only beyond ``max_chars`` characters
    or, when given, ``max_json_bytes`` bytes of ASCII-escaped JSON (an emoji costs 12)."""
    text = value or ""
    if len(text) > max_chars:
        text = text[: max(max_chars - 1, 0)] + _ELLIPSIS
    if max_json_bytes is not None and _json_bytes(text) > max_json_bytes:
        # Cut character by character from an estimate: the bound is rarely reached at all.
        keep = min(len(text), max_json_bytes // 12)
        while keep < len(text) and _json_bytes(text[: keep + 1]) + 3 <= max_json_bytes:
            keep += 1
        text = text[:keep] + _ELLIPSIS
    return UserText(text)


@dataclass(frozen=True, slots=True)
class Run:
    """One run of a line: its text, and whether it is bold (``**…**`` in the template)."""

    text: str
    bold: bool = False


def _markup(text: str, bold: bool) -> tuple[list[Run], bool]:
    """Trusted template text: ``**`` toggles bold, everything else is shown as it is."""
    runs: list[Run] = []
    parts = text.split("**")
    for index, part in enumerate(parts):
        if index:
            bold = not bold
        if part:
            runs.append(Run(part, bold))
    return runs, bold


def runs_from(template: str, params: Mapping[str, object] | None = None) -> list[Run]:
    """The runs of ``template`` (a trusted ``str.format`` template) with ``params`` put in.

    :class:`UserText` values become runs of their own, exactly; other values are trusted text
    (numbers, dates, other templates' output) and may carry ``**`` like the template.
    """
    runs: list[Run] = []
    bold = False
    for literal, field, spec, conversion in string.Formatter().parse(template):
        if literal:
            parsed, bold = _markup(literal, bold)
            runs.extend(parsed)
        if field is None:
            continue
        value: Any = (params or {})[field]
        if isinstance(value, UserText):
            if value:
                runs.append(Run(str(value), bold))
            continue
        if isinstance(value, list) and all(isinstance(run, Run) for run in value):
            runs.extend(Run(run.text, run.bold or bold) for run in value)
            continue
        if conversion == "r":
            value = repr(value)
        elif conversion == "s":
            value = str(value)
        parsed, _ = _markup(format(value, spec or ""), bold)
        runs.extend(parsed)
    return _merge(runs)


def plain(text: str) -> list[Run]:
    """Trusted text (may hold ``**``) as runs."""
    return runs_from(text.replace("{", "{{").replace("}", "}}"))


def join_runs(parts: Iterable[Sequence[Run]], separator: str) -> list[Run]:
    """``parts`` one after the other with ``separator`` (trusted text) between them."""
    joined: list[Run] = []
    for index, part in enumerate(parts):
        if index:
            joined.extend(plain(separator))
        joined.extend(part)
    return _merge(joined)


def _merge(runs: list[Run]) -> list[Run]:
    merged: list[Run] = []
    for run in runs:
        if merged and merged[-1].bold == run.bold:
            merged[-1] = Run(merged[-1].text + run.text, run.bold)
        else:
            merged.append(run)
    return merged


def rich(
    runs: Sequence[Run],
    *,
    size: TextSize | None = None,
    weight: TextWeight | None = None,
    color: TextColor | None = None,
    subtle: bool | None = None,
    spacing: Spacing | None = None,
    separator: bool | None = None,
) -> RichTextBlock:
    """A ``RichTextBlock`` of ``runs``; the style applies to each run (a block has none)."""
    inlines: list[CardElement] = [
        TextRun(
            text=run.text,
            size=size,
            weight="Bolder" if run.bold else weight,
            color=color,
            is_subtle=subtle,
        )
        for run in runs
    ]
    return RichTextBlock(inlines=inlines, spacing=spacing, separator=separator)
