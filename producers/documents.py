"""Commands to document owners on the edit log: acks from all replicas, idempotent.

An edit is sent without waiting (one socket's edits keep their order in the producer;
the gateway awaits each one's landing beside the next), opens and deletes are awaited."""

from __future__ import annotations

from collections.abc import Awaitable

from amplify_stream.bus.base import Position, Producer
from amplify_stream.events import encode, headers_for
from amplify_stream.events.documents import (
    DocumentDeleted,
    DocumentEdited,
    DocumentOpenRequested,
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
        return await self._producer.send(
            self._topic, event.doc_id, encode(event), headers_for(event.type)
        )

    async def delete(self, event: DocumentDeleted) -> Position:
        return await self._producer.send_and_wait(
            self._topic, event.doc_id, encode(event), headers_for(event.type)
        )
