"""Emulated external OIDC issuers: what a Kubernetes cluster (its service account issuer), a CI
system or any other identity provider is to Entra ID in workload identity federation.

Each issuer has its own signing key, OpenID metadata and JWKS, served by the login site under
``/external/{name}`` (so its URL is ``{login origin}/external/{name}``, and that is its ``iss``).
:meth:`ExternalIssuer.mint` makes the token the platform would mount in the workload, e.g. a
projected service account token with ``sub`` ``system:serviceaccount:{namespace}:{name}`` and
``aud`` ``api://AzureADTokenExchange`` (what Azure Workload Identity requests).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from emulator.identity.common import b64url
from emulator.identity.keys import SigningKey, new_key, sign

__all__ = ["ExternalIssuer", "add_external_issuer_routes"]


class ExternalIssuer:
    """One external OIDC issuer. ``origin()`` gives the login site's origin once it serves."""

    def __init__(self, name: str, origin: Callable[[], str]) -> None:
        if not name or "/" in name:
            raise ValueError(f"an issuer name is one path segment: {name!r}")
        self.name = name
        self._origin = origin
        self.key: SigningKey = new_key()
        self.minted = 0

    @property
    def url(self) -> str:
        """The issuer URL (``iss`` of its tokens, ``issuer`` of its metadata)."""
        return f"{self._origin()}/external/{self.name}"

    def mint(
        self,
        *,
        subject: str,
        audience: str = "api://AzureADTokenExchange",
        lifetime_s: int = 3600,
        now_s: float | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """A token from this issuer. Times are wall-clock epoch seconds: Entra judges federated
        assertions by its own clock, as the emulator does."""
        now = int(time.time() if now_s is None else now_s)
        claims: dict[str, Any] = {
            "iss": self.url,
            "sub": subject,
            "aud": [audience],
            "iat": now,
            "nbf": now,
            "exp": now + lifetime_s,
            "jti": b64url(secrets.token_bytes(12)),
            **(extra or {}),
        }
        self.minted += 1
        return sign(claims, self.key)

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "jwks_uri": f"{self.url}/keys",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.jwk()]}


def add_external_issuer_routes(
    app: web.Application, issuers: Callable[[], Mapping[str, ExternalIssuer]]
) -> None:
    """``GET /external/{name}/.well-known/openid-configuration`` and ``/external/{name}/keys``."""

    def find(request: web.Request) -> ExternalIssuer:
        issuer = issuers().get(request.match_info["name"])
        if issuer is None:
            raise web.HTTPNotFound(text='{"error":"not found"}', content_type="application/json")
        return issuer

    async def metadata(request: web.Request) -> web.Response:
        return web.json_response(find(request).metadata())

    async def keys(request: web.Request) -> web.Response:
        return web.json_response(find(request).jwks())

    app.router.add_get("/external/{name}/.well-known/openid-configuration", metadata)
    app.router.add_get("/external/{name}/keys", keys)
