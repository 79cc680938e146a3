"""A cheap first look at the ``Authorization`` header, before botbuilder validates the token.

botbuilder's channel validation (``JwtTokenExtractor``) turns several kinds of bad token into
unexpected exceptions instead of a refusal: an ``alg`` it does not allow or a key endorsed for
another channel raise a bare ``Exception``, an unknown or missing ``kid`` an ``IndexError``, a
header nested a few thousand levels deep a ``RecursionError``, a bearer with two spaces an
``AttributeError``. Each would be an HTTP 500 with a stack trace for anyone who can reach the
endpoint. :func:`inspect_bearer` refuses all of that by shape alone — no key lookup, no
signature check, no JSON parse of unbounded input — so what reaches botbuilder is a compact
JWS whose header and claims have the types it expects. The signature, issuer, audience,
lifetime, endorsements and ``serviceurl`` are still botbuilder's to check (reference §4.1).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from bot.bounded_json import JsonRefused, load_json

__all__ = ["ALLOWED_ALGORITHMS", "MAX_TOKEN_CHARS", "BearerRefused", "inspect_bearer"]

#: The channel's algorithms (botbuilder's ``AuthenticationConstants.ALLOWED_SIGNING_ALGORITHMS``).
ALLOWED_ALGORITHMS = frozenset({"RS256", "RS384", "RS512"})
#: Longest token looked at. Channel tokens are about 1 KB and Entra's a few KB; aiohttp caps a
#: whole header line at 8,190 bytes anyway.
MAX_TOKEN_CHARS = 8000
_MAX_HEADER_CHARS = 1024  # the JOSE header: alg, kid, x5t, typ
_MAX_KID_CHARS = 256
_MAX_JSON_DEPTH = 8  # claims botbuilder reads are flat; Entra adds a few shallow lists

# Compact serialization (RFC 7515 §7.1): three base64url parts; the signature is not empty.
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
# Claims botbuilder reads, with the JSON types it can compare without raising.
_STRING_CLAIMS = ("iss", "aud", "serviceurl", "appid", "azp", "ver", "tid")
_NUMERIC_CLAIMS = ("exp", "nbf", "iat")


class BearerRefused(ValueError):
    """The header cannot carry a valid channel token; ``str(exc)`` is a short reason."""


def inspect_bearer(header: str) -> str:
    """The header as botbuilder expects it (``Bearer <jws>``), or :class:`BearerRefused`."""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise BearerRefused("Authorization must be 'Bearer <token>'")
    token = token.strip()
    if len(token) > MAX_TOKEN_CHARS:
        raise BearerRefused("bearer token too long")
    if not _COMPACT.fullmatch(token):
        raise BearerRefused("bearer token is not a signed JWT")
    encoded_header, encoded_claims, _signature = token.split(".")
    if len(encoded_header) > _MAX_HEADER_CHARS:
        raise BearerRefused("JWT header too long")
    jose = _segment(encoded_header, "header")
    algorithm = jose.get("alg")
    if not isinstance(algorithm, str) or algorithm not in ALLOWED_ALGORITHMS:
        raise BearerRefused("JWT alg not allowed")
    kid = jose.get("kid")
    if not isinstance(kid, str) or not 0 < len(kid) <= _MAX_KID_CHARS:
        raise BearerRefused("JWT has no usable kid")
    claims = _segment(encoded_claims, "claims")
    for name in _STRING_CLAIMS:
        if name in claims and not isinstance(claims[name], str):
            raise BearerRefused(f"JWT claim {name} is not a string")
    for name in _NUMERIC_CLAIMS:
        if name in claims and not _is_time(claims[name]):
            raise BearerRefused(f"JWT claim {name} is not a time")
    return f"Bearer {token}"


def _segment(encoded: str, what: str) -> dict[str, Any]:
    """A base64url JSON object of at most a few levels, or :class:`BearerRefused`."""
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        raise BearerRefused(f"JWT {what} is not base64url") from None
    try:
        value = load_json(raw, max_depth=_MAX_JSON_DEPTH)
    except JsonRefused:
        raise BearerRefused(f"JWT {what} is not a small JSON object") from None
    if not isinstance(value, dict):
        raise BearerRefused(f"JWT {what} is not a JSON object")
    return value


def _is_time(value: Any) -> bool:
    """Seconds since the epoch that PyJWT can turn into an int and compare without raising."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return abs(value) <= 2**53
