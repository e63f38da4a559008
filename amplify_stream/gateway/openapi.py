"""The OpenAPI 3.1 document of every HTTP route, generated from the routes themselves.

Each handler carries an ``Operation`` (``@describe(...)``): a summary, the pydantic models
of its body and of its answers, how it authenticates. ``document(router)`` walks the
app's router, so the paths and methods are the ones registered, and the JSON Schemas come
from the very models the handlers parse and answer with (``models_json_schema``): nothing
is written twice. A route without a description is left out of the document, and a test
fails on it.

No maintained library does this for plain aiohttp handlers: aiohttp-pydantic needs
class-based views, aiohttp-apispec is marshmallow and OpenAPI 3.0, the others read YAML
from docstrings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from importlib.metadata import version
from typing import Any, Literal, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from amplify_stream.events.text_limits import TextFields, TextLimits
from amplify_stream.gateway.schemas import ErrorBody

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
SSE = "text/event-stream"
HTML = "text/html"

_ATTR = "__openapi_operation__"
_REF = "#/components/schemas/{model}"
_PATH_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
_STRING: Mapping[str, Any] = {"type": "string"}

H = TypeVar("H", bound=Callable[..., Any])


class Auth(Enum):
    NONE = "none"
    # ``Authorization: Bearer``.
    BEARER = "bearer"
    # The header, or ``?access_token=`` for what a browser cannot add a header to
    # (EventSource, <audio>, the WebSocket; the socket also takes a subprotocol).
    BEARER_OR_QUERY = "bearer_or_query"


@dataclass(frozen=True, slots=True)
class Reply:
    """One answer of an operation: a JSON model, a stream of Server-Sent Events whose
    ``data`` is one of the ``events`` models, or another media type (``media``, ``schema``)."""

    description: str
    model: type[BaseModel] | None = None
    media: str | None = None
    schema: Mapping[str, Any] = field(default_factory=lambda: dict(_STRING))
    headers: Mapping[str, str] = field(default_factory=dict)
    events: tuple[type[BaseModel], ...] = ()

    def models(self) -> list[type[BaseModel]]:
        return [*([self.model] if self.model else []), *self.events]


def error(description: str, headers: Mapping[str, str] | None = None) -> Reply:
    """An answer with the error body of docs/protocol.md section 3."""
    return Reply(description, ErrorBody, headers=headers or {})


RATE_LIMITED = error(
    "Over a limit (``rate_limited``).",
    {"Retry-After": "Seconds to wait before trying again."},
)
UNAVAILABLE = error(
    "The event bus or the store does not answer: nothing was done, try again "
    "(``unavailable``, retryable)."
)


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    location: Literal["query", "header", "path"]
    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: dict(_STRING))
    required: bool = False


@dataclass(frozen=True, slots=True)
class Operation:
    summary: str
    tag: str
    replies: Mapping[int, Reply]
    description: str | None = None
    body: type[BaseModel] | None = None
    body_media: tuple[str, ...] = (JSON,)
    # The text rules the handler checks on the body beyond its model (their bounds are
    # settings): the document states them with the running service's values.
    body_texts: TextFields | None = None
    auth: Auth = Auth.NONE
    # The model the handler parses the query string with: one parameter per field.
    query: type[BaseModel] | None = None
    params: tuple[Param, ...] = ()

    def all_replies(self) -> dict[int, Reply]:
        """The declared answers plus those every body or token route can give."""
        common: dict[int, Reply] = {}
        if self.body is not None:
            common[400] = error("The body is not valid JSON.")
            common[413] = error("The body is larger than the gateway accepts.")
            common[415] = error(f"The body is not {' or '.join(self.body_media)}.")
        if self.auth is not Auth.NONE:
            common[401] = error("No valid access token.")
        return dict(sorted((common | dict(self.replies)).items()))


def describe(operation: Operation) -> Callable[[H], H]:
    """Attach ``operation`` to a handler (above or below its ``@routes.get(...)``)."""

    def attach(handler: H) -> H:
        setattr(handler, _ATTR, operation)
        return handler

    return attach


def operation_of(handler: object) -> Operation | None:
    found = getattr(handler, _ATTR, None)
    return found if isinstance(found, Operation) else None


def documented_routes(router: web.UrlDispatcher) -> Iterable[tuple[str, str, Operation]]:
    """(method, path, operation) of every described route; HEAD and OPTIONS are aiohttp's
    and CORS's own, not the API's."""
    for route in router.routes():
        if route.method in ("HEAD", "OPTIONS") or route.resource is None:
            continue
        operation = operation_of(route.handler)
        if operation is not None:
            yield route.method, route.resource.canonical, operation


def document(router: web.UrlDispatcher, limits: TextLimits | None = None) -> dict[str, Any]:
    """The document of the described routes; ``limits``: the running service's, stated
    on the bodies an operation checks them on (``body_texts``)."""
    routes = sorted(documented_routes(router), key=lambda r: (r[1], r[0]))
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = []
    for _, _, op in routes:
        if op.body is not None:
            models.append((op.body, "validation"))
        for reply in op.all_replies().values():
            models.extend((model, "serialization") for model in reply.models())
    refs, defs = models_json_schema(list(dict.fromkeys(models)), ref_template=_REF)
    schemas: dict[str, Any] = defs.get("$defs", {})
    if limits is not None:
        for _, _, op in routes:
            if op.body is not None and op.body_texts is not None:
                name = refs[(op.body, "validation")]["$ref"].rsplit("/", 1)[1]
                _state_limits(schemas[name], limits.json_schema(op.body_texts))
    paths: dict[str, dict[str, Any]] = {}
    for method, path, op in routes:
        paths.setdefault(path, {})[method.lower()] = _operation(method, path, op, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "amplify-stream",
            "version": version("amplify-stream"),
            "description": (
                "Stories in, streamed enhancement and narration out. The WebSocket "
                "protocol and the event payloads are in docs/protocol.md and docs/schemas/."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "accessTokenQuery": {"type": "apiKey", "in": "query", "name": "access_token"},
            },
        },
    }


def _state_limits(schema: dict[str, Any], keywords: Mapping[str, Mapping[str, Any]]) -> None:
    """Add each field's keywords to its property (beside an ``anyOf`` with null, they
    apply to the string)."""
    for name, extra in keywords.items():
        schema["properties"][name].update(extra)


# (model, mode) -> its ``$ref``, as ``models_json_schema`` returns them.
Refs = Mapping[tuple[Any, JsonSchemaMode], dict[str, Any]]


def _operation(method: str, path: str, op: Operation, refs: Refs) -> dict[str, Any]:
    result: dict[str, Any] = {
        "operationId": f"{method.lower()}{re.sub(r'[^A-Za-z0-9]+', '_', path).rstrip('_')}",
        "summary": op.summary,
        "tags": [op.tag],
    }
    if op.description:
        result["description"] = op.description
    params = _params(path, (*_query_params(op.query), *op.params))
    if params:
        result["parameters"] = params
    if op.body is not None:
        schema = refs[(op.body, "validation")]
        result["requestBody"] = {
            "required": True,
            "content": {media: {"schema": schema} for media in op.body_media},
        }
    result["responses"] = {
        str(status): _reply(reply, refs) for status, reply in op.all_replies().items()
    }
    if op.auth is Auth.BEARER:
        result["security"] = [{"bearerAuth": []}]
    elif op.auth is Auth.BEARER_OR_QUERY:
        result["security"] = [{"bearerAuth": []}, {"accessTokenQuery": []}]
    return result


def _params(path: str, declared: tuple[Param, ...]) -> list[dict[str, Any]]:
    """Declared parameters, and a plain string for each path parameter not declared."""
    named = {p.name for p in declared if p.location == "path"}
    implied = [
        Param(name, "path", f"The {name.replace('_', ' ')}.")
        for name in _PATH_PARAM.findall(path)
        if name not in named
    ]
    return [
        {
            "name": p.name,
            "in": p.location,
            "description": p.description,
            "required": p.required or p.location == "path",
            "schema": dict(p.schema),
        }
        for p in (*implied, *declared)
    ]


def _sse_event(data: list[dict[str, Any]]) -> dict[str, Any]:
    """One event of the stream, as OpenAPI describes Server-Sent Events (3.1: ``schema``
    is each event; 3.2 names it ``itemSchema``): its fields, ``data`` JSON of one model."""
    return {
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"type": "string", "description": "The event's ``type``."},
            "id": {"type": "string", "description": "The event's ``cursor``."},
            "data": {
                "type": "string",
                "contentMediaType": JSON,
                "contentSchema": {"oneOf": data},
            },
        },
    }


def _query_params(model: type[BaseModel] | None) -> tuple[Param, ...]:
    if model is None:
        return ()
    schema = model.model_json_schema(ref_template=_REF)
    if "$defs" in schema:
        raise ValueError(f"{model.__name__}: a query string holds flat fields only")
    required = set(schema.get("required", ()))
    return tuple(
        Param(name, "query", field.pop("description", ""), field, name in required)
        for name, field in schema["properties"].items()
    )


def _reply(reply: Reply, refs: Refs) -> dict[str, Any]:
    result: dict[str, Any] = {"description": reply.description}
    if reply.model is not None:
        result["content"] = {JSON: {"schema": refs[(reply.model, "serialization")]}}
    elif reply.events:
        result["content"] = {
            SSE: {"schema": _sse_event([refs[(m, "serialization")] for m in reply.events])}
        }
    elif reply.media is not None:
        result["content"] = {reply.media: {"schema": dict(reply.schema)}}
    if reply.headers:
        result["headers"] = {
            name: {"description": text, "schema": dict(_STRING)}
            for name, text in reply.headers.items()
        }
    return result


class DocumentCache:
    """The document's JSON, built on its first request: pydantic takes about 0.1 s to
    generate the schemas, not worth paying at every start (the tests start many apps).
    It states the limits of this service's settings."""

    def __init__(self, limits: TextLimits) -> None:
        self._limits = limits
        self._body: bytes | None = None

    def body(self, router: web.UrlDispatcher) -> bytes:
        if self._body is None:
            self._body = orjson.dumps(document(router, self._limits))
        return self._body
