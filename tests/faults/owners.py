"""Who runs a story: the member of a worker group that logged starting its attempt."""

from __future__ import annotations

import asyncio
import re
import time

from tests.e2e.conftest import Proc
from tests.faults.client import StoryView

# What a worker logs when it starts a story (the enhancer) or its narration (the
# narrator), with the attempt; the socket event that starts an attempt, and the one that
# abandons the attempt before.
STARTED = {"enhancer": "story {} started (attempt", "narrator": "story {} narration started"}
ATTEMPT_EVENT = {"enhancer": "enhancement.started", "narrator": "audio.started"}
RESET = {"enhancer": "enhancement.reset", "narrator": "audio.reset"}
_ATTEMPT = re.compile(r"\(attempt (\d+)\)")


def lines_with(proc: Proc, needle: str, start: int = 0) -> list[str]:
    return [line for line in proc.output[start:] if needle in line]


async def running(
    procs: list[Proc], role: str, story_id: str, attempt: int, timeout: float
) -> list[Proc]:
    """The processes that logged starting ``attempt`` of the story in ``role`` (once any
    has, or none after ``timeout``): one, unless the owner is not certain."""
    needle = STARTED[role].format(story_id)
    deadline = time.monotonic() + timeout
    while True:
        found = [
            p
            for p in procs
            if any(
                (m := _ATTEMPT.search(line)) and int(m.group(1)) == attempt
                for line in lines_with(p, needle)
            )
        ]
        if found or time.monotonic() >= deadline:
            return found
        await asyncio.sleep(0.05)


async def owner_of(
    procs: list[Proc], role: str, view: StoryView, timeout: float = 3
) -> Proc | None:
    """The member of ``role`` running the attempt the client is hearing now (its latest
    ``enhancement.started``/``audio.started``), or None when that is not one process."""
    attempt = max(
        (int(e.get("attempt", 1)) for e in view.events if e.get("type") == ATTEMPT_EVENT[role]),
        default=1,
    )
    assert view.story_id is not None
    owners = await running(procs, role, view.story_id, attempt, timeout)
    return owners[0] if len(owners) == 1 else None
