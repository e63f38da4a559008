"""The live documents one WebSocket has open: ``doc.open``, ``doc.edit``, ``doc.close``,
and the owner's events relayed back (docs/protocol.md section 6).

Each open document has a watcher task reading the relay's records of its key. Answers
meant for one socket (``doc.opened``, ``doc.ack``, an edit's error) carry a ``reply-to``
header: this socket's own token passes, another socket's is skipped; events for every
watcher (suggestions, retractions, insights, ``doc.analyzed``) carry none. The frames go
out as the records' values are; only a suggestion's (its id and rule, for a dismissal
"everywhere") and a retraction's (the ids it forgets) are read, both rare beside acks.

Each ``doc.open`` is answered once. A document owner that takes a partition over (its
predecessor crashed) folds again the commands after the last checkpoint and answers them
again: repeated ``doc.ack``s change nothing for a client, but a repeated ``doc.opened``
would reset its document to an old version and drop the edits it made since. So each
open's answers carry a reply-to of their own (``<token>.<n>``), and only the answer of an
open this socket still awaits is relayed.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import orjson

from amplify_stream.bus.base import Position
from amplify_stream.errors import AmplifyError, NotFound, NotReady
from amplify_stream.events import EVENT_TYPE_HEADER, REPLY_TO_HEADER
from amplify_stream.events.documents import DocClose, DocDismiss, DocEdit, DocOpen, DocWord
from amplify_stream.gateway.documents import Documents
from amplify_stream.gateway.relay import Subscription
from amplify_stream.metrics import Metrics

log = logging.getLogger(__name__)

_ACK = b"doc.ack"
_SUGGESTION = b"doc.suggestion"
_RETRACTED = b"doc.retracted"
_OPENED = b"doc.opened"
_ERROR = b"error"
_NOT_FOUND = b'"code":"not_found"'

Send = Callable[[str | bytes, int | None], Coroutine[Any, Any, None]]
Fail = Callable[[AmplifyError, str | None, str | None], Coroutine[Any, Any, None]]


class SocketDocuments:
    def __init__(
        self, documents: Documents, user_id: str, send: Send, fail: Fail, metrics: Metrics
    ) -> None:
        self._documents = documents
        self._say = documents.say
        self._user_id = user_id
        self._send = send
        self._fail = fail  # (error, request_id, doc_id)
        self._metrics = metrics
        # This socket's token in the ``reply-to`` header of the answers it is owed.
        self.reply_to = uuid.uuid4().hex
        self._reply_to = self.reply_to.encode()
        self._open_prefix = self._reply_to + b"."
        # The writer's say has its own: its not_found (an unknown suggestion) leaves the
        # document open, where an edit's (the document is gone) ends its watch.
        self._say_reply_to = self.reply_to + "~say"
        self._opens = itertools.count(1)
        # Per document: the reply-to of each open sent and not answered yet, and the one
        # whose answer (doc.opened, then its suggestions and doc.analyzed) is being relayed.
        self._awaited: dict[str, set[bytes]] = {}
        self._answering: dict[str, bytes | None] = {}
        self._watchers: dict[str, asyncio.Task[None]] = {}
        # Per document: when each edit not yet answered reached the gateway.
        self._edits: dict[str, dict[int, float]] = {}
        self._landing: set[asyncio.Task[None]] = set()
        # Per document: the rule of each live suggestion this socket heard (what a
        # dismissal "everywhere" turns off; the owner checks the rest).
        self._rules: dict[str, dict[str, str | None]] = {}

    async def open(self, message: DocOpen) -> None:
        reply_to = self._open_reply_to()
        if message.doc_id is None:
            sub = await self._documents.create(self._user_id, reply_to, message)
        else:
            sub = await self._documents.reopen(
                self._user_id, reply_to, message.doc_id, message.request_id
            )
        self._await(sub.key, reply_to)
        self._watch(sub)

    def _open_reply_to(self) -> str:
        return f"{self.reply_to}.{next(self._opens)}"

    def _await(self, doc_id: str, reply_to: str) -> None:
        # Before the watcher reads the subscription: the answer waits in its queue.
        self._awaited.setdefault(doc_id, set()).add(reply_to.encode())

    def _for_this_socket(self, doc_id: str, kind: bytes | None, to: bytes) -> bool:
        """Whether an answer (a record with a ``reply-to``) goes to this socket."""
        if to == self._reply_to or to == self._say_reply_to.encode():
            return True  # an edit's answer, or the writer's say's
        if not to.startswith(self._open_prefix):
            return False  # another socket's
        if kind in (_OPENED, _ERROR):
            # An open's first answer (or its refusal): the open awaited, or a repeat.
            awaited = self._awaited.get(doc_id, set())
            answering = to if to in awaited else None
            awaited.discard(to)
            self._answering[doc_id] = answering
            return answering is not None
        return self._answering.get(doc_id) == to  # what follows that doc.opened

    async def edit(self, message: DocEdit) -> None:
        received = time.monotonic()
        watched_here = message.doc_id in self._watchers
        if not watched_here:
            # An edit of a document not opened here: its answers still come here, once
            # the gateway knows it is the user's (another's is not_found, and nothing of
            # it is watched: its suggestions carry no reply-to).
            self._watch(await self._documents.watch_own(self._user_id, message.doc_id))
        try:
            sent = await self._documents.edit(self._user_id, self.reply_to, message)
        except BaseException:
            if not watched_here:
                self.close(DocClose(type="doc.close", doc_id=message.doc_id))
            raise
        self._edits.setdefault(message.doc_id, {})[message.version] = received
        # The edit's record lands in the log, or the client hears that it did not (and
        # that nothing of it was applied: the owner never sees an edit that did not land).
        # A callback, not a task per keystroke: only a failure costs a task.
        landed = asyncio.ensure_future(sent)
        landed.add_done_callback(lambda f: self._landed(f, message))

    def _landed(self, sent: asyncio.Future[Position], message: DocEdit) -> None:
        if sent.cancelled() or (exc := sent.exception()) is None:
            return
        log.warning("edit not written: %r", exc)
        failure = NotReady("the event bus is unavailable; the edit was not applied")
        task = asyncio.create_task(self._fail(failure, message.request_id, message.doc_id))
        self._landing.add(task)
        task.add_done_callback(self._landing.discard)

    async def dismiss(self, message: DocDismiss) -> None:
        rules = self._open_here(message.doc_id)
        heard = rules.get(message.id) if message.id is not None else None
        await self._say.dismiss(self._user_id, self._say_reply_to, message, heard)

    async def word(self, message: DocWord) -> None:
        self._open_here(message.doc_id)
        await self._say.word(self._user_id, self._say_reply_to, message)

    def _open_here(self, doc_id: str) -> dict[str, str | None]:
        """The rules heard of a document open on this socket (the writer's say is about
        what they see); ``NotFound`` for any other."""
        if doc_id not in self._watchers:
            raise NotFound("document not found (open it on this socket first)")
        return self._rules.setdefault(doc_id, {})

    def _heard(self, doc_id: str, kind: bytes | None, value: bytes) -> None:
        if kind == _SUGGESTION:
            said = orjson.loads(value)
            self._rules.setdefault(doc_id, {})[said["id"]] = said.get("rule")
        elif kind == _RETRACTED and (rules := self._rules.get(doc_id)):
            for sid in orjson.loads(value)["ids"]:
                rules.pop(sid, None)

    def close(self, message: DocClose) -> None:
        if (task := self._watchers.pop(message.doc_id, None)) is not None:
            task.cancel()
        self._rules.pop(message.doc_id, None)
        self._edits.pop(message.doc_id, None)
        self._awaited.pop(message.doc_id, None)
        self._answering.pop(message.doc_id, None)

    def _watch(self, sub: Subscription) -> None:
        doc_id = sub.key
        if (previous := self._watchers.pop(doc_id, None)) is not None:
            previous.cancel()
        task = asyncio.create_task(self._relay(sub), name=f"ws-doc:{doc_id}")
        self._watchers[doc_id] = task
        task.add_done_callback(
            lambda t: self._watchers.pop(doc_id, None) if self._watchers.get(doc_id) is t else None
        )

    async def _relay(self, sub: Subscription) -> None:
        doc_id = sub.key
        say_reply_to = self._say_reply_to.encode()
        try:
            while True:
                while not sub.overflowed:
                    record = await sub.queue.get()
                    to = record.header(REPLY_TO_HEADER)
                    kind = record.header(EVENT_TYPE_HEADER)
                    if to is not None and not self._for_this_socket(doc_id, kind, to):
                        continue
                    if kind == _ACK and to is not None:
                        self._acked(doc_id, record.value)
                    elif kind == _OPENED:
                        self._rules.pop(doc_id, None)  # the live set is told again
                    elif kind in (_SUGGESTION, _RETRACTED):
                        self._heard(doc_id, kind, record.value)
                    await self._send(record.value.decode(), record.timestamp_ms)
                    if kind == _ERROR and to is not None and to != say_reply_to:
                        self._edits.pop(doc_id, None)  # a refused edit: the client reopens
                        if _NOT_FOUND in record.value:
                            return
                # Fell behind the relay: the document's events since are not all here.
                # Reopen on the client's behalf: doc.opened carries the whole state again.
                self._documents.unwatch(sub)
                reply_to = self._open_reply_to()
                sub = await self._documents.reopen(self._user_id, reply_to, doc_id)
                self._await(doc_id, reply_to)
        except AmplifyError as exc:
            await self._fail(exc, None, doc_id)
        finally:
            self._documents.unwatch(sub)

    def _acked(self, doc_id: str, value: bytes) -> None:
        # By version: an ack repeated by a new owner (after a crash) times nothing.
        waiting = self._edits.get(doc_id)
        if waiting:
            received = waiting.pop(orjson.loads(value)["version"], None)
            if received is not None:
                self._metrics.doc_ack_ms.observe((time.monotonic() - received) * 1000)

    async def aclose(self) -> None:
        tasks = [*self._watchers.values(), *self._landing]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
