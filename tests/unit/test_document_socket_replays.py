"""A socket's live documents (``gateway.document_socket.SocketDocuments``) relay each
``doc.open``'s answer once: a document owner that takes a partition over answers again the
commands after its predecessor's last checkpoint, and a repeated ``doc.opened`` (with the
reopen's suggestions and ``doc.analyzed`` after it) would reset the client's document."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from amplify_stream.bus.base import BusUnavailable, Record
from amplify_stream.errors import AmplifyError
from amplify_stream.events import REPLY_TO_HEADER, headers_for
from amplify_stream.events.documents import DocChange, DocEdit, DocOpen
from amplify_stream.gateway.document_socket import SocketDocuments
from amplify_stream.gateway.relay import Subscription
from amplify_stream.metrics import Metrics

DOC = "d1"


class FakeDocuments:
    """Opens answer nothing by themselves: the test puts the owner's records in the
    subscription, as the relay would."""

    say = None  # the writer's say is not what this test is about

    def __init__(self) -> None:
        self.sub = Subscription(DOC, 100)
        self.opened_with: list[str] = []

    async def create(self, user_id: str, reply_to: str, message: DocOpen) -> Subscription:
        self.opened_with.append(reply_to)
        return self.sub

    async def reopen(
        self, user_id: str, reply_to: str, doc_id: str, request_id: str | None = None
    ) -> Subscription:
        self.opened_with.append(reply_to)
        return self.sub

    def unwatch(self, sub: Subscription) -> None:
        pass


def record(kind: str, reply_to: str | None, **fields: Any) -> Record:
    headers = headers_for(kind)
    if reply_to is not None:
        headers.append((REPLY_TO_HEADER, reply_to.encode()))
    value = json.dumps({"type": kind, "doc_id": DOC, **fields}).encode()
    return Record("stream", 0, 0, DOC, value, tuple(headers))


async def relay(docs: FakeDocuments, records: list[Record]) -> None:
    """The records into the socket's subscription, and time for its watcher to send them."""
    for r in records:
        docs.sub.queue.put_nowait(r)
    for _ in range(20):
        await asyncio.sleep(0.01)


async def test_only_the_awaited_open_is_answered() -> None:
    sent: list[dict[str, Any]] = []

    async def send(text: str, at: int | None) -> None:
        sent.append(json.loads(text))

    async def fail(error: AmplifyError, request_id: str | None, doc_id: str | None) -> None:
        raise AssertionError(error)

    docs = FakeDocuments()
    socket = SocketDocuments(docs, "u1", send, fail, Metrics())  # type: ignore[arg-type]
    await socket.open(DocOpen(type="doc.open", text="abc"))
    (create,) = docs.opened_with
    me = socket.reply_to
    records = [
        record("doc.opened", create, version=0),
        record("doc.ack", me, version=1),
        record("doc.suggestion", None, version=1, id="s1"),
        # The new owner after a crash: the create and the edit again.
        record("doc.opened", create, version=0),
        record("doc.ack", me, version=1),
        # Another socket's answers.
        record("doc.opened", "other.1", version=1),
        record("doc.ack", "other", version=2),
    ]
    await relay(docs, records)
    assert [(f["type"], f["version"]) for f in sent] == [
        ("doc.opened", 0),
        ("doc.ack", 1),
        ("doc.suggestion", 1),
        ("doc.ack", 1),  # an ack again changes nothing for a client
    ]

    # A reopen: its answer comes once, with what follows it; a repeat of it, not at all.
    sent.clear()
    await socket.open(DocOpen(type="doc.open", doc_id=DOC))
    reopen = docs.opened_with[-1]
    assert reopen != create
    repeated = [
        record("doc.opened", reopen, version=1),
        record("doc.suggestion", reopen, version=1, id="s1"),
        record("doc.analyzed", reopen, version=1),
        record("doc.opened", reopen, version=1),
        record("doc.suggestion", reopen, version=1, id="s1"),
        record("doc.analyzed", reopen, version=1),
        record("doc.retracted", None, version=2, ids=["s1"]),
    ]
    await relay(docs, repeated)
    assert [f["type"] for f in sent] == [
        "doc.opened",
        "doc.suggestion",
        "doc.analyzed",
        "doc.retracted",
    ]
    await socket.aclose()


async def test_an_edit_whose_record_does_not_land_is_refused_to_the_client() -> None:
    """The broker refuses an edit after it was queued (Kafka: the send's future fails):
    the client hears ``unavailable`` for that edit, and nothing else happens."""
    failures: list[tuple[str, str | None, str | None]] = []

    async def send(text: str, at: int | None) -> None:
        pass

    async def fail(error: AmplifyError, request_id: str | None, doc_id: str | None) -> None:
        failures.append((error.code, request_id, doc_id))

    class Refusing(FakeDocuments):
        async def watch_own(self, user_id: str, doc_id: str) -> Subscription:
            return self.sub

        async def edit(self, user_id: str, reply_to: str, message: DocEdit) -> asyncio.Future[Any]:
            refused: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_later(
                0.01, refused.set_exception, BusUnavailable("gone")
            )
            return refused

    socket = SocketDocuments(Refusing(), "u1", send, fail, Metrics())  # type: ignore[arg-type]
    change = DocChange(start_utf16=0, end_utf16=0, text="x")
    await socket.edit(
        DocEdit(type="doc.edit", doc_id=DOC, version=1, changes=[change], request_id="e1")
    )
    for _ in range(20):
        await asyncio.sleep(0.01)
    assert failures == [("unavailable", "e1", DOC)]
    await socket.aclose()
