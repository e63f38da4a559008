"""EdgeProvider through the real edge-tts library against the fake edge-tts server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from typing import Any

import edge_tts.communicate
import pytest
from edge_tts.drm import DRM

from amplify_stream.errors import TtsUnavailable
from amplify_stream.fakes.edge_tts import FakeEdgeConfig, FakeEdgeServer, serve_fake_edge_tts
from amplify_stream.speech import create_speech_provider
from amplify_stream.speech.base import AudioData, SpeechPiece, SpeechProvider, WordMark
from amplify_stream.speech.edge import MAX_PIECE_CHARS, EdgeProvider
from amplify_stream.speech.mp3 import duration_ms, frames
from amplify_stream.text.chunks import split_for_speech
from tests.conftest import SettingsFactory
from tests.support import free_port

pytestmark = pytest.mark.timeout(60)

TEXT = (
    'Mara walked into the old lighthouse at dusk. "We should not be here," she said, '
    "and Tom & Élodie followed her up the stairs 🌊 in silence."
)
StartFake = Callable[..., Awaitable[FakeEdgeServer]]


@pytest.fixture(autouse=True)
def _edge_tts_globals(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """edge-tts keeps process-wide state: the clock skew learnt from 403s (class-global)
    and the URL patched into ``edge_tts.communicate``. Each test starts from scratch."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # edge-tts trusts env proxies
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    url = vars(edge_tts.communicate)["WSS_URL"]
    DRM.clock_skew_seconds = 0.0
    yield
    DRM.clock_skew_seconds = 0.0
    vars(edge_tts.communicate)["WSS_URL"] = url


@pytest.fixture
async def start_fake() -> AsyncIterator[StartFake]:
    """``await start_fake(**FakeEdgeConfig fields)``: a fake on a free port, closed after."""
    async with AsyncExitStack() as stack:

        async def start(**config: Any) -> FakeEdgeServer:
            values: dict[str, Any] = {"port": 0, "record_audio": True}
            fake = serve_fake_edge_tts(FakeEdgeConfig(**(values | config)))
            return await stack.enter_async_context(fake)

        yield start


@pytest.fixture
def edge(make_settings: SettingsFactory) -> Callable[..., EdgeProvider]:
    """``edge(fake, **settings)``: an EdgeProvider pointed at ``fake``, quick retries."""

    def make(fake: FakeEdgeServer, **overrides: Any) -> EdgeProvider:
        values: dict[str, Any] = {
            "speech_provider": "edge",
            "edge_tts_url": fake.url,
            "tts_retry_attempts": 3,
            "tts_retry_initial_delay_s": 0.01,
            "tts_timeout_s": 5.0,
        }
        return EdgeProvider(make_settings(**(values | overrides)))

    return make


async def collect(
    provider: SpeechProvider, text: str = TEXT, within: float = 20.0
) -> tuple[list[bytes], list[WordMark]]:
    chunks: list[bytes] = []
    words: list[WordMark] = []
    async with asyncio.timeout(within):
        async for piece in provider.synthesize(text):
            if isinstance(piece, AudioData):
                chunks.append(piece.data)
            else:
                words.append(piece)
    return chunks, words


async def collect_until_error(
    provider: SpeechProvider, text: str = TEXT, within: float = 20.0
) -> tuple[list[SpeechPiece], TtsUnavailable]:
    seen: list[SpeechPiece] = []
    with pytest.raises(TtsUnavailable) as caught:
        async with asyncio.timeout(within):
            async for piece in provider.synthesize(text):
                seen.append(piece)
    return seen, caught.value


def whole_frames(chunk: bytes) -> bool:
    """``chunk`` is nothing but whole MP3 frames, back to back from its first byte."""
    position = 0
    for offset, length, _ in frames(chunk):
        if offset != position:
            return False
        position += length
    return position == len(chunk) > 0


async def eventually(check: Callable[[], bool], within: float = 2.0) -> None:
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - polling the fake's plain record
            await asyncio.sleep(0.01)


# ------------------------------------------------------------------ the happy path


