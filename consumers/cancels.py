"""Cancels a worker heard of before (or while) the story's work could see them."""

from __future__ import annotations

from collections import OrderedDict

# Bounded: a cancel for a story this worker never runs must not be kept for ever.
LIMIT = 10_000


class RecentCancels:
    """Story ids whose cancel was asked for; past ``limit`` the oldest are forgotten."""

    def __init__(self, limit: int = LIMIT) -> None:
        self._limit = limit
        self._ids: OrderedDict[str, None] = OrderedDict()

    def remember(self, story_id: str) -> None:
        self._ids[story_id] = None
        while len(self._ids) > self._limit:
            self._ids.popitem(last=False)

    def __contains__(self, story_id: object) -> bool:
        return story_id in self._ids

    def take(self, story_id: str) -> bool:
        """Whether a cancel was asked for, forgetting it."""
        if story_id not in self._ids:
            return False
        del self._ids[story_id]
        return True
