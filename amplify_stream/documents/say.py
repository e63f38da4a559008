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
from amplify_stream.events.documents import (
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
    ignores = doc.ignores
    if command.undo:
        return _undismiss(doc, command, source)
    live = doc.live.get(command.id) if command.id is not None else None
    if command.id is not None and live is None:
        raise Refused("not_found", f"no live suggestion {command.id} in this document")
    rule = live.rule if live is not None else command.rule
    try:
        if command.scope == "suggestion":
            if live is None:
                raise Refused("invalid_message", "dismissing a suggestion needs its id")
            key = finding_key(
                live.rule, live.focus, live.message, live.quote, sentence_of(doc, live)
            )
            ignores.dismiss(key, _dismissed(live))
            action: FeedbackAction = "dismissed"
        else:
            if rule is None:
                raise Refused(
                    "invalid_message", "this suggestion names no rule to turn off: dismiss it"
                )
            if command.scope == "document":
                ignores.turn_off(rule)
            else:
                ignores.user_rule_off(rule, off=True)
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
        if command.scope == "document":
            if rule not in ignores.rules_off:
                raise Refused("not_found", f"{rule} is not off in this document")
            ignores.rules_off.discard(rule)
        else:
            ignores.user_rule_off(rule, off=False)
        outcome = feedback(doc, source, "rule_on", command.scope, rule=rule)
    said = _after(doc, command.request_id, [outcome])
    said.read_again = True
    doc.read_again()
    return said


def word(doc: DocumentState, command: DocumentWord, source: Source) -> Said:
    ignores = doc.ignores
    everywhere = command.scope == "everywhere"
    if command.undo:
        if everywhere:
            ignores.user_word(command.word, vouched=False)
        elif command.word in ignores.words:
            ignores.words.discard(command.word)
        else:
            raise Refused("not_found", f"'{command.word}' is not one of this document's words")
        doc.read_again()
    else:
        try:
            if everywhere:
                ignores.user_word(command.word, vouched=True)
            else:
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
    focus: str | None = None,
    suggestion_id: str | None = None,
    word: str | None = None,
) -> SuggestionFeedbackOutcome:
    if suggestion is not None:
        rule, focus, suggestion_id = suggestion.rule, suggestion.focus, suggestion.id
    return SuggestionFeedbackOutcome.model_validate(
        {
            "user_id": doc.user_id,
            "doc_id": doc.doc_id,
            "suggestion_id": suggestion_id,
            "rule": rule,
            "focus": focus,
            "provider": source.provider,
            "model": source.model,
            "action": action,
            "scope": scope,
            "word": word,
        }
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


def sentence_of(doc: DocumentState, s: LiveSuggestion) -> str:
    """The sentence a live suggestion sits in (``finding_key``'s surroundings)."""
    start = code_point_index(doc.text, s.start_utf16)
    return sentence_around(doc.text, start, start + len(s.quote))


def retract_hidden(doc: DocumentState) -> list[str]:
    """What the writer's say now hides, taken out of the live set (its ids)."""
    ignores = doc.ignores
    if not ignores:
        return []
    gone = [sid for sid, s in doc.live.items() if _hidden(doc, s)]
    doc.retract(gone)
    return gone


def _hidden(doc: DocumentState, s: LiveSuggestion) -> bool:
    return doc.ignores.hides(s.rule, s.focus, s.message, s.quote, lambda: sentence_of(doc, s))


def _dismissed(s: LiveSuggestion) -> DismissedFinding:
    return DismissedFinding(id=s.id, rule=s.rule, focus=s.focus, quote=s.quote, message=s.message)
