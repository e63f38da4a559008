# ruff: noqa: RUF001
"""The offline ``local`` provider: exact spans, each heuristic, the safe rewrite, streaming."""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Sequence

import pytest

from amplify_stream.config import Settings
from amplify_stream.events import ALL_FOCUS, Focus
from amplify_stream.providers.base import (
    EnhancementRequest,
    InsightFound,
    Piece,
    RewriteDelta,
    SuggestionFound,
    UsageReport,
)
from amplify_stream.providers.local import LocalProvider, approx_tokens, rewrite_text
from amplify_stream.providers.local.document import WORD_RE
from amplify_stream.providers.local.lexicon import DOUBLING_SLIPS
from amplify_stream.providers.local.setting import OPENING_WORDS
from amplify_stream.text.spans import Utf16Index

# ---------------------------------------------------------------- helpers

SETTINGS = Settings(local_piece_delay_ms=0)  # built once: reading the environment is slow


async def run(
    text: str, focus: Sequence[Focus] = ALL_FOCUS, rewrite: bool = True, delay_ms: int = 0
) -> list[Piece]:
    provider = LocalProvider(SETTINGS.model_copy(update={"local_piece_delay_ms": delay_ms}))
    request = EnhancementRequest(story_id="s1", text=text, focus=focus, rewrite=rewrite)
    return [piece async for piece in provider.stream(request)]


def suggestions(pieces: list[Piece]) -> list[SuggestionFound]:
    return [p for p in pieces if isinstance(p, SuggestionFound)]


def insights(pieces: list[Piece]) -> dict[str, InsightFound]:
    return {p.focus: p for p in pieces if isinstance(p, InsightFound)}


def rewritten(pieces: list[Piece]) -> str:
    return "".join(p.text for p in pieces if isinstance(p, RewriteDelta))


def hits(pieces: list[Piece], fragment: str) -> list[SuggestionFound]:
    """The suggestions of one rule, told apart by a fragment of its message."""
    return [s for s in suggestions(pieces) if fragment in s.message]


def js_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-16-le")) // 2


def assert_exact_spans(text: str, pieces: list[Piece]) -> None:
    utf16 = Utf16Index(text)
    for s in suggestions(pieces):
        assert s.start is not None and s.quote, s
        end = s.start + len(s.quote)
        assert text[s.start : end] == s.quote, s
        assert utf16.offset(s.start) == js_offset(text, s.start)
        assert utf16.offset(end) == js_offset(text, end)


FAMILY_EMOJI = "\U0001f469\u200d\U0001f469\u200d\U0001f467"  # one glyph, five code points
CORPUS = [
    "it was a dark night in the the old house.  The wind howled ,and i felt very cold.",
    '"Who is there?" she asked quietly. "Go away," Tom hissed. "Hi," Mark smiled.\n\n'
    'Mary said softly, "Wait." She felt angry. She was very angry.',
    "Anna 😀 walked to the window and saw the sea; Zoë heard something. 😀😀 The door was "
    f"opened by {FAMILY_EMOJI} Tom. There was a knock. 東京は雨です。 "
    "She wondered if it would just rain.",
    "José hissed, “Leave me!” José was furious. Jose\u0301 really cold. \U0001d54f very old.",
    "«Bonjour», dit Zoë. «Ça va?»\r\n\r\nIt was late. There were wolves outside the inn.",
    "東京の夜。雨が降っていた。「行こう」と彼は言った。",
    "   leading spaces. trailing spaces.   \n\n\n\t tabbed paragraph\twith\ttabs  ",
    "e.g. this is fine. Mr. Darcy came. www.example.com is up. iPhone users wait... and wait.",
    "A" * 3 + " 😀" * 50,
    "x",
]


# ---------------------------------------------------------------- spans


@pytest.mark.parametrize("text", CORPUS)
async def test_every_suggestion_quotes_the_text_at_its_exact_offset(text: str) -> None:
    pieces = await run(text)
    assert_exact_spans(text, pieces)
    assert rewritten(pieces) == rewrite_text(text)


async def test_spans_after_astral_characters_are_code_points() -> None:
    text = "😀😀😀 She was angry."
    [told] = hits(await run(text, ["character"]), "Telling")
    assert (told.start, told.quote) == (8, "was angry")
    assert js_offset(text, 8) == 11  # what an editor in JavaScript gets as start_utf16