async def test_synthesis_streams_whole_frames_and_exact_word_spans(
    start_fake: StartFake, edge: Callable[..., EdgeProvider]
) -> None:
    fake = await start_fake()
    chunks, words = await collect(edge(fake))

    # The fake cut the MP3 at random sizes; every chunk out of the provider is whole frames.
    assert len(chunks) > 3
    assert all(whole_frames(chunk) for chunk in chunks)
    audio = b"".join(chunks)
    connection = fake.record.connections[0]
    assert audio == connection.audio  # nothing lost, nothing twice
    assert len(fake.record.connections) == 1 and connection.state == "completed"
    assert connection.voice == "Microsoft Server Speech Text to Speech Voice (en-US, AriaNeural)"
    assert connection.text == TEXT and connection.word_boundaries
    assert connection.audio_bytes == len(audio) and connection.audio_frames > len(chunks) // 2

    # Word timings: ms from the start, in order, inside the audio; spans exact.
    assert len(words) == connection.words >= 15
    offsets = [w.offset_ms for w in words]
    assert offsets == sorted(offsets) and offsets[-1] > 1000
    assert words[-1].offset_ms + words[-1].duration_ms <= duration_ms(audio) + 1
    assert all(w.duration_ms > 0 for w in words)
    for word in words:
        assert word.start is not None and word.end is not None
        assert TEXT[word.start : word.end] == word.text
    assert [w.text for w in words[:3]] == ["Mara", "walked", "into"]
    assert "Élodie" in [w.text for w in words]


async def test_long_text_is_one_socket_per_piece_with_shifted_offsets(
    start_fake: StartFake, edge: Callable[..., EdgeProvider]
) -> None:
    fake = await start_fake()
    text = " ".join([TEXT] * 12)  # '&' escapes to 5 bytes: still under edge-tts's split
    pieces = split_for_speech(text, MAX_PIECE_CHARS)
    assert len(pieces) >= 2
    chunks, words = await collect(edge(fake), text, within=40)
    assert b"".join(chunks) == b"".join(c.audio for c in fake.record.connections)

    connections = fake.record.connections
    assert [c.text for c in connections] == [piece for _, piece in pieces]
    assert all(c.state == "completed" for c in connections)
    assert all(whole_frames(chunk) for chunk in chunks)
    offsets = [w.offset_ms for w in words]
    assert offsets == sorted(offsets)
    total_ms = duration_ms(b"".join(chunks))
    assert words[-1].offset_ms + words[-1].duration_ms <= total_ms + 1
    # The second piece's words are shifted by all of the first piece's audio.
    second = words[connections[0].words]
    assert second.offset_ms >= duration_ms(connections[0].audio)
    assert second.start is not None and pieces[1][0] <= second.start < pieces[1][0] + 3
    for word in words:
        assert word.start is not None and word.end is not None
        assert text[word.start : word.end] == word.text


# ------------------------------------------------------------------ 403 and the clock


async def test_403_with_date_is_retried_by_edge_tts_itself(
    start_fake: StartFake, edge: Callable[..., EdgeProvider]
) -> None:
    fake = await start_fake(fault="forbidden", fault_count=1)
    # One attempt of ours: the second connection is edge-tts's own clock-skew retry.
    chunks, words = await collect(edge(fake, tts_retry_attempts=1))

    assert chunks and words
    assert [(c.status, c.state) for c in fake.record.connections] == [
        (403, "refused"),
        (101, "completed"),
    ]


async def test_a_skewed_clock_is_corrected_from_the_date_header(
    start_fake: StartFake, edge: Callable[..., EdgeProvider]
) -> None:
    # The server's clock is an hour ahead: our Sec-MS-GEC token is refused until edge-tts
    # learns the skew from the 403's Date (class-global: the fixture resets it).
    fake = await start_fake(clock_offset_s=3600)
    chunks, _ = await collect(edge(fake, tts_retry_attempts=1))

    assert chunks
    assert [c.status for c in fake.record.connections] == [403, 101]
    assert DRM.clock_skew_seconds == pytest.approx(3600, abs=2)


