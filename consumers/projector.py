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

from amplify_stream.bus.base import Record
from amplify_stream.config import Settings
from amplify_stream.events import OutcomeEvent, outcome_adapter
from amplify_stream.store.db import create_engine, create_schema, session_factory
from amplify_stream.store.errors import StoreUnavailable
from amplify_stream.store.stories import StoryStore
from consumers.worker import Worker, WorkerDeps

log = logging.getLogger(__name__)

RETRY_INITIAL_S = 0.1
RETRY_MAX_S = 5.0


class Projector(Worker[OutcomeEvent]):
    role = "projector"
    adapter = outcome_adapter

    def __init__(self, deps: WorkerDeps, store: StoryStore) -> None:
        # One record at a time keeps each story's outcomes in order, so a reader never
        # sees a story completed before its results are there.
        super().__init__(deps, deps.topics.outcomes, concurrency=1)
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