# ---------------------------------------------------------------- dialogue


@pytest.mark.parametrize(
    ("text", "quote", "replacement"),
    [
        ('"Leave now," she said quietly.', "said quietly", "said"),
        ('"Leave now," said Anna softly.', "said Anna softly", "said Anna"),
        ('Tom quietly said, "Leave."', "quietly said", "said"),
        ('"Why?" she asked nervously, looking away.', "asked nervously", "asked"),
    ],
)
async def test_dialogue_tag_with_adverb(text: str, quote: str, replacement: str) -> None:
    [found] = hits(await run(text, ["dialogue"]), "tells how the line is said")
    assert (found.quote, found.replacement) == (quote, replacement)


@pytest.mark.parametrize(
    ("text", "quote", "replacement", "fragment"),
    [
        ('"Get out," he hissed.', "hissed", "said", "Said-bookism"),
        ('"Why not?" she exclaimed.', "exclaimed", "asked", "Said-bookism"),
        ('"Hi," Mark smiled.', "smiled", "said", "is an action"),
        ('She snarled: "Enough."', "snarled", "said", "Said-bookism"),
    ],
)
async def test_said_bookisms(text: str, quote: str, replacement: str, fragment: str) -> None:
    [found] = hits(await run(text, ["dialogue"]), fragment)
    assert (found.quote, found.replacement) == (quote, replacement)


@pytest.mark.parametrize(
    "text",
    [
        '"Leave now," she said.',
        '"Hi." Mark smiled.',  # an action beat in its own sentence, not a tag
        '"Only," she said, "early."',  # -ly words that are not adverbs
        "She smiled quietly at the sea.",  # no speech at all
        '"Fine," she said and quickly left.',  # the adverb is not the tag's
    ],
)
async def test_plain_tags_and_beats_are_left_alone(text: str) -> None:
    pieces = await run(text, ["dialogue"])
    assert not suggestions(pieces)


async def test_a_tag_between_two_speeches_is_flagged_once() -> None:
    text = '"Go," she hissed softly, "now."'
    pieces = await run(text, ["dialogue"])
    assert [s.quote for s in hits(pieces, "Said-bookism")] == ["hissed"]
    assert [s.quote for s in hits(pieces, "tells how")] == ["hissed softly"]


@pytest.mark.parametrize(
    "text",
    ["‘Leave now,’ she said quietly. ‘Don’t.’", "'Leave now,' she said quietly. 'It's late.'"],
)
async def test_single_quoted_speech_when_the_story_uses_no_double_quotes(text: str) -> None:
    pieces = await run(text, ["dialogue"])
    [found] = hits(pieces, "tells how the line is said")
    assert found.quote == "said quietly"
    assert insights(pieces)["dialogue"].metrics["dialogue_lines"] == 2


async def test_apostrophes_are_not_speech() -> None:
    text = "Tom's dog barked at the neighbours' cat. It's late, isn't it."
    insight = insights(await run(text, ["dialogue"]))["dialogue"]
    assert insight.metrics["dialogue_lines"] == 0


async def test_long_unbroken_speech() -> None:
    speech = " ".join(["word"] * 90)
    text = f'Anna sat down. "{speech}," she said.'
    [found] = hits(await run(text, ["dialogue"]), "words of speech without a break")
    assert found.quote == f'"{speech},"'
    assert not hits(await run(f'"{" ".join(["word"] * 75)}."', ["dialogue"]), "without a break")


async def test_dialogue_insight_metrics() -> None:
    text = '"Come here," Anna said. The sea was grey. "No," Tom said.'
    insight = insights(await run(text, ["dialogue"]))["dialogue"]
    assert insight.metrics["dialogue_lines"] == 2
    assert insight.metrics["dialogue_words"] == 3
    assert insight.metrics["dialogue_ratio"] == round(3 / 11, 3)
    assert "2 lines of dialogue" in insight.summary


async def test_no_dialogue_at_all_is_an_insight() -> None:
    insight = insights(await run("The sea was grey. Gulls cried.", ["dialogue"]))["dialogue"]
    assert insight.summary.startswith("No dialogue")
    assert insight.metrics["dialogue_ratio"] == 0


# ---------------------------------------------------------------- character