async def test_persistent_403_is_tts_unavailable(
    start_fake: StartFake, edge: Callable[..., EdgeProvider]
) -> None:
    fake = await start_fake(fault="forbidden")
    seen, error = await collect_until_error(edge(fake, tts_retry_attempts=2))

    assert seen == []
    assert "HTTP 403" in error.message and error.code == "tts_unavailable"
    assert "TrustedClientToken" not in error.message  # no URL in what clients see
    # Each of our two attempts is two connections: edge-tts retries a 403 once.
    assert [c.status for c in fake.record.connections] == [403] * 4


# ------------------------------------------------------------------ other failures


async def test_429_is_retried_with_backoff_then_succeeds(
    start_fake: StartFake, edge: Callable[..., EdgeProvider]
) -> None:
    fake = await start_fake(fault="rate_limited", fault_count=2)
    started = time.monotonic()
    chunks, words = await collect(edge(fake, tts_retry_initial_delay_s=0.1))

    assert chunks and words
    assert [c.status for c in fake.record.connections] == [429, 429, 101]
    assert time.monotonic() - started >= 0.1 + 0.2  # backoff: 0.1 s, then 0.2 s


async def test_persistent_503_is_tts_unavailable(
    start_fake: StartFake, edge: Callable[..., EdgeProvider]
) -> None:
    fake = await start_fake(fault="unavailable")
    seen, error = await collect_until_error(edge(fake))

    assert seen == [] and "HTTP 503" in error.message and "after 3 attempt(s)" in error.message
    assert [c.status for c in fake.record.connections] == [503] * 3


async def test_no_audio_is_retried_then_succeeds(
    start_fake: StartFake, edge: Callable[..., EdgeProvider]
) -> None:
    fake = await start_fake(fault="no_audio", fault_count=1)
    chunks, _ = await collect(edge(fake))

    assert b"".join(chunks) == fake.record.connections[1].audio
    assert [(c.fault, c.state) for c in fake.record.connections] == [
        ("no_audio", "completed"),
        ("none", "completed"),
    ]


async def test_persistent_no_audio_is_tts_unavailable(
    start_fake: StartFake, edge: Callable[..., EdgeProvider]
) -> None:
    fake = await start_fake(fault="no_audio")
    seen, error = await collect_until_error(edge(fake, tts_retry_attempts=2))

    assert seen == [] and "NoAudioReceived" in error.message
    assert len(fake.record.connections) == 2


async def test_a_stalled_server_is_cut_off_by_the_timeout(
    start_fake: StartFake, edge: Callable[..., EdgeProvider]
) -> None:
    fake = await start_fake(fault="stall")
    provider = edge(fake, tts_timeout_s=0.3, tts_retry_attempts=2)
    started = time.monotonic()
    seen, error = await collect_until_error(provider, within=5)

    assert time.monotonic() - started < 2.0
    assert seen == [] and "no answer in time" in error.message
    # Both sockets closed by us (the fake stayed silent and reading).
    await eventually(lambda: fake.record.count(state="disconnected") == 2)


async def test_a_drop_midway_fails_after_the_partial_audio_without_repeating_it(
    start_fake: StartFake, edge: Callable[..., EdgeProvider]
) -> None:
    fake = await start_fake(fault="drop", fault_count=1, drop_after_frames=3)
    seen, error = await collect_until_error(edge(fake))

    chunks = [p.data for p in seen if isinstance(p, AudioData)]
    assert chunks and all(whole_frames(chunk) for chunk in chunks)
    partial, sent = b"".join(chunks), fake.record.connections[0].audio
    # What went out is the whole frames of what arrived before the drop, once.
    assert sent.startswith(partial) and len(sent) - len(partial) < 600
    assert "after part of the audio" in error.message and "before the end" in error.message
    # Not retried (audio had gone out): one connection, dropped by the fake.
    assert [c.state for c in fake.record.connections] == ["dropped"]


async def test_a_drop_before_any_whole_frame_is_retried(
    start_fake: StartFake, edge: Callable[..., EdgeProvider]
) -> None:
    # 100 bytes is less than one frame: nothing went out yet, so a retry repeats nothing.
    fake = await start_fake(
        fault="drop", fault_count=1, drop_after_frames=1, min_chunk_bytes=100, max_chunk_bytes=100
    )
    chunks, _ = await collect(edge(fake))

    assert b"".join(chunks) == fake.record.connections[1].audio
    assert [c.state for c in fake.record.connections] == ["dropped", "completed"]


