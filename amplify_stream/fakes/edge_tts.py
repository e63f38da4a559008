"""A fake edge-tts server: the real WebSocket protocol (``edge_tts_wire``) with real MP3.

Any path is accepted with the query edge-tts sends (``TrustedClientToken``,
``ConnectionId``, ``Sec-MS-GEC``, ``Sec-MS-GEC-Version``); the ``Sec-MS-GEC`` token is
checked against the server's clock (``clock_offset_s`` ahead of this machine's), so a
skewed clock gets the 403 with a ``Date`` that edge-tts corrects itself by. The speech is
eSpeak NG's (offline), sent in binary frames cut at random sizes (never frame-aligned,
like the real service), its words as ``WordBoundary`` metadata.

Faults, each for the first ``fault_count`` connections (then the fake behaves):
``forbidden`` (403 with ``Date``), ``rate_limited`` (429), ``unavailable`` (503),
``no_audio`` (``turn.start`` then ``turn.end``), ``stall`` (reads, never answers),
``drop`` (some audio, then the socket is closed). What it saw: ``app[FAKE_EDGE_RECORD]``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

from aiohttp import WSCloseCode, WSMsgType, web
from edge_tts.constants import TRUSTED_CLIENT_TOKEN

from amplify_stream.config.groups import SpeechSettings
from amplify_stream.fakes import edge_tts_wire as wire
from amplify_stream.fakes.settings import DEFAULTS, FakeSettings
from amplify_stream.speech.base import AudioData, SpeechProvider

log = logging.getLogger(__name__)

Fault = Literal["none", "forbidden", "rate_limited", "unavailable", "no_audio", "stall", "drop"]
ConnectionState = Literal["open", "refused", "completed", "dropped", "disconnected", "failed"]
STATUS_FAULTS: dict[str, int] = {"forbidden": 403, "rate_limited": 429, "unavailable": 503}
PATH = "/consumer/speech/synthesize/readaloud/edge/v1"


@dataclass(frozen=True, slots=True)
class FakeEdgeConfig:
    # The defaults of the settings (``fakes/settings.py``) where there is one.
    host: str = DEFAULTS.fake_edge_tts_host
    port: int = DEFAULTS.fake_edge_tts_port
    fault: Fault = DEFAULTS.fake_edge_tts_fault
    fault_count: int = DEFAULTS.fake_edge_tts_fault_count
    # The server's clock runs this far ahead of this machine's (Date, token check).
    clock_offset_s: float = 0.0
    check_token: bool = True
    # Audio frames of random sizes in this range, this long apart.
    min_chunk_bytes: int = 300
    max_chunk_bytes: int = 3000
    chunk_delay_s: float = 0.0
    drop_after_frames: int = 2
    seed: int = 7
    # How long the client has to send speech.config and ssml.
    request_timeout_s: float = 10.0
    espeak_rate_wpm: int = 175
    # Keep the MP3 sent on each connection in the record (tests).
    record_audio: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.min_chunk_bytes <= self.max_chunk_bytes:
            raise ValueError("need 0 < min_chunk_bytes <= max_chunk_bytes")

    @classmethod
    def from_settings(cls, settings: FakeSettings, speech: SpeechSettings) -> FakeEdgeConfig:
        return cls(**settings.of("fake_edge_tts_"), espeak_rate_wpm=speech.espeak_rate_wpm)


@dataclass(slots=True)
class EdgeConnection:
    """One connection as the fake saw it."""

    index: int
    query: dict[str, str]
    status: int = 101  # the HTTP status of the upgrade
    fault: Fault = "none"
    state: ConnectionState = "open"
    voice: str | None = None
    text: str | None = None
    word_boundaries: bool = False
    audio_frames: int = 0
    audio_bytes: int = 0
    words: int = 0
    audio: bytearray = field(default_factory=bytearray)  # with ``record_audio``


@dataclass(slots=True)
class FakeEdgeRecord:
    connections: list[EdgeConnection] = field(default_factory=list)
    faults: int = 0  # faults served so far

    def count(self, *, state: ConnectionState | None = None, status: int | None = None) -> int:
        return sum(
            1
            for c in self.connections
            if (state is None or c.state == state) and (status is None or c.status == status)
        )

    @property
    def open(self) -> int:
        return self.count(state="open")


FAKE_EDGE_CONFIG = web.AppKey("fake_edge_config", FakeEdgeConfig)
FAKE_EDGE_RECORD = web.AppKey("fake_edge_record", FakeEdgeRecord)
FAKE_EDGE_SPEECH = web.AppKey("fake_edge_speech", SpeechProvider)


def create_fake_edge_app(config: FakeEdgeConfig, speech: SpeechProvider) -> web.Application:
    app = web.Application()
    app[FAKE_EDGE_CONFIG] = config
    app[FAKE_EDGE_RECORD] = FakeEdgeRecord()
    app[FAKE_EDGE_SPEECH] = speech
    app.router.add_get("/{path:.*}", _handle)
    return app


@dataclass(frozen=True, slots=True)
class FakeEdgeServer:
    url: str  # for ``AMPLIFY_EDGE_TTS_URL``: ws://host:port/...?TrustedClientToken=...
    app: web.Application

    @property
    def record(self) -> FakeEdgeRecord:
        return self.app[FAKE_EDGE_RECORD]


def default_speech(config: FakeEdgeConfig) -> SpeechProvider:
    """eSpeak NG with default settings (no environment read: the fake is not configured
    by it) at the configured rate."""
    from amplify_stream.speech.espeak import EspeakProvider

    return EspeakProvider(SpeechSettings(espeak_rate_wpm=config.espeak_rate_wpm))


@asynccontextmanager
async def serve_fake_edge_tts(
    config: FakeEdgeConfig, speech: SpeechProvider | None = None
) -> AsyncIterator[FakeEdgeServer]:
    """Serve the fake on ``config.host:config.port`` (port 0 picks a free one); speech
    from ``speech`` (default: eSpeak NG)."""
    app = create_fake_edge_app(config, speech or default_speech(config))
    # handler_cancellation: a handler learns at once that its client went away.
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        host = f"[{host}]" if ":" in host else host
        url = f"ws://{host}:{port}{PATH}?TrustedClientToken={TRUSTED_CLIENT_TOKEN}"
        yield FakeEdgeServer(url=url, app=app)
    finally:
        await runner.cleanup()


async def run_fake_edge_tts(
    settings: FakeSettings,
    speech: SpeechSettings,
    *,
    on_ready: Callable[[FakeEdgeServer], object] | None = None,
) -> None:
    """Serve the fake until cancelled (``amplify-stream fake edge-tts``); its voice speaks
    at ``speech.espeak_rate_wpm``."""
    config = FakeEdgeConfig.from_settings(settings, speech)
    async with serve_fake_edge_tts(config, default_speech(config)) as server:
        log.info("fake edge-tts on %s (fault: %s)", server.url, config.fault)
        if on_ready is not None:
            on_ready(server)
        await asyncio.Event().wait()


async def _handle(request: web.Request) -> web.StreamResponse:
    config, record = request.app[FAKE_EDGE_CONFIG], request.app[FAKE_EDGE_RECORD]
    conn = EdgeConnection(index=len(record.connections), query=dict(request.query))
    record.connections.append(conn)
    server_now = time.time() + config.clock_offset_s
    if missing := wire.missing_query(conn.query):
        return _refuse(conn, 400, server_now, f"missing query parameters: {', '.join(missing)}")
    if config.check_token and not wire.token_valid(conn.query["Sec-MS-GEC"], server_now):
        return _refuse(conn, 403, server_now, "")
    if config.fault != "none" and record.faults < config.fault_count:
        record.faults += 1
        conn.fault = config.fault
    if conn.fault in STATUS_FAULTS:
        return _refuse(conn, STATUS_FAULTS[conn.fault], server_now, "")
    ws = web.WebSocketResponse(heartbeat=None)
    await ws.prepare(request)
    try:
        async with asyncio.timeout(config.request_timeout_s):
            synthesis = await _read_request(ws, conn)
        if conn.fault != "stall":
            await _answer(ws, conn, synthesis, config, request.app[FAKE_EDGE_SPEECH])
            if conn.state == "open":
                conn.state = "completed"
        if conn.state != "dropped":
            await _read_until_closed(ws)  # (a stalled one stays open until the client goes)
    except (wire.WireError, TimeoutError) as exc:
        log.warning("fake edge-tts: bad request on connection %d: %s", conn.index, exc)
        conn.state = "failed"
        await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=str(exc)[:100].encode())
    except ConnectionError:
        if conn.state == "open":
            conn.state = "disconnected"
    finally:
        # Cancelled (the client went away: handler_cancellation) or the client closed.
        if conn.state == "open":
            conn.state = "disconnected"
    return ws


def _refuse(conn: EdgeConnection, status: int, server_now: float, text: str) -> web.Response:
    conn.status, conn.state = status, "refused"
    headers = {"Date": wire.http_date(server_now)}
    if status == 429:
        headers["Retry-After"] = "1"
    return web.Response(status=status, text=text, headers=headers)


async def _read_request(ws: web.WebSocketResponse, conn: EdgeConnection) -> wire.SynthesisRequest:
    """``speech.config`` then ``ssml``, as edge-tts sends them."""
    config: wire.ClientMessage | None = None
    async for msg in ws:
        if msg.type != WSMsgType.TEXT:
            raise wire.WireError(f"unexpected {msg.type.name} frame")
        message = wire.parse_client_message(msg.data)
        if message.path == "speech.config":
            config = message
            conn.word_boundaries = wire.word_boundaries_wanted(message)
        elif message.path == "ssml" and config is not None:
            synthesis = wire.parse_ssml(message)
            conn.voice, conn.text = synthesis.voice, synthesis.text
            return synthesis
        else:
            raise wire.WireError(f"unexpected message {message.path!r}")
    raise ConnectionError("the client left before its request")


async def _read_until_closed(ws: web.WebSocketResponse) -> None:
    async for _ in ws:
        pass


async def _answer(
    ws: web.WebSocketResponse,
    conn: EdgeConnection,
    synthesis: wire.SynthesisRequest,
    config: FakeEdgeConfig,
    speech: SpeechProvider,
) -> None:
    rid, sid = synthesis.request_id, uuid.uuid4().hex
    await ws.send_str(wire.turn_start(rid))
    if conn.fault == "no_audio":
        await ws.send_str(wire.turn_end(rid))
        return
    await ws.send_str(wire.response(rid, sid))
    cutter = _Cutter(random.Random(config.seed + conn.index), config)

    async def send_audio(chunks: list[bytes]) -> bool:
        """False once the fault has dropped the connection."""
        for chunk in chunks:
            await ws.send_bytes(wire.audio_frame(rid, sid, chunk))
            conn.audio_frames += 1
            conn.audio_bytes += len(chunk)
            if config.record_audio:
                conn.audio += chunk
            if conn.fault == "drop" and conn.audio_frames >= config.drop_after_frames:
                conn.state = "dropped"
                await ws.close(code=WSCloseCode.INTERNAL_ERROR)
                return False
            if config.chunk_delay_s:
                await asyncio.sleep(config.chunk_delay_s)
        return True

    async for piece in speech.synthesize(synthesis.text, espeak_voice(synthesis.locale)):
        if isinstance(piece, AudioData):
            if not await send_audio(cutter.feed(piece.data)):
                return
        elif conn.word_boundaries:
            await ws.send_str(wire.word_boundary(rid, piece))
            conn.words += 1
    if not await send_audio(cutter.flush()):
        return
    await ws.send_bytes(wire.audio_frame(rid, sid, b""))
    # Completed before the last message goes: the client may close the moment it has it.
    conn.state = "completed"
    await ws.send_str(wire.turn_end(rid))


def espeak_voice(locale: str) -> str:
    """eSpeak's name for an edge locale: ``en-US`` -> ``en-us``, ``fr-FR`` -> ``fr``."""
    language, _, region = locale.lower().partition("-")
    return f"{language}-{region}" if language == "en" and region else language


class _Cutter:
    """Cuts a byte stream at random sizes (so frames straddle audio messages)."""

    def __init__(self, rng: random.Random, config: FakeEdgeConfig) -> None:
        self._rng, self._config = rng, config
        self._buffer = bytearray()
        self._next = self._size()

    def _size(self) -> int:
        return self._rng.randint(self._config.min_chunk_bytes, self._config.max_chunk_bytes)

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        chunks = []
        while len(self._buffer) >= self._next:
            chunks.append(bytes(self._buffer[: self._next]))
            del self._buffer[: self._next]
            self._next = self._size()
        return chunks

    def flush(self) -> list[bytes]:
        chunks = [bytes(self._buffer)] if self._buffer else []
        self._buffer.clear()
        return chunks
