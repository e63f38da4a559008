# ruff: noqa: RUF001
"""The offline speech provider (real eSpeak NG, real lame) and the text helpers it shares."""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
import math
import random
import re
import socket
import threading
from array import array
from dataclasses import dataclass, field
from typing import Any

import mutagen.mp3
import pytest

from amplify_stream.config import Settings
from amplify_stream.speech import espeak
from amplify_stream.speech.base import AudioData, WordMark
from amplify_stream.speech.espeak import EspeakProvider
from amplify_stream.speech.mp3 import duration_ms, frames
from amplify_stream.text.chunks import split_for_speech
from amplify_stream.text.words import word_at
from tests.conftest import SettingsFactory

SENTENCE = "The quick brown fox jumps over the lazy dog near the quiet river bank."
STORY = (
    "Mara opened the door. The wind came in first, carrying the smell of rain and "
    "old leaves; then came the dog, muddy and proud. She laughed, didn't she? Of course "
    "she did. Nobody could stay angry at a dog like that for long."
)


# Words eSpeak reads in its own ways, mixed with plain ones in the jumble test.
JUMBLE = [
    *["Zoë", "crème", "Cafe\u0301", "didn't", "rock'n'roll", "U.S.A.", "Dr.", "e.g.", "3.14"],
    *["$5,000", "20%", "x86_64", "😀", "\U0001f469\u200d\U0001f469\u200d\U0001f467", "東京"],
    *["straße", "“quoted”", "(paren)", "—", "...", "well-known", "yes—no", "wait…what"],
    *["world!", "why?", "\r\n", "\t", "#tag", "@user", "a&b", "<b>", "1/2", "𝕏", "ﬁne", "Привет"],
]


@dataclass
class Spoken:
    pieces: list[AudioData | WordMark] = field(default_factory=list)

    @property
    def audio(self) -> bytes:
        return b"".join(p.data for p in self.pieces if isinstance(p, AudioData))

    @property
    def marks(self) -> list[WordMark]:
        return [p for p in self.pieces if isinstance(p, WordMark)]

    @property
    def audio_ms(self) -> float:
        return sum(duration_ms(p.data) for p in self.pieces if isinstance(p, AudioData))


async def speak(provider: EspeakProvider, text: str, voice: str | None = None) -> Spoken:
    spoken = Spoken()
    async for piece in provider.synthesize(text, voice):
        spoken.pieces.append(piece)
    return spoken


def mutagen_ms(data: bytes) -> float:
    return float(mutagen.mp3.MP3(io.BytesIO(data)).info.length) * 1000


def plain_words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text)


def assert_marks_exact(text: str, spoken: Spoken) -> None:
    marks = spoken.marks
    assert marks
    for mark in marks:
        assert mark.start is not None and mark.end is not None
        assert text[mark.start : mark.end] == mark.text, mark
        assert mark.text == mark.text.strip() and mark.text
        assert mark.duration_ms > 0
    for before, after in itertools.pairwise(marks):
        assert after.offset_ms >= before.offset_ms
        assert before.end is not None and after.start is not None
        assert after.start >= before.end
    last = marks[-1]
    assert last.offset_ms + last.duration_ms == pytest.approx(spoken.audio_ms)


def assert_most_words_marked(text: str, spoken: Spoken) -> None:
    """Marks name the text's words in order; eSpeak runs a few short ones into the word
    before them ("at a dog" gives "at", "dog")."""
    words = iter(plain_words(text))
    for mark in spoken.marks:
        assert mark.text in words
    assert len(spoken.marks) >= 0.9 * len(plain_words(text))


def assert_alike(one: Spoken, other: Spoken) -> None:
    """The same speech: eSpeak varies its wave a little from call to call (a few samples),
    never the words."""
    assert [(m.text, m.start, m.end) for m in one.marks] == [
        (m.text, m.start, m.end) for m in other.marks
    ]
    assert other.audio_ms == pytest.approx(one.audio_ms, rel=0.02)
    for a, b in zip(one.marks, other.marks, strict=True):
        assert b.offset_ms == pytest.approx(a.offset_ms, abs=30)


@pytest.fixture
def provider(make_settings: SettingsFactory) -> EspeakProvider:
    return EspeakProvider(make_settings())


# ---------------------------------------------------------------- audio


