"""A streamed Gemini answer read chunk by chunk, without the SDK's response models.

``generate_content_stream`` turns every SSE event into a pydantic
``GenerateContentResponse`` (unknown fields pruned, every nested model validated): most
of the CPU a chunk costs, when the service needs four facts of it (its text, finish
reason, usage and a refused prompt). Here the SDK still builds the request exactly as
``generate_content_stream`` does and opens it through its own transport (the API key,
base URL and version, its HTTP session, ``HttpRetryOptions`` around the opening, an error
status raised as ``genai_errors.APIError``); the body is read here, each event's JSON
parsed by orjson (``_events``: a quarter of the CPU of the SDK's line handling and
``json.loads``), and ``read_chunk`` takes the four facts from it.

That transport is private to google-genai (``models._GenerateContentParameters_to_mldev``,
``BaseApiClient._build_request`` and ``_async_request``, the ``aiohttp`` response in its
``HttpResponse``), and so is the shape of the answer it reads, so the SDK's version is
pinned (pyproject.toml). Should a piece be missing or have changed, or an answer come in a
shape ``read_chunk`` cannot read (a field of another type, say) before anything of it was
given out, the public ``generate_content_stream`` reads the answers instead, from then on
in this process, and a warning says why, once.

Automatic continuation (``FinishReason.CONTINUATION``: the model stopped at its
per-request limit and gave a ``continuationToken`` to go on from) is the SDK's: when a
stream read here ends, or breaks, with a token to go on from, the SDK's own stream takes
over from it and its usage is added to this part's.
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, replace
from typing import Any, cast
from urllib.parse import urlencode

import aiohttp
import orjson
from google import genai
from google.genai import _common, types
from google.genai import errors as genai_errors
from google.genai import models as genai_models

from amplify_stream.providers.base import UsageReport

log = logging.getLogger(__name__)

STOP = "STOP"
CONTINUATION = "CONTINUATION"


@dataclass(frozen=True, slots=True)
class Chunk:
    """What the service reads of one streamed ``GenerateContentResponse``."""

    text: str = ""  # the first candidate's parts, thoughts left out
    finish_reason: str | None = None
    usage: UsageReport | None = None  # the call's running totals so far
    block_reason: str | None = None  # the prompt was refused
    continuation_token: str | None = None  # as the wire has it (base64)


class UnreadableAnswer(Exception):
    """An answer whose shape the reader here does not know (the SDK's models may)."""


def read_chunk(event: dict[str, Any]) -> Chunk:
    """One SSE event's JSON (``GenerateContentResponse`` in the REST API's camelCase).
    An event that is an error (``{"error": {code, message, status}}``, a failure after the
    stream opened) raises it as the SDK does; one of another shape, ``UnreadableAnswer``."""
    try:
        return _read_chunk(event)
    except (AttributeError, TypeError, KeyError, IndexError) as exc:
        raise UnreadableAnswer(f"{type(exc).__name__}: {exc}") from exc


def _read_chunk(event: dict[str, Any]) -> Chunk:
    if (error := event.get("error")) is not None:
        code = error.get("code") if isinstance(error, dict) else None
        genai_errors.APIError.raise_error(code if isinstance(code, int) else 500, event, None)
    text, finish, token = "", None, None
    if candidates := event.get("candidates"):
        first = candidates[0]
        parts = (first.get("content") or {}).get("parts") or ()
        text = "".join(p["text"] for p in parts if p.get("text") and not p.get("thought"))
        finish, token = first.get("finishReason"), first.get("continuationToken")
    usage = event.get("usageMetadata")
    feedback = event.get("promptFeedback")
    return Chunk(
        text=text,
        finish_reason=finish,
        usage=_usage(usage) if usage is not None else None,
        block_reason=feedback.get("blockReason") if feedback else None,
        continuation_token=token,
    )


def _usage(usage: dict[str, Any]) -> UsageReport:
    output = usage.get("candidatesTokenCount", 0) + usage.get("thoughtsTokenCount", 0)
    return UsageReport(input_tokens=usage.get("promptTokenCount", 0), output_tokens=output)


def chunk_of_response(response: types.GenerateContentResponse) -> Chunk:
    """The same, of a response the SDK made (its public path)."""
    text, finish = "", None
    if response.candidates:
        first = response.candidates[0]
        parts = first.content.parts if first.content is not None else None
        text = "".join(p.text for p in parts or () if p.text and not p.thought)
        finish = first.finish_reason.value if first.finish_reason else None
    report = None
    if (usage := response.usage_metadata) is not None:
        output = (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)
        report = UsageReport(input_tokens=usage.prompt_token_count or 0, output_tokens=output)
    feedback = response.prompt_feedback
    blocked = feedback.block_reason if feedback is not None else None
    return Chunk(
        text=text,
        finish_reason=finish,
        usage=report,
        block_reason=blocked.value if blocked is not None else None,
    )


async def stream_chunks(
    client: genai.Client, model: str, contents: str, config: types.GenerateContentConfig
) -> AsyncIterator[Chunk]:
    """The answer's chunks as they come. Raises what the SDK raises: ``APIError`` for an
    error status (after the SDK's retries) or an error event, ``aiohttp`` errors for a
    connection that fails or breaks."""
    segments = await _open(client, model, contents, config)
    if segments is None:
        async for chunk in _sdk_chunks(client, model, contents, config):
            yield chunk
        return
    go_on = config.automatic_continuation is not False
    token: str | None = None  # the last point the answer can go on from
    usage: UsageReport | None = None
    given = False  # whether anything of this answer went out
    unreadable = False
    try:
        async for event in segments:
            try:
                chunk = read_chunk(event)
            except UnreadableAnswer as exc:
                if given:
                    raise
                _read_by_the_sdk(f"an answer in a shape it cannot read ({exc})")
                unreadable = True
                break
            given = True
            usage = chunk.usage or usage
            if chunk.continuation_token:
                token = chunk.continuation_token
            elif chunk.finish_reason not in (None, CONTINUATION):
                token = None  # ended for good
            if go_on and token and chunk.finish_reason == CONTINUATION:
                chunk = replace(chunk, finish_reason=None)  # not the end: more comes
            yield chunk
            if chunk.block_reason:
                token = None
    except Exception as exc:  # whatever broke it, as the SDK's continuation does
        if not (go_on and token):
            raise
        log.info("a Gemini stream broke (%r); going on from its continuation token", exc)
    finally:
        await segments.aclose()  # the connection goes back to the pool, or is closed
    if unreadable:  # read again, from the start, by the SDK
        async for chunk in _sdk_chunks(client, model, contents, config):
            yield chunk
        return
    if go_on and token:
        async for chunk in _go_on(client, model, contents, config, token, usage):
            yield chunk


async def _go_on(
    client: genai.Client,
    model: str,
    contents: str,
    config: types.GenerateContentConfig,
    token: str,
    before: UsageReport | None,
) -> AsyncIterator[Chunk]:
    """The rest of an answer, from its continuation token, by the SDK (whose usage counts
    its own requests only: the part before is added)."""
    raw = types.Candidate.model_validate({"continuationToken": token}).continuation_token
    rest = config.model_copy(update={"continuation_token": raw})
    async for chunk in _sdk_chunks(client, model, contents, rest):
        if chunk.usage is not None and before is not None:
            chunk = replace(
                chunk,
                usage=UsageReport(
                    input_tokens=before.input_tokens + chunk.usage.input_tokens,
                    output_tokens=before.output_tokens + chunk.usage.output_tokens,
                ),
            )
        yield chunk


async def _sdk_chunks(
    client: genai.Client, model: str, contents: str, config: types.GenerateContentConfig
) -> AsyncIterator[Chunk]:
    stream = await client.aio.models.generate_content_stream(
        model=model, contents=contents, config=config
    )
    async for response in stream:
        yield chunk_of_response(response)


# Why the SDK's public path reads every answer in this process (None: the reader here does).
_sdk_reads: str | None = None
_fallback_logged = False


def _read_by_the_sdk(why: str) -> None:
    """From now on the SDK's public path reads the answers; said once, with the reason."""
    global _sdk_reads, _fallback_logged
    _sdk_reads = why
    if not _fallback_logged:
        _fallback_logged = True
        log.warning(
            "google-genai %s: the fast Gemini stream reader met %s; its public "
            "generate_content_stream reads the answers instead",
            genai.__version__,
            why,
        )


async def _open(
    client: genai.Client, model: str, contents: str, config: types.GenerateContentConfig
) -> AsyncGenerator[dict[str, Any], None] | None:
    """The opened stream's events as JSON, or None where the SDK's public path must read
    it: Vertex AI, tools (the SDK calls functions itself) or this SDK lacking the private
    pieces used here."""
    if config.tools or _sdk_reads:
        return None
    try:
        api = client.aio.models._api_client
        if api.vertexai:
            return None
        path, body, options = _request(api, model, contents, config)
        http_request = api._build_request("post", path, body, options)
        opening = api._async_request(http_request=http_request, http_options=options, stream=True)
    except (AttributeError, TypeError, KeyError) as exc:
        _read_by_the_sdk(f"a private piece missing or changed ({exc!r})")
        return None
    response = await opening
    if isinstance(raw := getattr(response, "response_stream", None), aiohttp.ClientResponse):
        return _events(raw)
    if callable(segments := getattr(response, "async_segments", None)):
        # Another transport (httpx): the SDK's own reading, json.loads per event.
        return cast(AsyncGenerator[dict[str, Any], None], segments())
    _read_by_the_sdk(f"a response it cannot read ({type(response).__name__})")
    with contextlib.suppress(Exception):  # whatever it holds, it is not read
        if callable(close := getattr(raw, "close", None)):
            close()
    return None


async def _events(response: aiohttp.ClientResponse) -> AsyncGenerator[dict[str, Any], None]:
    """The JSON of each SSE event of a streamed answer (the ``data:`` lines of an event
    joined, as the SDK joins them; Gemini sends one a line). A body that is not SSE (an
    error as plain JSON) is read whole at the end. Closing the generator releases the
    connection: back to the pool when the body was read to its end, closed otherwise."""
    data: list[bytes] = []
    other: list[bytes] = []
    pending = b""
    try:
        async for received in response.content.iter_any():
            lines = (pending + received).split(b"\n")
            pending = lines.pop()  # the start of a line still coming
            for line in lines:
                if line.startswith(b"data:"):
                    data.append(line[5:])
                elif line.strip():
                    other.append(line)
                elif data:  # a blank line ends the event
                    yield orjson.loads(b"\n".join(data))
                    data = []
        if pending.startswith(b"data:"):
            data.append(pending[5:])
        elif pending.strip():
            other.append(pending)
        if data:
            yield orjson.loads(b"\n".join(data))
        if other:
            yield orjson.loads(b"\n".join(other))
    finally:
        response.release()


def _request(
    api: Any, model: str, contents: str, config: types.GenerateContentConfig
) -> tuple[str, dict[str, object], types.HttpOptions | None]:
    """Path, body and per-call HTTP options, as ``AsyncModels._generate_content_stream``
    makes them for the Gemini Developer API: the config's part once per config (below),
    the contents every call."""
    path, fixed = _config_part(api, model, config)
    # What the SDK makes of a prompt that is one string (its user turn, one text part):
    # written here, as its conversion builds and validates models for it on every call.
    told = [{"parts": [{"text": contents}], "role": "user"}]
    return path, {"contents": told} | fixed, config.http_options


# The converted config (and path) of each config in use, newest last. Converting one costs
# milliseconds (the response schema's JSON Schema is made anew each time), and callers
# keep their configs as constants; the entry holds the config, so its id is not reused.
_CONFIG_PARTS: OrderedDict[tuple[int, str], tuple[object, str, dict[str, object]]] = OrderedDict()
_CONFIG_PARTS_KEPT = 32


def _config_part(
    api: Any, model: str, config: types.GenerateContentConfig
) -> tuple[str, dict[str, object]]:
    key = (id(config), model)
    if (entry := _CONFIG_PARTS.get(key)) is not None and entry[0] is config:
        _CONFIG_PARTS.move_to_end(key)
        return entry[1], entry[2]
    parameters = types._GenerateContentParameters(model=model, contents="-", config=config)
    body = genai_models._GenerateContentParameters_to_mldev(api, parameters, None, parameters)
    path = "{model}:streamGenerateContent?alt=sse".format_map(body["_url"])
    if query := body.get("_query"):
        path = f"{path}?{urlencode(query)}"
    rest = {k: v for k, v in body.items() if k not in ("_url", "_query", "config", "contents")}
    fixed = _common.encode_unserializable_types(_common.convert_to_dict(rest))
    _CONFIG_PARTS[key] = (config, path, fixed)
    while len(_CONFIG_PARTS) > _CONFIG_PARTS_KEPT:
        _CONFIG_PARTS.popitem(last=False)
    return path, fixed
