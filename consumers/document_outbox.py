"""The document owner's answers on their way to the stream topic: one ordered queue, so a
client hears its document's events in the order they happened, whatever wrote them (a
fold, a pass, a suggestion the moment it was found)."""

from __future__ import annotations

import asyncio
import logging

from amplify_stream.bus.base import Position, Producer
from amplify_stream.documents.partition import Answer
from amplify_stream.events import encode, headers_for
from consumers.ownership import Ownership
from producers.lease import PartitionLost

log = logging.getLogger(__name__)


class Outbox:
    """Answers of the partitions a worker owns, sent in order by one task."""

    def __init__(self, producer: Producer, topic: str) -> None:
        self._producer = producer
        self._topic = topic
        self._queue: asyncio.Queue[tuple[Ownership, list[Answer]]] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Its sender runs (again, when it had stopped)."""
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_loop(), name="documents:outbox")

    async def stop(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)

    def put(self, ownership: Ownership, answers: list[Answer]) -> None:
        """``answers`` of a partition held by ``ownership``: dropped if it is lost first."""
        self._queue.put_nowait((ownership, answers))

    async def _send_loop(self) -> None:
        """Every answer in the order it was made, without waiting for the broker (the
        records of one key keep their order in the producer)."""
        while True:
            ownership, answers = await self._queue.get()
            try:
                await ownership.hold()  # a zombie writes nothing
            except PartitionLost:
                continue
            for answer in answers:
                event = answer.event
                headers = headers_for(event.type, reply_to=answer.reply_to)
                key = event.doc_id or ""
                try:
                    sent = await self._producer.send(self._topic, key, encode(event), headers)
                except Exception as exc:
                    _log_lost(exc)
                    continue
                if isinstance(sent, asyncio.Future):
                    sent.add_done_callback(_check_sent)


def _check_sent(sent: asyncio.Future[Position]) -> None:
    if not sent.cancelled() and (exc := sent.exception()) is not None:
        _log_lost(exc)


def _log_lost(exc: BaseException) -> None:
    # Not retried: a lost answer is caught up by the client's reopen (the document's
    # state is in the log and the owner, not in these records).
    log.warning("a document event was not written to the stream: %r", exc)