async def test_named_characters_and_their_frequency() -> None:
    text = (
        "Anna met Tom at the market in Lisbon. Later, Tom smiled at Anna. Anna laughed. "
        "The baker waved. Mary said nothing."
    )
    insight = insights(await run(text, ["character"]))["character"]
    assert insight.metrics["characters_named"] == 3  # Anna, Tom, Mary; not Lisbon, Later
    assert insight.metrics["name_mentions"] == 6
    assert "Anna (3), Tom (2), Mary (1)" in insight.summary


@pytest.mark.parametrize("word", ["felt", "saw", "heard", "noticed", "realized", "watched"])
async def test_filter_words(word: str) -> None:
    text = f"She {word} the storm coming over the hills."
    [found] = hits(await run(text, ["character"]), "Filter word")
    assert found.quote == word
    assert found.start == 4


@pytest.mark.parametrize(
    "text",
    [
        "The house seemed empty.",  # an appearance, not a filter
        "She had heard the story before.",  # what she knew, not what she perceives
        "She felt sorry for him.",
        "Benjamin heard what she had said.",
    ],
)
async def test_perceptions_that_are_not_filters(text: str) -> None:
    assert not hits(await run(text, ["character"]), "Filter word")


async def test_filter_words_in_speech_are_the_character_s_voice() -> None:
    text = '"I heard it," she said. The storm came over the hills.'
    assert not hits(await run(text, ["character"]), "Filter word")


@pytest.mark.parametrize(
    ("text", "quote"),
    [
        ("He was angry.", "was angry"),
        ("She felt very sad.", "felt very sad"),
        ("They were nervous.", "were nervous"),
    ],
)
async def test_telling_emotions(text: str, quote: str) -> None:
    pieces = await run(text, ["character"])
    [found] = hits(pieces, "Telling")
    assert found.quote == quote
    assert not hits(pieces, "Filter word")  # "felt" is covered by the telling


@pytest.mark.parametrize(
    "text",
    [
        "She was surprised to see him.",  # what follows is the scene, not the label
        "It was lonely in the house.",  # nobody is told about
        "She was too excited and happy, and she ran.",
    ],
)
async def test_an_emotion_in_a_clause_that_goes_on_is_not_telling(text: str) -> None:
    assert not hits(await run(text, ["character"]), "Telling")


async def test_shown_emotion_is_not_telling() -> None:
    pieces = await run("He slammed the door and kicked the bin.", ["character"])
    assert not suggestions(pieces)


async def test_lookalike_names() -> None:
    text = "Mark walked in. Later, Mary followed Mark. Mary sat."
    [found] = hits(await run(text, ["character"]), "looks like")
    assert (found.quote, found.start) == ("Mary", text.index("Mary"))
    assert not hits(await run("Mark walked in. Then Zoë followed Mark.", ["character"]), "looks")


# ---------------------------------------------------------------- plot


@pytest.mark.parametrize(
    ("text", "quote", "fragment"),
    [
        ("The letter was written by Anna.", "was written", "puts Anna after the act"),
        ("The window was quickly broken by him.", "was quickly broken", "start with him"),
        ("Tom came in. The gates were opened, and he stood back.", "were opened", "a hand"),
    ],
)
async def test_passive_voice(text: str, quote: str, fragment: str) -> None:
    [found] = hits(await run(text, ["plot"]), "Passive voice")
    assert found.quote == quote
    assert fragment in found.message


@pytest.mark.parametrize(
    "text",
    [
        "Anna wrote the letter.",
        "She was tired.",
        "He was interested.",
        "It was red.",
        # Passives whose actor is unknown or beside the point are good prose.
        "The village was founded in 1620.",
        "He was never seen again.",
        "The gates were opened at dawn.",
        "The road was tarred the summer after Tom left.",
        "Her voice was choked by emotion.",
    ],
)
async def test_active_voice_and_adjectives_are_not_passive(text: str) -> None:
    assert not hits(await run(text, ["plot"]), "Passive voice")


async def test_long_sentence() -> None:
    sentence = "Anna ran " + " ".join(["far"] * 44) + " away."
    text = f"She left. {sentence} Then rain."
    [found] = hits(await run(text, ["plot"]), "words in one sentence")
    assert found.quote == sentence
    assert found.message.startswith("47 words")
    assert not hits(await run("Anna ran " + " ".join(["far"] * 40) + ".", ["plot"]), "one sentence")


