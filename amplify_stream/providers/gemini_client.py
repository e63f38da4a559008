"""The google-genai client as every Gemini path of the service uses it (the story's
provider, a live document's passes): its configuration, one streamed call read as text or
finding by finding (its chunks read by ``gemini_stream.py``), and how a failure maps to the
service's errors.

Retries: ``HttpRetryOptions`` wraps the whole request, including the opening of an async
stream (``BaseApiClient._async_request`` runs ``_async_request_once(stream=True)`` under
``tenacity.AsyncRetrying`` and the status is checked before the stream is returned), so
429/5xx at the start are retried by the SDK and no retry loop is needed here. A stream
that breaks midway is never retried: that is a ``ProviderError``.

Stopping a call: cancel the task that reads its stream. On the SDK's public path (the
fallback of ``gemini_stream.py``) only that releases the stream's connection, not an
``aclose``; the reader of ``gemini_stream.py`` releases it either way.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from amplify_stream.config.groups import GeminiSettings
from amplify_stream.errors import AmplifyError, ProviderError, ProviderUnavailable
from amplify_stream.providers.base import Piece, UsageReport
from amplify_stream.providers.gemini_analysis import AnalysisStream
from amplify_stream.providers.gemini_stream import STOP, stream_chunks

RETRY_STATUSES = (429, 500, 502, 503, 504)


def create_client(settings: GeminiSettings) -> genai.Client:
    if settings.gemini_api_key is None:
        raise ValueError("the Gemini provider needs GEMINI_API_KEY")
    return genai.Client(
        vertexai=False,
        api_key=settings.gemini_api_key.get_secret_value(),
        http_options=http_options(settings),
    )


async def close_client(client: genai.Client) -> None:
    await client.aio.aclose()
    client.close()


def http_options(settings: GeminiSettings) -> types.HttpOptions:
    """``gemini_retry_attempts`` counts every try, the first included (tenacity's way)."""
    return types.HttpOptions(
        base_url=settings.gemini_base_url,
        api_version="v1beta",  # the SDK's default is v1, which lacks some config fields
        retry_options=types.HttpRetryOptions(
            attempts=max(1, settings.gemini_retry_attempts),
            initial_delay=settings.gemini_retry_initial_delay_s,
            max_delay=settings.gemini_retry_max_delay_s,
            exp_base=2.0,
            # The SDK's jitter is a whole second by default; keep it in scale with delays.
            jitter=settings.gemini_retry_initial_delay_s,
            http_status_codes=list(RETRY_STATUSES),
        ),
    )


async def stream_findings(
    client: genai.Client,
    model: str,
    contents: str,
    config: types.GenerateContentConfig,
    analysis: AnalysisStream,
    what: str,
) -> AsyncIterator[list[Piece] | UsageReport]:
    """One streamed structured call (``config`` carries the response schema that
    ``analysis`` reads): for each chunk, the findings it made whole (maybe none: the chunk
    still says the call is alive), then, once the answer has ended and checked out, the
    call's usage. Raises what the SDK raises (map it with ``provider_error``) or
    ``ProviderError`` for an answer cut short, refused or malformed."""
    async for text in stream_text(client, model, contents, config, what):
        if isinstance(text, UsageReport):
            analysis.finish()
            yield text
        else:
            yield analysis.feed(text)


async def stream_text(
    client: genai.Client,
    model: str,
    contents: str,
    config: types.GenerateContentConfig,
    what: str,
) -> AsyncIterator[str | UsageReport]:
    """One streamed call: each chunk's text (maybe empty: the chunk still says the call is
    alive), then, once the answer has ended whole, the call's usage. Raises what the SDK
    raises (map it with ``provider_error``) or ``ProviderError`` for an answer cut short
    or refused."""
    usage: UsageReport | None = None
    finish: str | None = None
    async for chunk in stream_chunks(client, model, contents, config):
        if chunk.block_reason is not None:
            raise ProviderError(f"Gemini refused the {what}: {chunk.block_reason}")
        usage = chunk.usage or usage  # running totals: keep the last
        finish = chunk.finish_reason or finish
        yield chunk.text
    # Anything but STOP (MAX_TOKENS, SAFETY, no reason at all) leaves the text cut short.
    if finish != STOP:
        raise ProviderError(f"Gemini's {what} ended early ({finish or 'no finish reason'})")
    yield usage or UsageReport(input_tokens=0, output_tokens=0)


def provider_error(exc: Exception, *, started: bool) -> AmplifyError:
    """Overload or an unreachable service before any output is worth retrying later;
    anything else, or anything once output went out, is a provider failure."""
    if isinstance(exc, AmplifyError):
        return exc
    error: AmplifyError
    if isinstance(exc, genai_errors.APIError):
        what = f"Gemini answered {exc.code} {exc.status}: {exc.message}"
        if not started and exc.code in RETRY_STATUSES:
            error = ProviderUnavailable(what, retry_after=_retry_after(exc.details))
        else:
            error = ProviderError(what)
    elif isinstance(exc, aiohttp.ClientConnectionError) and not started:
        error = ProviderUnavailable(f"Gemini is unreachable: {exc!r}")
    elif isinstance(exc, aiohttp.ClientError):
        error = ProviderError(f"the Gemini stream broke: {exc!r}")
    else:
        error = ProviderError(f"the Gemini call failed: {exc!r}")
    error.__cause__ = exc
    return error


def _retry_after(details: Any) -> float | None:
    """Google's ``RetryInfo.retryDelay`` ("12s"), when the error body carries one."""
    body = details.get("error", details) if isinstance(details, dict) else {}
    for item in body.get("details") or []:
        delay = item.get("retryDelay") if isinstance(item, dict) else None
        if isinstance(delay, str) and (m := re.fullmatch(r"(\d+(?:\.\d+)?)s", delay)):
            return float(m.group(1))
    return None
