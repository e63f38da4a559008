"""What the service reads of one streamed ``GenerateContentResponse`` (REST JSON), and
that it reads the same of the SDK's model of that response (the fallback path)."""

from __future__ import annotations

from typing import Any

import pytest
from google.genai import errors as genai_errors
from google.genai import types

from amplify_stream.providers.base import UsageReport
from amplify_stream.providers.gemini_stream import Chunk, chunk_of_response, read_chunk


def both(event: dict[str, Any]) -> Chunk:
    """The chunk read from the JSON, checked against the chunk read from the SDK's model
    (the continuation token is the SDK's own business on its path)."""
    chunk = read_chunk(event)
    sdk = types.GenerateContentResponse._from_response(response=event, kwargs={})
    assert chunk_of_response(sdk) == Chunk(
        chunk.text, chunk.finish_reason, chunk.usage, chunk.block_reason
    )
    return chunk


def text_event(*parts: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": list(parts), "role": "model"}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "modelVersion": "gemini-test", "responseId": "r1"}


def test_a_text_chunk_with_running_usage() -> None:
    event = text_event({"text": "Mara pushed "})
    event["usageMetadata"] = {
        "promptTokenCount": 120,
        "candidatesTokenCount": 3,
        "totalTokenCount": 123,
    }
    assert both(event) == Chunk(
        text="Mara pushed ", usage=UsageReport(input_tokens=120, output_tokens=3)
    )


def test_thinking_counts_as_output_and_thought_parts_are_not_text() -> None:
    event = text_event(
        {"text": "Let me consider the pacing.", "thought": True},
        {"text": "open "},
        {"text": "the door", "thoughtSignature": "c2ln"},
        finish="STOP",
    )
    event["usageMetadata"] = {
        "promptTokenCount": 10,
        "candidatesTokenCount": 4,
        "thoughtsTokenCount": 30,
        "totalTokenCount": 44,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 10}],
    }
    assert both(event) == Chunk(
        text="open the door",
        finish_reason="STOP",
        usage=UsageReport(input_tokens=10, output_tokens=34),
    )


@pytest.mark.parametrize("reason", ["STOP", "MAX_TOKENS", "SAFETY", "RECITATION", "OTHER"])
def test_finish_reasons(reason: str) -> None:
    chunk = both(text_event({"text": "end."}, finish=reason))
    assert (chunk.text, chunk.finish_reason) == ("end.", reason)


def test_a_safety_stop_may_come_without_content() -> None:
    event = {
        "candidates": [
            {
                "finishReason": "SAFETY",
                "index": 0,
                "safetyRatings": [
                    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH", "blocked": True}
                ],
            }
        ]
    }
    assert both(event) == Chunk(finish_reason="SAFETY")


def test_a_blocked_prompt_has_feedback_and_no_candidates() -> None:
    event = {
        "promptFeedback": {
            "blockReason": "PROHIBITED_CONTENT",
            "safetyRatings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "LOW"}],
        },
        "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8},
    }
    assert both(event) == Chunk(
        block_reason="PROHIBITED_CONTENT", usage=UsageReport(input_tokens=8, output_tokens=0)
    )


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"candidates": []},
        {"candidates": [{"index": 0}]},
        {"candidates": [{"content": {"role": "model"}, "index": 0}]},
        {"candidates": [{"content": {"parts": [], "role": "model"}, "index": 0}]},
        # Feedback without a block (safety ratings only) is no refusal.
        {"promptFeedback": {"safetyRatings": []}},
    ],
)
def test_chunks_that_say_nothing(event: dict[str, Any]) -> None:
    assert both(event) == Chunk()


def test_a_continuation_token_is_kept_as_the_wire_has_it() -> None:
    event = text_event({"text": "and then"}, finish="CONTINUATION")
    event["candidates"][0]["continuationToken"] = "Y2hlY2twb2ludA=="
    assert both(event).continuation_token == "Y2hlY2twb2ludA=="


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (500, genai_errors.ServerError),
        (429, genai_errors.ClientError),
        (None, genai_errors.ServerError),
    ],
)
def test_an_error_event_raises_as_the_sdk_does(code: int | None, kind: type[Exception]) -> None:
    event = {
        "error": {"code": code, "message": "An internal error has occurred.", "status": "INTERNAL"}
    }
    with pytest.raises(kind) as caught:
        read_chunk(event)
    assert isinstance(caught.value, genai_errors.APIError)
    assert caught.value.code == (code or 500)
    assert (caught.value.status, caught.value.message) == (
        "INTERNAL",
        "An internal error has occurred.",
    )
