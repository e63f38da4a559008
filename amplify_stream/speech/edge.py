"""The ``edge`` speech provider: Microsoft Edge's online voices through the edge-tts client.

Each piece of text (``split_for_speech``, small enough that edge-tts does not split it
again and open one socket per part) is one ``Communicate(...).stream()``: one WebSocket.
Its MP3 arrives in arbitrary cuts and is re-framed into whole frames; its word boundaries
(100 ns ticks from the start of that piece's audio) become ``WordMark``s shifted by the
audio of the pieces before and mapped to spans by a forward search in the text.

What edge-tts 7.3 does and does not do, and what is done here about it:
- a 403 on the upgrade gets ONE retry inside edge-tts, after moving the class-global
  ``DRM.clock_skew_seconds`` by the server's ``Date``; anything else (429, 503 as
  ``WSServerHandshakeError``, ``NoAudioReceived``, ...) is raised as is;
- a connection closed midway ends the stream as if it had finished: the turn is known
  to be complete only when ``Communicate.state`` counted the audio at ``turn.end``;
- a silent server is not cut off (``receive_timeout`` does not reach the WebSocket), so
  each wait for edge-tts is bounded by ``tts_timeout_s`` here.
A failed piece is tried again with exponential backoff only while nothing of it went out
(a retry after that would repeat audio); otherwise, and when the attempts run out,
``TtsUnavailable``. Messages never carry the URL (its query holds the client token).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from urllib.parse import urlsplit

import aiohttp
import edge_tts
import edge_tts.communicate
import edge_tts.constants
from edge_tts.data_classes import TTSConfig
from edge_tts.exceptions import EdgeTTSException

from amplify_stream.config.groups import SpeechSettings
from amplify_stream.errors import TtsUnavailable
from amplify_stream.speech import mp3
from amplify_stream.speech.base import AudioData, SpeechPiece, SpeechProvider, WordMark
from amplify_stream.text.chunks import split_for_speech

log = logging.getLogger(__name__)

DEFAULT_VOICE = "en-US-AriaNeural"
# edge-tts escapes the text (``&`` -> ``&amp;``: 5 bytes, the worst case with 4-byte UTF-8)
# and splits it at 4096 bytes: 800 code points always stay under that.
MAX_PIECE_CHARS = 800
TICKS_PER_MS = 10_000
PROBE_TEXT = "Hello."
# What a call through edge-tts raises when the service fails (OSError includes our
# TimeoutError; ValueError and KeyError: frames edge-tts cannot parse). Anything else is
# a bug and goes up as is.
_FAILURES = (aiohttp.ClientError, EdgeTTSException, OSError, ValueError, KeyError)


class StreamCut(EdgeTTSException):
    """The connection ended before ``turn.end`` (edge-tts takes that for the end)."""


class EdgeProvider(SpeechProvider):
    name = "edge"

    def __init__(self, settings: SpeechSettings) -> None:
        self.default_voice = settings.voice or DEFAULT_VOICE
        if not is_edge_voice(self.default_voice):
            raise ValueError(f"AMPLIFY_VOICE={settings.voice!r} is not an edge-tts voice")
        self.endpoint = endpoint_url(settings.edge_tts_url)
        self._attempts = max(1, settings.tts_retry_attempts)
        self._initial_delay_s = settings.tts_retry_initial_delay_s
        self._timeout_s = settings.tts_timeout_s

    def synthesize(self, text: str, voice: str | None = None) -> AsyncIterator[SpeechPiece]:
        """Run in a task of its own (see ``_relay``): cancelling the consumer closes the
        socket at once, even while the consumer is busy between two pieces."""
        return _relay(self._synthesize(text, voice or self.default_voice))

    async def probe(self, timeout_s: float = 5.0) -> None:
        """One tiny synthesis, one attempt, bounded by ``timeout_s``; ``TtsUnavailable``
        when edge-tts cannot be reached or does not answer with audio."""
        try:
            async with asyncio.timeout(timeout_s):
                async for _ in self._attempt(PROBE_TEXT, self.default_voice):
                    pass
        except _FAILURES as exc:
            raise TtsUnavailable(f"edge-tts did not answer a test: {describe(exc)}") from exc

    async def _synthesize(self, text: str, voice: str) -> AsyncGenerator[SpeechPiece, None]:
        if not is_edge_voice(voice):
            raise TtsUnavailable(f"{voice!r} is not an edge-tts voice (like {DEFAULT_VOICE})")
        shift_ms = 0.0  # the audio of the pieces before
        for offset, piece in split_for_speech(text, MAX_PIECE_CHARS):
            cursor, piece_ms = 0, 0.0
            async for item in self._piece(piece, voice):
                if isinstance(item, AudioData):
                    piece_ms += mp3.duration_ms(item.data)
                    yield item
                    continue
                start = piece.find(item.text, cursor) if item.text else -1
                span: tuple[int | None, int | None] = (None, None)
                if start >= 0:
                    cursor = start + len(item.text)
                    span = (offset + start, offset + cursor)
                yield dataclasses.replace(
                    item, offset_ms=item.offset_ms + shift_ms, start=span[0], end=span[1]
                )
            shift_ms += piece_ms

    async def _piece(self, piece: str, voice: str) -> AsyncGenerator[SpeechPiece, None]:
        """One piece, tried again (with backoff) while nothing of it has been yielded."""
        delay = self._initial_delay_s
        for attempt in range(1, self._attempts + 1):
            yielded = False
            try:
                async for item in self._attempt(piece, voice):
                    yielded = True
                    yield item
                return
            except _FAILURES as exc:
                if yielded:
                    raise TtsUnavailable(
                        f"edge-tts failed after part of the audio: {describe(exc)}"
                    ) from exc
                if attempt == self._attempts:
                    raise TtsUnavailable(
                        f"edge-tts unavailable after {attempt} attempt(s): {describe(exc)}"
                    ) from exc
                log.warning("edge-tts attempt %d failed (%s); retrying", attempt, describe(exc))
            await asyncio.sleep(delay)
            delay *= 2

    async def _attempt(self, piece: str, voice: str) -> AsyncGenerator[SpeechPiece, None]:
        """One WebSocket: whole MP3 frames and word marks (offsets from this audio's
        start, no spans); ``StreamCut`` when the connection ends before ``turn.end``."""
        communicate = edge_tts.Communicate(piece, voice, boundary="WordBoundary")
        framer, received = mp3.Mp3Framer(), 0
        use_endpoint(self.endpoint)  # read by the first step of the stream, just below
        stream = communicate.stream()
        async with aclosing(stream):
            while True:
                # Every wait is bounded here: the consumer runs elsewhere (``_relay``).
                async with asyncio.timeout(self._timeout_s):
                    chunk = await anext(stream, None)
                if chunk is None:
                    break
                if chunk["type"] == "audio":
                    received += len(chunk["data"])
                    if frames := framer.feed(chunk["data"]):
                        yield AudioData(frames)
                elif chunk["type"] == "WordBoundary":
                    yield WordMark(
                        text=chunk["text"],
                        offset_ms=chunk["offset"] / TICKS_PER_MS,
                        duration_ms=chunk["duration"] / TICKS_PER_MS,
                        start=None,
                        end=None,
                    )
        # edge-tts adds a turn's audio to ``cumulative_audio_bytes`` at ``turn.end`` only.
        if communicate.state["cumulative_audio_bytes"] != received:
            raise StreamCut(f"the connection closed after {received} bytes, before the end")
        if tail := framer.flush():
            yield AudioData(tail)


def endpoint_url(url: str | None) -> str:
    """The WebSocket URL edge-tts will use: ``url`` (with the ``?`` edge-tts needs, as it
    appends its parameters with ``&``) or edge-tts's own."""
    if not url:
        return str(edge_tts.constants.WSS_URL)
    return url if "?" in url else f"{url}?"


