"""MP3 frame utilities, checked against mutagen on real MP3 made by lameenc."""

from __future__ import annotations

import io
import itertools
import math
import random
import struct

import lameenc
import mutagen.mp3
import pytest

from amplify_stream.speech.mp3 import (
    FrameHeader,
    Mp3Framer,
    duration_ms,
    frames,
    parse_header,
    split_frames,
)


def encode(
    seconds: float, sample_rate: int, kbps: int, *, channels: int = 1, vbr: bool = False
) -> bytes:
    """Real MP3: a gliding tone (so frames differ) through lame."""
    encoder = lameenc.Encoder()
    encoder.set_in_sample_rate(sample_rate)
    encoder.set_out_sample_rate(sample_rate)
    encoder.set_channels(channels)
    encoder.set_quality(7)
    if vbr:
        encoder.set_vbr(4)
    else:
        encoder.set_bit_rate(kbps)
    count = int(seconds * sample_rate)
    samples = [int(9000 * math.sin(i * (0.02 + i / count * 0.2))) for i in range(count)]
    pcm = struct.pack(f"<{count * channels}h", *(s for s in samples for _ in range(channels)))
    return bytes(encoder.encode(pcm) + encoder.flush())


def mutagen_ms(data: bytes) -> float:
    return float(mutagen.mp3.MP3(io.BytesIO(data)).info.length) * 1000


def covered(data: bytes) -> int:
    """How many bytes of ``data`` are whole frames."""
    return sum(length for _, length, _ in frames(data))


def id3v2(body: bytes, *, footer: bool = False) -> bytes:
    size = len(body)
    syncsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    flags = 0x10 if footer else 0
    tag = b"ID3\x04\x00" + bytes([flags]) + syncsafe + body
    return tag + (b"3DI\x04\x00" + bytes([flags]) + syncsafe if footer else b"")


# (sample rate, kbps) for MPEG-1, MPEG-2 and MPEG-2.5
STREAMS = [
    *[(44100, 128), (48000, 320), (32000, 32)],
    *[(22050, 48), (24000, 64), (16000, 8)],
    *[(11025, 16), (8000, 16)],
]


@pytest.fixture(scope="module")
def speechlike() -> bytes:
    return encode(3.0, 22050, 48)


# ---------------------------------------------------------------- headers


@pytest.mark.parametrize(
    ("raw", "expected", "length", "samples"),
    [
        # MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, no padding: 144 * 128000 / 44100 = 417
        (b"\xff\xfb\x90\x64", FrameHeader(1, 128, 44100, False, 2, False), 417, 1152),
        # ... with padding, mono
        (b"\xff\xfb\x92\xc4", FrameHeader(1, 128, 44100, True, 1, False), 418, 1152),
        # MPEG-2, 48 kbit/s, 22.05 kHz, mono (what the espeak provider makes): 72 * 48000 / 22050
        (b"\xff\xf3\x60\xc4", FrameHeader(2, 48, 22050, False, 1, False), 156, 576),
        # MPEG-2, 48 kbit/s, 24 kHz, CRC-protected (edge-tts's format, with a CRC)
        (b"\xff\xf2\x64\xc4", FrameHeader(2, 48, 24000, False, 1, True), 144, 576),
        # MPEG-2.5, 16 kbit/s, 8 kHz
        (b"\xff\xe3\x28\xc4", FrameHeader(25, 16, 8000, False, 1, False), 144, 576),
    ],
)
def test_parse_header(raw: bytes, expected: FrameHeader, length: int, samples: int) -> None:
    header = parse_header(b"junk" + raw, 4)
    assert header == expected
    assert header.length == length
    assert header.samples_per_frame == samples
    assert header.duration_ms == pytest.approx(samples * 1000 / header.sample_rate)


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfb\x90",  # too short
        b"\xfe\xfb\x90\x64",  # no sync
        b"\xff\xfd\x90\x64",  # layer II
        b"\xff\xff\x90\x64",  # layer I
        b"\xff\xf9\x90\x64",  # layer "00" reserved
        b"\xff\xeb\x90\x64",  # version "01" reserved
        b"\xff\xfb\x00\x64",  # free format
        b"\xff\xfb\xf0\x64",  # bitrate index 15
        b"\xff\xfb\x9c\x64",  # sample rate index 3
        b"\xff\xfb\x90\x66",  # emphasis "10" reserved
    ],
)
def test_parse_header_rejects(raw: bytes) -> None:
    assert parse_header(raw) is None


# ---------------------------------------------------------------- whole streams


@pytest.mark.parametrize(("sample_rate", "kbps"), STREAMS)
def test_duration_matches_mutagen(sample_rate: int, kbps: int) -> None:
    data = encode(2.0, sample_rate, kbps)
    headers = [header for _, _, header in frames(data)]
    assert covered(data) == len(data)
    assert {(h.sample_rate, h.bitrate_kbps) for h in headers} == {(sample_rate, kbps)}
    assert duration_ms(data) == pytest.approx(mutagen_ms(data), rel=0.001)
    # lame pads the 2 s of PCM to whole frames, plus its encoder delay.
    assert 2000 <= duration_ms(data) <= 2000 + 3 * headers[0].duration_ms + 60


def test_stereo_and_variable_bitrate() -> None:
    stereo = encode(1.0, 44100, 128, channels=2)
    assert {h.channels for _, _, h in frames(stereo)} == {2}
    assert duration_ms(stereo) == pytest.approx(mutagen_ms(stereo), rel=0.001)
    vbr = encode(2.0, 44100, 0, vbr=True)
    assert covered(vbr) == len(vbr)
    assert len({h.bitrate_kbps for _, _, h in frames(vbr)}) > 1
    assert duration_ms(vbr) == pytest.approx(len(list(frames(vbr))) * 1152 / 44.1)


