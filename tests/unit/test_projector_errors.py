"""consumers/projector.py: a store that is away (``StoreUnavailable``) is waited out, the
outcome or snapshot kept; any other error of the store is the record's, which goes to the
DLQ; ``document.analyzed`` outcomes are not the store's."""

from __future__ import annotations

from typing import Any

import pytest

import consumers.projector
from amplify_stream.bus import Record
from amplify_stream.bus.memory import MemoryBus
from amplify_stream.config import Settings
from amplify_stream.events import OutcomeEvent, StoryCompletedOutcome, StoryTimings
from amplify_stream.events.documents import (
    DocumentAnalyzedOutcome,
    DocumentSnapshot,
    DocumentTimings,
)
from amplify_stream.store.errors import StoreUnavailable
from consumers.projector import Projected, Projector, projected_adapter
from consumers.worker import WorkerDeps

OUTCOME = StoryCompletedOutcome(
    story_id="s", user_id="u", attempt=1, status="completed", timings=StoryTimings(total_ms=1)
)
SNAPSHOT = DocumentSnapshot(
    doc_id="d", user_id="u", created_at="2030-01-01T00:00:00.000Z", offset=3, focus=["plot"],
    text="Once.", version=2, suggestions=[], current=[True], ids=0, across=[],
)  # fmt: skip
ANALYZED = DocumentAnalyzedOutcome(
    doc_id="d", user_id="u", version=2, provider="local", suggestions={"plot": 0},
    paragraphs=1, reanalyzed=1, timings=DocumentTimings(idle_ms=300, analysis_ms=1),
)  # fmt: skip
RECORD = Record("outcomes", 0, 7, "s", b"{}")


class FailingStore:
    """Both stores in one: raises ``failures`` one per call, then applies."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.applied: list[Any] = []

    async def _apply(self, event: Any) -> bool:
        if self.failures:
            raise self.failures.pop(0)
        self.applied.append(event)
        return True

    async def apply_outcome(self, event: OutcomeEvent) -> bool:
        return await self._apply(event)

    async def apply_snapshot(self, snapshot: DocumentSnapshot) -> bool:
        return await self._apply(snapshot)


async def project(
    store: FailingStore, monkeypatch: pytest.MonkeyPatch, event: Projected = OUTCOME
) -> list[str]:
    """Handle one record; the dead letters it wrote (their errors)."""
    monkeypatch.setattr(consumers.projector, "RETRY_INITIAL_S", 0.001)
    settings = Settings(_env_file=None, bus="memory")
    deps = WorkerDeps(MemoryBus(settings), settings)
    projector = Projector(deps, store, store)  # type: ignore[arg-type]
    letters: list[str] = []

    async def dead_letter(record: Record, error: str) -> None:
        letters.append(error)

    monkeypatch.setattr(projector, "dead_letter", dead_letter)
    await projector.handle(event, RECORD)
    return letters


async def test_a_store_away_is_waited_out(monkeypatch: pytest.MonkeyPatch) -> None:
    store = FailingStore(StoreUnavailable("down"), StoreUnavailable("still down"))
    assert await project(store, monkeypatch) == []
    assert store.applied == [OUTCOME]


async def test_a_store_away_is_waited_out_for_a_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    store = FailingStore(StoreUnavailable("down"))
    assert await project(store, monkeypatch, SNAPSHOT) == []
    assert store.applied == [SNAPSHOT]


async def test_any_other_store_error_dead_letters_the_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = FailingStore(ValueError("not a date"))
    assert await project(store, monkeypatch) == ["ValueError: not a date"]
    assert store.applied == []


async def test_document_analyzed_is_not_the_stores(monkeypatch: pytest.MonkeyPatch) -> None:
    store = FailingStore(ValueError("never called"))
    assert await project(store, monkeypatch, ANALYZED) == []
    assert store.applied == []


def test_the_adapter_reads_both_topics() -> None:
    for event in (OUTCOME, SNAPSHOT, ANALYZED):
        assert projected_adapter.validate_json(event.model_dump_json()) == event
