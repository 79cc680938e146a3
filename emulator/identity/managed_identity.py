"""The managed identity endpoint of an Azure host, in its two documented shapes.

* **IMDS** (VMs, AKS nodes, anything that reaches ``169.254.169.254``; msal also honours
  ``AZURE_POD_IDENTITY_AUTHORITY_HOST``):
  ``GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=…&client_id=…`` with the
  header ``Metadata: true``. Without that header (or with another value) IMDS answers 400
  ``bad_request_102`` "Required metadata header not specified" (Entra docs, "How to use managed
  identities on a VM to acquire an access token", error handling). ``expires_in``/``expires_on``
  are strings, as in the documented sample.
* **App Service / Container Apps** (``IDENTITY_ENDPOINT`` + ``IDENTITY_HEADER``):
  ``GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=…&client_id=…`` with
  ``X-IDENTITY-HEADER: {IDENTITY_HEADER}``; the answer carries ``expires_on`` (epoch seconds,
  a string) and ``client_id``. Errors are ``{"statusCode", "message"}`` (the shape msal 1.39
  reads in ``_obtain_token_on_app_service``; the docs show none).

Emulator choices where the docs are silent: a request that names no identity asks for the
system-assigned one, which the emulated host does not have (400 "Identity not found", as IMDS
answers for an unknown identity); a request carrying ``X-Forwarded-For`` is refused (IMDS is
documented as not to be used behind a proxy, so the harsher answer); tokens are minted by the
tenant (``iss`` ``{login origin}/{tenant}/v2.0``, ``sub``/``oid`` the identity's principal id)
and dated by the wall clock, which msal compares ``expires_on`` with.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

__all__ = ["IMDS_PATH", "MSI_PATH", "ManagedIdentity", "ManagedIdentityEndpoint"]

log = logging.getLogger(__name__)

IMDS_PATH = "/metadata/identity/oauth2/token"
#: App Service's path (its IDENTITY_ENDPOINT looks like http://localhost:42356/msi/token).
MSI_PATH = "/msi/token"
# The oldest api-version each shape documents for tokens ("2018-02-01 or greater" for IMDS).
_IMDS_MIN_VERSION = "2018-02-01"
_APP_SERVICE_MIN_VERSION = "2019-08-01"
_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _version_at_least(version: str, minimum: str) -> bool:
    # ISO dates compare correctly as strings.
    return bool(_VERSION.match(version)) and version >= minimum


@dataclass(frozen=True)
class ManagedIdentity:
    """A user-assigned managed identity: its client (application) id, its principal (object) id
    and its Azure resource id."""

    client_id: str
    principal_id: str
    name: str = "bot-identity"

    @property
    def resource_id(self) -> str:
        return (
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/emulator/"
            f"providers/Microsoft.ManagedIdentity/userAssignedIdentities/{self.name}"
        )


#: ``mint(identity, resource) -> (token, expires_on_epoch_s)``.
Minter = Callable[[ManagedIdentity, str], tuple[str, int]]


class ManagedIdentityEndpoint:
    """The endpoint of one emulated host with user-assigned identities attached to it.

    ``identity_header`` is the secret of the App Service shape (the platform rotates it; tests
    read it from here and set ``IDENTITY_HEADER``). ``resources`` are the resources tokens can be
    had for; others get ``invalid_resource``.
    """

    def __init__(
        self,
        *,
        mint: Minter,
        resources: Iterable[str],
        identities: Iterable[ManagedIdentity] = (),
    ) -> None:
        self._mint = mint
        self.resources = set(resources)
        self.identities: list[ManagedIdentity] = list(identities)
        self.identity_header = str(uuid.uuid4())
        self.requests: list[dict[str, Any]] = []  # what each request asked for (no tokens)

    def attach(self, identity: ManagedIdentity) -> None:
        """Assign a user-assigned identity to the host."""
        if identity not in self.identities:
            self.identities.append(identity)

    def detach(self, identity: ManagedIdentity) -> None:
        self.identities = [i for i in self.identities if i != identity]

    def rotate_identity_header(self) -> str:
        self.identity_header = secrets.token_hex(16)
        return self.identity_header

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(IMDS_PATH, self._imds)
        app.router.add_get(MSI_PATH, self._app_service)
        return app

    # -- shared -------------------------------------------------------------------------------

    def _select(self, query: Any, id_names: tuple[str, ...]) -> ManagedIdentity | str | None:
        """The identity the query names; ``None`` for none found; an error text for a bad query."""
        named = [(name, query[name]) for name in id_names if query.get(name)]
        if len(named) > 1:
            return "only one of " + ", ".join(id_names) + " may be given"
        if not named:
            return None  # the system-assigned identity: this host has none
        name, value = named[0]
        for identity in self.identities:
            if name in ("client_id", "clientid") and identity.client_id.lower() == value.lower():
                return identity
            if (
                name in ("object_id", "principal_id")
                and identity.principal_id.lower() == value.lower()
            ):
                return identity
            if (
                name in ("msi_res_id", "mi_res_id")
                and identity.resource_id.lower() == value.lower()
            ):
                return identity
        return None

    def _record(self, shape: str, request: web.Request, status: int) -> None:
        self.requests.append(
            {
                "shape": shape,
                "status": status,
                "resource": request.query.get("resource"),
                "client_id": request.query.get("client_id"),
                "metadata": request.headers.get("Metadata"),
            }
        )

    # -- IMDS -----------------------------------------------------------------------------------

    def _imds_error(
        self, request: web.Request, status: int, error: str, description: str
    ) -> web.Response:
        self._record("imds", request, status)
        log.info("IMDS refused a token request: %s (%s)", error, description)
        return web.json_response({"error": error, "error_description": description}, status=status)

    async def _imds(self, request: web.Request) -> web.Response:
        if request.headers.get("Metadata") != "true":
            return self._imds_error(
                request, 400, "bad_request_102", "Required metadata header not specified"
            )
        if "X-Forwarded-For" in request.headers:
            return self._imds_error(
                request, 400, "invalid_request", "Request is not allowed through a proxy"
            )
        query = request.query
        if not _version_at_least(query.get("api-version", ""), _IMDS_MIN_VERSION):
            return self._imds_error(
                request,
                400,
                "invalid_request",
                "Missing or unsupported api-version (use 2018-02-01 or later)",
            )
        resource = query.get("resource", "")
        if not resource:
            return self._imds_error(
                request, 400, "invalid_request", "Required query variable 'resource' is missing"
            )
        selected = self._select(query, ("client_id", "object_id", "msi_res_id"))
        if isinstance(selected, str):
            return self._imds_error(request, 400, "invalid_request", selected)
        if selected is None:
            return self._imds_error(request, 400, "invalid_request", "Identity not found")
        if resource.rstrip("/") not in self.resources:
            return self._imds_error(
                request,
                400,
                "invalid_resource",
                f"AADSTS500011: The resource principal named {resource} was not found in the "
                "tenant.",
            )
        token, expires_on = self._mint(selected, resource.rstrip("/"))
        now = int(time.time())
        self._record("imds", request, 200)
        return web.json_response(
            {
                "access_token": token,
                "refresh_token": "",
                "expires_in": str(expires_on - now),
                "expires_on": str(expires_on),
                "not_before": str(now),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": selected.client_id,
            }
        )

    # -- App Service / Container Apps -------------------------------------------------------------

    def _app_service_error(self, request: web.Request, status: int, message: str) -> web.Response:
        self._record("app_service", request, status)
        log.info("App Service identity endpoint refused a token request: %s", message)
        return web.json_response({"statusCode": status, "message": message}, status=status)

    async def _app_service(self, request: web.Request) -> web.Response:
        presented = request.headers.get("X-IDENTITY-HEADER")
        if presented is None:
            return self._app_service_error(request, 400, "Missing X-IDENTITY-HEADER header")
        if not secrets.compare_digest(presented.encode(), self.identity_header.encode()):
            return self._app_service_error(request, 401, "Invalid X-IDENTITY-HEADER value")
        query = request.query
        if not _version_at_least(query.get("api-version", ""), _APP_SERVICE_MIN_VERSION):
            return self._app_service_error(
                request, 400, "api-version 2019-08-01 or later is required"
            )
        resource = query.get("resource", "")
        if not resource:
            return self._app_service_error(request, 400, "resource is required")
        selected = self._select(query, ("client_id", "principal_id", "object_id", "mi_res_id"))
        if isinstance(selected, str):
            return self._app_service_error(request, 400, selected)
        if selected is None:
            return self._app_service_error(request, 400, "Identity not found")
        if resource.rstrip("/") not in self.resources:
            return self._app_service_error(
                request, 400, f"The resource principal named {resource} was not found"
            )
        token, expires_on = self._mint(selected, resource.rstrip("/"))
        self._record("app_service", request, 200)
        return web.json_response(
            {
                "access_token": token,
                "expires_on": str(expires_on),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": selected.client_id,
            }
        )
