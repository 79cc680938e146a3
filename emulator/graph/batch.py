"""Emulated Graph JSON batching (``POST /$batch``, ``concepts/json-batching.md``): at most 20
requests, unique ids, ``dependsOn`` (424 when a dependency failed), every item routed, checked
and faulted like a direct call, outer 200 whenever the batch itself parses.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from multidict import CIMultiDict

from emulator.faults import graph_error_body
from emulator.graph.core import (
    MAX_BATCH_REQUESTS,
    GraphBase,
    GraphRequest,
    GraphResponse,
    bad_request,
)

__all__ = ["BatchRoutes"]


class BatchRoutes(GraphBase):
    """``POST /$batch``."""

    def _register_batch_routes(self) -> None:
        # The envelope is not metered: each item is charged on its own (json-batching.md).
        self._add("POST", "/$batch", self._batch, metered=False)

    async def _batch(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        body = request.json()
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            raise bad_request(
                "Invalid batch payload format: 'requests' must be a non-empty array.", "BadRequest"
            )
        if len(requests) > MAX_BATCH_REQUESTS:
            raise bad_request(
                f"The number of batch requests exceeds the limit of {MAX_BATCH_REQUESTS}."
            )
        items: dict[str, dict[str, Any]] = {}
        for raw in requests:
            if (
                not isinstance(raw, dict)
                or not isinstance(raw.get("id"), str)
                or not isinstance(raw.get("method"), str)
                or not isinstance(raw.get("url"), str)
            ):
                raise bad_request(
                    "Invalid batch payload format: every request needs string "
                    "'id', 'method' and 'url'."
                )
            if raw["id"] in items:
                raise bad_request(f"Batch request ids must be unique; '{raw['id']}' is repeated.")
            if urlsplit(raw["url"]).path.lstrip("/").startswith("$batch"):
                raise bad_request("A batch request cannot contain another $batch request.")
            headers = raw.get("headers") or {}
            if not isinstance(headers, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
            ):
                raise bad_request(f"Request '{raw['id']}': 'headers' must be an object of strings.")
            if "body" in raw and not any(k.lower() == "content-type" for k in headers):
                raise bad_request(
                    f"Content-Type header is required for request '{raw['id']}' "
                    "because it has a body."
                )
            items[raw["id"]] = raw
        for raw in items.values():
            depends = raw.get("dependsOn") or []
            if not isinstance(depends, list) or any(
                not isinstance(d, str) or d not in items or d == raw["id"] for d in depends
            ):
                raise bad_request(f"Request '{raw['id']}' depends on an unknown request id.")
        tasks: dict[str, asyncio.Task[dict[str, Any]]] = {}
        charged: list[int] = []

        async def run(raw: dict[str, Any]) -> dict[str, Any]:
            for dependency in raw.get("dependsOn") or []:
                result = await tasks[dependency]
                if not 200 <= result["status"] < 300:
                    return {
                        "id": raw["id"],
                        "status": 424,
                        "headers": {"Content-Type": "application/json"},
                        "body": graph_error_body(
                            "FailedDependency",
                            "The request could not be completed because a "
                            "request it depends on failed.",
                            now=self.tenant.now(),
                            request_id=str(uuid.uuid4()),
                        ),
                    }
            return await self._batch_item(request, raw, charged)

        # Items wait for their dependencies; dependency cycles are impossible to finish, so
        # refuse them up front (a topological walk).
        self._check_acyclic(items)
        for item_id, raw in items.items():
            tasks[item_id] = asyncio.ensure_future(run(raw))
        responses = [await tasks[item_id] for item_id in items]
        headers = {}
        if charged:
            # Emulator choice: the envelope reports what its items cost together.
            headers["x-ms-resource-unit"] = str(sum(charged))
        return GraphResponse(200, {"responses": responses}, headers)

    @staticmethod
    def _check_acyclic(items: Mapping[str, Mapping[str, Any]]) -> None:
        state: dict[str, int] = {}

        def visit(node: str) -> None:
            if state.get(node) == 2:
                return
            if state.get(node) == 1:
                raise bad_request("Batch requests have a dependency cycle.")
            state[node] = 1
            for dep in items[node].get("dependsOn") or []:
                visit(dep)
            state[node] = 2

        for node in items:
            visit(node)

    async def _batch_item(
        self, outer: GraphRequest, raw: Mapping[str, Any], charged: list[int]
    ) -> dict[str, Any]:
        url = raw["url"]
        parts = urlsplit(url if url.startswith("/") else "/" + url)
        # Header names are case-insensitive inside a batch too. Only the bearer token comes from
        # the envelope: other headers (x-ms-throttle-priority, client-request-id) are each
        # request's own (emulator choice: the docs say nothing about inheriting them).
        item_headers = CIMultiDict((str(k), str(v)) for k, v in (raw.get("headers") or {}).items())
        if "Authorization" in outer.headers and "Authorization" not in item_headers:
            item_headers["Authorization"] = outer.headers["Authorization"]
        body_value = raw.get("body")
        body = b"" if body_value is None else json.dumps(body_value).encode()
        inner = GraphRequest(
            method=raw["method"].upper(),
            version=outer.version,
            path=unquote(parts.path),
            query=parse_qsl(parts.query, keep_blank_values=True),
            headers=item_headers,
            body=body,
            origin=outer.origin,
        )
        outcome = await self.faults.evaluate("graph", inner.method, f"/{inner.version}{inner.path}")
        if outcome is not None:
            now = self.tenant.now()
            if outcome.kind == "drop":
                # Emulator choice: a dropped backend connection inside a batch surfaces as a
                # 504 for that item (the outer connection is Graph's front door and stays up).
                status, payload, headers = (
                    504,
                    graph_error_body(
                        "GatewayTimeout",
                        "The gateway timed out.",
                        now=now,
                        request_id=inner.request_id,
                        client_request_id=inner.client_request_id,
                    ),
                    {},
                )
            else:
                status = outcome.status
                payload = outcome.error(
                    "graph",
                    now=now,
                    request_id=inner.request_id,
                    client_request_id=inner.client_request_id,
                )
                headers = outcome.headers()
            self._note(inner.method, inner.version, inner.path, status)
            return {
                "id": raw["id"],
                "status": status,
                "headers": {"Content-Type": "application/json", **headers},
                "body": payload,
            }
        response = await self.dispatch(inner)
        if inner.charge is not None:
            charged.append(inner.charge.units)
        item: dict[str, Any] = {"id": raw["id"], "status": response.status}
        headers = dict(response.headers)
        if response.text is not None:
            # A text answer ($count) is a string body in the batch response.
            headers["Content-Type"] = "text/plain"
            item["headers"] = headers
            item["body"] = response.text
        elif response.body is not None:
            headers["Content-Type"] = "application/json"
            item["headers"] = headers
            item["body"] = response.body
        else:
            item["headers"] = headers
        return item