def test_offsets_are_in_the_input(speechlike: bytes) -> None:
    data = id3v2(b"\x00" * 50) + speechlike
    spans = list(frames(data))
    assert spans[0][0] == 60
    for (offset, length, header), (after, _, _) in itertools.pairwise(spans):
        assert after == offset + length
        assert parse_header(data, offset) == header


def test_frames_skip_tags_and_garbage(speechlike: bytes) -> None:
    # Garbage holding a stray sync that parses as a header but is not followed by one.
    garbage = b"not mp3 \xff\xfb\x90\x64 at all \xff\xff"
    tag = id3v2(b"TIT2\x00\x00\x00\x05\x00\x00hi\xff\xfb\x90\x64", footer=True)
    trailer = b"TAG" + b"\x00" * 125  # ID3v1
    data = tag + garbage + speechlike + trailer
    assert b"".join(split_frames(data, 10**9)) == speechlike
    assert duration_ms(data) == pytest.approx(duration_ms(speechlike))


def test_truncated_last_frame_is_left_out(speechlike: bytes) -> None:
    whole = list(frames(speechlike))
    cut = speechlike[: whole[-1][0] + 10]
    assert covered(cut) == whole[-1][0]
    assert duration_ms(cut) == pytest.approx(duration_ms(speechlike) - whole[-1][2].duration_ms)


def test_nothing_in_nothing() -> None:
    assert list(frames(b"")) == []
    assert duration_ms(b"\x00" * 100) == 0
    assert split_frames(b"garbage", 100) == []


# ---------------------------------------------------------------- split_frames


@pytest.mark.parametrize("max_bytes", [1, 156, 157, 500, 4096, 10**9])
def test_split_frames_whole_frames_within_limit(speechlike: bytes, max_bytes: int) -> None:
    chunks = split_frames(speechlike, max_bytes)
    assert b"".join(chunks) == speechlike
    largest = max(length for _, length, _ in frames(speechlike))
    for chunk in chunks:
        assert covered(chunk) == len(chunk)
        assert len(chunk) <= max(max_bytes, largest)
        if len(chunk) > max_bytes:  # only a single frame may be over the limit
            assert len(list(frames(chunk))) == 1


def test_any_prefix_of_chunks_is_clean_mp3(speechlike: bytes) -> None:
    chunks = split_frames(speechlike, 1000)
    assert len(chunks) > 5
    prefix = b""
    for chunk in chunks:
        prefix += chunk
        assert covered(prefix) == len(prefix)
        assert duration_ms(prefix) == pytest.approx(mutagen_ms(prefix), rel=0.001)


# ---------------------------------------------------------------- Mp3Framer


def feed_in_pieces(framer: Mp3Framer, data: bytes, rng: random.Random, most: int) -> list[bytes]:
    outs = []
    i = 0
    while i < len(data):
        size = rng.randint(1, most)
        outs.append(framer.feed(data[i : i + size]))
        i += size
    return outs


@pytest.mark.parametrize("most", [1, 7, 200, 5000])
def test_framer_rebuilds_the_stream_from_any_pieces(speechlike: bytes, most: int) -> None:
    rng = random.Random(most)
    framer = Mp3Framer()
    outs = feed_in_pieces(framer, speechlike, rng, most)
    outs.append(framer.flush())
    assert b"".join(outs) == speechlike
    prefix = b""
    for out in filter(None, outs):  # every output is whole frames, so every prefix plays
        assert covered(out) == len(out)
        prefix += out
        assert covered(prefix) == len(prefix)


def test_framer_returns_frames_as_soon_as_they_are_whole(speechlike: bytes) -> None:
    spans = list(frames(speechlike))
    framer = Mp3Framer()
    # The first frame waits for the next header to confirm it...
    assert framer.feed(speechlike[: spans[1][0] + 3]) == b""
    assert framer.feed(speechlike[spans[1][0] + 3 : spans[1][0] + 4]) == speechlike[: spans[1][0]]
    # ...after that, a frame leaves the moment its last byte arrives.
    end = spans[2][0] + spans[2][1]
    assert (
        framer.feed(speechlike[spans[1][0] + 4 : end - 1]) == speechlike[spans[1][0] : spans[2][0]]
    )
    assert framer.feed(speechlike[end - 1 : end]) == speechlike[spans[2][0] : end]


def test_framer_skips_tags_and_garbage_across_pieces(speechlike: bytes) -> None:
    big_tag = id3v2(bytes(range(256)) * 40)  # 10 KiB, with 0xFF bytes, fed in small pieces
    data = big_tag + b"\x00\xff\xfb\x90\x64\xff" + speechlike
    framer = Mp3Framer()
    outs = feed_in_pieces(framer, data, random.Random(3), 300)
    assert b"".join([*outs, framer.flush()]) == speechlike


def test_framer_flush_ends_the_stream(speechlike: bytes) -> None:
    spans = list(frames(speechlike))
    framer = Mp3Framer()
    one = speechlike[: spans[0][1]]
    assert framer.feed(one) == b""  # unconfirmed: could be a stray sync
    assert framer.flush() == one  # the stream ended: it was a frame
    # A truncated last frame is dropped, and the framer starts a new stream cleanly.
    assert framer.feed(speechlike[: spans[3][0] + 20]) == speechlike[: spans[2][0] + spans[2][1]]
    assert framer.flush() == b""
    assert framer.feed(speechlike) + framer.flush() == speechlike
