"""The projector: folds the outcome topic into the store, for the ``GET /v1/stories``
routes, and the document owners' snapshots, for the ``GET /v1/documents`` routes.

Reads ``read_committed`` (aborted outcome transactions and aborted checkpoints of the
owners never reach the store) in its own group. Applying an outcome or a snapshot is
idempotent, so the replays that at-least-once brings are harmless. A store that is down
is waited for, never skipped: the offset is committed only once the record is in the
store.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Annotated

from pydantic import Field, TypeAdapter

from amplify_stream.bus.base import Record
from amplify_stream.config import Settings
from amplify_stream.events import OutcomeEvent
from amplify_stream.events.documents import DocumentAnalyzedOutcome, DocumentSnapshot
from amplify_stream.retry import retry_with_backoff
from amplify_stream.store.db import create_engine, create_schema, session_factory
from amplify_stream.store.documents import DocumentStore
from amplify_stream.store.errors import StoreUnavailable
from amplify_stream.store.stories import StoryStore
from consumers.worker import Worker, WorkerDeps

log = logging.getLogger(__name__)

RETRY_INITIAL_S = 0.1
RETRY_MAX_S = 5.0

# What the two topics carry. ``document.analyzed`` is an outcome too (of a document's
# pass); its numbers are the analytics' business, the store shows the snapshots.
Projected = Annotated[
    OutcomeEvent | DocumentSnapshot | DocumentAnalyzedOutcome, Field(discriminator="type")
]
projected_adapter: TypeAdapter[Projected] = TypeAdapter(Projected)


class Projector(Worker[Projected]):
    role = "projector"
    adapter = projected_adapter

    def __init__(self, deps: WorkerDeps, store: StoryStore, documents: DocumentStore) -> None:
        # One record at a time keeps each story's outcomes in order, so a reader never
        # sees a story completed before its results are there. A document's snapshots
        # are in order on their own partition, and an older version never overwrites a
        # newer one in the store anyway.
        topics = deps.topics
        super().__init__(deps, [topics.outcomes, topics.snapshots], concurrency=1)
        self.store = store
        self.documents = documents

    async def handle(self, event: Projected, record: Record) -> None:
        async def store_away(exc: Exception, delay: float) -> None:
            log.warning(
                "store unavailable; retrying the record",
                extra={"cursor": record.cursor, "retry_in_s": delay},
            )

        try:
            changed = await retry_with_backoff(
                lambda: self._apply(event),
                retry_on=lambda exc: isinstance(exc, StoreUnavailable),
                first_delay_s=RETRY_INITIAL_S,
                max_delay_s=RETRY_MAX_S,
                on_retry=store_away,
            )
        except Exception as exc:
            log.exception("record cannot be projected", extra={"cursor": record.cursor})
            await self.dead_letter(record, f"{type(exc).__name__}: {exc}")
            return
        if not changed:
            # A replay, an older snapshot, or a story or document this store does not
            # hold: nothing to do either way.
            log.debug("record changed nothing", extra={"cursor": record.cursor})

    async def _apply(self, event: Projected) -> bool:
        if isinstance(event, DocumentSnapshot):
            return await self.documents.apply_snapshot(event)
        if isinstance(event, DocumentAnalyzedOutcome):
            return False
        return await self.store.apply_outcome(event)


@contextlib.asynccontextmanager
async def own_stores(settings: Settings) -> AsyncIterator[tuple[StoryStore, DocumentStore]]:
    """Stores of its own, for a projector running without a gateway in its process."""
    engine = create_engine(settings)
    try:
        await create_schema(engine)
        sessions = session_factory(engine)
        yield StoryStore(sessions), DocumentStore(sessions)
    finally:
        await engine.dispose()