async def test_a_long_sentence_with_its_pauses_is_not_tangled() -> None:
    listed = ", ".join(["the bakery with its loaves", "the church steps", "the tram wires"] * 4)
    text = f"Through the window lay the whole road in the late light: {listed}, and the corner."
    assert not hits(await run(text, ["plot"]), "words in one sentence")
    spoken = '"' + " ".join(["far"] * 50) + '," she said.'
    assert not hits(await run(spoken, ["plot"]), "words in one sentence")


async def test_cjk_characters_do_not_make_a_sentence_long() -> None:
    text = "東京の夜は長くて静かだった" * 5 + "。"  # 65 characters, one sentence
    assert not hits(await run(text, ["plot"]), "words in one sentence")


async def test_close_repeats_are_off_by_default() -> None:
    text = "The luminous sea rolled under a sky that was just as luminous."
    assert not hits(await run(text, ["plot"]), "again")


@pytest.mark.parametrize(
    ("text", "quote"),
    [
        ("There was a man who stood at the door.", "There was"),
        ("Anna ran. There were wolves that howled outside.", "There were"),
    ],
)
async def test_weak_openings(text: str, quote: str) -> None:
    [found] = hits(await run(text, ["plot"]), "Weak opening")
    assert found.quote == quote


async def test_strong_openings_are_left_alone() -> None:
    text = (
        "Wolves howled outside. It was. Anna said it was late. There was a long silence. "
        "It was his sister who found the key."  # a cleft puts its weight where it means to
    )
    assert not hits(await run(text, ["plot"]), "Weak opening")


async def test_intensifiers() -> None:
    text = "The house was very old. She just left. He really meant it. The dog was so big."
    pieces = await run(text, ["plot"])
    found = {s.quote: s.replacement for s in hits(pieces, "'")}
    # "just" is off by default; "really meant" has no stronger word to offer.
    assert found == {"very old": "ancient", "so big": "huge"}
    assert insights(pieces)["plot"].metrics["intensifiers"] == 4


async def test_very_as_an_adjective_is_not_an_intensifier() -> None:
    text = "At the very moment the door opened, she laughed. It was the very thing."
    assert not hits(await run(text, ["plot"]), "'very'")


async def test_intensifiers_in_speech_are_the_character_s_voice() -> None:
    text = '"It is very cold," she said.'
    assert not hits(await run(text, ["plot"]), "'very'")


async def test_plot_insight_metrics() -> None:
    text = "Anna ran. The letter was written by Tom. There was a man who ran and ran home."
    metrics = insights(await run(text, ["plot"]))["plot"].metrics
    assert metrics["sentences"] == 3
    assert metrics["words"] == 17
    assert metrics["passive_count"] == 1
    assert metrics["weak_openings"] == 1


# ---------------------------------------------------------------- setting


async def test_sensory_place_and_time_cues() -> None:
    text = (
        "At dawn the kitchen smelled of smoke. The floor creaked under her cold feet, "
        "and the tea tasted bitter. Light flickered in Lisbon. Rain fell."
    )
    metrics = insights(await run(text, ["setting"]))["setting"].metrics
    assert metrics["smell"] == 2  # smelled, smoke
    assert metrics["sound"] == 1  # creaked
    assert metrics["touch"] == 1  # cold
    assert metrics["taste"] == 2  # tasted, bitter
    assert metrics["sight"] == 2  # light, flickered
    assert metrics["sensory_cues"] == 8
    assert metrics["place_cues"] == 2  # kitchen, Lisbon
    assert metrics["time_cues"] == 1  # dawn
    assert metrics["weather_cues"] == 1  # rain


async def test_paragraph_without_any_setting() -> None:
    abstract = (
        "She thought about what it all meant and whether any of it had ever mattered to "
        "anyone at all, because the reasons kept changing and the answers never seemed to "
        "arrive when she needed them most."
    )
    text = f"At dawn the kitchen was quiet.\n\n{abstract}"
    pieces = await run(text, ["setting"])
    # Off by default (editors ask it of scenes, not paragraphs): counted, not shown.
    assert not hits(pieces, "No sight, sound")
    assert insights(pieces)["setting"].metrics["paragraphs_without_setting"] == 1
    grounded = abstract.replace("arrive", "arrive in the cold kitchen")
    pieces = await run(f"At dawn it was quiet.\n\n{grounded}", ["setting"])
    assert insights(pieces)["setting"].metrics["paragraphs_without_setting"] == 0


