"""The writer's say as a document's owner folds it (docs/protocol.md section 6, "The
writer's say"): a dismissed finding goes at once and never comes back through edits and
passes, a rule turned off and a vouched word hide what they name, an undo brings them
back, a snapshot keeps all of it, and each decision is one ``suggestion.feedback``."""

from __future__ import annotations

import itertools
from dataclasses import replace

from amplify_stream.documents.ignores import about, finding_key, sentence_around
from amplify_stream.documents.local_pass import local_pass
from amplify_stream.documents.partition import Answer, PartitionDocuments, pass_answers
from amplify_stream.documents.say import Source
from amplify_stream.documents.snapshot import from_snapshot, to_snapshot
from amplify_stream.events import ErrorEvent
from amplify_stream.events.documents import (
    DocChange,
    DocIgnores,
    DocRetracted,
    DocumentDismissed,
    DocumentEdited,
    DocumentOpenRequested,
    DocumentPreferences,
    DocumentWord,
    SuggestionFeedbackOutcome,
    UserPreferences,
)

TEXT = (
    "The dog was very big and the yard was very small.\n"
    "Mara met Maura at the gate. Maura smiled at Mara.\n"
    "It was a very big day."
)


class Doc:
    """One document of a partition, driven as its owner drives it."""

    def __init__(self, text: str = TEXT) -> None:
        self.docs = PartitionDocuments(max_chars=100_000, source=Source("local", None))
        self.offsets = itertools.count()
        self.fold(
            DocumentOpenRequested(doc_id="d", user_id="u", reply_to="r", create=True, text=text)
        )
        self.analyze()

    @property
    def state(self):  # type: ignore[no-untyped-def]
        return self.docs.docs["d"]

    def fold(self, command) -> list[Answer]:  # type: ignore[no-untyped-def]
        return self.docs.fold(command, next(self.offsets)).answers

    def analyze(self) -> None:
        doc = self.state
        pass_answers(doc, local_pass(doc), self.docs.told.setdefault("d", {}))

    def live(self, rule: str, quote: str | None = None) -> list[str]:
        return [
            s.id
            for s in self.state.live.values()
            if s.rule == rule and (quote is None or s.quote == quote)
        ]

    def edit(self, start: int, end: int, text: str) -> list[Answer]:
        change = DocChange(start_utf16=start, end_utf16=end, text=text)
        version = self.state.version + 1
        return self.fold(
            DocumentEdited(doc_id="d", user_id="u", reply_to="r", version=version, changes=[change])
        )

    def dismiss(self, **fields) -> list[Answer]:  # type: ignore[no-untyped-def]
        fields.setdefault("scope", "suggestion")
        return self.fold(DocumentDismissed(doc_id="d", user_id="u", reply_to="r", **fields))

    def word(self, word: str, **fields) -> list[Answer]:  # type: ignore[no-untyped-def]
        fields.setdefault("scope", "document")
        return self.fold(DocumentWord(doc_id="d", user_id="u", reply_to="r", word=word, **fields))

    def feedback(self) -> list[SuggestionFeedbackOutcome]:
        return [o for o in self.docs.outcomes if isinstance(o, SuggestionFeedbackOutcome)]


def retracted(answers: list[Answer]) -> list[str]:
    return [i for a in answers if isinstance(a.event, DocRetracted) for i in a.event.ids]


def test_a_dismissed_finding_goes_at_once_and_never_comes_back() -> None:
    doc = Doc()
    first, second, third = doc.live("plot.intensifier")
    answers = doc.dismiss(id=first, scope="suggestion", request_id="q1")
    assert retracted(answers) == [first]
    ignores = [a.event for a in answers if isinstance(a.event, DocIgnores)]
    assert ignores[0].request_id == "q1" and ignores[0].dismissed[0].quote == "very big"
    assert all(a.reply_to is None for a in answers)  # every watcher hears it
    # The same words in another sentence are a new question; the other one stays too.
    assert set(doc.live("plot.intensifier")) == {second, third}
    # Edits before it and passes between: found again under new ids, never live again.
    for n in range(20):
        doc.edit(0, 0, f"Line {n}.\n")
        doc.analyze()
        quotes = [doc.state.live[i].quote for i in doc.live("plot.intensifier")]
        assert sorted(quotes) == ["very big", "very small"]
    (outcome,) = doc.feedback()
    assert (outcome.action, outcome.scope, outcome.rule) == (
        "dismissed",
        "suggestion",
        "plot.intensifier",
    )
    assert (outcome.suggestion_id, outcome.provider, outcome.doc_id) == (first, "local", "d")


