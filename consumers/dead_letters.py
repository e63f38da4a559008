"""A worker's dead-letter path: a record that cannot be decoded (or projected) is written
to the dead-letter topic, whole, with why, and then counts as finished."""

from __future__ import annotations

import base64
import logging

from amplify_stream.bus.base import Bus, Producer, Record
from amplify_stream.events import DeadLetter, encode, headers_for
from consumers.ownership import Ownership

log = logging.getLogger(__name__)

# The longest error a letter keeps (a validation error may list every field).
ERROR_CHARS = 2000


class DeadLetters:
    def __init__(self, bus: Bus, topic: str, client_id: str) -> None:
        self._bus = bus
        self._topic = topic
        self._client_id = client_id
        self._producer: Producer | None = None

    async def start(self) -> None:
        self._producer = self._bus.producer(client_id=self._client_id)
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def send(self, record: Record, error: str, ownership: Ownership) -> None:
        """Letter ``record`` while its partition is held (a zombie would letter it twice)."""
        assert self._producer is not None
        await ownership.hold()
        letter = DeadLetter(
            story_id=record.key or None,
            source_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            error=error[:ERROR_CHARS],
            payload=base64.b64encode(record.value).decode(),
        )
        await self._producer.send_and_wait(
            self._topic, record.key, encode(letter), headers_for(letter.type)
        )
        log.warning("record sent to the dead-letter topic", extra={"cursor": record.cursor})
