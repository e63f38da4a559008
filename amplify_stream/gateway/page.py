"""The live editor page at ``/`` (plain HTML and JavaScript modules, no build step)."""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from amplify_stream.gateway.openapi import HTML, Operation, Reply, describe

routes = web.RouteTableDef()
_STATIC = resources.files("amplify_stream.gateway") / "static"


@routes.get("/")
@describe(
    Operation(
        summary="The live editor page", tag="pages", replies={200: Reply("The page.", media=HTML)}
    )
)
async def index(request: web.Request) -> web.Response:
    return web.Response(
        text=(_STATIC / "index.html").read_text("utf-8"),
        content_type="text/html",
        headers={"Cache-Control": "no-cache"},
    )


@routes.get("/static/{name}")
async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if "/" in name or name.startswith(".") or not (_STATIC / name).is_file():
        raise web.HTTPNotFound()
    types = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
    content_type = types.get(name[name.rfind(".") :], "application/octet-stream")
    return web.Response(body=(_STATIC / name).read_bytes(), content_type=content_type)
