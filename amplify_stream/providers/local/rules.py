"""The offline analyzer's rules: a stable id for each (what a suggestion carries as
``rule``), its focus, what it looks for and why, and an example it flags and one it leaves
alone. The one place a rule is named: the analyzers, the catalogue and the quality
harness read it from here."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from amplify_stream.events import ALL_FOCUS, Focus


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    focus: Focus
    looks_for: str  # what it flags, and why an editor would
    # An example it flags, the flagged words between [[ and ]], and one it leaves alone.
    flagged: str
    clean: str
    on_by_default: bool = True

    @property
    def example(self) -> tuple[str, int, int]:
        """The flagged example without its marks, and the flagged words' span in it."""
        start = self.flagged.index("[[")
        end = self.flagged.index("]]") - 2
        return self.flagged.replace("[[", "").replace("]]", ""), start, end


def _rules(*rules: Rule) -> MappingProxyType[str, Rule]:
    return MappingProxyType({rule.id: rule for rule in rules})


RULES = _rules(
    Rule(
        "plot.passive",
        "plot",
        "A passive whose actor is in the sentence or the scene: putting who acts first "
        "makes the sentence move.",
        "The letter [[was torn]] up by Mara before anyone could read it.",
        "The village was founded in 1620, long before the mill.",
    ),
    Rule(
        "plot.long_sentence",
        "plot",
        "A narrative sentence so long, with clauses stacked on clauses, that the reader "
        "loses who does what.",
        "[[The man who had come from the town that the river had flooded when the dam that "
        "the company which his father had worked for had built broke went to the inn where "
        "the woman who had once known him was waiting, although he did not know that she "
        "was, because nobody had told him.]]",
        "He walked to the inn.",
    ),
    Rule(
        "plot.weak_opening",
        "plot",
        "A sentence that opens on an empty 'there was' and delays its subject.",
        "[[There was]] a man who stood at the door and knocked.",
        "It was his sister who found the key.",
    ),
    Rule(
        "plot.close_repeat",
        "plot",
        "A distinctive word used again a few words later, where the echo is an accident.",
        "The luminous sea rolled under a sky that was just as [[luminous]].",
        "They went round and round the square.",
        # Off: without word frequencies it cannot tell an echo of "sepulchral" from the
        # recurring words of a topic (59 findings on 44,000 clean words, 0 of 5 planted).
        on_by_default=False,
    ),
    Rule(
        "plot.intensifier",
        "plot",
        "An intensifier propping up a weak word ('very big'): the precise word hits harder.",
        "The dog was [[very big]].",
        "At the very moment the door opened, she laughed.",
    ),
    Rule(
        "plot.filler",
        "plot",
        "'just' as padding, where it means neither 'only' nor 'a moment ago'.",
        "She [[just]] wanted to walk on the shore.",
        "He had just come in.",
        on_by_default=False,
    ),
    Rule(
        "character.filter_word",
        "character",
        "Narration that filters a perception through the character ('she saw', 'he felt') "
        "instead of giving the thing itself.",
        "She [[saw]] the door swing open.",
        "The house seemed empty.",
    ),
    Rule(
        "character.telling",
        "character",
        "An emotion named ('was angry') where what the character does could show it.",
        "Tom [[was angry]].",
        "Tom slammed the drawer shut.",
    ),
    Rule(
        "character.lookalike_names",
        "character",
        "Two characters of one story whose names look alike (Jon and Joan): readers mix them up.",
        "Marta poured the tea. [[Martha]] took a cup. Marta smiled. Martha drank.",
        "Marta poured the tea. Ines took a cup. Marta smiled. Ines drank.",
    ),
    Rule(
        "dialogue.adverb_tag",
        "dialogue",
        "A dialogue tag with a manner adverb ('said angrily'): the line, or a beat of "
        "action, should carry the tone.",
        '"Go," she [[said angrily]].',
        '"Go," she said.',
    ),
    Rule(
        "dialogue.said_bookism",
        "dialogue",
        "A showy speech verb as a tag ('hissed', 'ejaculated'): 'said' disappears and "
        "leaves the line to do the work.",
        '"Never," he [[retorted]].',
        '"Never," he said.',
    ),
    Rule(
        "dialogue.long_speech",
        "dialogue",
        "One speech running on without a break: a beat of action or a reply lets the scene "
        "breathe and keeps the speaker clear.",
        'She said, [["' + "I will tell you all of it now, " * 14 + 'and then you will know."]]',
        '"I will tell you," she said.',
    ),
    Rule(
        "dialogue.unattributed",
        "dialogue",
        "A line of speech standing alone, after one tagged only by a pronoun, in a scene of "
        "three or more speakers: the reader cannot tell who says it.",
        '"Sit," said Ann.\n\n"Thanks," said Bea.\n\n"Tea?" Cy asked.\n\n"Yes," he said.'
        '\n\n[["Please."]]',
        'Ann and Bea sat down.\n\n"Tea?" Ann asked.\n\n"Please."',
    ),
    Rule(
        "setting.bare_paragraph",
        "setting",
        "A long paragraph of narration with no sight, sound, smell, touch, weather, place or time.",
        "[[He thought about it for a long while and then decided that the answer had been "
        "wrong from the start.]] He wondered whether anything could be done about it now, "
        "and whether it mattered at all, and decided that it probably did not matter to "
        "anyone but himself, which was reason enough to let it go and think of something "
        "else instead.",
        "The rain hammered the tin roof all night.",
        # Off: editors ask it of scenes, not of every paragraph (65 findings on 44,000
        # clean words, none an editor would raise); setting.opening asks it of the opening.
        on_by_default=False,
    ),
    Rule(
        "setting.opening",
        "setting",
        "A story whose opening never says where or when.",
        "[[He thought about it.]] " + "He decided that nothing could be done. " * 12,
        "At nine o\u2019clock the harbour was still dark.",
    ),
)


def shown(rule_id: str | None) -> bool:
    """Whether a suggestion of ``rule_id`` goes to the writer: its rule is on by default
    (a provider's own findings, with no rule of the catalogue, are)."""
    found = RULES.get(rule_id) if rule_id is not None else None
    return found is None or found.on_by_default


# What a writer can turn off: the catalogue's rules, and Gemini's own findings of one focus.
RULE_IDS: tuple[str, ...] = (*RULES, *(f"model.{focus}" for focus in ALL_FOCUS))


def known(rule_id: str) -> bool:
    return rule_id in RULE_IDS


def rule(rule_id: str) -> Rule:
    """The rule of ``rule_id`` (a KeyError names an id that no rule has)."""
    return RULES[rule_id]


def markdown() -> str:
    """docs/rules.md: the catalogue as a writer reads it (``amplify-stream rules``)."""
    lines = [
        "# Suggestion rules",
        "",
        "Generated by `amplify-stream rules` from `amplify_stream/providers/local/rules.py`",
        "(also served as `GET /v1/rules`). Every suggestion carries its rule's id as `rule`;",
        "Gemini names one of these, or `model.<focus>` for a finding of its own. How often each",
        "fires on edited prose and on drafts: `make quality` (`quality/results/`).",
    ]
    for r in RULES.values():
        text, start, end = r.example
        lines += [
            "",
            f"## `{r.id}`" + ("" if r.on_by_default else " (off by default)"),
            "",
            f"Focus: {r.focus}. {r.looks_for}",
            "",
            f"- flagged: {text[:start]}**{text[start:end]}**{text[end:]}".replace("\n", " "),
            f"- left alone: {r.clean}".replace("\n", " "),
        ]
    return "\n".join(lines) + "\n"
