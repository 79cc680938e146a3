"""One error hierarchy for everything that talks to Microsoft Graph and Entra ID.

Graph answers are mapped once, in :func:`error_from_response`, into :class:`GraphError` subclasses;
callers branch on the class and on ``code``, never on message text. Token acquisition failures
(msal) are a separate family rooted at :class:`TokenAcquisitionError`, because the bot answers them
differently (a Teams ``loginRequest``, a consent prompt) from a failing Graph call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "ConsentRequired",
    "GraphBadRequest",
    "GraphConflict",
    "GraphError",
    "GraphForbidden",
    "GraphNotFound",
    "GraphServerError",
    "GraphThrottled",
    "GraphUnauthorized",
    "GraphUnavailable",
    "InteractionRequired",
    "InvalidClient",
    "NoCachedToken",
    "SsoTokenExpired",
    "SsoTokenInvalid",
    "TokenAcquisitionError",
    "TokenServiceUnavailable",
    "error_class_for_status",
    "error_from_parts",
]


class GraphError(Exception):
    """A Graph call failed.

    ``status`` is the HTTP status (0 when no answer arrived), ``code`` the Graph ``error.code``
    (``""`` when the body had none), ``request_id`` Graph's ``request-id`` (for support tickets),
    ``client_request_id`` ours, ``retry_after_s`` the server's ``Retry-After`` if it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        code: str = "",
        request_id: str | None = None,
        client_request_id: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.client_request_id = client_request_id
        self.retry_after_s = retry_after_s

    def __str__(self) -> str:
        parts = [f"{self.status} {self.code}".strip(), self.message]
        if self.request_id:
            parts.append(f"request-id {self.request_id}")
        return " - ".join(p for p in parts if p)


class GraphBadRequest(GraphError):
    """4xx other than 401/403/404/429: the request itself is wrong; never retried."""


class GraphConflict(GraphBadRequest):
    """409: the target is in a state that forbids the change (or it already exists)."""


class GraphUnauthorized(GraphError):
    """401 that survived one token refresh."""


class GraphForbidden(GraphError):
    """403: the token lacks the permission, or the caller is not allowed (e.g. not a reviewer)."""


class GraphNotFound(GraphError):
    """404: the object does not exist (or is not visible to this caller)."""


class GraphThrottled(GraphError):
    """429 still answered after the retry budget (attempts or deadline) was used up."""


class GraphServerError(GraphError):
    """5xx still answered after the retry budget was used up."""


class GraphUnavailable(GraphError):
    """No usable answer: connection failures, timeouts, or the call's deadline passed."""


_STATUS_CLASSES: dict[int, type[GraphError]] = {
    401: GraphUnauthorized,
    403: GraphForbidden,
    404: GraphNotFound,
    409: GraphConflict,
    429: GraphThrottled,
}


def error_class_for_status(status: int) -> type[GraphError]:
    """The :class:`GraphError` subclass for an HTTP status (>= 400)."""
    if status in _STATUS_CLASSES:
        return _STATUS_CLASSES[status]
    if status >= 500:
        return GraphServerError
    if status >= 400:
        return GraphBadRequest
    return GraphError


def error_from_parts(
    *,
    status: int,
    body: Any,
    headers: Mapping[str, str],
    client_request_id: str | None,
    retry_after_s: float | None,
) -> GraphError:
    """Map one Graph answer (a whole response or a ``$batch`` item) to its error.

    ``body`` is the decoded JSON (or raw text / bytes); Graph's envelope is
    ``{"error": {"code", "message", "innerError": {"request-id", "date", ...}}}``.
    """
    code = ""
    message = ""
    request_id: str | None = None
    if isinstance(body, bytes | str):
        try:
            body = json.loads(body) if body else None
        except ValueError:
            message = body[:200] if isinstance(body, str) else ""
            body = None
    if isinstance(body, Mapping):
        err = body.get("error")
        if isinstance(err, Mapping):
            code = str(err.get("code") or "")
            message = str(err.get("message") or "")
            inner = err.get("innerError") or err.get("innererror")
            if isinstance(inner, Mapping):
                rid = inner.get("request-id")
                request_id = str(rid) if rid else None
    lowered = {k.lower(): v for k, v in headers.items()}
    request_id = lowered.get("request-id") or request_id
    cls = error_class_for_status(status)
    return cls(
        message or f"HTTP {status}",
        status=status,
        code=code,
        request_id=request_id,
        client_request_id=client_request_id or lowered.get("client-request-id"),
        retry_after_s=retry_after_s,
    )


class TokenAcquisitionError(Exception):
    """Entra ID did not give us a token.

    ``error`` / ``error_codes`` / ``suberror`` come from the token endpoint's answer (e.g.
    ``invalid_grant``, ``[65001]``, ``consent_required``); ``claims`` is the claims challenge Entra
    sent with ``interaction_required``; ``correlation_id`` is what Microsoft support asks for.
    The endpoint's ``error_description`` is kept in ``description`` for logs; never show it to
    users.
    """

    def __init__(
        self,
        message: str,
        *,
        error: str = "",
        error_codes: tuple[int, ...] = (),
        suberror: str = "",
        description: str = "",
        claims: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error = error
        self.error_codes = error_codes
        self.suberror = suberror
        self.description = description
        self.claims = claims
        self.correlation_id = correlation_id


class NoCachedToken(TokenAcquisitionError):
    """No usable delegated token is cached for this user and no SSO token was given.

    The bot answers with a Teams ``loginRequest`` so the client sends an SSO token.
    """


class ConsentRequired(TokenAcquisitionError):
    """The user or an admin has not consented to the delegated Graph permission (AADSTS65001)."""


class InteractionRequired(TokenAcquisitionError):
    """Entra wants the user in front of a browser (MFA, Conditional Access, a revoked grant)."""


class SsoTokenExpired(TokenAcquisitionError):
    """The Teams SSO token presented for on-behalf-of has expired (AADSTS500133): get a fresh one."""


class SsoTokenInvalid(TokenAcquisitionError):
    """The SSO token is not usable as an OBO assertion (wrong audience, bad signature, other user)."""


class InvalidClient(TokenAcquisitionError):
    """The bot's own credentials were refused (wrong secret/certificate, unknown client id)."""


class TokenServiceUnavailable(TokenAcquisitionError):
    """The token endpoint could not be reached or answered with a server error."""
