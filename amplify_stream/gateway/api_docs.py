"""``GET /openapi.json`` (generated from the routes, see ``openapi.py``) and ``GET /docs``,
Swagger UI from the swagger-ui-bundle package: the page works with no CDN in reach."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from aiohttp import web
from swagger_ui_bundle import swagger_ui_path

from amplify_stream.gateway import keys
from amplify_stream.gateway.openapi import HTML, JSON, Operation, Reply, describe

routes = web.RouteTableDef()
_STATIC = resources.files("amplify_stream.gateway") / "static"
_SWAGGER_UI = Path(swagger_ui_path)
_ASSET_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


@routes.get("/openapi.json")
@describe(
    Operation(
        summary="This OpenAPI 3.1 document",
        tag="meta",
        replies={200: Reply("The document.", media=JSON, schema={"type": "object"})},
    )
)
async def openapi_json(request: web.Request) -> web.Response:
    body = request.app[keys.OPENAPI].body(request.app.router)
    return web.Response(body=body, content_type=JSON)


@routes.get("/docs")
@describe(
    Operation(
        summary="The HTTP API, rendered (Swagger UI)",
        tag="meta",
        replies={200: Reply("An HTML page.", media=HTML)},
    )
)
async def docs(request: web.Request) -> web.Response:
    return web.Response(
        text=(_STATIC / "docs.html").read_text("utf-8"),
        content_type=HTML,
        headers={"Cache-Control": "no-cache"},
    )


@routes.get("/static/swagger-ui/{name}")
async def swagger_ui_asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    content_type = _ASSET_TYPES.get(Path(name).suffix)
    path = _SWAGGER_UI / name
    if content_type is None or "/" in name or name.startswith(".") or not path.is_file():
        raise web.HTTPNotFound()
    # Files of the installed bundle: they change only with a release.
    return web.FileResponse(
        path, headers={"Content-Type": content_type, "Cache-Control": "public, max-age=86400"}
    )
