"""Neutralize untrusted text before it goes into an Adaptive Card TextBlock.

TextBlock text is markdown (bold, italic, lists, links) in every Adaptive Card host, and Teams'
clients also turn bare URLs and e-mail addresses into links. Display names, review names and
justifications come from the directory or from users, so a guest named ``[Verify](https://evil)``
or ``www.evil.example`` must not become a link, and ``**URGENT**`` must not become bold.

Why not backslash escapes: markdown escapes are processed inconsistently across hosts (Teams on
Android and iOS have shown the backslashes literally while desktop hid them), and a backslash does
not stop autolinking at all. So the text is made inert instead: every character that markdown,
HTML or the autolinker could act on is replaced by a visually close Unicode character that no
parser treats as syntax. The text reads the same; it is not meant to be copied back as an address.

The rules, all applied to every piece of untrusted text wherever it lands in the card:

- control characters, line breaks and tabs become spaces and runs of spaces collapse, so user
  text is always one line (no line-start syntax can appear inside it: lists, headings, quotes,
  indented code); bidirectional overrides (used to spoof text direction) are removed;
- ``\\ * _ [ ] ( ) ` ~ < > &`` are replaced everywhere (``<``, ``>`` and ``&`` because some
  renderers switch to HTML when they see them);
- at the start of the text, ``#``, ``-``, ``+`` and ``=`` and a number followed by ``.`` are
  replaced, since the text may be placed at the start of a line;
- every ``:`` and every ``.`` (or ideographic full stop) that is followed by something other than
  a space is replaced, which breaks ``scheme://``, ``www.host`` and ``user@host.tld`` autolinks,
  also when invisible characters are slipped in around the dot (``evil\u200b.com``);
- text longer than ``max_chars`` is cut and ends with ``…``, which bounds the card size.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["escape_text"]

_REPLACEMENTS = {
    "\\": "\u29f5",  # REVERSE SOLIDUS OPERATOR
    "*": "\u2217",  # ASTERISK OPERATOR
    "_": "\u02cd",  # MODIFIER LETTER LOW MACRON
    "[": "\u2045",  # LEFT SQUARE BRACKET WITH QUILL
    "]": "\u2046",  # RIGHT SQUARE BRACKET WITH QUILL
    "(": "\u2768",  # MEDIUM LEFT PARENTHESIS ORNAMENT
    ")": "\u2769",  # MEDIUM RIGHT PARENTHESIS ORNAMENT
    "`": "\u02cb",  # MODIFIER LETTER GRAVE ACCENT
    "~": "\u223c",  # TILDE OPERATOR
    "<": "\u2039",  # SINGLE LEFT-POINTING ANGLE QUOTATION MARK
    ">": "\u203a",  # SINGLE RIGHT-POINTING ANGLE QUOTATION MARK
    "&": "\uff06",  # FULLWIDTH AMPERSAND
}
_TRANSLATION = str.maketrans(_REPLACEMENTS)

_LEADING_REPLACEMENTS = {
    "#": "\uff03",  # FULLWIDTH NUMBER SIGN
    "-": "\u2010",  # HYPHEN
    "+": "\uff0b",  # FULLWIDTH PLUS SIGN
    "=": "\uff1d",  # FULLWIDTH EQUALS SIGN
}

_ONE_DOT_LEADER = "\u2024"
_RATIO = "\u2236"
_ELLIPSIS = "\u2026"

# Explicit direction marks and overrides/isolates: invisible, and able to reorder what is shown.
_BIDI_CONTROLS = frozenset(
    "\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)

_WHITESPACE_RUN = re.compile(r"\s+")
_NUMBERED_LIST_START = re.compile(r"^(\d+)\.")
# A dot (ASCII, ideographic, fullwidth or halfwidth ideographic) with anything but a space after
# it: every host name has one. A sentence's final dot is left alone.
_DOMAIN_DOT = re.compile(r"[.\u3002\uff0e\uff61](?=\S)")
# Likewise a colon that is not followed by a space: "https:", "mailto:", "javascript:".
_SCHEME_COLON = re.compile(r":(?=\S)")


def _normalize(value: str) -> str:
    if value.isascii() and value.isprintable():
        # No control, separator or direction character can be in it: only spaces to collapse.
        return _WHITESPACE_RUN.sub(" ", value).strip()
    chars: list[str] = []
    for char in value:
        if char in _BIDI_CONTROLS:
            continue
        category = unicodedata.category(char)
        # Cc covers \n, \r, \t and the C0/C1 controls; Zl/Zp are Unicode line/paragraph separators.
        chars.append(" " if category in ("Cc", "Zl", "Zp") else char)
    return _WHITESPACE_RUN.sub(" ", "".join(chars)).strip()


def escape_text(value: str, *, max_chars: int | None = None) -> str:
    """Return ``value`` as inert, single-line TextBlock text (see the module docstring).

    :param max_chars: cut longer text to this many characters, the last being ``…``.
    """
    text = _normalize(value)
    if max_chars is not None and len(text) > max_chars:
        text = text[: max(max_chars - 1, 0)].rstrip() + _ELLIPSIS
    text = text.translate(_TRANSLATION)
    text = _SCHEME_COLON.sub(_RATIO, text)
    text = _DOMAIN_DOT.sub(_ONE_DOT_LEADER, text)
    text = _NUMBERED_LIST_START.sub(lambda match: match.group(1) + _ONE_DOT_LEADER, text)
    if text and text[0] in _LEADING_REPLACEMENTS:
        text = _LEADING_REPLACEMENTS[text[0]] + text[1:]
    return text
