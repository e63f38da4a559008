"""Running a worker: its producers, its provider, its task, and a clean stop."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

from amplify_stream.bus.base import Bus
from amplify_stream.config import Settings
from amplify_stream.providers import create_provider
from consumers.enhancer import Enhancer


@contextlib.asynccontextmanager
async def running_enhancer(bus: Bus, settings: Settings) -> AsyncIterator[Enhancer]:
    """An enhancer consuming in the background until the block exits."""
    instance = uuid.uuid4().hex[:8]
    stream = bus.producer(low_latency=True, client_id=f"enhancer-{instance}-stream")
    outcomes = bus.producer(
        transactional_id=f"{settings.topic_prefix}.enhancer.{instance}",
        client_id=f"enhancer-{instance}-outcomes",
    )
    provider = create_provider(settings)
    await stream.start()
    try:
        await outcomes.start()
        try:
            enhancer = Enhancer(
                bus, settings, provider, stream_producer=stream, outcome_producer=outcomes
            )
            task = asyncio.create_task(enhancer.run(), name="enhancer")
            ready = asyncio.create_task(enhancer.ready.wait())
            await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                ready.cancel()
                task.result()
            try:
                yield enhancer
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        finally:
            await outcomes.stop()
    finally:
        await stream.stop()
        await provider.aclose()
