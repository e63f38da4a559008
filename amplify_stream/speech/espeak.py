"""Offline speech: eSpeak NG (the library in the ``espeakng-loader`` wheel, through ctypes),
PCM encoded to MP3 with lameenc, word timings from eSpeak's own word events. No network.

What eSpeak's word events say, found by trying (the cases are in tests/unit/test_espeak.py):
``text_position`` counts code points of the UTF-8 text from 1 (an accent, a combining
mark, an emoji, a CJK character: one each), ``audio_position`` is milliseconds from the
start of the ``espeak_Synth`` call. But ``length`` is often not the word's (``didn't``
-> 4), some words give several events (``x86_64``, ``3/4/2024``, an emoji's name) and
some none (``a`` in ``at a dog``), and a word after a "." that ends no sentence is put
on the space before it. So each event is mapped to the whole word at its position (or
right after the spaces there), and an event on the word already marked adds nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import threading
import unicodedata
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from itertools import pairwise

import espeakng_loader
import lameenc

from amplify_stream.config.groups import SpeechSettings
from amplify_stream.errors import TtsUnavailable
from amplify_stream.speech.base import AudioData, SpeechPiece, SpeechProvider, WordMark
from amplify_stream.speech.mp3 import Mp3Framer, duration_ms
from amplify_stream.text.chunks import split_for_speech
from amplify_stream.text.words import word_at

log = logging.getLogger(__name__)

DEFAULT_VOICE = "en-us"
# One synthesis holds the engine for one piece: short pieces keep the first audio early
# and let concurrent calls take turns.
PIECE_CHARS = 200
MP3_BITRATE_KBPS = 48
MP3_QUALITY = 5  # lame: 2 best .. 7 fast; 5 is lame's "good" default

# speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # report a bad data path instead of exit(1)
_BUFFER_MS = 200
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_ENDPAUSE = 0x1000  # a pause after each piece, as after a sentence
_RATE = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EE_OK = 0
_MIN_WPM, _MAX_WPM = 80, 450


class _EventId(ctypes.Union):
    _fields_ = (("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8))


class _Event(ctypes.Structure):
    """``espeak_EVENT``."""

    _fields_ = (
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    )


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass(slots=True)
class _Speech:
    """One piece spoken: 16-bit mono PCM and its word events (0-based code point index
    in the piece, milliseconds from the piece's start)."""

    voice: str
    pcm: bytearray = field(default_factory=bytearray)
    words: list[tuple[int, int]] = field(default_factory=list)


class _Engine:
    """The eSpeak NG library: loaded and initialized on first use, one synthesis at a time.

    eSpeak keeps everything (voice, rate, callback, synthesis buffers) in C globals, so
    two engine objects could not be independent: the process has exactly one
    (``_ENGINE``), shared by every provider instance, and ``lock`` serializes all its use.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._lib: ctypes.CDLL | None = None
        self._callback: ctypes._CFunctionType | None = None  # kept alive for the C side
        self._sample_rate = 0
        self._voice: str | None = None
        self._rate: int | None = None
        self._sink: _Speech | None = None
        self._stop: threading.Event | None = None
        self._error: BaseException | None = None

    def speak(self, text: str, voices: list[str], rate_wpm: int, stop: threading.Event) -> _Speech:
        """Speak ``text`` with the first voice eSpeak knows of ``voices``. Blocking."""
        with self.lock:
            lib = self._start()
            speech = _Speech(voice=self._select_voice(lib, voices))
            rate = min(max(rate_wpm, _MIN_WPM), _MAX_WPM)
            if rate != self._rate:  # (a new voice forgets the rate: see _select_voice)
                lib.espeak_SetParameter(_RATE, rate, 0)
                self._rate = rate
            self._sink, self._stop, self._error = speech, stop, None
            try:
                data = text.encode("utf-8")
                status = lib.espeak_Synth(
                    data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8 | _ENDPAUSE, None, None
                )
            finally:
                self._sink = self._stop = None
            if self._error is not None:
                raise TtsUnavailable("espeak synthesis failed") from self._error
            if status != _EE_OK and not stop.is_set():
                raise TtsUnavailable(f"espeak synthesis failed (status {status})")
            return speech

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    def _start(self) -> ctypes.CDLL:
        if self._lib is not None:
            return self._lib
        try:
            lib = ctypes.CDLL(espeakng_loader.get_library_path())
            data_path = espeakng_loader.get_data_path()
        except (OSError, RuntimeError) as exc:
            raise TtsUnavailable("the eSpeak NG library cannot be loaded") from exc
        _declare(lib)
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, data_path.encode(), _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise TtsUnavailable(f"eSpeak NG did not start (data at {data_path})")
        self._callback = _SynthCallback(self._on_synth)
        lib.espeak_SetSynthCallback(self._callback)
        self._lib, self._sample_rate = lib, rate
        return lib

    def _select_voice(self, lib: ctypes.CDLL, voices: list[str]) -> str:
        for voice in voices:
            if voice == self._voice:
                return voice
            try:
                name = voice.encode("utf-8")
            except UnicodeEncodeError:
                continue
            # A voice change may reset the rate, a failed one may leave any voice set.
            self._voice = self._rate = None
            if b"\0" not in name and lib.espeak_SetVoiceByName(name) == _EE_OK:
                self._voice = voice
                return voice
        raise TtsUnavailable(f"eSpeak NG has none of the voices {voices}")

    def _on_synth(
        self,
        wav: ctypes._Pointer[ctypes.c_short],
        samples: int,
        events: ctypes._Pointer[_Event],
    ) -> int:
        """Called by eSpeak (inside ``espeak_Synth``) with PCM and events; 1 stops it."""
        try:
            sink = self._sink
            if sink is None or (self._stop is not None and self._stop.is_set()):
                return 1
            if samples > 0 and wav:
                sink.pcm += ctypes.string_at(wav, samples * 2)
            i = 0
            while events and events[i].type != _EVENT_LIST_TERMINATED:
                event = events[i]
                if event.type == _EVENT_WORD:
                    sink.words.append((event.text_position - 1, event.audio_position))
                i += 1
            return 0
        except BaseException as exc:  # an exception must not cross into C
            self._error = exc
            return 1


def _declare(lib: ctypes.CDLL) -> None:
    """Signatures from speak_lib.h, so ctypes converts (and checks) the arguments."""
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p,  # text
        ctypes.c_size_t,  # size, terminating zero included
        ctypes.c_uint,  # position
        ctypes.c_int,  # position type
        ctypes.c_uint,  # end position
        ctypes.c_uint,  # flags
        ctypes.c_void_p,  # unique identifier out
        ctypes.c_void_p,  # user data
    ]
    lib.espeak_Synth.restype = ctypes.c_int


# The process's one eSpeak engine (see _Engine): the only module-level mutable state.
_ENGINE = _Engine()


def _speakable(text: str) -> str:
    """``text`` with what eSpeak must not see (NUL ends its input; lone surrogates cannot be
    UTF-8; other control characters) made spaces, so code point positions are unchanged."""
    return "".join(
        " " if unicodedata.category(c) in ("Cc", "Cs") and c not in "\n\t" else c for c in text
    )


class _Encoder:
    """One call's MP3 stream: lame for the PCM, the framer so only whole frames leave."""

    def __init__(self, sample_rate: int) -> None:
        self._lame = lameenc.Encoder()
        self._lame.set_bit_rate(MP3_BITRATE_KBPS)
        self._lame.set_in_sample_rate(sample_rate)
        self._lame.set_channels(1)
        self._lame.set_quality(MP3_QUALITY)
        self._framer = Mp3Framer()

    def encode(self, pcm: bytes | bytearray) -> bytes:
        return self._framer.feed(bytes(self._lame.encode(bytes(pcm)))) if pcm else b""

    def finish(self) -> bytes:
        return self._framer.feed(bytes(self._lame.flush())) + self._framer.flush()


@dataclass(slots=True)
class _Mark:
    start: int
    end: int
    offset_ms: float
    end_ms: float


class EspeakProvider(SpeechProvider):
    """eSpeak NG, offline. Audio is yielded per piece of text (a sentence or a few) as soon
    as it is encoded, each word mark after the audio where its word begins."""

    name = "espeak"

    def __init__(self, settings: SpeechSettings) -> None:
        self.default_voice = settings.voice or DEFAULT_VOICE
        self._rate_wpm = settings.espeak_rate_wpm

    async def synthesize(self, text: str, voice: str | None = None) -> AsyncIterator[SpeechPiece]:
        requested = voice or self.default_voice
        voices = list(dict.fromkeys([requested, self.default_voice, DEFAULT_VOICE]))
        stop = threading.Event()
        encoder: _Encoder | None = None
        pending: deque[_Mark] = deque()
        audio_ms = pcm_ms = 0.0  # audio yielded so far; PCM spoken so far
        last_end = 0  # spans only move forward
        warned = False
        try:
            pieces = split_for_speech(text, PIECE_CHARS)
            for number, (offset, piece) in enumerate(pieces, 1):
                piece = _speakable(piece)  # same length: spans in it are spans in text
                speech = await asyncio.to_thread(_ENGINE.speak, piece, voices, self._rate_wpm, stop)
                if speech.voice != requested and not warned:
                    log.warning("espeak has no voice %r; speaking with %r", requested, speech.voice)
                    warned = True
                if encoder is None:
                    encoder = _Encoder(_ENGINE.sample_rate)
                data = await asyncio.to_thread(encoder.encode, speech.pcm)
                piece_ms = len(speech.pcm) / 2 * 1000.0 / _ENGINE.sample_rate
                marks = _marks(offset, piece, speech.words, pcm_ms, pcm_ms + piece_ms)
                marks = [m for m in marks if m.start >= last_end]
                last_end = marks[-1].end if marks else last_end
                pending += marks
                pcm_ms += piece_ms
                if data:
                    audio_ms += duration_ms(data)
                    yield AudioData(data)
                # Keep the call's last word: it will last until the audio ends.
                keep = 1 if number == len(pieces) else 0
                while len(pending) > keep and pending[0].offset_ms < audio_ms:
                    yield _word(text, pending.popleft())
            if encoder is None:
                return
            tail = await asyncio.to_thread(encoder.finish)
            if tail:
                audio_ms += duration_ms(tail)
                yield AudioData(tail)
            if pending:  # the last word lasts until the audio ends
                pending[-1].end_ms = max(pending[-1].end_ms, audio_ms)
            for mark in pending:
                yield _word(text, mark)
        finally:
            stop.set()  # a cancelled call stops eSpeak at its next callback


def _marks(
    offset: int,
    piece: str,
    events: list[tuple[int, int]],
    start_ms: float,
    end_ms: float,
) -> list[_Mark]:
    """Word events of one piece -> marks with spans in the call's text and times in its audio.

    An event off any word (a lone dash) or on the word just marked (eSpeak splits
    "x86_64" into several words) adds no mark: its time stays with the word before it.
    """
    marks: list[_Mark] = []
    for i, (index, position_ms) in enumerate(events):
        span = _event_span(piece, index)
        if span is None or (marks and span[0] + offset < marks[-1].end):
            continue
        # eSpeak puts a word after a "." that ends no sentence ("straße. brown") on the
        # space before it; but an emoji's name ("grinning face") also puts its second word
        # on the space after the emoji, and then the next word's own event follows.
        on_space = piece[index].isspace()
        if on_space and i + 1 < len(events) and word_at(piece, events[i + 1][0]) == span:
            continue
        at = min(max(start_ms + position_ms, marks[-1].offset_ms if marks else start_ms), end_ms)
        marks.append(_Mark(span[0] + offset, span[1] + offset, at, end_ms))
    for mark, after in pairwise(marks):
        mark.end_ms = after.offset_ms
    return marks


def _event_span(piece: str, index: int) -> tuple[int, int] | None:
    """The word of a word event at ``index``: the word there, or right after the spaces
    there (see ``_marks``)."""
    if 0 <= index < len(piece) and piece[index].isspace():
        index += len(piece[index:]) - len(piece[index:].lstrip())
    return word_at(piece, index)


def _word(text: str, mark: _Mark) -> WordMark:
    return WordMark(
        text=text[mark.start : mark.end],
        offset_ms=mark.offset_ms,
        duration_ms=mark.end_ms - mark.offset_ms,
        start=mark.start,
        end=mark.end,
    )
