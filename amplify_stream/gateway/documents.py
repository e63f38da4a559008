"""Live documents as the gateway sees them (docs/protocol.md section 6): open (create or
reopen), edit, delete. The gateway checks what it can without the document's text (sizes,
counts, rates, who owns it) and publishes commands to the document's owner, which checks
versions and offsets and answers on the stream topic.

Shared by the WebSocket and the HTTP routes so both apply the same rules.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from amplify_stream.bus.base import Position
from amplify_stream.config.groups import LimitsSettings
from amplify_stream.errors import InvalidMessage, NotFound, NotReady
from amplify_stream.events import ALL_FOCUS
from amplify_stream.events.documents import (
    DocEdit,
    DocOpen,
    DocumentDeleted,
    DocumentEdited,
    DocumentOpenRequested,
)
from amplify_stream.events.text_limits import DOCUMENT_TEXTS, TextLimits
from amplify_stream.gateway.limits import Limiter
from amplify_stream.gateway.relay import RelayHub, Subscription
from amplify_stream.gateway.writers_say import WritersSay, document_copy
from amplify_stream.store.documents import DocumentStore
from producers.documents import DocumentCommands

log = logging.getLogger(__name__)


class Documents:
    def __init__(
        self,
        limits: LimitsSettings,
        bus_timeout_s: float,
        store: DocumentStore,
        commands: DocumentCommands,
        relay: RelayHub,
        limiter: Limiter,
        say: WritersSay,
    ) -> None:
        # The writer's say (doc.dismiss, doc.word, the user's preferences).
        self.say = say
        self._preferences = say.preferences
        self._bus_timeout_s = bus_timeout_s
        self._max_changes = limits.max_doc_changes
        self._store = store
        self.commands = commands
        self._relay = relay
        self._limiter = limiter
        self._text_limits = TextLimits.of(limits)

    def check_new(self, message: DocOpen) -> None:
        self._text_limits.check(message, DOCUMENT_TEXTS, InvalidMessage)

    async def create(self, user_id: str, reply_to: str, message: DocOpen) -> Subscription:
        """A new document: its row, then its first command (``doc.opened`` answers)."""
        self.check_new(message)
        doc_id = self._relay.mint()  # in this gateway's home slice of the stream
        prefs = await self._preferences.get(user_id)
        focus = list(message.focus or prefs.focus or ALL_FOCUS)
        await self._store.create(
            doc_id,
            user_id,
            title=message.title,
            focus=focus,
            text=message.text or "",
            admission=self._limiter.documents,
        )
        command = DocumentOpenRequested(
            doc_id=doc_id,
            user_id=user_id,
            reply_to=reply_to,
            request_id=message.request_id,
            create=True,
            text=message.text or "",
            title=message.title,
            focus=focus,
            preferences=document_copy(prefs),
        )
        try:
            return await self._open(command)
        except NotReady:
            await self._store.delete(doc_id)  # not on the bus: not created
            raise

    async def reopen(
        self, user_id: str, reply_to: str, doc_id: str, request_id: str | None = None
    ) -> Subscription:
        """One of the user's documents again, as its owner holds it now."""
        if not await self._store.exists_for_user(doc_id, user_id):
            raise NotFound("document not found")
        # The user's preferences as they are now: a document that missed a change (its
        # owner was down, or it was created meanwhile) catches up here.
        prefs = await self._preferences.get(user_id)
        command = DocumentOpenRequested(
            doc_id=doc_id,
            user_id=user_id,
            reply_to=reply_to,
            request_id=request_id,
            create=False,
            preferences=document_copy(prefs),
        )
        return await self._open(command)

    async def _open(self, command: DocumentOpenRequested) -> Subscription:
        # Subscribed first: the owner's answer cannot slip by before the watcher starts.
        sub = await self._relay.subscribe(command.doc_id)
        try:
            async with asyncio.timeout(self._bus_timeout_s):
                await self.commands.open(command)
        except Exception as exc:
            self._relay.unsubscribe(sub)
            log.warning("document not opened: the bus refused it: %r", exc)
            raise NotReady("the event bus is unavailable; try again") from exc
        except BaseException:
            self._relay.unsubscribe(sub)  # the socket went meanwhile
            raise
        return sub

    async def watch_own(self, user_id: str, doc_id: str) -> Subscription:
        """The relay's records of one of the user's documents (``NotFound`` for another's)."""
        if not await self._store.exists_for_user(doc_id, user_id):
            raise NotFound("document not found")
        return await self._relay.subscribe(doc_id)

    def unwatch(self, sub: Subscription) -> None:
        self._relay.unsubscribe(sub)

    async def edit(self, user_id: str, reply_to: str, message: DocEdit) -> Awaitable[Position]:
        """Publish the edit (not awaited: its landing is the caller's to await). What needs
        the text (offsets, surrogates, versions) is the owner's to check."""
        if len(message.changes) > self._max_changes:
            raise InvalidMessage(
                f"changes: {len(message.changes)} in one frame; the limit is {self._max_changes}"
            )
        for i, change in enumerate(message.changes):
            if change.start_utf16 > change.end_utf16:
                raise InvalidMessage(f"changes[{i}]: starts after its end; nothing was applied")
            if "\x00" in change.text:
                raise InvalidMessage(f"changes[{i}].text: must not contain NUL characters")
        await self._limiter.edits.take(user_id)
        command = DocumentEdited(
            doc_id=message.doc_id,
            user_id=user_id,
            reply_to=reply_to,
            request_id=message.request_id,
            version=message.version,
            changes=message.changes,
        )
        try:
            return await self.commands.send_edit(command)
        except Exception as exc:
            raise NotReady("the event bus is unavailable; the edit was not applied") from exc

    async def delete(self, user_id: str, doc_id: str) -> None:
        """Its owner forgets it and tombstones it on its topics; then the row goes."""
        if not await self._store.exists_for_user(doc_id, user_id):
            raise NotFound("document not found")
        try:
            async with asyncio.timeout(self._bus_timeout_s):
                await self.commands.delete(DocumentDeleted(doc_id=doc_id, user_id=user_id))
        except Exception as exc:
            raise NotReady("the event bus is unavailable; nothing was deleted") from exc
        await self._store.delete(doc_id)
