"""The translations of the cards' strings, one module per language.

Each module's ``TABLE`` defines every key of the English table (:data:`cards.strings.EN`) with the
same placeholders; ``tests/i18n`` fails, naming the language and the key, when one does not. The
words follow the terms Microsoft's own Entra and Teams interfaces use in each language (sources in
``docs/decisions.md``). Dates, times, relative days and numbers are not here: Babel formats them.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import de, es, fr, it, ja, nl, pt_br, zh_hans

__all__ = ["TRANSLATIONS"]

#: Table by locale tag, as :data:`cards.i18n.TABLE_LOCALES` names them.
TRANSLATIONS: Mapping[str, Mapping[str, str | Mapping[str, str]]] = {
    "de": de.TABLE,
    "fr": fr.TABLE,
    "es": es.TABLE,
    "pt-BR": pt_br.TABLE,
    "it": it.TABLE,
    "nl": nl.TABLE,
    "ja": ja.TABLE,
    "zh-Hans": zh_hans.TABLE,
}
