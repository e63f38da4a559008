"""Speech providers behind one port (``base``), all producing ``audio/mpeg``;
``create_speech_provider`` picks one."""

from __future__ import annotations

import logging

from amplify_stream.config.groups import SpeechSettings
from amplify_stream.errors import TtsUnavailable
from amplify_stream.speech.base import SpeechProvider

log = logging.getLogger(__name__)

# How long ``auto`` waits for edge-tts to answer a tiny synthesis before using eSpeak.
PROBE_TIMEOUT_S = 5.0


async def create_speech_provider(settings: SpeechSettings) -> SpeechProvider:
    """``edge`` or ``espeak`` as configured; ``auto`` tries edge-tts once (one tiny
    synthesis, at most ``PROBE_TIMEOUT_S``) and falls back to the offline eSpeak NG."""
    from amplify_stream.speech.edge import EdgeProvider, describe_endpoint, is_edge_voice

    if settings.speech_provider == "espeak":
        return _espeak(settings)
    if settings.speech_provider == "edge":
        return EdgeProvider(settings)
    if settings.voice and not is_edge_voice(settings.voice):
        log.info("speech: espeak (AMPLIFY_VOICE=%r is not an edge-tts voice)", settings.voice)
        return _espeak(settings)
    edge = EdgeProvider(settings)
    try:
        await edge.probe(PROBE_TIMEOUT_S)
    except TtsUnavailable as exc:
        log.warning("speech: espeak (offline), as edge-tts is out of reach: %s", exc.message)
        await edge.aclose()
        return _espeak(settings)
    log.info(
        "speech: edge-tts at %s, voice %s",
        describe_endpoint(edge.endpoint),
        edge.default_voice,
    )
    return edge


def _espeak(settings: SpeechSettings) -> SpeechProvider:
    from amplify_stream.speech.espeak import EspeakProvider

    return EspeakProvider(settings)