def use_endpoint(url: str) -> None:
    """THE one place that points edge-tts at a URL.

    edge-tts 7.3 has no parameter for it: ``communicate.py`` imports ``WSS_URL`` into its
    own namespace and reads it when it opens each socket, so that module global is
    patched (process-wide state, not ours to avoid). It is set right before each socket
    is opened, so providers with different URLs in one process each get their own, the
    one exception being edge-tts's own 403 retry, which reads whatever is set then."""
    edge_tts.communicate.WSS_URL = url  # type: ignore[attr-defined]  # not re-exported


def is_edge_voice(voice: str) -> bool:
    """Whether edge-tts accepts ``voice`` (``en-US-AriaNeural`` or the long form)."""
    try:
        TTSConfig(voice, "+0%", "+0%", "+0Hz", "WordBoundary")
    except (TypeError, ValueError):
        return False
    return True


def describe(exc: BaseException) -> str:
    """A short account of a failure without the URL (aiohttp's messages carry it)."""
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"HTTP {exc.status} on connect"
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {exc.host}:{exc.port}"
    if isinstance(exc, EdgeTTSException | ValueError | KeyError):
        return f"{type(exc).__name__}: {exc}"
    return type(exc).__name__


def describe_endpoint(url: str) -> str:
    """``url`` without its query, for logs."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


@dataclasses.dataclass(frozen=True, slots=True)
class _Failed:
    error: Exception


async def _relay(source: AsyncGenerator[SpeechPiece, None]) -> AsyncIterator[SpeechPiece]:
    """Iterate ``source`` in a task of its own and hand its items over.

    The consumer may be busy (publishing a chunk) when it is cancelled, and may never
    close this iterator: a done callback on the consumer's task then cancels the reading
    task, which closes the socket at once. Items are read ahead without a bound (speech
    is small, and edge-tts sends it faster than it plays)."""
    queue: asyncio.Queue[SpeechPiece | _Failed | None] = asyncio.Queue()  # None: the end

    async def pump() -> None:
        try:
            async with aclosing(source):
                async for item in source:
                    queue.put_nowait(item)
        except Exception as exc:
            queue.put_nowait(_Failed(exc))
        finally:
            queue.put_nowait(None)

    task = asyncio.create_task(pump(), name="edge-tts")
    consumer = asyncio.current_task()

    def stop(_: object) -> None:
        task.cancel()

    if consumer is not None:
        consumer.add_done_callback(stop)
    try:
        while (entry := await queue.get()) is not None:
            if isinstance(entry, _Failed):
                raise entry.error
            yield entry
    finally:
        if consumer is not None:
            consumer.remove_done_callback(stop)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
