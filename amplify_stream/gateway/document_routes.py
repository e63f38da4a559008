"""Live document routes over HTTP (docs/protocol.md section 6): the caller's documents,
one document as the store holds it, and its deletion. Editing is the socket's.

Every route on one document answers ``not_found`` alike for a missing document and for
another user's: nothing tells them apart."""

from __future__ import annotations

import logging

from aiohttp import web

from amplify_stream.errors import InvalidMessage, NotFound
from amplify_stream.gateway import keys
from amplify_stream.gateway.authn import authenticate
from amplify_stream.gateway.http import json_response, parse
from amplify_stream.gateway.openapi import UNAVAILABLE, Auth, Operation, Reply, describe, error
from amplify_stream.gateway.schemas import (
    DocumentDetail,
    DocumentList,
    DocumentListQuery,
    DocumentSummary,
)

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

_NOT_FOUND = error("No such document of yours.")


@routes.get("/v1/documents")
@describe(
    Operation(
        summary="Your documents, most recently changed first",
        tag="documents",
        auth=Auth.BEARER,
        query=DocumentListQuery,
        replies={
            200: Reply("A page of documents.", DocumentList),
            400: error("Not a valid ``limit``, or ``before`` is not one of your documents."),
            503: UNAVAILABLE,
        },
    )
)
async def list_documents(request: web.Request) -> web.Response:
    claims = authenticate(request)
    query = parse(DocumentListQuery, dict(request.query), InvalidMessage)
    try:
        page, after = await request.app[keys.DOCUMENT_STORE].page_for_user(
            claims.user_id, limit=query.limit, before=query.before
        )
    except NotFound:
        # Missing or someone else's: the same answer, as on every document route.
        raise InvalidMessage("before is not one of your documents") from None
    body = DocumentList(documents=[DocumentSummary.of(d) for d in page], next=after)
    return json_response(body.to_json())


@routes.get("/v1/documents/{doc_id}")
@describe(
    Operation(
        summary="A document and its live suggestions",
        description=(
            "As its owner's last snapshot left it: up to ``AMPLIFY_DOC_SNAPSHOT_MS`` behind "
            "the edits the socket acknowledged."
        ),
        tag="documents",
        auth=Auth.BEARER,
        replies={200: Reply("The document.", DocumentDetail), 404: _NOT_FOUND, 503: UNAVAILABLE},
    )
)
async def get_document(request: web.Request) -> web.Response:
    claims = authenticate(request)
    doc = await request.app[keys.DOCUMENT_STORE].get_for_user(
        request.match_info["doc_id"], claims.user_id
    )
    return json_response(DocumentDetail.of(doc).to_json())


@routes.delete("/v1/documents/{doc_id}")
@describe(
    Operation(
        summary="Delete a document",
        description=(
            "Its owner forgets it (its edit log and snapshots go); the store forgets it now."
        ),
        tag="documents",
        auth=Auth.BEARER,
        replies={
            204: Reply("Deleted."),
            404: _NOT_FOUND,
            503: UNAVAILABLE,
        },
    )
)
async def delete_document(request: web.Request) -> web.Response:
    claims = authenticate(request)
    # The owner forgets it and tombstones it on its topics, then the row goes (a snapshot
    # written before that may bring the row back until the owner's deleted marker lands).
    await request.app[keys.DOCUMENTS].delete(claims.user_id, request.match_info["doc_id"])
    return web.Response(status=204)
