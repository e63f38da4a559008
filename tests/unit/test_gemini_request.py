"""The stream reader's request: the config's part is converted once per config, and the
body is still exactly the one the SDK makes for the call."""

from __future__ import annotations

from typing import Any

from google.genai import _common, types
from google.genai import models as genai_models

from amplify_stream.config import Settings
from amplify_stream.providers import gemini_client, gemini_stream
from amplify_stream.providers.gemini_analysis import StoryAnalysis


def _api() -> Any:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        gemini_api_key="test-key",  # type: ignore[arg-type]
        gemini_base_url="http://127.0.0.1:9",
    )
    return gemini_client.create_client(settings).aio.models._api_client


def _sdk_body(api: Any, model: str, contents: str, config: types.GenerateContentConfig) -> Any:
    parameters = types._GenerateContentParameters(model=model, contents=contents, config=config)
    body = genai_models._GenerateContentParameters_to_mldev(api, parameters, None, parameters)
    body.pop("_url")
    body.pop("config", None)
    return _common.encode_unserializable_types(_common.convert_to_dict(body))


def test_each_call_has_the_body_the_sdk_makes_for_it() -> None:
    api = _api()
    analysis = types.GenerateContentConfig(
        system_instruction="Find what the story needs.",
        temperature=0.3,
        response_mime_type="application/json",
        response_schema=StoryAnalysis,
    )
    rewrite = types.GenerateContentConfig(system_instruction="Rewrite it.", temperature=0.7)
    for contents in ("Once upon a time.", "A second story, with \u00e9 and \U0001f600."):
        for config in (analysis, rewrite):
            path, body, _ = gemini_stream._request(api, "gemini-2.5-flash", contents, config)
            assert body == _sdk_body(api, "gemini-2.5-flash", contents, config)
            assert list(body) == list(_sdk_body(api, "gemini-2.5-flash", contents, config))
            assert path == "models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    # Another model with the same config: its own path.
    path, _, _ = gemini_stream._request(api, "gemini-2.5-pro", "x", rewrite)
    assert path == "models/gemini-2.5-pro:streamGenerateContent?alt=sse"


def test_a_config_is_converted_once_and_a_new_one_anew(monkeypatch: Any) -> None:
    api = _api()
    converted: list[object] = []
    convert = genai_models._GenerateContentParameters_to_mldev

    def counting(api_client: Any, from_object: Any, *args: Any) -> Any:
        converted.append(from_object.config)
        return convert(api_client, from_object, *args)

    monkeypatch.setattr(genai_models, "_GenerateContentParameters_to_mldev", counting)
    config = types.GenerateContentConfig(system_instruction="Rewrite it.", temperature=0.5)
    for n in range(5):
        gemini_stream._request(api, "gemini-2.5-flash", f"story {n}", config)
    assert [c for c in converted if c is not None] == [config]  # the contents: every call
    other = types.GenerateContentConfig(system_instruction="Rewrite it.", temperature=0.9)
    _, body, _ = gemini_stream._request(api, "gemini-2.5-flash", "story", other)
    assert body["generationConfig"] == {"temperature": 0.9}
