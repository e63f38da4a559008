"""A topic read from its start by a plain consumer outside any group."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord


class TopicLog:
    """Every record of one topic from its start, read by a plain consumer outside any
    group (as analytics read the outcome topic), collected in the background."""

    def __init__(self, bootstrap: str, topic: str, *, isolation: str = "read_committed") -> None:
        self._bootstrap = bootstrap
        self.topic = topic
        self._isolation = isolation
        self.records: list[ConsumerRecord[bytes, bytes]] = []
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> TopicLog:
        self._consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self._bootstrap,
            group_id=None,
            isolation_level=self._isolation,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=100,
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._collect())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def _collect(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=200)
            for records in batches.values():
                self.records.extend(records)

    def events(self) -> list[dict[str, Any]]:
        """The records that are JSON objects (a poison record is not)."""
        found = []
        for record in self.records:
            try:
                event = json.loads(record.value or b"")
            except ValueError:
                continue
            if isinstance(event, dict):
                found.append(event)
        return found

    def events_of(self, story_id: str) -> list[dict[str, Any]]:
        return [e for e in self.events() if e.get("story_id") == story_id]

    def completions(self, story_id: str) -> list[dict[str, Any]]:
        return [e for e in self.events_of(story_id) if e.get("type") == "story.completed"]

    def latest(self, story_id: str, event_type: str) -> dict[str, Any] | None:
        found = [e for e in self.events_of(story_id) if e.get("type") == event_type]
        return max(found, key=lambda e: e.get("attempt") or 0) if found else None

    async def wait_completed(
        self,
        story_ids: Iterable[str],
        timeout: float,
        settle: float = 1.5,
        stall: float = 20.0,
    ) -> None:
        """Until every story has its ``story.completed``, or ``timeout``, or ``stall``
        seconds without one more of them completing; then ``settle`` seconds more, so a
        duplicate right behind is counted too."""
        ids = set(story_ids)
        deadline = time.monotonic() + timeout
        done: set[str] = set()
        moved = time.monotonic()
        while True:
            events = self.events()
            now_done = ids & {e["story_id"] for e in events if e.get("type") == "story.completed"}
            if len(now_done) > len(done):
                done, moved = now_done, time.monotonic()
            now = time.monotonic()
            if done == ids or now >= deadline or now - moved >= stall:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(settle)
