"""OData query helpers: ``$top``/``$select``/``$filter``/... as a typed value, and safe literals."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

__all__ = ["Query", "encode_query", "odata_eq", "odata_string"]


def odata_string(value: str) -> str:
    """An OData string literal: single quotes, embedded quotes doubled (``O'Neil`` → ``'O''Neil'``)."""
    return "'" + value.replace("'", "''") + "'"


def odata_eq(field: str, value: str) -> str:
    """``field eq 'value'`` with the value quoted safely."""
    return f"{field} eq {odata_string(value)}"


@dataclass(frozen=True)
class Query:
    """The OData system query options a Graph list call can take.

    ``Query(top=500, select=("id", "decision"), filter=odata_eq("decision", "NotReviewed"))``
    """

    top: int | None = None
    skip: int | None = None
    select: Iterable[str] | None = None
    filter: str | None = None
    expand: str | None = None
    orderby: str | None = None
    count: bool | None = None

    def params(self) -> dict[str, str]:
        """The options as query parameters (``{"$top": "500", ...}``)."""
        params: dict[str, str] = {}
        if self.top is not None:
            if self.top <= 0:
                raise ValueError("$top must be positive")
            params["$top"] = str(self.top)
        if self.skip is not None:
            params["$skip"] = str(self.skip)
        if self.select is not None:
            params["$select"] = ",".join(self.select)
        if self.filter:
            params["$filter"] = self.filter
        if self.expand:
            params["$expand"] = self.expand
        if self.orderby:
            params["$orderby"] = self.orderby
        if self.count is not None:
            params["$count"] = "true" if self.count else "false"
        return params


def encode_query(params: Mapping[str, str]) -> str:
    """Percent-encode query parameters the way Graph's own samples do.

    Spaces become ``%20`` (not ``+``, which some OData parsers keep literally) and the
    characters OData syntax needs (``$ ' ( ) , / :``) stay readable.
    """
    safe = "$'(),/:@"
    return "&".join(f"{quote(k, safe=safe)}={quote(v, safe=safe)}" for k, v in params.items())
