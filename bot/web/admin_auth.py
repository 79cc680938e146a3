"""Who may use the admin routes: reading (the status page, audit exports) and changing state
(remind-now, the demo clock).

Reading takes the admin token (``ADMIN_TOKEN``) as a bearer token or as the password of HTTP basic
auth, so that a person can open the status page in a browser. Changing state takes it only as a
bearer token: a browser that has cached basic credentials sends them with any request another site
makes it send (a cross-site form posting ``?now=true``), while it never adds an ``Authorization:
Bearer`` header by itself. And a request a browser marks as made by another site
(``Sec-Fetch-Site``, else an ``Origin`` other than this host) never changes state — also in demo
mode, which has no token at all. Command-line tools (curl, ``python app.py``) send neither header.
"""

from __future__ import annotations

import hmac
from base64 import b64decode
from enum import Enum
from urllib.parse import urlsplit

from aiohttp import web

from bot.web.keys import SETTINGS

__all__ = ["Refusal", "may_change", "may_read"]

# Sec-Fetch-Site values of a request the page itself (or the user, typing the address) made.
_OWN_SITE = frozenset({"same-origin", "none"})


class Refusal(Enum):
    """Why a state-changing admin request is refused, with the status and reason to answer."""

    TOKEN = (401, "admin token required (Authorization: Bearer ADMIN_TOKEN)")
    CROSS_SITE = (403, "refused: a browser request made by another site cannot change state")

    def response(self) -> web.Response:
        status, reason = self.value
        return web.json_response({"error": reason}, status=status)


def _bearer(request: web.Request, token: str) -> bool:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    # aiohttp keeps header bytes that are not UTF-8 as surrogate escapes: compare them as the
    # bytes they were (a plain encode() would raise on them: a 500).
    return scheme.lower() == "bearer" and hmac.compare_digest(
        value.strip().encode("utf-8", "surrogateescape"), token.encode()
    )


def may_read(request: web.Request) -> bool:
    """The admin token as a bearer token or a basic-auth password; anyone in demo mode."""
    settings = request.app[SETTINGS]
    if settings.demo_mode:
        return True
    token = settings.admin_token
    if not token:
        return False
    if _bearer(request, token):
        return True
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        _user, _, password = b64decode(value.strip()).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    return hmac.compare_digest(password.encode(), token.encode())


def _cross_site(request: web.Request) -> bool:
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site.strip().lower() not in _OWN_SITE
    # Browsers without Fetch Metadata still send Origin with a POST.
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    try:
        netloc = urlsplit(origin.strip()).netloc.lower()
    except ValueError:  # not a URL at all (e.g. an unclosed IPv6 bracket): not this site
        return True
    return origin.strip().lower() == "null" or netloc != request.host.lower()


def may_change(request: web.Request) -> Refusal | None:
    """None when the request may change state; otherwise why not."""
    if _cross_site(request):
        return Refusal.CROSS_SITE
    settings = request.app[SETTINGS]
    if settings.demo_mode:
        return None
    if not settings.admin_token or not _bearer(request, settings.admin_token):
        return Refusal.TOKEN
    return None