async def test_speaks_real_speech(
    provider: EspeakProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    pcm = bytearray()
    encode = espeak._Encoder.encode

    def spy(self: espeak._Encoder, data: bytes | bytearray) -> bytes:
        pcm.extend(data)
        return encode(self, data)

    monkeypatch.setattr(espeak._Encoder, "encode", spy)
    spoken = await speak(provider, SENTENCE)

    samples = array("h", bytes(pcm))
    window = 441  # 20 ms at 22.05 kHz
    loudness = [
        math.sqrt(sum(s * s for s in samples[i : i + window]) / window)
        for i in range(0, len(samples) - window, window)
    ]
    assert max(loudness) > 2000  # speech, not silence or noise floor
    assert sum(rms > 300 for rms in loudness) > len(loudness) / 2  # voiced most of the time
    assert len(samples) / 22.05 > 250 * len(SENTENCE.split())  # ~ 0.3 s a word at 175 wpm
    # MP3 of whole frames, as long as the PCM plus lame's delay and padding.
    for piece in spoken.pieces:
        if isinstance(piece, AudioData):
            assert sum(length for _, length, _ in frames(piece.data)) == len(piece.data)
    assert 0 <= spoken.audio_ms - len(samples) / 22.05 < 150


async def test_duration_grows_with_the_text(provider: EspeakProvider) -> None:
    once = await speak(provider, SENTENCE)
    thrice = await speak(provider, " ".join([SENTENCE] * 3))
    assert thrice.audio_ms > 2.6 * once.audio_ms


async def test_reported_duration_matches_mutagen(provider: EspeakProvider) -> None:
    spoken = await speak(provider, STORY)
    assert spoken.audio_ms == pytest.approx(mutagen_ms(spoken.audio), rel=0.05)
    assert_marks_exact(STORY, spoken)


async def test_long_text_streams_in_pieces(provider: EspeakProvider) -> None:
    text = " ".join([STORY] * 4)
    assert len(text) > 3 * espeak.PIECE_CHARS
    spoken = await speak(provider, text)
    audio_pieces = [p for p in spoken.pieces if isinstance(p, AudioData)]
    assert len(audio_pieces) >= 4
    # Marks come after the audio their word starts in, and spans point into the whole text.
    heard = 0.0
    for piece in spoken.pieces:
        if isinstance(piece, AudioData):
            heard += duration_ms(piece.data)
        else:
            assert piece.offset_ms < heard
    assert_marks_exact(text, spoken)
    assert_most_words_marked(text, spoken)
    assert spoken.audio_ms == pytest.approx(mutagen_ms(spoken.audio), rel=0.05)


async def test_nothing_to_say(provider: EspeakProvider) -> None:
    assert (await speak(provider, "")).pieces == []
    assert (await speak(provider, " \n\t ")).pieces == []


# ---------------------------------------------------------------- word marks


async def test_word_marks_are_exact_spans(provider: EspeakProvider) -> None:
    spoken = await speak(provider, STORY)
    assert_marks_exact(STORY, spoken)
    assert_most_words_marked(STORY, spoken)
    assert spoken.marks[0].offset_ms < 100


@pytest.mark.parametrize(
    "text",
    [
        "Zoë ate a crème brûlée in Malmö. Then 😀 she left, naïve as ever.",
        "Cafe\u0301 au lait: de\u0301ja\u0300 vu, \U0001f469\u200d\U0001f469\u200d\U0001f467 ok!",
        "東京 is big; Привет, γειά σου, straße. brown fox — yes—no… wait… what?",
        "“Quoted,” she said. (Parens) and 'single' and e.g. U.S.A. and $5,000 and x86_64.",
        "Tabs\tand\r\nnewlines\n\nand  double  spaces and \U0001d54f math.",
        "nul\x00byte and a lone \ud800 surrogate and \x07 bell",
    ],
)
async def test_unicode_and_oddities_keep_spans_exact(provider: EspeakProvider, text: str) -> None:
    spoken = await speak(provider, text)
    assert_marks_exact(text, spoken)
    plain = [w for w in re.findall(r"[A-Za-z]+", text) if len(w) > 1]
    marked = " ".join(m.text for m in spoken.marks)
    assert all(w in marked for w in plain)  # every plain word has its mark
    assert len(spoken.marks) >= 0.7 * len(text.split())


def test_espeak_text_position_counts_code_points_from_one() -> None:
    text = "Zoë ate crème, Cafe\u0301 cake 😀 then 東京 and 𝕏 done."
    speech = espeak._ENGINE.speak(text, ["en-us"], 175, threading.Event())
    starts = [index for index, _ in speech.words]
    for word in ("ate", "crème", "cake", "then", "東京", "and", "done"):
        assert text.index(word) in starts  # the code point index, not the UTF-8 byte's
    assert len(text.encode()) - len(text) > 10


async def test_every_plain_word_of_a_jumble_is_marked(provider: EspeakProvider) -> None:
    rng = random.Random(7)
    pool = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dogs", *JUMBLE]
    text = "".join(rng.choice(pool) + rng.choice([" ", ". ", ", ", "\n"]) for _ in range(300))
    spoken = await speak(provider, text)
    assert_marks_exact(text, spoken)
    marked = {m.start for m in spoken.marks}
    for match in re.finditer(r"(?<!\S)[A-Za-z]+(?=[\s.,]|$)", text):
        assert match.start() in marked, text[max(0, match.start() - 30) : match.end()]


def test_marks_from_espeak_quirks() -> None:
    """eSpeak's events as observed: a word after a "." that ends no sentence is placed on
    the space before it; an emoji's name is two words, the second on the space after it;
    "didn't" has length 4; "x86_64" gives several events."""
    piece = "the straße. brown 😀 she didn't x86_64 —"
    events = [(0, 0), (4, 100), (11, 500), (18, 800), (19, 1100), (20, 1400), (24, 1700)]
    events += [(31, 2000), (32, 2100), (34, 2200), (38, 2500)]
    marks = espeak._marks(10, piece, events, 1000.0, 4000.0)
    assert [(m.start, m.end) for m in marks] == [
        (10, 13),
        (14, 20),
        (22, 27),
        (28, 29),
        (30, 33),
        (34, 40),
        (41, 47),
    ]
    assert [piece[m.start - 10 : m.end - 10] for m in marks] == [
        "the",
        "straße",
        "brown",
        "😀",
        "she",
        "didn't",
        "x86_64",
    ]
    assert [m.offset_ms for m in marks] == [1000, 1100, 1500, 1800, 2400, 2700, 3000]
    assert [m.end_ms for m in marks] == [1100, 1500, 1800, 2400, 2700, 3000, 4000]


# ---------------------------------------------------------------- voices and settings


async def test_unknown_voice_falls_back_with_a_warning(
    provider: EspeakProvider, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="amplify_stream.speech.espeak"):
        spoken = await speak(provider, SENTENCE, voice="en-US-AriaNeural")
    assert "en-US-AriaNeural" in caplog.text
    assert_alike(spoken, await speak(provider, SENTENCE))


async def test_other_voices(provider: EspeakProvider, make_settings: SettingsFactory) -> None:
    english = await speak(provider, "Bonjour mes amis, comment allez-vous?")
    french = await speak(provider, "Bonjour mes amis, comment allez-vous?", voice="fr")
    assert french.audio != english.audio
    assert_marks_exact("Bonjour mes amis, comment allez-vous?", french)
    configured = EspeakProvider(make_settings(voice="de"))
    assert configured.default_voice == "de"
    german = await speak(configured, "Guten Tag, wie geht es Ihnen?")
    assert_marks_exact("Guten Tag, wie geht es Ihnen?", german)


async def test_rate_setting(make_settings: SettingsFactory) -> None:
    slow = await speak(EspeakProvider(make_settings(espeak_rate_wpm=100)), SENTENCE)
    fast = await speak(EspeakProvider(make_settings(espeak_rate_wpm=300)), SENTENCE)
    assert slow.audio_ms > 2 * fast.audio_ms


def test_speech_settings(monkeypatch: pytest.MonkeyPatch, make_settings: SettingsFactory) -> None:
    settings = make_settings()
    assert settings.voice is None
    assert EspeakProvider(settings).default_voice == "en-us"
    assert EspeakProvider(settings).name == "espeak"
    assert settings.audio_dir == settings.effective_audio_dir == settings.data_dir / "audio"
    assert (settings.speech_provider, settings.tts_retry_attempts) == ("espeak", 3)
    monkeypatch.setenv("AMPLIFY_VOICE", "en-gb-x-rp")
    monkeypatch.setenv("AMPLIFY_SPEECH_PROVIDER", "edge")
    monkeypatch.setenv("AMPLIFY_ESPEAK_RATE_WPM", "200")
    monkeypatch.setenv("AMPLIFY_AUDIO_DIR", "/tmp/narrations")
    from_env = Settings(_env_file=None)
    assert (from_env.voice, from_env.speech_provider) == ("en-gb-x-rp", "edge")
    assert (from_env.espeak_rate_wpm, str(from_env.audio_dir)) == (200, "/tmp/narrations")


# ---------------------------------------------------------------- concurrency, isolation


async def test_concurrent_calls_are_serialized_and_independent(provider: EspeakProvider) -> None:
    texts = [STORY, SENTENCE, "Short one.", " ".join([SENTENCE] * 5), "Zoë 😀 東京."]
    alone = [await speak(provider, text) for text in texts]
    together = await asyncio.gather(*(speak(provider, text) for text in texts))
    for text, one, other in zip(texts, alone, together, strict=True):
        assert_alike(one, other)
        assert_marks_exact(text, other)


async def test_the_event_loop_keeps_running(provider: EspeakProvider) -> None:
    gaps: list[float] = []
    loop = asyncio.get_running_loop()

    async def tick() -> None:
        last = loop.time()
        while True:
            await asyncio.sleep(0.005)
            gaps.append(loop.time() - last)
            last = loop.time()

    ticker = asyncio.create_task(tick())
    try:
        await speak(provider, " ".join([STORY] * 6))
    finally:
        ticker.cancel()
        await asyncio.gather(ticker, return_exceptions=True)
    assert len(gaps) > 10
    assert max(gaps) < 0.25


async def test_cancelled_call_leaves_the_engine_usable(provider: EspeakProvider) -> None:
    first_audio = asyncio.Event()

    async def long_call() -> None:
        async for piece in provider.synthesize(" ".join([STORY] * 20)):
            if isinstance(piece, AudioData):
                first_audio.set()

    task = asyncio.create_task(long_call())
    await asyncio.wait_for(first_audio.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    spoken = await asyncio.wait_for(speak(provider, SENTENCE), 10)
    assert_marks_exact(SENTENCE, spoken)


async def test_no_network(provider: EspeakProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("espeak must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    spoken = await speak(provider, STORY)
    assert_marks_exact(STORY, spoken)


# ---------------------------------------------------------------- text helpers


def test_split_for_speech_packs_sentences() -> None:
    text = "One. Two two! Three three three? Four.\nTitle line\nFive five five five."
    pieces = split_for_speech(text, 20)
    for offset, piece in pieces:
        assert text[offset : offset + len(piece)] == piece
        assert len(piece) <= 20 and piece == piece.strip()
    assert [p for _, p in pieces] == [
        "One. Two two!",
        "Three three three?",
        "Four.\nTitle line",
        "Five five five five.",
    ]
    assert split_for_speech(text, 1000) == [(0, text)]
    assert split_for_speech("  \n ", 10) == []
    assert split_for_speech("  padded.  ", 10) == [(2, "padded.")]


def test_split_for_speech_falls_back_to_words_then_characters() -> None:
    text = "a long sentence without any full stop goes on and on"
    pieces = split_for_speech(text, 12)
    assert all(len(p) <= 12 for _, p in pieces)
    assert " ".join(p for _, p in pieces) == text
    huge = "x" * 25 + "e\u0301" + "y" * 10
    cut = split_for_speech(huge, 26)  # never parts "e" from its accent
    assert [p for _, p in cut] == ["x" * 25, "e\u0301" + "y" * 10]
    assert split_for_speech("東京。大阪。", 3) == [(0, "東京。"), (3, "大阪。")]
    with pytest.raises(ValueError):
        split_for_speech("x", 0)


def test_split_for_speech_keeps_every_word() -> None:
    text = " ".join([STORY] * 10)
    for limit in (9, 40, 200, 333):  # the longest word has 8 characters
        pieces = split_for_speech(text, limit)
        assert all(text[o : o + len(p)] == p and len(p) <= limit for o, p in pieces)
        assert " ".join(p for _, p in pieces).split() == text.split()


@pytest.mark.parametrize(
    ("text", "index", "span"),
    [
        ("she didn't go", 5, (4, 10)),
        ("“Hello,” she", 0, (1, 6)),
        ("“Hello,” she", 3, (1, 6)),
        ("go U.S.A. now", 4, (3, 8)),
        ("cost $5,000.", 6, (5, 11)),
        ("a 😀 b", 2, (2, 3)),
        ("yes—no", 4, (4, 6)),
        ("a — b", 2, None),
        ("a b", 1, None),
        ("ab", 5, None),
        ("ab", -1, None),
    ],
)
def test_word_at(text: str, index: int, span: tuple[int, int] | None) -> None:
    assert word_at(text, index) == span
