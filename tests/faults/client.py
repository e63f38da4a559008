"""The client's side: a story as a client following docs/protocol.md assembles it from the
socket's events (``StoryView``), and the socket calls that feed it.

The text is the deltas of the latest enhancement attempt, the audio the chunks after the
latest ``audio.reset``; both are compared byte for byte with the outcome topic."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tests.faults.topics import TopicLog
from tests.support import sign_up


def parse_cursor(cursor: str) -> tuple[int, int]:
    partition, _, offset = cursor.partition("-")
    return int(partition), int(offset)


@dataclass
class StoryView:
    """One story as a client following docs/protocol.md assembles it, and what broke the rules."""

    story_id: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    last_cursor: str | None = None
    # Deltas by attempt: the text is the latest attempt's.
    deltas: dict[int, list[str]] = field(default_factory=dict)
    started_attempts: list[int] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)
    audio_started: bool = False
    enhancement_resets: int = 0
    audio_resets: int = 0
    audio_completed: dict[str, Any] | None = None
    completed: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)
    # A gap in the chunk indexes of the attempt being heard: a problem unless an
    # audio.reset drops that attempt later (a run that failed on the bus may lose some of
    # its records; the client drops the whole run at the reset).
    chunk_gap: str | None = None
    # The attempt of each stage's latest reset (``enhancement``, ``narration``): an event
    # of an older attempt after it is one the client should never have been sent.
    latest_reset: dict[str, int] = field(default_factory=dict)

    def add(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        kind = event.get("type")
        cursor = event.get("cursor")
        if cursor:
            if self.last_cursor is not None and parse_cursor(cursor) <= parse_cursor(
                self.last_cursor
            ):
                self.problems.append(f"cursor {cursor} after {self.last_cursor} ({kind})")
            self.last_cursor = cursor
        if self.story_id is None and event.get("story_id"):
            self.story_id = event["story_id"]
        if self.completed is not None and kind != "pong":
            self.problems.append(f"{kind} after story.completed")
        stage = "narration" if str(kind).startswith("audio.") else "enhancement"
        attempt = event.get("attempt")
        if kind in ("enhancement.reset", "audio.reset"):
            self.latest_reset[stage] = max(self.latest_reset.get(stage, 0), int(attempt or 0))
        elif attempt is not None and int(attempt) < self.latest_reset.get(stage, 0):
            self.problems.append(
                f"{kind} of attempt {attempt} after the {stage} reset to attempt "
                f"{self.latest_reset[stage]}"
            )
        if kind == "enhancement.reset":
            self.enhancement_resets += 1
        elif kind == "enhancement.started":
            attempt = int(event.get("attempt", 1))
            if self.started_attempts:
                if attempt <= self.started_attempts[-1]:
                    self.problems.append(
                        f"enhancement.started attempt {attempt} again "
                        f"(after attempt {self.started_attempts[-1]})"
                    )
                if self.enhancement_resets < len(self.started_attempts):
                    self.problems.append("enhancement restarted without enhancement.reset")
            self.started_attempts.append(attempt)
        elif kind == "enhancement.delta":
            self.deltas.setdefault(int(event.get("attempt", 1)), []).append(event["text"])
        elif kind == "audio.reset":
            self.audio_resets += 1
            self.chunk_gap = None
            self.chunks.clear()
            self.audio_started = False
        elif kind == "audio.started":
            if self.audio_started:
                self.problems.append("audio.started again without audio.reset")
            self.audio_started = True
        elif kind == "audio.chunk":
            if event["index"] != len(self.chunks) and self.chunk_gap is None:
                self.chunk_gap = f"audio.chunk index {event['index']}, expected {len(self.chunks)}"
            self.chunks.append(base64.b64decode(event["data"]))
        elif kind == "audio.completed":
            self.audio_completed = event
        elif kind == "story.completed":
            self.completed = event

    @property
    def restarted(self) -> bool:
        return len(self.started_attempts) > 1 or self.audio_resets > 0

    @property
    def text(self) -> str:
        if not self.deltas:
            return ""
        return "".join(self.deltas[max(self.deltas)])

    @property
    def audio(self) -> bytes:
        return b"".join(self.chunks)

    def timeline(self) -> str:
        """The events in short: ``enhancement.delta#1 x3`` is three deltas of attempt 1."""
        runs: list[list[Any]] = []
        for event in self.events:
            label = str(event.get("type"))
            if "attempt" in event:
                label += f"#{event['attempt']}"
            if label == "story.completed":
                label += f"({event.get('status')})"
            if runs and runs[-1][0] == label:
                runs[-1][1] += 1
            else:
                runs.append([label, 1])
        return ", ".join(f"{label} x{n}" if n > 1 else label for label, n in runs)

    def count(self, kind: str) -> int:
        return sum(1 for e in self.events if e.get("type") == kind)

    def check_against(self, outcomes: TopicLog, *, audio: bool = True) -> list[str]:
        """What differs between this view and the outcome topic (empty: all equal)."""
        sid = self.story_id or "?"
        problems = [f"{sid}: {p}" for p in self.problems]
        if self.chunk_gap is not None:
            problems.append(f"{sid}: {self.chunk_gap}")
        if self.completed is None:
            return [*problems, f"{sid}: no story.completed on the socket"]
        enhanced = outcomes.latest(sid, "enhancement.completed")
        if enhanced is None:
            problems.append(f"{sid}: no enhancement.completed on the outcome topic")
        elif enhanced["text"] != self.text:
            problems.append(
                f"{sid}: assembled text ({len(self.text)} chars) != outcome "
                f"enhancement.completed.text ({len(enhanced['text'])} chars)"
            )
        if audio:
            narrated = outcomes.latest(sid, "narration.completed")
            digest = hashlib.sha256(self.audio).hexdigest()
            if narrated is None:
                problems.append(f"{sid}: no narration.completed on the outcome topic")
            elif narrated["sha256"] != digest:
                problems.append(
                    f"{sid}: sha256 of the assembled audio ({len(self.audio)} bytes) != "
                    f"outcome narration.completed.sha256 ({narrated['bytes']} bytes)"
                )
        return problems