async def test_opening_without_where_or_when() -> None:
    text = (
        "Anna had a secret. She kept it to herself through all of it and told nobody about it, "
        "not even her good friend Tom."
    )
    assert len(text.split()) >= OPENING_WORDS
    [found] = hits(await run(text, ["setting"]), "where or when")
    assert found.quote == "Anna had a secret."
    grounded = "In the morning Anna had a secret. She kept it and told nobody, not even Tom."
    assert not hits(await run(grounded, ["setting"]), "where or when")


# ---------------------------------------------------------------- a clean story


CLEAN = (
    "At dawn, Anna crossed the bridge into the village. Smoke curled from the bakery "
    'chimney, and the air smelled of warm bread.\n\n"You came back," Tom said.\n\n'
    '"I promised," Anna said. She set her bag on the cold stone step.'
)


async def test_a_clean_story_gets_no_suggestions_and_no_edits() -> None:
    pieces = await run(CLEAN)
    assert suggestions(pieces) == []
    assert rewritten(pieces) == CLEAN
    assert set(insights(pieces)) == set(ALL_FOCUS)


# ---------------------------------------------------------------- the rewrite


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Two spaces after a full stop are a convention, not a slip: kept.
        ("the cat sat.  the dog ran.", "The cat sat.  The dog ran."),
        ("She saw the the dog.", "She saw the dog."),
        ("The The end came.", "The end came."),
        ("Wait , then go.", "Wait, then go."),
        ("The wind howled ,and we ran.", "The wind howled, and we ran."),
        ("Then i left, and i'm glad.", "Then I left, and I'm glad."),
        ('"Not i," she said.', '"Not I," she said.'),
        # "very" is the suggestion's to drop, never the rewrite's.
        ("The house was very old and really cold.", "The house was very old and really cold."),
        # Good prose may go on in lower case after "!" or "?", or after an abbreviation.
        (
            "It is late. and the house is dark! so we go.",
            "It is late. And the house is dark! so we go.",
        ),
        ("Tom Steed, Esq. of Bath, came.", "Tom Steed, Esq. of Bath, came."),
        ("Took in in a minute, and had had enough.", "Took in in a minute, and had had enough."),
        ("We walked.  Then we ran  home.", "We walked.  Then we ran home."),
        ("“go home,” she said. “now.”", "“Go home,” she said. “Now.”"),
        ("The end.\n\nthen morning came.", "The end.\n\nThen morning came."),
    ],
)
def test_rewrite_applies_safe_fixes(text: str, expected: str) -> None:
    assert rewrite_text(text) == expected
    assert rewrite_text(expected) == expected


@pytest.mark.parametrize(
    "text",
    [
        "I had had enough. He said that that was fine.",  # doubling that is English
        "It was not very good. The very man. A very old dog. It wasn't really big.",
        '"It is very cold," she said. "I really tired."',  # a character's own words
        '"Stop!" she cried. "Go?" he asked... and went on.',
        "I waited... and waited. e.g. this. Mr. Darcy. www.example.com is up.",
        "He bought an iPhone. iPhones are fine? eBay sells them.",
        "Chapter one\nthe morning began.",  # no full stop before it: maybe a hard wrap
        "Sono arrivati i ragazzi e le ragazze. Poi i cani.",  # "i" is Italian here
        "Very tired, she slept. Really big.",  # dropping would need a new capital
        "Two  spaces\tand a tab\n  indented line  \nend.  ",  # indentation and line ends
        "Wait ,1 and 1 ,000 stay. 3.5 is fine.",
        "東京の夜。雨が降っていた。",
        "(i) first, i.e. the case, x-i and i.",
    ],
)
def test_rewrite_leaves_everything_else_alone(text: str) -> None:
    fixed = rewrite_text(text)
    if text.startswith("Two"):
        assert fixed == "Two spaces\tand a tab\n  indented line  \nend.  "
    elif text.startswith("(i)"):
        assert fixed == "(i) first, i.e. the case, x-i and I."
    else:
        assert fixed == text


