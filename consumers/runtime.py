"""Running workers: their producers, their providers, their tasks, and a clean stop."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable

from amplify_stream.audio_store import AudioStore
from amplify_stream.bus.base import Bus, Producer
from amplify_stream.config import Settings
from amplify_stream.metrics import Metrics
from amplify_stream.providers import create_provider
from amplify_stream.speech import create_speech_provider
from amplify_stream.store.stories import StoryStore
from consumers.enhancer import Enhancer
from consumers.narrator import Narrator
from consumers.projector import Projector, own_story_store
from consumers.worker import Worker, WorkerDeps

WorkerFactory = Callable[[Producer], Worker]  # type: ignore[type-arg]


@contextlib.asynccontextmanager
async def _running(
    bus: Bus, settings: Settings, role: str, make: WorkerFactory
) -> AsyncIterator[Worker]:  # type: ignore[type-arg]
    """The producer for the stream (low latency), the worker's task, and on exit: the
    task cancelled (it finishes or hands back its work). The worker makes its outcome
    producers itself, one per partition it owns (``consumers/ownership.py``)."""
    instance = uuid.uuid4().hex[:8]
    stream = bus.producer(low_latency=True, client_id=f"{role}-{instance}-stream")
    async with contextlib.AsyncExitStack() as stack:
        await stream.start()
        stack.push_async_callback(stream.stop)
        worker = make(stream)
        async with _started(worker, role):
            yield worker


@contextlib.asynccontextmanager
async def _started(worker: Worker, role: str) -> AsyncIterator[None]:  # type: ignore[type-arg]
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


@contextlib.asynccontextmanager
async def running_enhancer(
    bus: Bus, settings: Settings, metrics: Metrics | None = None
) -> AsyncIterator[Enhancer]:
    provider = create_provider(settings)
    try:
        async with _running(
            bus,
            settings,
            "enhancer",
            lambda stream: Enhancer(WorkerDeps(bus, settings, metrics, stream), provider),
        ) as worker:
            assert isinstance(worker, Enhancer)
            yield worker
    finally:
        await provider.aclose()


@contextlib.asynccontextmanager
async def running_narrator(
    bus: Bus, settings: Settings, metrics: Metrics | None = None
) -> AsyncIterator[Narrator]:
    speech = await create_speech_provider(settings)
    audio = AudioStore(settings.effective_audio_dir)
    try:
        async with _running(
            bus,
            settings,
            "narrator",
            lambda stream: Narrator(WorkerDeps(bus, settings, metrics, stream), speech, audio),
        ) as worker:
            assert isinstance(worker, Narrator)
            yield worker
    finally:
        await speech.aclose()


@contextlib.asynccontextmanager
async def running_projector(
    bus: Bus, settings: Settings, store: StoryStore | None = None
) -> AsyncIterator[Projector]:
    """The projector into ``store`` (the gateway's, in ``serve``), else into a store of
    its own. It writes to no topic but the dead-letter one (the Worker base's producer)."""
    async with contextlib.AsyncExitStack() as stack:
        if store is None:
            store = await stack.enter_async_context(own_story_store(settings))
        projector = Projector(WorkerDeps(bus, settings), store)
        await stack.enter_async_context(_started(projector, "projector"))
        yield projector
