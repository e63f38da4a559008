"""Running workers: one table of the roles (how each worker is built, with what it owns),
and ``running(role, ...)``, which starts one and stops it cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from amplify_stream.audio_store import AudioStore
from amplify_stream.bus.base import Bus, Producer
from amplify_stream.config import Settings
from amplify_stream.documents import create_document_analyzer
from amplify_stream.metrics import Metrics
from amplify_stream.providers import create_provider
from amplify_stream.speech import create_speech_provider
from amplify_stream.store.documents import DocumentStore
from amplify_stream.store.stories import StoryStore
from consumers.document_owner import DocumentOwner
from consumers.enhancer import Enhancer
from consumers.narrator import Narrator
from consumers.projector import Projector, own_stores
from consumers.worker import Worker, WorkerDeps


@dataclass(frozen=True)
class Shared:
    """What the process shares with its workers; the rest each role makes for itself."""

    bus: Bus
    settings: Settings
    metrics: Metrics | None = None
    # The gateway's stores, in ``serve``; a projector alone opens its own.
    store: StoryStore | None = None
    documents: DocumentStore | None = None


# A role's builder makes its worker; whatever it opens goes on the stack, which closes it
# (in reverse) once the worker's task has stopped.
Build = Callable[[Shared, contextlib.AsyncExitStack], Awaitable[Worker[Any]]]


async def _stream_producer(shared: Shared, role: str, stack: contextlib.AsyncExitStack) -> Producer:
    """The low-latency producer for the stream. The worker makes its outcome producers
    itself, one per partition it owns (``consumers/ownership.py``)."""
    instance = uuid.uuid4().hex[:8]
    stream = shared.bus.producer(low_latency=True, client_id=f"{role}-{instance}-stream")
    await stream.start()
    stack.push_async_callback(stream.stop)
    return stream


def enhancer_role(kind: type[Enhancer] = Enhancer) -> Build:
    """The enhancer role, its worker of class ``kind`` (a benchmark's variant)."""

    async def build(shared: Shared, stack: contextlib.AsyncExitStack) -> Enhancer:
        provider = create_provider(shared.settings)
        stack.push_async_callback(provider.aclose)
        stream = await _stream_producer(shared, "enhancer", stack)
        return kind(WorkerDeps(shared.bus, shared.settings, shared.metrics, stream), provider)

    return build


async def _narrator(shared: Shared, stack: contextlib.AsyncExitStack) -> Narrator:
    speech = await create_speech_provider(shared.settings)
    stack.push_async_callback(speech.aclose)
    audio = AudioStore(shared.settings.effective_audio_dir)
    stream = await _stream_producer(shared, "narrator", stack)
    return Narrator(WorkerDeps(shared.bus, shared.settings, shared.metrics, stream), speech, audio)


async def _projector(shared: Shared, stack: contextlib.AsyncExitStack) -> Projector:
    # It writes to no topic but the dead-letter one (the Worker base's producer).
    if shared.store is not None and shared.documents is not None:
        stores = shared.store, shared.documents
    else:
        stores = await stack.enter_async_context(own_stores(shared.settings))
    return Projector(WorkerDeps(shared.bus, shared.settings), *stores)


async def _documents(shared: Shared, stack: contextlib.AsyncExitStack) -> DocumentOwner:
    analyzer = create_document_analyzer(shared.settings)
    stack.push_async_callback(analyzer.aclose)
    stream = await _stream_producer(shared, "documents", stack)
    return DocumentOwner(WorkerDeps(shared.bus, shared.settings, shared.metrics, stream), analyzer)


ROLES: dict[str, Build] = {
    "enhancer": enhancer_role(),
    "narrator": _narrator,
    "projector": _projector,
    "documents": _documents,
}


@contextlib.asynccontextmanager
async def running(
    role: str,
    bus: Bus,
    settings: Settings,
    *,
    metrics: Metrics | None = None,
    store: StoryStore | None = None,
    documents: DocumentStore | None = None,
) -> AsyncIterator[Worker[Any]]:
    """The worker of ``role`` (a key of ``ROLES``), once it is in its group; on exit, its
    task cancelled (it finishes or hands back its work), then what it owns closed."""
    async with contextlib.AsyncExitStack() as stack:
        worker = await ROLES[role](Shared(bus, settings, metrics, store, documents), stack)
        async with _started(worker, role):
            yield worker


@contextlib.asynccontextmanager
async def _started(worker: Worker[Any], role: str) -> AsyncIterator[None]:
    """The worker's task, once it is in its group; on exit, the task cancelled."""
    task = asyncio.create_task(worker.run(), name=role)
    ready = asyncio.create_task(worker.ready.wait())
    await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        ready.cancel()
        task.result()
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