async def test_deltas_join_to_the_rewrite_and_stream_in_small_pieces() -> None:
    text = "it was late.  the the dog barked ,and i ran. " * 20
    pieces = await run(text)
    deltas = [p.text for p in pieces if isinstance(p, RewriteDelta)]
    assert "".join(deltas) == rewrite_text(text)
    assert len(deltas) > 50
    assert all(d and len(d.split()) <= 4 for d in deltas)


async def test_long_story_streams_in_bounded_number_of_pieces() -> None:
    text = "Anna walked to the sea and back again. " * 1000  # 8000 words
    deltas = [p for p in await run(text, ["plot"]) if isinstance(p, RewriteDelta)]
    assert 300 < len(deltas) <= 601
    assert "".join(d.text for d in deltas) == text


async def test_cjk_text_streams_in_pieces() -> None:
    text = "東京の夜。雨が降っていた。" * 10
    deltas = [p for p in await run(text) if isinstance(p, RewriteDelta)]
    assert len(deltas) > 10
    assert "".join(d.text for d in deltas) == text


async def test_no_rewrite_means_no_deltas() -> None:
    pieces = await run(CORPUS[0], rewrite=False)
    assert not [p for p in pieces if isinstance(p, RewriteDelta)]
    assert suggestions(pieces)
    assert set(insights(pieces)) == set(ALL_FOCUS)
    assert isinstance(pieces[-1], UsageReport)


# ---------------------------------------------------------------- the stream


async def test_order_suggestions_interleaved_then_insights_then_usage() -> None:
    text = "She was angry. " + "Anna walked to the sea and back. " * 30 + "He was sad."
    pieces = await run(text)
    kinds = [type(p).__name__ for p in pieces]
    first_suggestion = kinds.index("SuggestionFound")
    last_delta = len(kinds) - 1 - kinds[::-1].index("RewriteDelta")
    assert first_suggestion < last_delta  # arrives while the rewrite still streams
    assert kinds[-1] == "UsageReport" and kinds.count("UsageReport") == 1
    first_insight = kinds.index("InsightFound")
    assert all(k == "InsightFound" for k in kinds[first_insight:-1])
    # Each suggestion comes after the delta that completes its quote.
    streamed = 0
    for piece in pieces:
        if isinstance(piece, RewriteDelta):
            streamed += len(piece.text)
        elif isinstance(piece, SuggestionFound) and piece.start is not None:
            assert piece.start + len(piece.quote) <= streamed


async def test_without_rewrite_suggestions_come_as_the_reading_reaches_them() -> None:
    """Not all at once after the whole text: each once the pace of reading has passed
    its quote, the first long before the last."""
    text = "She was angry. " + "Anna walked to the sea and back. " * 30 + "He was sad."
    provider = LocalProvider(SETTINGS.model_copy(update={"local_piece_delay_ms": 5}))
    request = EnhancementRequest(story_id="s1", text=text, focus=ALL_FOCUS, rewrite=False)
    started = time.monotonic()
    arrivals = [
        (time.monotonic() - started, p)
        async for p in provider.stream(request)
        if isinstance(p, SuggestionFound)
    ]
    first = next(at for at, s in arrivals if s.quote == "was angry")
    last = next(at for at, s in arrivals if s.quote == "was sad")
    assert last - first >= 0.2  # about 60 pieces of 5 ms between them


async def test_focus_subset_is_respected() -> None:
    for focus in (["dialogue"], ["plot", "setting"], ["character", "character"]):
        pieces = await run(CORPUS[1] + " " + CORPUS[2], focus)  # type: ignore[arg-type]
        assert {s.focus for s in suggestions(pieces)} <= set(focus)
        assert [i.focus for i in pieces if isinstance(i, InsightFound)] == list(
            dict.fromkeys(focus)
        )


async def test_deterministic() -> None:
    for text in CORPUS:
        assert await run(text) == await run(text)


async def test_usage_is_estimated_from_words() -> None:
    text = "Anna walked to the sea."  # 5 words
    pieces = await run(text)
    usage = pieces[-1]
    assert isinstance(usage, UsageReport)
    assert usage.input_tokens == approx_tokens(text) == 7  # ceil(5 * 4 / 3)
    assert usage.output_tokens >= approx_tokens(rewrite_text(text))


