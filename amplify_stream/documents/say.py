"""The writer's say folded into one document (docs/protocol.md section 6, "The writer's
say"): a dismissal, a rule turned off, a word vouched for, the user's preferences heard,
a suggestion accepted by an edit. Pure, like the rest of the fold: a command in, the
events for the document's watchers and the ``suggestion.feedback`` outcomes out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from amplify_stream.documents.ignores import TooMany, finding_key, sentence_around
from amplify_stream.documents.state import DocumentState, LiveSuggestion
from amplify_stream.events import Focus
from amplify_stream.events.documents import (
    SHOWN_CHARS,
    DismissedFinding,
    DocEvent,
    DocIgnores,
    DocRetracted,
    DocumentDismissed,
    DocumentWord,
    FeedbackAction,
    FeedbackScope,
    SuggestionFeedbackOutcome,
    UserPreferences,
)
from amplify_stream.text.edits import code_point_index


@dataclass(frozen=True, slots=True)
class Source:
    """Who finds the document's suggestions: what its feedback is about."""

    provider: str | None = None
    model: str | None = None


class Refused(ValueError):
    """The command changes nothing; its sender hears ``code``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Said:
    events: list[DocEvent] = field(default_factory=list)  # for every watcher
    outcomes: list[SuggestionFeedbackOutcome] = field(default_factory=list)
    # Something was taken back (an undo): the document is read again.
    read_again: bool = False


def dismiss(doc: DocumentState, command: DocumentDismissed, source: Source) -> Said:
    if command.scope == "everywhere":
        return _everywhere(doc, command, source)
    if command.undo:
        return _undismiss(doc, command, source)
    ignores = doc.ignores
    live = doc.live.get(command.id) if command.id is not None else None
    if command.id is not None and live is None:
        raise Refused("not_found", f"no live suggestion {command.id} in this document")
    rule = live.rule if live is not None else command.rule
    try:
        if command.scope == "suggestion":
            if live is None:
                raise Refused("invalid_message", "dismissing a suggestion needs its id")
            ignores.dismiss(key_of(doc, live), _dismissed(live))
            action: FeedbackAction = "dismissed"
        else:
            if rule is None:
                raise Refused(
                    "invalid_message", "this suggestion names no rule to turn off: dismiss it"
                )
            ignores.turn_off(rule)
            action = "rule_off"
    except TooMany as exc:
        raise Refused("invalid_message", str(exc)) from exc
    outcome = feedback(doc, source, action, command.scope, suggestion=live, rule=rule)
    return _after(doc, command.request_id, [outcome])


def _undismiss(doc: DocumentState, command: DocumentDismissed, source: Source) -> Said:
    ignores = doc.ignores
    if command.scope == "suggestion":
        if command.id is None or (gone := ignores.undismiss(command.id)) is None:
            raise Refused("not_found", f"no dismissed suggestion {command.id} in this document")
        outcome = feedback(
            doc,
            source,
            "undismissed",
            "suggestion",
            rule=gone.rule,
            focus=gone.focus,
            suggestion_id=gone.id,
        )
    else:
        rule = command.rule
        if rule is None:
            raise Refused("invalid_message", "turning a rule back on needs the rule")
        if rule not in ignores.rules_off:
            raise Refused("not_found", f"{rule} is not off in this document")
        ignores.rules_off.discard(rule)
        outcome = feedback(doc, source, "rule_on", command.scope, rule=rule)
    said = _after(doc, command.request_id, [outcome])
    said.read_again = True
    doc.read_again()
    return said


def _everywhere(
    doc: DocumentState, command: DocumentDismissed | DocumentWord, source: Source
) -> Said:
    """A rule or a word of the user's own: the gateway stored the change and sends the
    preferences it made, which the document hears by revision (so a newer change that
    came first is never undone here). Counted when the document hears news: the store
    changed, and this is the frame that changed it."""
    if command.preferences is None:
        raise Refused("invalid_message", "a change everywhere carries the user's preferences")
    heard = doc.ignores.hear(command.preferences)
    removed = heard is not None and heard[1]
    if removed:
        doc.read_again()
    outcomes = []
    if heard is not None and any(heard):
        if isinstance(command, DocumentWord):
            action: FeedbackAction = "word_removed" if command.undo else "word_added"
            outcomes.append(feedback(doc, source, action, "everywhere", word=command.word))
        else:
            live = doc.live.get(command.id) if command.id is not None else None
            action = "rule_on" if command.undo else "rule_off"
            outcomes.append(
                feedback(doc, source, action, "everywhere", suggestion=live, rule=command.rule)
            )
    said = _after(doc, command.request_id, outcomes)
    said.read_again = removed
    return said


def word(doc: DocumentState, command: DocumentWord, source: Source) -> Said:
    if command.scope == "everywhere":
        return _everywhere(doc, command, source)
    ignores = doc.ignores
    if command.undo:
        if command.word not in ignores.words:
            raise Refused("not_found", f"'{command.word}' is not one of this document's words")
        ignores.words.discard(command.word)
        doc.read_again()
    else:
        try:
            ignores.vouch(command.word)
        except TooMany as exc:
            raise Refused("invalid_message", str(exc)) from exc
    action: FeedbackAction = "word_removed" if command.undo else "word_added"
    outcome = feedback(doc, source, action, command.scope, word=command.word)
    said = _after(doc, command.request_id, [outcome])
    said.read_again = command.undo
    return said


def hear(doc: DocumentState, preferences: UserPreferences) -> Said | None:
    """The user's preferences, newer than the ones the document holds (else None)."""
    heard = doc.ignores.hear(preferences)
    if heard is None:
        return None
    added, removed = heard
    if not added and not removed:
        return Said()  # what the document had heard already, now under its revision
    if removed:
        doc.read_again()
    said = _after(doc, None, [])
    said.read_again = removed
    return said


