"""The edge's OpenAPI document, made to say exactly what the edge accepts and answers.

Litestar derives the body schemas itself and loses what msgspec enforces (item lengths, unknown
fields rejected) and cannot say "a liked movie or a query is required"; schemathesis `--checks
all` then finds schema-valid requests the edge rejects. So the wire types' schemas are taken from
msgspec, the validator that runs, and the rule `prepare` checks is added by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
from litestar import Litestar
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, Reference, Schema

from edge.wire import (
    ErrorResponse,
    MovieDetail,
    MoviesResponse,
    RecommendRequest,
    RecommendResponse,
    SearchResponse,
)

_REF = "#/components/schemas/{name}"
# A liked movie (by title or id) or a query that is not blank; any field alone may be omitted.
_NEEDS_LIKED_OR_QUERY = [
    {"required": ["liked"], "properties": {"liked": {"minItems": 1}}},
    {"required": ["liked_ids"], "properties": {"liked_ids": {"minItems": 1}}},
    {"required": ["query"], "properties": {"query": {"pattern": r"\S"}}},
]

# With "stream": true, each event (OpenAPI 3.1: the schema describes one event); its data is JSON.
_SSE_EVENT = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"enum": ["candidates", "token", "error", "recommendations", "done"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
}


_ERROR_MEANINGS = {
    400: "Malformed JSON or no body",
    401: "Missing or wrong API key",
    404: "Not found (no such movie, or no movie passes the filters)",
    413: "Body too large",
    422: "Invalid fields, or only unknown liked titles",
    429: "Rate limited; see Retry-After",
    503: "No index loaded yet",
}


def error_specs(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the errors an operation answers, all in the edge's error shape (so a
    generated client parses them), besides the 401, 429 and 503 every /v1 operation may give."""
    return {
        status: ResponseSpec(
            data_container=ErrorResponse,
            description=_ERROR_MEANINGS[status],
            generate_examples=False,
        )
        for status in sorted({*statuses, 401, 429, 503})
    }


@dataclass
class _Verbatim(Schema):
    """A schema written out as given (msgspec's JSON Schema), not rebuilt field by field."""

    raw: dict[str, Any] = field(default_factory=dict)

    def to_schema(self) -> dict[str, Any]:
        return self.raw


def fix_schema(app: Litestar) -> None:
    """Replace the wire types' schemas in `app`'s OpenAPI document with msgspec's own."""
    openapi = app.openapi_schema
    types = [RecommendRequest, RecommendResponse, SearchResponse, MoviesResponse, MovieDetail]
    (_, components) = msgspec.json.schema_components([*types, ErrorResponse], ref_template=_REF)
    components["RecommendRequest"]["anyOf"] = _NEEDS_LIKED_OR_QUERY
    schemas = openapi.components.schemas
    for name, schema in components.items():
        schemas[name] = _Verbatim(raw=schema)
    ok = openapi.paths["/v1/recommend"].post.responses["200"]  # type: ignore[union-attr,index]
    ok.content = {  # type: ignore[union-attr]
        "application/json": OpenAPIMediaType(
            schema=Reference(_REF.format(name="RecommendResponse"))
        ),
        "text/event-stream": OpenAPIMediaType(schema=_Verbatim(raw=_SSE_EVENT)),
    }
