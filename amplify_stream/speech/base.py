"""The speech provider port.

A provider speaks one piece of text (a sentence or a few) and yields MP3 audio as it is
produced, in pieces of WHOLE MP3 frames (so any prefix of the pieces is playable), and
the words it spoke with their timing and their span in the text it was given.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass

AUDIO_FORMAT = "audio/mpeg"


@dataclass(frozen=True, slots=True)
class AudioData:
    """MP3 bytes made of whole frames."""

    data: bytes


@dataclass(frozen=True, slots=True)
class WordMark:
    """A spoken word. ``offset_ms`` counts from the start of this call's audio;
    ``text[start:end]`` of the synthesized text is the word (None when not mapped)."""

    text: str
    offset_ms: float
    duration_ms: float
    start: int | None
    end: int | None


SpeechPiece = AudioData | WordMark


class SpeechProvider(abc.ABC):
    """Raise ``errors.TtsUnavailable`` when speech cannot be had (after retries)."""

    name: str
    default_voice: str

    @abc.abstractmethod
    def synthesize(self, text: str, voice: str | None = None) -> AsyncIterator[SpeechPiece]:
        """Speak ``text`` (long texts are split by the provider on sentence, then word,
        boundaries); yield audio and word marks as they are produced, in time order."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release long-lived resources."""
