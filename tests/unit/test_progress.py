"""Commit-after-done bookkeeping: an offset is committable only when every record
before it in the partition is finished."""

from __future__ import annotations

from consumers.progress import PartitionProgress


def test_commits_only_past_the_oldest_unfinished_record() -> None:
    progress = PartitionProgress()
    for offset in (10, 11, 12):
        progress.start(offset)
    progress.finish(12)
    progress.finish(11)
    assert progress.take_commit() is None  # 10 still runs
    progress.finish(10)
    assert progress.take_commit() == 13
    assert progress.take_commit() is None  # once


def test_gaps_in_offsets_are_fine() -> None:
    progress = PartitionProgress()
    progress.start(3)
    progress.start(7)  # transaction markers take offsets
    progress.finish(3)
    assert progress.take_commit() == 4
    progress.finish(7)
    assert progress.take_commit() == 8


def test_a_failed_commit_is_offered_again() -> None:
    progress = PartitionProgress()
    progress.start(0)
    progress.finish(0)
    offset = progress.take_commit()
    assert offset == 1
    progress.retry_commit(offset)
    assert progress.take_commit() == 1
