"""Commands to the document owners (``amplify.documents.v1``, key ``doc_id``): acks from all
replicas, idempotent, so one document's commands keep the order they were sent in.

``open`` and ``delete`` are awaited before the caller answers. ``send_edit`` hands back
the send's future without awaiting it, so a socket can queue edit after edit (in order)
without a round trip to the broker each.
"""

from __future__ import annotations

from collections.abc import Awaitable

from amplify_stream.bus.base import Position, Producer
from amplify_stream.events import encode, headers_for
from amplify_stream.events.documents import (
    DocumentDeleted,
    DocumentDismissed,
    DocumentEdited,
    DocumentOpenRequested,
    DocumentPreferences,
    DocumentWord,
)


class DocumentCommands:
    def __init__(self, producer: Producer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    async def open(self, event: DocumentOpenRequested) -> Position:
        return await self._producer.send_and_wait(
            self._topic, event.doc_id, encode(event), headers_for(event.type)
        )

    async def send_edit(self, event: DocumentEdited) -> Awaitable[Position]:
        """Queued in order; await the result for the edit's place in the log."""
        return await self._producer.send(
            self._topic, event.doc_id, encode(event), headers_for(event.type)
        )

    async def delete(self, event: DocumentDeleted) -> Position:
        return await self._producer.send_and_wait(
            self._topic, event.doc_id, encode(event), headers_for(event.type)
        )

    async def say(self, event: DocumentDismissed | DocumentWord) -> Position:
        """A ``doc.dismiss`` or ``doc.word`` (the writer's say), for the document's owner."""
        return await self._producer.send_and_wait(
            self._topic, event.doc_id, encode(event), headers_for(event.type)
        )

    async def send_preferences(self, event: DocumentPreferences) -> Awaitable[Position]:
        """Queued, like an edit: the caller awaits the landing of one document's or many."""
        return await self._producer.send(
            self._topic, event.doc_id, encode(event), headers_for(event.type)
        )