def test_rewriting_its_sentence_makes_it_a_new_finding() -> None:
    doc = Doc("The dog was very big.")
    (sid,) = doc.live("plot.intensifier")
    doc.dismiss(id=sid)
    doc.edit(0, 3, "A")  # "A dog was very big."
    doc.analyze()
    assert len(doc.live("plot.intensifier")) == 1


def test_a_rule_off_in_the_document_and_its_undo() -> None:
    doc = Doc()
    ids = doc.live("plot.intensifier")
    answers = doc.dismiss(id=ids[0], scope="document")
    assert sorted(retracted(answers)) == sorted(ids)
    doc.edit(0, 0, "Now ")
    doc.analyze()
    assert doc.live("plot.intensifier") == []
    doc.dismiss(rule="plot.intensifier", scope="document", undo=True)
    assert doc.state.stale()  # read again: the rule's findings may be anywhere
    doc.analyze()
    assert len(doc.live("plot.intensifier")) == 3
    assert [o.action for o in doc.feedback()] == ["rule_off", "rule_on"]


def test_a_vouched_name_hides_the_look_alike_pair_and_comes_back_on_undo() -> None:
    doc = Doc()
    assert doc.live("character.lookalike_names")
    vouched = UserPreferences(words=["Mara"], revision=1)
    answers = doc.word("Mara", scope="everywhere", preferences=vouched)
    assert retracted(answers)
    assert doc.live("character.lookalike_names") == []
    assert doc.state.ignores.user.words == ["Mara"]
    assert [o.action for o in doc.feedback()] == ["word_added"]
    doc.word("Mara", scope="everywhere", undo=True, preferences=UserPreferences(revision=2))
    doc.analyze()
    assert doc.live("character.lookalike_names")
    assert [o.action for o in doc.feedback()] == ["word_added", "word_removed"]


def test_a_change_everywhere_never_undoes_a_newer_one_that_came_first() -> None:
    """Gateway 1 turns a rule off (revision 1) while gateway 2 replaces the preferences
    (revision 2, nothing off), whose update reaches the document first."""
    doc = Doc()
    newer = UserPreferences(revision=2)
    doc.fold(DocumentPreferences(doc_id="d", user_id="u", preferences=newer))
    off = UserPreferences(rules_off=["plot.intensifier"], revision=1)
    sid = doc.live("plot.intensifier")[0]
    doc.dismiss(id=sid, rule="plot.intensifier", scope="everywhere", preferences=off)
    assert doc.state.ignores.user == newer and len(doc.live("plot.intensifier")) == 3
    assert doc.feedback() == []  # not this frame's change, in the end


def test_a_dismissed_look_alike_stays_gone_when_an_earlier_mention_moves_its_anchor() -> None:
    doc = Doc("Mara met Tom. Mara smiled.\nThe sky was grey.\nMaura came in. Maura sat down.")
    (sid,) = doc.live("character.lookalike_names")
    doc.dismiss(id=sid)
    at = len("Mara met Tom. Mara smiled.\n")
    doc.edit(at, at, "Then Maura waved.\n")
    doc.analyze()
    assert doc.live("character.lookalike_names") == []


def test_the_users_revision_outlives_empty_preferences_in_a_snapshot() -> None:
    doc = Doc()
    doc.fold(DocumentPreferences(doc_id="d", user_id="u", preferences=UserPreferences(revision=5)))
    again = from_snapshot(to_snapshot(doc.state, offset=9, created_at="2030-01-01T00:00:00Z"))
    assert again.ignores.user.revision == 5


