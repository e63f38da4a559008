"""The projector: folds the outcome topic into the store, for the ``GET /v1/stories`` routes.

Reads ``read_committed`` (aborted outcome transactions never reach the store) in its own
group. Applying an outcome is idempotent, so the replays that at-least-once brings are
harmless. A store that is down is waited for, never skipped: the offset is committed only
once the outcome is in the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from amplify_stream.bus.base import Bus, Record
from amplify_stream.config import Settings
from amplify_stream.events import OutcomeEvent, outcome_adapter
from amplify_stream.store.db import create_engine, create_schema, session_factory
from amplify_stream.store.errors import StoreUnavailable
from amplify_stream.store.stories import StoryStore
from amplify_stream.topics import Topics
from consumers.worker import Worker

log = logging.getLogger(__name__)

RETRY_INITIAL_S = 0.1
RETRY_MAX_S = 5.0


class Projector(Worker[OutcomeEvent]):
    def __init__(self, bus: Bus, settings: Settings, store: StoryStore) -> None:
        topics = Topics.from_settings(settings)
        super().__init__(
            bus,
            topics=[topics.outcomes],
            group_id=f"{settings.topic_prefix}.projector",
            dlq_topic=topics.dlq,
            adapter=outcome_adapter,
            # One record at a time keeps each story's outcomes in order, so a reader never
            # sees a story completed before its results are there.
            concurrency=1,
            shutdown_grace_s=settings.worker_shutdown_grace_s,
        )
        self.store = store

    async def handle(self, event: OutcomeEvent, record: Record) -> None:
        delay = RETRY_INITIAL_S
        while True:
            try:
                changed = await self.store.apply_outcome(event)
            except StoreUnavailable:
                log.warning(
                    "store unavailable; retrying the outcome",
                    extra={"cursor": record.cursor, "retry_in_s": delay},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            except Exception as exc:
                log.exception("outcome cannot be projected", extra={"cursor": record.cursor})
                await self._dead_letter(record, f"{type(exc).__name__}: {exc}")
                return
            if not changed:
                # A replay, or a story this store does not hold: nothing to do either way.
                log.debug("outcome changed nothing", extra={"cursor": record.cursor})
            return


@contextlib.asynccontextmanager
async def own_story_store(settings: Settings) -> AsyncIterator[StoryStore]:
    """A store of its own, for a projector running without a gateway in its process."""
    engine = create_engine(settings)
    try:
        await create_schema(engine)
        yield StoryStore(session_factory(engine))
    finally:
        await engine.dispose()