async def test_a_voice_edge_does_not_know_fails_at_once(
    start_fake: StartFake, edge: Callable[..., EdgeProvider]
) -> None:
    fake = await start_fake()
    with pytest.raises(TtsUnavailable, match="not an edge-tts voice"):
        async for _ in edge(fake).synthesize(TEXT, "en-us"):
            pass
    assert fake.record.connections == []


# ------------------------------------------------------------------ cancellation


@pytest.mark.parametrize("consumer", ["waiting", "busy"])
async def test_cancelling_the_consumer_closes_the_socket(
    start_fake: StartFake, edge: Callable[..., EdgeProvider], consumer: str
) -> None:
    fake = await start_fake(chunk_delay_s=0.2)
    provider = edge(fake)
    first = asyncio.Event()
    # Kept alive and never closed, on purpose: the socket must not wait for the garbage
    # collector to finalize the iterator.
    streams: list[AsyncIterator[SpeechPiece]] = []

    async def consume() -> None:
        streams.append(provider.synthesize(TEXT))
        async for piece in streams[0]:
            if isinstance(piece, AudioData):
                first.set()
                if consumer == "busy":  # cancelled while not awaiting the provider
                    await asyncio.sleep(30)

    task = asyncio.create_task(consume())
    async with asyncio.timeout(10):
        await first.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await eventually(lambda: fake.record.connections[0].state == "disconnected", within=2)
    assert fake.record.open == 0


# ------------------------------------------------------------------ choosing a provider


async def test_auto_uses_edge_when_it_answers(
    start_fake: StartFake, make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    fake = await start_fake()
    caplog.set_level(logging.INFO, logger="amplify_stream.speech")
    provider = await create_speech_provider(
        make_settings(speech_provider="auto", edge_tts_url=fake.url)
    )

    assert provider.name == "edge" and provider.default_voice == "en-US-AriaNeural"
    assert [c.state for c in fake.record.connections] == ["completed"]  # the probe
    # Our lines (the fake server's own access log, at INFO after some tests, is not ours).
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("amplify"))
    assert "speech: edge-tts at ws://127.0.0.1:" in ours
    assert "TrustedClientToken" not in ours


async def test_auto_falls_back_to_espeak_when_edge_is_out_of_reach(
    make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"ws://127.0.0.1:{free_port()}/edge/v1?TrustedClientToken=x"
    caplog.set_level(logging.INFO, logger="amplify_stream.speech")
    started = time.monotonic()
    provider = await create_speech_provider(make_settings(speech_provider="auto", edge_tts_url=url))

    assert provider.name == "espeak" and time.monotonic() - started < 6
    assert "speech: espeak" in caplog.text and "cannot connect" in caplog.text
    chunks, words = await collect(provider, "Still narrated, offline.")
    assert chunks and words


async def test_auto_falls_back_when_edge_stalls(
    start_fake: StartFake, make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("amplify_stream.speech.PROBE_TIMEOUT_S", 0.3)
    fake = await start_fake(fault="stall")
    provider = await create_speech_provider(
        make_settings(speech_provider="auto", edge_tts_url=fake.url)
    )
    assert provider.name == "espeak"
    await eventually(lambda: fake.record.open == 0)


async def test_explicit_choices_do_not_probe(
    start_fake: StartFake, make_settings: SettingsFactory
) -> None:
    fake = await start_fake()
    edge = await create_speech_provider(
        make_settings(speech_provider="edge", edge_tts_url=fake.url)
    )
    espeak = await create_speech_provider(make_settings(speech_provider="espeak"))
    assert (edge.name, espeak.name) == ("edge", "espeak")
    assert fake.record.connections == []


async def test_an_espeak_voice_setting_means_espeak(
    start_fake: StartFake, make_settings: SettingsFactory
) -> None:
    fake = await start_fake()
    settings = make_settings(speech_provider="auto", edge_tts_url=fake.url, voice="en-us")
    provider = await create_speech_provider(settings)
    assert provider.name == "espeak" and provider.default_voice == "en-us"
    assert fake.record.connections == []  # no probe needed
    with pytest.raises(ValueError, match="not an edge-tts voice"):
        EdgeProvider(settings)