def key_of(doc: DocumentState, s: LiveSuggestion) -> str:
    return finding_key(s.rule, s.focus, s.message, s.quote, surroundings(doc, s))


def surroundings(doc: DocumentState, s: LiveSuggestion) -> str:
    """The sentence a paragraph's finding sits in; none for a document-level one (a
    look-alike name is anchored at a mention that moves whenever an earlier one is
    written: what the writer judged is the pair, wherever it is)."""
    if s.id in doc.across:
        return ""
    start = code_point_index(doc.text, s.start_utf16)
    return sentence_around(doc.text, start, start + len(s.quote))


def accepted(
    doc: DocumentState, suggestions: Iterable[LiveSuggestion], source: Source
) -> list[SuggestionFeedbackOutcome]:
    return [feedback(doc, source, "accepted", "suggestion", suggestion=s) for s in suggestions]


def ignores_event(doc: DocumentState, request_id: str | None) -> DocIgnores:
    ignores = doc.ignores
    return DocIgnores(
        doc_id=doc.doc_id,
        version=doc.version,
        request_id=request_id,
        dismissed=list(ignores.dismissed.values()),
        rules_off=sorted(ignores.rules_off),
        words=sorted(ignores.words),
        user=ignores.user_ignores(),
    )


def feedback(
    doc: DocumentState,
    source: Source,
    action: FeedbackAction,
    scope: FeedbackScope,
    *,
    suggestion: LiveSuggestion | None = None,
    rule: str | None = None,
    focus: Focus | None = None,
    suggestion_id: str | None = None,
    word: str | None = None,
) -> SuggestionFeedbackOutcome:
    if suggestion is not None:
        rule, focus, suggestion_id = suggestion.rule, suggestion.focus, suggestion.id
    return SuggestionFeedbackOutcome(
        user_id=doc.user_id,
        doc_id=doc.doc_id,
        suggestion_id=suggestion_id,
        rule=rule,
        focus=focus,
        provider=source.provider,
        model=source.model,
        action=action,
        scope=scope,
        word=word,
    )


def _after(
    doc: DocumentState, request_id: str | None, outcomes: list[SuggestionFeedbackOutcome]
) -> Said:
    """What every watcher hears after the writer's say changed: what it now hides, gone,
    and the document's ignores."""
    events: list[DocEvent] = []
    if retracted := retract_hidden(doc):
        events.append(DocRetracted(doc_id=doc.doc_id, version=doc.version, ids=retracted))
    events.append(ignores_event(doc, request_id))
    return Said(events, outcomes)


def retract_hidden(doc: DocumentState) -> list[str]:
    """What the writer's say now hides, taken out of the live set (its ids)."""
    ignores = doc.ignores
    if not ignores:
        return []
    gone = [sid for sid, s in doc.live.items() if _hidden(doc, s)]
    doc.retract(gone)
    return gone


def _hidden(doc: DocumentState, s: LiveSuggestion) -> bool:
    return doc.ignores.hides(s.rule, s.focus, s.message, s.quote, lambda: surroundings(doc, s))


def _dismissed(s: LiveSuggestion) -> DismissedFinding:
    return DismissedFinding(
        id=s.id,
        rule=s.rule,
        focus=s.focus,
        quote=s.quote[:SHOWN_CHARS],
        message=s.message[:SHOWN_CHARS],
    )
