"""OpenID metadata documents (the tenant's and the Bot Framework channel's) and the small
threaded server that serves the channel's to a bot sharing the emulator's event loop."""

from __future__ import annotations

import http.server
import json
import logging
import threading
from typing import Any

__all__ = ["StaticJsonServer", "tenant_openid_configuration"]

log = logging.getLogger(__name__)


def tenant_openid_configuration(
    *, origin: str, tenant: str, v2: bool, v1_issuer: str
) -> dict[str, Any]:
    """The tenant's ``/.well-known/openid-configuration`` with endpoints on ``origin``."""
    base = f"{origin}/{tenant}"
    suffix = "/v2.0" if v2 else ""
    return {
        "token_endpoint": f"{base}/oauth2{suffix}/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{base}/discovery{suffix}/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{base}/v2.0" if v2 else v1_issuer,
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{origin}/oidc/userinfo",
        "authorization_endpoint": f"{base}/oauth2{suffix}/authorize",
        "device_authorization_endpoint": f"{base}/oauth2{suffix}/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{base}/oauth2{suffix}/logout",
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "acr",
            "nonce",
            "preferred_username",
            "name",
            "tid",
            "ver",
            "at_hash",
            "c_hash",
            "email",
        ],
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
    }


class StaticJsonServer:
    """A tiny threaded http server answering fixed JSON documents by path (query ignored)."""

    def __init__(self) -> None:
        self.documents: dict[str, Any] = {}
        documents = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                document = documents.documents.get(path)
                body = json.dumps(
                    document if document is not None else {"error": "not found"}
                ).encode()
                self.send_response(200 if document is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("channel metadata server: " + format, *args)  # noqa: G003

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="channel-metadata", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
