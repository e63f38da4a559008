"""MPEG audio Layer III frame utilities: find whole frames in a byte stream.

Written here rather than taken from a library: mutagen (the well-kept choice) reads
whole files through a seekable file object and keeps its frame parser (``MPEGFrame``,
``iter_sync``) private and undocumented; nothing on PyPI that is maintained splits a
stream that arrives in arbitrary pieces. The format is small (a 4-byte header gives
each frame's length), so this module parses it, and the tests check it against
mutagen's own duration on real MP3 from lameenc.

Sync rules: a frame found right after another one of the same kind is trusted; a
frame found after an ID3v2 tag, garbage or a change of kind (MPEG version, layer or
sample rate) is trusted only when the next frame's header also parses and matches, so
a stray ``0xFF`` in garbage is not taken for a frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

MpegVersion = Literal[1, 2, 25]  # 25 stands for MPEG-2.5

_BITRATES_KBPS: dict[MpegVersion, tuple[int, ...]] = {
    1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    25: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_SAMPLE_RATES: dict[MpegVersion, tuple[int, int, int]] = {
    1: (44100, 48000, 32000),
    2: (22050, 24000, 16000),
    25: (11025, 12000, 8000),
}
_VERSION_BITS: dict[int, MpegVersion] = {0b00: 25, 0b10: 2, 0b11: 1}
_LAYER_III = 0b01
_MONO = 0b11


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """One Layer III frame header."""

    version: MpegVersion
    bitrate_kbps: int
    sample_rate: int
    padding: bool
    channels: int
    crc: bool

    @property
    def samples_per_frame(self) -> int:
        return 1152 if self.version == 1 else 576

    @property
    def length(self) -> int:
        """The whole frame in bytes, header included."""
        slot_factor = 144 if self.version == 1 else 72
        return slot_factor * self.bitrate_kbps * 1000 // self.sample_rate + int(self.padding)

    @property
    def duration_ms(self) -> float:
        return self.samples_per_frame * 1000.0 / self.sample_rate

    def same_stream(self, other: FrameHeader) -> bool:
        """Whether ``other`` may follow this frame in one stream (bitrate may vary)."""
        return (self.version, self.sample_rate) == (other.version, other.sample_rate)


def parse_header(data: bytes | bytearray | memoryview, offset: int = 0) -> FrameHeader | None:
    """The Layer III header at ``offset``, or None (no sync, other layer, free format,
    reserved values, or fewer than 4 bytes)."""
    if len(data) - offset < 4:
        return None
    b0, b1, b2, b3 = data[offset], data[offset + 1], data[offset + 2], data[offset + 3]
    if b0 != 0xFF or b1 & 0xE0 != 0xE0:
        return None
    version = _VERSION_BITS.get((b1 >> 3) & 0b11)
    bitrate_index, rate_index = b2 >> 4, (b2 >> 2) & 0b11
    # Free format (0) has no length in the header; 15, rate 3 and emphasis 2 are reserved.
    if (
        version is None
        or (b1 >> 1) & 0b11 != _LAYER_III
        or bitrate_index in (0, 15)
        or rate_index == 3
        or b3 & 0b11 == 0b10
    ):
        return None
    return FrameHeader(
        version=version,
        bitrate_kbps=_BITRATES_KBPS[version][bitrate_index],
        sample_rate=_SAMPLE_RATES[version][rate_index],
        padding=bool(b2 & 0b10),
        channels=1 if b3 >> 6 == _MONO else 2,
        crc=not b1 & 1,
    )


@dataclass(frozen=True, slots=True)
class _Frame:
    start: int
    header: FrameHeader


@dataclass(frozen=True, slots=True)
class _Skip:
    to: int  # may lie past the data (an ID3 tag not yet all here)


_NEED_MORE = None
_Step = _Frame | _Skip | None


def _id3v2_size(data: bytes | bytearray, pos: int) -> int | None:
    """Size of the ID3v2 tag at ``pos`` (header, body, footer), or None if there is none.
    Needs 10 bytes."""
    if data[pos : pos + 3] != b"ID3" or len(data) - pos < 10:
        return None
    size_bytes = data[pos + 6 : pos + 10]
    if any(b & 0x80 for b in size_bytes):
        return None  # not syncsafe: not a tag
    size = 0
    for b in size_bytes:
        size = size << 7 | b
    has_footer = bool(data[pos + 5] & 0x10)
    return 10 + size + (10 if has_footer else 0)


def _next_sync(data: bytes | bytearray, pos: int) -> int:
    found = data.find(b"\xff", pos)
    return len(data) if found < 0 else found


def _step(data: bytes | bytearray, pos: int, last: FrameHeader | None, final: bool) -> _Step:
    """What lies at ``pos``: a trusted frame, something to skip, or "need more data"
    (never when ``final``). ``last`` is the frame just before ``pos`` (None after a skip)."""
    n = len(data)
    if n - pos < 10 and data[pos : pos + 3] == b"ID3"[: n - pos]:
        return _Skip(n) if final else _NEED_MORE  # maybe the start of a tag
    tag = _id3v2_size(data, pos)
    if tag is not None:
        return _Skip(pos + tag)
    if n - pos < 4:
        return _Skip(n) if final else _NEED_MORE
    header = parse_header(data, pos)
    if header is None:
        return _Skip(_next_sync(data, pos + 1))
    end = pos + header.length
    if end > n:
        # Not all here yet; at the end of the data, a truncated frame is dropped.
        return _Skip(_next_sync(data, pos + 1)) if final else _NEED_MORE
    if last is not None and last.same_stream(header):
        return _Frame(pos, header)
    # After a skip or a change of stream: trust it only if the next header agrees.
    if n - end < 4:
        return _Frame(pos, header) if final else _NEED_MORE
    after = parse_header(data, end)
    if (after is not None and after.same_stream(header)) or data[end : end + 3] in (
        b"ID3",
        b"TAG",
    ):
        return _Frame(pos, header)
    return _Skip(_next_sync(data, pos + 1))


def frames(data: bytes | bytearray) -> Iterator[tuple[int, int, FrameHeader]]:
    """``(offset, length, header)`` of every whole frame in ``data``, skipping ID3v2 tags
    and anything that is not a frame; a truncated last frame is left out."""
    pos, last = 0, None
    while pos < len(data):
        step = _step(data, pos, last, final=True)
        if isinstance(step, _Frame):
            yield step.start, step.header.length, step.header
            pos, last = step.start + step.header.length, step.header
        elif isinstance(step, _Skip):
            pos, last = step.to, None
        else:  # pragma: no cover - final steps never need more
            raise AssertionError("need more data at the end")


def duration_ms(data: bytes | bytearray) -> float:
    """The playing time of the whole frames in ``data``."""
    return sum(header.duration_ms for _, _, header in frames(data))


def split_frames(data: bytes | bytearray, max_bytes: int) -> list[bytes]:
    """Chunks of whole frames, each at most ``max_bytes`` (a single bigger frame makes a
    chunk of its own). Everything that is not a frame is left out."""
    chunks: list[bytes] = []
    start = end = -1
    for offset, length, _ in frames(data):
        if start >= 0 and (offset != end or offset + length - start > max_bytes):
            chunks.append(bytes(data[start:end]))
            start = -1
        if start < 0:
            start = offset
        end = offset + length
    if start >= 0:
        chunks.append(bytes(data[start:end]))
    return chunks


class Mp3Framer:
    """Re-cuts an MP3 byte stream that arrives in arbitrary pieces into whole frames.

    ``feed`` returns the whole frames completed so far (maybe ``b""``), keeping a partial
    frame for the next call; ID3v2 tags and garbage are dropped. ``flush`` ends the stream:
    it returns a frame still waiting for the next header to confirm it, drops a truncated
    last frame, and leaves the framer ready for a new stream.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._last: FrameHeader | None = None
        self._discard = 0  # bytes of an ID3 tag still to come and be dropped

    def feed(self, data: bytes | bytearray | memoryview) -> bytes:
        data = memoryview(data)
        if self._discard:
            dropped = min(self._discard, len(data))
            self._discard -= dropped
            data = data[dropped:]
        self._buffer += data
        return self._drain(final=False)

    def flush(self) -> bytes:
        out = self._drain(final=True)
        self._buffer.clear()
        self._last, self._discard = None, 0
        return out

    def _drain(self, *, final: bool) -> bytes:
        buffer, out, pos = self._buffer, bytearray(), 0
        while pos < len(buffer):
            step = _step(buffer, pos, self._last, final)
            if step is _NEED_MORE:
                break
            if isinstance(step, _Frame):
                end = step.start + step.header.length
                out += buffer[step.start : end]
                pos, self._last = end, step.header
            elif isinstance(step, _Skip):
                self._last = None
                if step.to > len(buffer):
                    self._discard = step.to - len(buffer)
                pos = min(step.to, len(buffer))
        del buffer[:pos]
        return bytes(out)
