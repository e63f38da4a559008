"""The OpenAPI document: every route of the app and nothing else, valid OpenAPI 3.1, error
bodies as its schema says, and served with the page that renders it."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from aiohttp.test_utils import TestClient, TestServer
from openapi_spec_validator import validate

from amplify_stream import errors
from amplify_stream.bus.base import CURSOR_PATTERN
from amplify_stream.events import StoryOptions
from amplify_stream.gateway.app import create_app
from amplify_stream.gateway.openapi import document
from amplify_stream.gateway.schemas import ErrorBody
from amplify_stream.service import create_service
from tests.conftest import SettingsFactory


@pytest.fixture
def doc(make_settings: SettingsFactory) -> dict[str, Any]:
    return document(create_app(make_settings()).router)


def test_every_route_is_documented_and_nothing_else(make_settings: SettingsFactory) -> None:
    app = create_service(make_settings())
    registered = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
        and route.method not in ("HEAD", "OPTIONS")
        and not route.resource.canonical.startswith("/static/")
    }
    paths = document(app.router)["paths"]
    documented = {(method.upper(), path) for path, item in paths.items() for method in item}
    assert registered == documented


def test_the_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    assert doc["openapi"] == "3.1.0"
    validate(doc)


def test_operations_say_how_they_answer(doc: dict[str, Any]) -> None:
    paths = doc["paths"]
    bearer = [{"bearerAuth": []}]
    assert paths["/v1/auth/me"]["get"]["security"] == bearer
    assert "security" not in paths["/v1/auth/register"]["post"]
    submit = paths["/v1/stories"]["post"]
    assert set(submit["responses"]["200"]["content"]) == {"text/event-stream"}
    assert "Location" in submit["responses"]["202"]["headers"]
    assert "Retry-After" in submit["responses"]["429"]["headers"]
    audio = paths["/v1/stories/{story_id}/audio"]["get"]
    assert set(audio["responses"]["200"]["content"]) == {"audio/mpeg"}
    assert {"bearerAuth": []} in audio["security"]
    assert {"accessTokenQuery": []} in audio["security"]
    socket = paths["/v1/stream"]["get"]["responses"]
    assert {"101", "401"} <= set(socket)
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    for path, item in paths.items():
        for method, operation in item.items():
            for status, reply in operation["responses"].items():
                # /readyz's 503 is its own body (docs/protocol.md section 2).
                if int(status) >= 400 and path != "/readyz":
                    schema = reply["content"]["application/json"]["schema"]
                    assert schema == error_ref, (method, path, status)


@pytest.mark.parametrize(
    "exc",
    [
        errors.InvalidStory("bad", details=[{"loc": ["text"], "msg": "x", "type": "y"}]),
        errors.RateLimited("slow down", retry_after=3),
        errors.NotReady("down"),
        errors.AmplifyError("internal"),
    ],
)
def test_error_bodies_match_their_schema(doc: dict[str, Any], exc: errors.AmplifyError) -> None:
    body = exc.body()
    ErrorBody.model_validate(body)
    # The refs point into the document: validate against it as the root.
    schema = {"$ref": "#/components/schemas/ErrorBody", "components": doc["components"]}
    jsonschema.validate(body, schema)


async def test_the_document_and_its_page_are_served(make_settings: SettingsFactory) -> None:
    async with TestClient(TestServer(create_app(make_settings()))) as client:
        res = await client.get("/openapi.json")
        assert res.status == 200
        assert res.content_type == "application/json"
        served = await res.json()
        assert served["openapi"] == "3.1.0"
        assert "/v1/stories" in served["paths"]

        res = await client.get("/docs")
        assert res.status == 200
        page = await res.text()
        # Every asset is this gateway's own: the page works with no CDN in reach.
        assert "https://" not in page and "http://" not in page
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
            assert f"/static/swagger-ui/{asset}" in page
            res = await client.get(f"/static/swagger-ui/{asset}")
            assert res.status == 200, asset
            assert len(await res.read()) > 10_000
        res = await client.get("/static/docs.js")
        assert res.status == 200
        assert "/openapi.json" in await res.text()
        for missing in ("index.j2", "..%2Fswagger-ui.js", "nope.js"):
            res = await client.get(f"/static/swagger-ui/{missing}")
            assert res.status == 404, missing


async def test_the_served_document_states_this_services_limits(
    make_settings: SettingsFactory,
) -> None:
    """The text rules the handler checks beyond the body's model, with this service's
    settings; the models' own schema (docs/schemas/) has none of them."""
    settings = make_settings(max_story_chars=1234, max_title_chars=56)
    async with TestClient(TestServer(create_app(settings))) as client:
        served = await (await client.get("/openapi.json")).json()
    body = served["components"]["schemas"]["StoryOptions"]["properties"]
    assert (body["text"]["maxLength"], body["title"]["maxLength"]) == (1234, 56)
    text = {"type": "string", "pattern": body["text"]["pattern"]}
    assert not jsonschema.Draft202012Validator(text).is_valid(" \n\t")
    assert not jsonschema.Draft202012Validator(text).is_valid("nul\x00")
    assert jsonschema.Draft202012Validator(text).is_valid(" a story ")
    assert body["focus"]["uniqueItems"] is True
    assert "maxLength" not in StoryOptions.model_json_schema()["properties"]["text"]


def test_operations_give_every_answer_they_can(doc: dict[str, Any]) -> None:
    """Every route that reads the store or writes to the bus can answer 503."""
    paths = doc["paths"]
    for path, method in [
        ("/v1/auth/register", "post"),
        ("/v1/auth/token", "post"),
        ("/v1/auth/me", "get"),
        ("/v1/stories", "get"),
        ("/v1/stories", "post"),
        ("/v1/stories/{story_id}", "get"),
        ("/v1/stories/{story_id}/events", "get"),
        ("/v1/stories/{story_id}/cancel", "post"),
        ("/v1/stories/{story_id}/audio", "get"),
        ("/v1/documents", "get"),
        ("/v1/documents/{doc_id}", "get"),
        ("/v1/documents/{doc_id}", "delete"),
    ]:
        assert "503" in paths[path][method]["responses"], (method, path)
    events = paths["/v1/stories/{story_id}/events"]["get"]
    assert {"400", "401", "404", "410", "503"} <= set(events["responses"])
    cursors = {p["name"]: p["schema"] for p in events["parameters"]}
    assert (
        cursors["cursor"]
        == cursors["Last-Event-ID"]
        == {"type": "string", "pattern": CURSOR_PATTERN}
    )
