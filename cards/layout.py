"""Building blocks shared by the cards: text blocks, the card envelope, size accounting, packing."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

from microsoft_teams.cards import (
    Action,
    AdaptiveCard,
    CardElement,
    Container,
    ContainerStyle,
    RefreshDefinition,
    Spacing,
    TextBlock,
    TextColor,
    TextSize,
    TextWeight,
)

from .models import NoticeKind
from .rich import Run, rich

__all__ = [
    "CARD_BUDGET_BYTES",
    "CARD_VERSION",
    "MAX_CARD_BYTES",
    "CardTooLargeError",
    "build_card",
    "card_size_bytes",
    "dump",
    "iter_pages",
    "notice_container",
    "pack",
    "text",
]

CARD_VERSION: Final = "1.5"
"""Teams needs 1.5 for Universal Actions and refresh to work reliably (teams-platform.md §1.1)."""

MAX_CARD_BYTES = 28 * 1024
"""Teams' message size limit (~28 KB); it covers the whole activity, not only the card."""

CARD_BUDGET_BYTES = 24 * 1024
"""What one card may take, leaving ~4 KB of the limit for the activity envelope around it."""


class CardTooLargeError(ValueError):
    """A rendered card exceeded :data:`CARD_BUDGET_BYTES` (a bug: paging and truncation prevent it)."""


def dump(model: CardElement | Action | AdaptiveCard | RefreshDefinition) -> dict[str, Any]:
    """The camelCase JSON object of a card model, without unset fields."""
    result: dict[str, Any] = model.model_dump(by_alias=True, exclude_none=True)
    return result


def card_size_bytes(card: Mapping[str, Any] | Sequence[Any]) -> int:
    """Serialized size of a card (or part of one) in bytes.

    Counted with ``json.dumps`` defaults (ASCII-escaped, spaces after separators), the largest of
    the usual encodings, so the figure is an upper bound for whatever serializer sends the card.
    """
    return len(json.dumps(card).encode("utf-8"))


def text(
    value: str,
    *,
    size: TextSize | None = None,
    weight: TextWeight | None = None,
    color: TextColor | None = None,
    subtle: bool | None = None,
    spacing: Spacing | None = None,
    separator: bool | None = None,
) -> TextBlock:
    """A wrapping TextBlock, for trusted text only: its text is markdown to every host. A line
    with text from people is a :func:`cards.rich.rich` block.

    Text keeps the default colour (or ``Accent``): each of Teams' other text colours falls below
    WCAG's 4.5:1 in one of its themes (``Good`` 2.2:1 and ``Warning`` 1.5:1 on the light theme,
    ``Attention`` 3.2:1 on the dark one; tests/browser/test_card_themes.py measures them), so
    urgency and outcomes are said in words and bold instead.
    """
    return TextBlock(
        text=value,
        wrap=True,
        size=size,
        weight=weight,
        color=color,
        is_subtle=subtle,
        spacing=spacing,
        separator=separator,
    )


_NOTICE_STYLES: dict[NoticeKind, ContainerStyle] = {
    NoticeKind.INFO: "emphasis",
    NoticeKind.SUCCESS: "good",
    NoticeKind.WARNING: "warning",
    NoticeKind.ERROR: "attention",
}


def notice_container(kind: NoticeKind, message: Sequence[Run]) -> Container:
    """A banner in the tone of ``kind``."""
    return Container(style=_NOTICE_STYLES[kind], items=[rich(message)])


def build_card(
    *,
    body: Sequence[CardElement | dict[str, Any]],
    actions: Sequence[Action],
    refresh: RefreshDefinition,
    lang: str,
    fallback_text: str,
    check_size: bool = True,
) -> dict[str, Any]:
    """The card envelope around ``body``; checks the size budget unless ``check_size`` is false.

    ``body`` may mix models and already dumped element dicts (the review card measures its item
    blocks as dicts while paging and reuses them). ``check_size=False`` is for measuring the fixed
    part of a card while paging.
    """
    card = dump(
        AdaptiveCard(
            version=CARD_VERSION,
            lang=lang,
            fallback_text=fallback_text,
            refresh=refresh,
            actions=list(actions) or None,
        )
    )
    card["body"] = [part if isinstance(part, dict) else dump(part) for part in body]
    if check_size and (size := card_size_bytes(card)) > CARD_BUDGET_BYTES:
        raise CardTooLargeError(f"card is {size} bytes, budget {CARD_BUDGET_BYTES}")
    return card


def iter_pages(sizes: Iterable[int], *, budget_bytes: int, max_per_page: int) -> Iterator[range]:
    """Cut a sequence of blocks into pages, in order and lazily.

    A page takes blocks while their sizes (plus one separator byte each) fit ``budget_bytes`` and it
    holds fewer than ``max_per_page``; a block larger than the budget gets a page of its own (the
    final size check then reports it). A page is yielded as soon as the first block that does not
    fit has been measured, so a caller that wants page ``n`` measures little more than ``n`` pages.
    Always yields at least one (possibly empty) page.
    """
    start = 0
    used = 0
    index = -1
    for index, size in enumerate(sizes):
        cost = size + 1
        count = index - start
        if count > 0 and (count >= max_per_page or used + cost > budget_bytes):
            yield range(start, index)
            start, used = index, 0
        used += cost
    yield range(start, index + 1)


def pack(sizes: Iterable[int], *, budget_bytes: int, max_per_page: int) -> list[range]:
    """All pages of :func:`iter_pages`."""
    return list(iter_pages(sizes, budget_bytes=budget_bytes, max_per_page=max_per_page))
