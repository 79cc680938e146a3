"""Bounded JSON: what a stranger's body may cost before anything parses it.

Python's ``json`` parser recurses once per nesting level, so a body of a few thousand ``[``
raises ``RecursionError`` (not a ``ValueError``), and a body that parses just under the
interpreter's limit hands botbuilder's and msrest's recursive walkers a structure they cannot
finish. :func:`load_json` refuses nesting deeper than ``max_depth`` by scanning the bytes first;
the scan is a bounded number of C-level passes over the bytes, so a body at the size cap
(``MAX_BODY_BYTES``) costs a few milliseconds at most to refuse, never a stack overflow.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["MAX_JSON_DEPTH", "JsonRefused", "json_too_deep", "load_json"]

#: Deepest nesting accepted in a request body. A Teams activity is about 6 levels deep and an
#: ``Action.Execute`` click's data adds 2-3; 64 leaves room for any real client.
MAX_JSON_DEPTH = 64

# Openers become "(", closers ")", everything else is dropped.
_BRACKETS = bytes.maketrans(b"[{]}", b"(())")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class JsonRefused(ValueError):
    """The body is not JSON this service will parse; ``str(exc)`` is the reason for the caller."""


def json_too_deep(raw: bytes, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """True when ``raw`` may nest arrays/objects deeper than ``max_depth`` (strings excluded).

    Exact for well-formed JSON; for malformed input it may overestimate (which only turns one
    refusal into another). Every step is a C-level pass over the bytes.
    """
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return False  # the common case: too few openers to nest that deep
    # Strings out: once escaped backslashes and escaped quotes are gone, quotes alternate
    # between opening and closing a string, so every other piece lies outside all strings.
    unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(unescaped.split(b'"')[::2])
    brackets = outside.translate(_BRACKETS, _NOT_BRACKETS)
    # Each pass removes every innermost matched pair, so it lowers every matched nesting by one.
    # A run of openers in what is left nests each in the one before: deep enough on its own.
    # Checked before each pass, it makes a long pure nest (one pair removed per pass) cheap.
    too_deep_run = b"(" * (max_depth + 1)
    passes = 0
    while b"()" in brackets:
        if passes == max_depth or too_deep_run in brackets:
            return True  # a pair is still there after max_depth passes: nested deeper than that
        brackets = brackets.replace(b"()", b"")
        passes += 1
    # Left: unmatched closers, then unmatched openers, which enclosed everything after them.
    unmatched_openers = len(brackets.lstrip(b")"))
    return unmatched_openers + passes > max_depth


def _no_constant(name: str) -> Any:
    # NaN and Infinity are not JSON (RFC 8259 §6) and PostgreSQL's jsonb refuses them later.
    raise ValueError(f"{name} is not a JSON number")


# An escaped UTF-16 surrogate. In a pair it is one character; alone, json.loads still makes it a
# str that no UTF-8 encoder (the store, a log line, an outgoing request) can write.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _encodable(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def load_json(raw: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse ``raw`` (UTF-8 JSON) once it is known to be shallow enough.

    Raises :class:`JsonRefused` for too deep a nesting, invalid UTF-8, invalid JSON (NaN and
    Infinity included), or a string holding half of a surrogate pair.
    """
    try:
        # UTF-8 only (RFC 8259 §8.1): json.loads would also guess UTF-16/32 from bytes, whose
        # code units can hide a quote or a bracket from the byte scan.
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise JsonRefused("body is not valid JSON (UTF-8)") from None
    if json_too_deep(raw, max_depth):
        raise JsonRefused(f"JSON nested deeper than {max_depth} levels")
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:  # pragma: no cover - the scan refuses these first
        raise JsonRefused(f"JSON nested deeper than {max_depth} levels") from None
    except ValueError:  # JSONDecodeError, NaN/Infinity, an integer of more than 4,300 digits
        raise JsonRefused("body is not valid JSON") from None
    if _SURROGATE_ESCAPE.search(raw) and not _encodable(value):
        raise JsonRefused("JSON has a lone surrogate (a \\uD800-\\uDFFF escape not in a pair)")
    return value
