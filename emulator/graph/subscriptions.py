"""Emulated Graph change notifications: ``POST /subscriptions``, which refuses access reviews
(no access review resource supports change notifications).
"""

from __future__ import annotations

from emulator.graph.core import GraphBase, GraphFailure, GraphRequest, GraphResponse, bad_request

__all__ = ["SubscriptionRoutes"]


class SubscriptionRoutes(GraphBase):
    """``POST /subscriptions``."""

    def _register_subscription_routes(self) -> None:
        self._add("POST", "/subscriptions", self._create_subscription)

    async def _create_subscription(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        body = request.json()
        resource = str(body.get("resource", "")) if isinstance(body, dict) else ""
        if "accessreview" in resource.lower():
            # Graph's change notifications support no access review resource (reference §3).
            raise bad_request(
                f"Operation: Create; Exception: [Status Code: BadRequest; Reason: "
                f"The resource '{resource}' is not supported for change "
                "notifications.]",
                "ExtensionError",
            )
        # Emulator choice: the bot needs no other subscriptions, so none are emulated.
        raise GraphFailure(
            501, "NotImplemented", "Change notifications are not emulated for this resource."
        )
