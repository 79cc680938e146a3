"""``POST /api/notifications``: another system asks for an immediate poll of one review.

Graph has no change notifications for access reviews, so a Logic App, an admin script or an Event
Grid handler can call this after changing a review. The request only queues a poll; bursts for
one review collapse into one.

The caller proves the shared secret (``NOTIFICATIONS_SECRET``) with two headers:

- ``X-Timestamp``: the current time in whole seconds since the Unix epoch;
- ``X-Signature``: ``sha256=`` and the hex HMAC-SHA256, keyed with the secret, of the timestamp,
  a full stop, and the raw body: ``HMAC(secret, f"{timestamp}.".encode() + body)``.

A request is refused (401) when the timestamp is more than five minutes from the bot's clock, in
either direction, and (409) when its signature was already accepted: each signature is remembered
in the store for ten minutes (twice the window, so it outlives every moment it could be valid),
which holds across replicas and restarts. So a captured request cannot be replayed, now or later.

The body's ``clientState`` (the secret itself in the body, the Graph subscription convention) is
no longer accepted: whoever sees one request has the secret, so no timestamp or nonce beside it
could stop them (``docs/decisions.md``). Old-style callers get a 401 saying what to send.

:func:`signed_headers` builds the headers; by hand, with ``curl``::

    body='{"definitionId": "…"}'
    ts=$(date +%s)
    sig=$(printf '%s.%s' "$ts" "$body" | openssl dgst -sha256 -hmac "$SECRET" -r | cut -d' ' -f1)
    curl -H 'Content-Type: application/json' -H "X-Timestamp: $ts" \\
         -H "X-Signature: sha256=$sig" --data-raw "$body" https://bot.example.com/api/notifications
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from typing import Any

from aiohttp import web

from bot.bounded_json import JsonRefused, load_json
from bot.reviews.poller import request_targeted_poll
from bot.web.keys import CLOCK, SETTINGS, STORE
from bot.web.middleware import expect_handler

__all__ = [
    "REPLAY_WINDOW_S",
    "notifications_routes",
    "signature_for",
    "signed_headers",
]

log = logging.getLogger(__name__)

notifications_routes = web.RouteTableDef()

#: How far a request's ``X-Timestamp`` may be from the bot's clock, either way.
REPLAY_WINDOW_S = 300
# A signature accepted at the edge of the window could be replayed until the other edge.
_REMEMBER_S = 2 * REPLAY_WINDOW_S

_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")
_MAX_BODY_BYTES = 16 * 1024
_HOW = "send X-Timestamp (Unix seconds) and X-Signature: sha256=HMAC-SHA256(secret, timestamp + '.' + body)"


def signature_for(secret: str, body: bytes, timestamp: int) -> str:
    """The ``X-Signature`` header value for ``body`` sent with ``X-Timestamp: timestamp``."""
    message = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, *, now_s: float | None = None) -> dict[str, str]:
    """Every header a caller sends with ``body`` (JSON) at ``now_s`` (default: now)."""
    timestamp = int(time.time() if now_s is None else now_s)
    return {
        "Content-Type": "application/json",
        "X-Timestamp": str(timestamp),
        "X-Signature": signature_for(secret, body, timestamp),
    }


def _error(status: int, reason: str) -> web.Response:
    log.warning("notification refused: %s", reason, extra={"status": status})
    return web.json_response({"error": reason}, status=status)


def _client_state_only(raw: bytes) -> bool:
    try:
        body = load_json(raw)
    except JsonRefused:
        return False
    return isinstance(body, dict) and "clientState" in body


async def _authenticate(request: web.Request, secret: str, raw: bytes) -> web.Response | None:
    """None when the request is signed, fresh and new; otherwise the refusal."""
    signature = request.headers.get("X-Signature", "")
    timestamp = request.headers.get("X-Timestamp", "")
    if not signature:
        if _client_state_only(raw):
            return _error(401, f"clientState is no longer accepted: {_HOW}")
        return _error(401, f"missing X-Signature: {_HOW}")
    if not timestamp:
        return _error(
            401, f"missing X-Timestamp (a signature of the body alone is refused): {_HOW}"
        )
    if not _TIMESTAMP.fullmatch(timestamp):
        return _error(401, "X-Timestamp must be whole seconds since the Unix epoch")
    given = _SIGNATURE.fullmatch(signature)
    expected = signature_for(secret, raw, int(timestamp))
    # Compared as bytes: header values may hold any character, compare_digest only ASCII str.
    if given is None or not hmac.compare_digest(given.group(0).lower().encode(), expected.encode()):
        return _error(401, f"wrong X-Signature: {_HOW}")
    now_s = request.app[CLOCK].now().timestamp()
    if abs(now_s - int(timestamp)) > REPLAY_WINDOW_S:
        return _error(
            401,
            f"X-Timestamp is more than {REPLAY_WINDOW_S} s from the bot's clock "
            f"({int(now_s)}): sign each request when you send it",
        )
    first = await request.app[STORE].remember_once(
        key=f"notification-signature|{expected}", ttl_s=_REMEMBER_S
    )
    if not first:
        return _error(409, "this signature was already used: sign each request anew")
    return None


@notifications_routes.post("/api/notifications", expect_handler=expect_handler)
async def notifications(request: web.Request) -> web.Response:
    secret = request.app[SETTINGS].notifications_secret
    if not secret:
        return _error(403, "notifications are disabled: set NOTIFICATIONS_SECRET to enable them")
    if request.content_length is not None and request.content_length > _MAX_BODY_BYTES:
        return _error(413, "body too large")
    raw = await request.read()
    if len(raw) > _MAX_BODY_BYTES:
        return _error(413, "body too large")
    # Authenticated before the body's shape is looked at: a stranger learns nothing about it.
    refused = await _authenticate(request, secret, raw)
    if refused is not None:
        return refused
    try:
        body: Any = load_json(raw)
    except JsonRefused as exc:
        return _error(400, str(exc))
    if not isinstance(body, dict):
        return _error(400, "body must be a JSON object")

    definition_id = body.get("definitionId")
    instance_id = body.get("instanceId")
    for name, value in (("definitionId", definition_id), ("instanceId", instance_id)):
        if value is not None and (not isinstance(value, str) or not _ID.fullmatch(value)):
            return _error(400, f"{name} must be an id (letters, digits, dashes; at most 64)")
    if not definition_id and not instance_id:
        return _error(400, "name the review: definitionId and/or instanceId")
    if instance_id and not definition_id:
        known = await request.app[STORE].get_instance(instance_id=instance_id)
        if known is None:
            return _error(404, "unknown instanceId: send its definitionId too")
        definition_id = known.definition_id

    queued = await request_targeted_poll(
        request.app[STORE],
        clock=request.app[CLOCK],
        definition_id=definition_id,
        instance_id=instance_id,
    )
    log.info(
        "targeted poll requested",
        extra={"definition_id": definition_id, "instance_id": instance_id, "queued": queued},
    )
    return web.json_response({"accepted": True, "queued": queued}, status=202)
