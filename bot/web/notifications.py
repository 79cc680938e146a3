"""``POST /api/notifications``: another system asks for an immediate poll of one review.

Graph has no change notifications for access reviews, so a Logic App, an admin script or an Event
Grid handler can call this after changing a review. The caller proves the shared secret
(``NOTIFICATIONS_SECRET``) either with ``X-Signature: sha256=<hex HMAC-SHA256 of the raw body>``
or with a ``clientState`` field equal to the secret (the Graph subscription convention). The
request only queues a poll; bursts for one review collapse into one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from typing import Any

from aiohttp import web

from bot.reviews.poller import request_targeted_poll
from bot.web.keys import CLOCK, SETTINGS, STORE

__all__ = ["notifications_routes", "signature_for"]

log = logging.getLogger(__name__)

notifications_routes = web.RouteTableDef()

_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_MAX_BODY_BYTES = 16 * 1024


def signature_for(secret: str, body: bytes) -> str:
    """The ``X-Signature`` header value a caller sends for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _error(status: int, reason: str) -> web.Response:
    log.warning("notification refused: %s", reason, extra={"status": status})
    return web.json_response({"error": reason}, status=status)


@notifications_routes.post("/api/notifications")
async def notifications(request: web.Request) -> web.Response:
    secret = request.app[SETTINGS].notifications_secret
    if not secret:
        return _error(403, "notifications are disabled: set NOTIFICATIONS_SECRET to enable them")
    if request.content_length is not None and request.content_length > _MAX_BODY_BYTES:
        return _error(413, "body too large")
    raw = await request.read()
    if len(raw) > _MAX_BODY_BYTES:
        return _error(413, "body too large")
    try:
        body: Any = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None

    signature = request.headers.get("X-Signature", "")
    client_state = body.get("clientState") if isinstance(body, dict) else None
    authenticated = (signature and hmac.compare_digest(signature, signature_for(secret, raw))) or (
        isinstance(client_state, str)
        and hmac.compare_digest(client_state.encode(), secret.encode())
    )
    if not authenticated:
        # Checked before the body's shape, so an unauthenticated caller learns nothing about it.
        return _error(401, "missing or wrong X-Signature / clientState")
    if not isinstance(body, dict):
        return _error(400, "body must be a JSON object")

    definition_id = body.get("definitionId")
    instance_id = body.get("instanceId")
    for name, value in (("definitionId", definition_id), ("instanceId", instance_id)):
        if value is not None and (not isinstance(value, str) or not _ID.match(value)):
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
