"""The writer's say as the gateway takes it (docs/protocol.md section 6, "The writer's
say"): ``doc.dismiss`` and ``doc.word`` for one document's owner, and the user's own
preferences (``/v1/me/preferences``), kept in the store and told to every document of
the user, so what they decide follows them into every client.

The store is the preferences' truth and this is their one writer: a change is stored
under the next revision (compare-and-set), then sent to each of the user's documents
(``document.preferences``), whose owner keeps the newest revision it heard. A document
opened later hears them with its ``document.open``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace

from amplify_stream.bus.base import Producer
from amplify_stream.errors import Conflict, InvalidMessage, NotFound, NotReady
from amplify_stream.events import Focus, encode, headers_for
from amplify_stream.events.documents import (
    DocDismiss,
    DocumentDismissed,
    DocumentPreferences,
    DocumentWord,
    DocWord,
    FeedbackAction,
    SuggestionFeedbackOutcome,
    UserPreferences,
)
from amplify_stream.gateway.schemas import MAX_RULES_OFF, MAX_WORDS
from amplify_stream.metrics import Metrics
from amplify_stream.providers.local.rules import known
from amplify_stream.store.documents import DocumentStore
from amplify_stream.store.preferences import Preferences, PreferenceStore
from producers.documents import DocumentCommands

log = logging.getLogger(__name__)


def document_copy(prefs: Preferences) -> UserPreferences:
    """What a document keeps of the user's preferences (its commands carry it)."""
    return UserPreferences(
        rules_off=list(prefs.rules_off), words=list(prefs.words), revision=prefs.revision
    )


def check_rules(rules: Iterable[str]) -> None:
    unknown = sorted(r for r in rules if not known(r))
    if unknown:
        raise InvalidMessage(
            f"unknown rule: {', '.join(unknown)} (GET /v1/rules lists them)",
            details={"rules": unknown},
        )