async def read_until(
    ws: aiohttp.ClientWebSocketResponse,
    view: StoryView,
    stop: Callable[[StoryView], bool] = lambda v: v.completed is not None,
) -> None:
    """Frames into ``view`` until ``stop(view)`` or ``story.completed``."""
    while not stop(view) and view.completed is None:
        msg = await ws.receive()
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise AssertionError(f"the socket ended: {msg.type} {msg.data!r}")
        view.add(json.loads(msg.data))


def ws_url(base: str) -> str:
    return base.replace("http", "ws", 1) + "/v1/stream"


async def new_user(session: aiohttp.ClientSession, base: str) -> str:
    return await sign_up(session, base, f"u{uuid.uuid4().hex[:10]}")


async def resume(ws: aiohttp.ClientWebSocketResponse, view: StoryView) -> None:
    """``story.resume`` from the last cursor the client saw (none: from the start), then
    the story read to its end."""
    request: dict[str, Any] = {"type": "story.resume", "story_id": view.story_id}
    if view.last_cursor is not None:
        request["cursor"] = view.last_cursor
    await ws.send_json(request)
    await read_until(ws, view)


async def follow_through(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    view: StoryView,
    text: str,
    *,
    retry_s: float,
    log: Callable[[str], None],
) -> None:
    """A client that keeps at one story through a fault: ``text`` submitted until it is
    accepted (a submission refused, ``unavailable``, is sent again), then read to its
    end, reconnecting and resuming by cursor whenever the socket goes."""
    while view.completed is None:
        try:
            async with session.ws_connect(url, headers=headers) as ws:
                if view.story_id is not None:
                    await resume(ws, view)
                    continue
                errors = view.count("error")
                await ws.send_json({"type": "story.submit", "text": text})
                await read_until(
                    ws,
                    view,
                    lambda v, seen=errors: v.story_id is not None or v.count("error") > seen,
                )
                if view.story_id is None:
                    log("submission refused; trying again")
                    await asyncio.sleep(0.5)
                    continue
                await read_until(ws, view)
        except (aiohttp.ClientError, AssertionError) as exc:
            log(f"{exc!r}; resuming")
            await asyncio.sleep(retry_s)
