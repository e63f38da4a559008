"""HTTP plumbing shared by the routes: JSON in and out, and errors as the contract says."""

from __future__ import annotations

import logging
import math
from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from amplify_stream.errors import AmplifyError, InvalidMessage, NotReady, UnsupportedMediaType
from amplify_stream.store.errors import StoreUnavailable

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

# aiohttp's own HTTP errors (no route, wrong method, body too big) in the contract's words.
_STATUS_CODES = {
    400: "invalid_message",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "story_too_large",
    415: "unsupported_media_type",
    422: "invalid_story",
    429: "rate_limited",
    503: "unavailable",
}


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


def error_response(exc: AmplifyError) -> web.Response:
    headers = {}
    if exc.retry_after is not None:
        # Rounded up: an early retry would only be refused again.
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    return json_response(exc.body(), exc.http_status, headers)


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors without the submitted values (they may hold a password)."""
    return [
        {"loc": list(err["loc"]), "msg": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


async def read_json(request: web.Request) -> Any:
    if request.content_type != "application/json":
        raise UnsupportedMediaType("send the body as application/json")
    raw = await request.read()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidMessage("the body is not valid JSON") from exc


def parse(model: type[M], data: Any, invalid: type[AmplifyError]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid("the request is not valid", details=validation_details(exc)) from exc


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except AmplifyError as exc:
        return error_response(exc)
    except StoreUnavailable as exc:
        # The store is down: a retryable 503, as when the bus is.
        log.warning("store unavailable: %s", exc, extra={"path": request.path})
        return error_response(NotReady("the store is unavailable; try again"))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _STATUS_CODES.get(exc.status, "internal" if exc.status >= 500 else "invalid_message")
        body = {"error": {"code": code, "message": exc.reason}}
        return json_response(
            body, exc.status, {k: v for k, v in exc.headers.items() if k == "Allow"}
        )
    except Exception:
        log.exception("unhandled error", extra={"path": request.path})
        return json_response({"error": {"code": "internal", "message": "internal error"}}, 500)