class WritersSay:
    def __init__(
        self,
        preferences: PreferenceStore,
        documents: DocumentStore,
        commands: DocumentCommands,
        producer: Producer,
        outcomes_topic: str,
        metrics: Metrics,
        bus_timeout_s: float,
    ) -> None:
        self.preferences = preferences
        self._documents = documents
        self._commands = commands
        self._producer = producer
        self._outcomes = outcomes_topic
        self._metrics = metrics
        self._bus_timeout_s = bus_timeout_s

    # ------------------------------------------------------------ the socket

    async def dismiss(
        self, user_id: str, reply_to: str, message: DocDismiss, heard_rule: str | None
    ) -> None:
        """``heard_rule``: the rule of ``message.id`` as this socket heard it."""
        if message.id is None and message.rule is None:
            raise InvalidMessage("doc.dismiss needs the suggestion's id, or a rule")
        if message.scope == "suggestion" and message.id is None:
            raise InvalidMessage("dismissing a suggestion needs its id")
        if message.rule is not None:
            check_rules([message.rule])
        # The suggestion's own rule first (the contract: "the rule of id, or rule").
        rule = heard_rule or message.rule
        everywhere = message.scope == "everywhere"
        if everywhere and rule is None:
            raise NotFound(f"no live suggestion {message.id} with a rule in this document")
        command = DocumentDismissed(
            doc_id=message.doc_id,
            user_id=user_id,
            reply_to=reply_to,
            request_id=message.request_id,
            id=message.id,
            rule=rule if everywhere else message.rule,
            scope=message.scope,
            undo=message.undo,
        )
        if not everywhere:
            await self._send(self._commands.say(command))
            return
        assert rule is not None
        await self._change_then_tell(
            user_id,
            lambda p: replace(p, rules_off=_turned(p.rules_off, rule, message.undo, MAX_RULES_OFF)),
            command,
        )

    async def word(self, user_id: str, reply_to: str, message: DocWord) -> None:
        command = DocumentWord(
            doc_id=message.doc_id,
            user_id=user_id,
            reply_to=reply_to,
            request_id=message.request_id,
            word=message.word,
            scope=message.scope,
            undo=message.undo,
        )
        if message.scope == "document":
            await self._send(self._commands.say(command))
            return
        await self._change_then_tell(
            user_id,
            lambda p: replace(p, words=_turned(p.words, message.word, message.undo, MAX_WORDS)),
            command,
        )

    async def _change_then_tell(
        self,
        user_id: str,
        how: Callable[[Preferences], Preferences],
        command: DocumentDismissed | DocumentWord,
    ) -> None:
        """The user's preferences changed, then the document the frame was about (its
        owner answers and counts it; the command carries the preferences made, which it
        hears by revision), then the user's other documents."""
        _, after = await self.preferences.change(user_id, how)
        command = command.model_copy(update={"preferences": document_copy(after)})
        await self._send(self._commands.say(command))
        await self._tell_documents(user_id, after)

    # ------------------------------------------------------------ HTTP

    async def replace(
        self,
        user_id: str,
        rules_off: list[str],
        words: list[str],
        focus: list[Focus] | None,
        revision: int | None = None,
    ) -> Preferences:
        """``PUT /v1/me/preferences``: each rule and word added or taken away is a
        ``suggestion.feedback`` once the store holds the change. ``revision``: the one the
        caller read; another change since is a ``Conflict`` (a read-modify-write of two
        clients never loses one's change)."""
        check_rules(rules_off)

        def replaced(p: Preferences) -> Preferences:
            if revision is not None and p.revision != revision:
                raise Conflict(
                    f"your preferences changed since revision {revision} (now {p.revision}): "
                    "read them again"
                )
            return replace(
                p,
                rules_off=tuple(sorted(set(rules_off))),
                words=tuple(sorted(set(words))),
                focus=None if focus is None else tuple(focus),
            )

        before, after = await self.preferences.change(user_id, replaced)
        said = (before.rules_off, before.words) != (after.rules_off, after.words)
        # Counted first (the store holds the change); then every document told, also when
        # nothing changed: the same PUT again repairs a change whose telling failed (the
        # owners pass by a revision they heard).
        await self._count(user_id, before, after)
        if said or after.revision == before.revision:
            await self._tell_documents(user_id, after)
        return after

    async def _count(self, user_id: str, before: Preferences, after: Preferences) -> None:
        changes: list[tuple[FeedbackAction, str | None, str | None]] = [
            *(("rule_off", r, None) for r in sorted(set(after.rules_off) - set(before.rules_off))),
            *(("rule_on", r, None) for r in sorted(set(before.rules_off) - set(after.rules_off))),
            *(("word_added", None, w) for w in sorted(set(after.words) - set(before.words))),
            *(("word_removed", None, w) for w in sorted(set(before.words) - set(after.words))),
        ]
        outcomes = [
            SuggestionFeedbackOutcome(
                user_id=user_id, action=action, scope="everywhere", rule=rule, word=word
            )
            for action, rule, word in changes
        ]
        try:
            await self._send(
                *[
                    self._producer.send(self._outcomes, user_id, encode(o), headers_for(o.type))
                    for o in outcomes
                ]
            )
        except NotReady:
            # The preferences hold (the store has them); only their count is missing.
            log.warning("feedback of %d preference changes not written", len(outcomes))
            return
        for o in outcomes:
            self._metrics.suggestion_feedback.labels(o.rule or "", o.action).inc()

    # ------------------------------------------------------------ documents

    async def _tell_documents(self, user_id: str, prefs: Preferences) -> None:
        """``document.preferences`` to every document of the user (at most
        ``max_documents_per_user``), open or not."""
        heard = document_copy(prefs)
        ids = await self._documents.ids_for_user(user_id)
        await self._send(
            *[
                self._commands.send_preferences(
                    DocumentPreferences(doc_id=doc_id, user_id=user_id, preferences=heard)
                )
                for doc_id in ids
            ]
        )

    async def _send(self, *sends: Awaitable[object]) -> None:
        """Every send landed within the bus's timeout, or ``NotReady``. (A send queues a
        record and hands back its landing, or lands it before it returns.)"""
        try:
            async with asyncio.timeout(self._bus_timeout_s):
                queued = await asyncio.gather(*sends)
                await asyncio.gather(*(q for q in queued if inspect.isawaitable(q)))
        except Exception as exc:
            log.warning("the writer's say not written: %r", exc)
            raise NotReady("the event bus is unavailable; try again") from exc


def _turned(values: tuple[str, ...], value: str, undo: bool, limit: int) -> tuple[str, ...]:
    """``values`` with ``value`` (or, to undo, without it), within ``limit``."""
    if undo:
        if value not in values:
            raise NotFound(f"{value!r} is not one of your preferences")
        return tuple(v for v in values if v != value)
    if value not in values and len(values) >= limit:
        raise InvalidMessage(f"you have {limit} of these, the limit; remove some first")
    return tuple(sorted({*values, value}))
