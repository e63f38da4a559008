"""consumers/projector.py: a store that is away (``StoreUnavailable``) is waited out, the
outcome kept; any other error of the store is the record's, which goes to the DLQ."""

from __future__ import annotations

import pytest

import consumers.projector
from amplify_stream.bus import Record
from amplify_stream.bus.memory import MemoryBus
from amplify_stream.config import Settings
from amplify_stream.events import OutcomeEvent, StoryCompletedOutcome, StoryTimings
from amplify_stream.store.errors import StoreUnavailable
from consumers.projector import Projector
from consumers.worker import WorkerDeps

OUTCOME = StoryCompletedOutcome(
    story_id="s", user_id="u", attempt=1, status="completed", timings=StoryTimings(total_ms=1)
)
RECORD = Record("outcomes", 0, 7, "s", b"{}")


class FailingStore:
    """Raises ``failures`` one per call, then applies."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.applied: list[OutcomeEvent] = []

    async def apply_outcome(self, event: OutcomeEvent) -> bool:
        if self.failures:
            raise self.failures.pop(0)
        self.applied.append(event)
        return True


async def project(store: FailingStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Handle one outcome; the dead letters it wrote (their errors)."""
    monkeypatch.setattr(consumers.projector, "RETRY_INITIAL_S", 0.001)
    settings = Settings(_env_file=None, bus="memory")
    projector = Projector(WorkerDeps(MemoryBus(settings), settings), store)  # type: ignore[arg-type]
    letters: list[str] = []

    async def dead_letter(record: Record, error: str) -> None:
        letters.append(error)

    monkeypatch.setattr(projector, "_dead_letter", dead_letter)
    await projector.handle(OUTCOME, RECORD)
    return letters


async def test_a_store_away_is_waited_out(monkeypatch: pytest.MonkeyPatch) -> None:
    store = FailingStore(StoreUnavailable("down"), StoreUnavailable("still down"))
    assert await project(store, monkeypatch) == []
    assert store.applied == [OUTCOME]


async def test_any_other_store_error_dead_letters_the_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = FailingStore(ValueError("not a date"))
    assert await project(store, monkeypatch) == ["ValueError: not a date"]
    assert store.applied == []