async def test_pieces_are_paced_by_the_setting() -> None:
    text = "Anna walked to the sea and back again. " * 4  # 11 pieces
    started = time.monotonic()
    pieces = await run(text, ["plot"], delay_ms=20)
    elapsed = time.monotonic() - started
    deltas = sum(isinstance(p, RewriteDelta) for p in pieces)
    assert elapsed >= (deltas - 1) * 0.02 * 0.9


async def test_zero_delay_still_yields_to_other_tasks() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    try:
        provider = LocalProvider(SETTINGS)
        request = EnhancementRequest("s1", "Anna walked to the sea. " * 40, ["plot"])
        seen = [
            ticks async for piece in provider.stream(request) if isinstance(piece, RewriteDelta)
        ]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(set(seen)) > len(seen) // 2  # the ticker ran between pieces


# ---------------------------------------------------------------- random stories

NAMES = ["Anna", "Tom", "Zoë", "Jose\u0301", "Mei", "Łukasz", "O'Brien", "Jean-Luc", "😀Kai"]
VOCAB = [
    "the",
    "the",
    "a",
    "an",
    "to",
    "of",
    "i",
    "was",
    "were",
    "very",
    "really",
    "just",
    "old",
    "cold",
    "big",
    "door",
    "sea",
    "morning",
    "kitchen",
    "opened",
    "written",
    "by",
    "felt",
    "saw",
    "heard",
    "angry",
    "sad",
    "it",
    "there",
    "smelled",
    "creaked",
    "bitter",
    "quietly",
    "softly",
    "hissed",
    "smiled",
    "said",
    "walked",
    "ran",
    "café",
    "naïve",
    "東京",
    "雨",
    "😀",
    FAMILY_EMOJI,
    "\U0001d54f",
    ",",
    ";",
    "—",
    "…",
    "it's",
    "i'm",
    "don't",
    "e.g.",
    "Mr.",
    "www.example.com",
    "iPhone",
    "3.5",
    "'",
]
ENDINGS = [".", ".", "!", "?", "...", "…", "", "。", '."', ',"']
GAPS = [" "] * 8 + ["  ", "\t", " , ", ",", " ,"]


def random_sentence(rng: random.Random) -> str:
    words = [rng.choice(VOCAB + NAMES) for _ in range(rng.randint(1, 45))]
    if rng.random() < 0.5:
        words[0] = words[0].capitalize()
    body = "".join(w + rng.choice(GAPS) for w in words).rstrip() + rng.choice(ENDINGS)
    if rng.random() < 0.3:
        mark = rng.choice(['""', "“”", "«»"])
        verb = rng.choice(["said", "hissed", "smiled"])
        tag = f" {rng.choice(NAMES)} {verb} {rng.choice(['softly', 'now'])}."
        body = f"{mark[0]}{body.rstrip('.')},{mark[1]}{tag}"
    return body


def random_story(rng: random.Random) -> str:
    paragraphs = [
        " ".join(random_sentence(rng) for _ in range(rng.randint(1, 6)))
        for _ in range(rng.randint(1, 5))
    ]
    return rng.choice(["\n\n", "\n", "\r\n\r\n", " \n \n"]).join(paragraphs)


REMOVABLE = DOUBLING_SLIPS


def assert_only_intended_changes(text: str, fixed: str) -> None:
    """Every word survives (case aside) but for dropped doubles and intensifiers, and every
    mark that is not a word or a space survives, in order."""
    before, after = WORD_RE.findall(text), WORD_RE.findall(fixed)
    j = 0
    for word in before:
        if j < len(after) and after[j].lower() == word.lower():
            assert after[j] == word or after[j][1:] == word[1:], (word, after[j])
            j += 1
        else:
            assert word.lower() in REMOVABLE, (word, text)
    assert j == len(after)
    assert re.sub(r"[\w\s]", "", text) == re.sub(r"[\w\s]", "", fixed)


async def test_random_stories_keep_every_invariant() -> None:
    rng = random.Random(20240601)
    for _ in range(150):
        text = random_story(rng)
        focus = rng.sample(ALL_FOCUS, rng.randint(1, 4))
        pieces = await run(text, focus)
        assert_exact_spans(text, pieces)
        assert {s.focus for s in suggestions(pieces)} <= set(focus)
        fixed = rewrite_text(text)
        assert rewritten(pieces) == fixed
        assert_only_intended_changes(text, fixed)
        assert isinstance(pieces[-1], UsageReport)