def test_preferences_heard_by_revision_and_kept_by_the_snapshot() -> None:
    doc = Doc()
    doc.dismiss(id=doc.live("plot.intensifier")[0])
    prefs = UserPreferences(rules_off=["plot.intensifier"], words=["Maura"], revision=2)
    answers = doc.fold(DocumentPreferences(doc_id="d", user_id="u", preferences=prefs))
    assert retracted(answers)
    assert doc.live("plot.intensifier") == [] and doc.live("character.lookalike_names") == []
    older = UserPreferences(rules_off=[], words=[], revision=1)
    assert doc.fold(DocumentPreferences(doc_id="d", user_id="u", preferences=older)) == []
    again = from_snapshot(to_snapshot(doc.state, offset=9, created_at="2030-01-01T00:00:00Z"))
    assert again.ignores == doc.state.ignores
    # A reopen that carries newer preferences (fewer rules off) reads the text again.
    newer = UserPreferences(rules_off=[], words=["Maura"], revision=3)
    opened = doc.fold(
        DocumentOpenRequested(
            doc_id="d", user_id="u", reply_to="r2", create=False, preferences=newer
        )
    )
    assert any(isinstance(a.event, DocIgnores) and a.reply_to == "r2" for a in opened)
    doc.analyze()
    assert len(doc.live("plot.intensifier")) == 3 - 1  # the dismissed one stays gone


def test_an_edit_that_applies_the_replacement_is_accepted() -> None:
    doc = Doc('"Come here," Tom said softly.')
    live = [s for s in doc.state.live.values() if s.replacement is not None]
    assert live, "a suggestion with a replacement"
    s = live[0]
    doc.edit(s.start_utf16, s.end_utf16, s.replacement or "")
    assert [(o.action, o.suggestion_id) for o in doc.feedback()] == [("accepted", s.id)]


def test_an_accepted_suggestion_leaves_the_live_set_even_when_its_span_outlives_the_edit() -> None:
    doc = Doc('"Come here," Tom said softly.')
    (s,) = [s for s in doc.state.live.values() if s.rule == "dialogue.adverb_tag"]
    # As a replacement that extends its quote would be accepted: an insertion at its edge.
    doc.state.live[s.id] = replace(s, replacement="so " + s.quote)
    answers = doc.edit(s.start_utf16, s.start_utf16, "so ")
    assert s.id in retracted(answers) and s.id not in doc.state.live
    assert [(o.action, o.suggestion_id) for o in doc.feedback()] == [("accepted", s.id)]


def test_an_editors_minimal_diff_of_the_fix_is_accepted_too() -> None:
    doc = Doc('"Come here," Tom said softly.')
    (s,) = [s for s in doc.state.live.values() if s.rule == "dialogue.adverb_tag"]
    assert (s.quote, s.replacement) == ("said softly", "said")
    at = s.start_utf16 + len("said")
    doc.edit(at, s.end_utf16, "")  # " softly" deleted: what a diff of the fix sends
    assert [(o.action, o.suggestion_id) for o in doc.feedback()] == [("accepted", s.id)]
    doc = Doc('"Come here," Tom said softly.')
    (s,) = [s for s in doc.state.live.values() if s.rule == "dialogue.adverb_tag"]
    doc.edit(s.end_utf16 - 1, s.end_utf16, "")  # "soft": an edit, not the fix
    assert doc.feedback() == []


def test_refusals() -> None:
    doc = Doc()
    for answers, code in [
        (doc.dismiss(id="nope"), "not_found"),
        (doc.dismiss(id="nope", scope="suggestion", undo=True), "not_found"),
        (doc.word("Zed", undo=True), "not_found"),
        (doc.dismiss(rule="plot.passive", scope="document", undo=True), "not_found"),
        (
            doc.fold(
                DocumentDismissed(
                    doc_id="d", user_id="other", reply_to="r", id="x", scope="suggestion"
                )
            ),
            "not_found",
        ),
    ]:
        (answer,) = answers
        assert isinstance(answer.event, ErrorEvent) and answer.event.code == code
        assert answer.reply_to == "r"
    assert doc.feedback() == []


def test_the_key_and_the_words() -> None:
    text = "First line here.\nThe dog was\nvery big. And then it ran."
    start = text.index("very big")
    assert sentence_around(text, start, start + 8) == "very big."
    assert finding_key("r", "plot", "m", "very  big", "a\nb") == finding_key(
        "r", "plot", "x", "very big", "a b"
    )
    assert finding_key(None, "plot", "m", "q", "s") != finding_key(None, "plot", "n", "q", "s")
    assert about({"Mara"}, "Maura", "'Maura' looks like 'Mara': readers skim")
    assert not about({"Mara"}, "Maura", "a name") and not about({"mara"}, "Mara", "")
    assert about({"Van Helsing"}, "Doctor Van Helsing", "")
    assert about({"Mara"}, "Mara's eyes", "") and about({"Mara"}, "Mara’s eyes", "")  # noqa: RUF001
