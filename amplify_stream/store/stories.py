"""Story projections: the row the gateway writes at submit (admitted by the user's limits
as it is written: ``admission.py``), and what the projector folds in."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.dml import Update

from amplify_stream.errors import NotFound
from amplify_stream.events import (
    DocumentAnalyzedOutcome,
    EnhancementCompletedOutcome,
    EnhancementFailedOutcome,
    NarrationCompletedOutcome,
    NarrationFailedOutcome,
    OutcomeEvent,
    StoryCompletedOutcome,
    StoryOptions,
    SuggestionFeedbackOutcome,
)
from amplify_stream.store.admission import Admission, StoryInserts
from amplify_stream.store.db import Story, ping
from amplify_stream.store.errors import open_session
from amplify_stream.store.pages import newest_first, page_size
from amplify_stream.store.records import StoryRecord
from amplify_stream.store.sessions import writing

Status = Literal["queued", "running", "completed", "failed", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
# Bulk UPDATE/DELETE: no ORM objects are loaded in these sessions, nothing to synchronize.
_NO_SYNC = {"synchronize_session": False}


class StoryStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._inserts = StoryInserts(sessions)

    def _writing(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        """The one way rows are written (``store.sessions.writing``)."""
        return writing(self._sessions)

    async def create_story(
        self,
        *,
        story_id: str,
        user_id: str,
        options: StoryOptions,
        stream_partition: int,
        stream_offset: int,
        admission: Admission | None = None,
    ) -> StoryRecord:
        """A queued story. ``Conflict`` when the id, or this user's idempotency key, is
        taken; what ``admission.check`` raises when the user's limits refuse it (then
        nothing is written). Its ``created_at`` is when it was admitted
        (``StoryInserts``)."""
        values: dict[str, Any] = {
            "id": story_id,
            "user_id": user_id,
            "title": options.title,
            "text": options.text,
            "focus": list(options.focus),
            "rewrite": options.rewrite,
            "audio": options.audio,
            "voice": options.voice,
            "idempotency_key": options.idempotency_key,
            "status": "queued",
            "suggestions": [],
            "insights": [],
            "stream_partition": stream_partition,
            "stream_offset": stream_offset,
        }
        await self._inserts.insert(values, admission)
        return StoryRecord.of(Story(**values))

    async def ping(self) -> None:
        """Readiness: ``NotReady`` unless the database answers now."""
        await ping(self._sessions.kw["bind"])

    async def get_for_user(self, story_id: str, user_id: str) -> StoryRecord:
        """The story if ``user_id`` owns it. ``NotFound`` alike for missing and not owned."""
        stmt = select(Story).where(Story.id == story_id, Story.user_id == user_id)
        async with open_session(self._sessions) as session:
            row = await session.scalar(stmt)
        if row is None:
            raise NotFound("story not found")
        return StoryRecord.of(row)

    async def by_idempotency_key(self, user_id: str, key: str) -> StoryRecord | None:
        stmt = select(Story).where(Story.user_id == user_id, Story.idempotency_key == key)
        async with open_session(self._sessions) as session:
            row = await session.scalar(stmt)
        return None if row is None else StoryRecord.of(row)

    async def list_for_user(
        self, user_id: str, *, limit: int = 20, before: str | None = None
    ) -> list[StoryRecord]:
        """The user's stories, newest first, at most ``limit`` (capped at MAX_PAGE_SIZE).

        ``before`` is a story id, normally the last one of the previous page: the page
        starts right after it. ``NotFound`` when the user has no such story.
        """
        return await self._newest_first(user_id, page_size(limit), before)

    async def page_for_user(
        self, user_id: str, *, limit: int = 20, before: str | None = None
    ) -> tuple[list[StoryRecord], str | None]:
        """``list_for_user``, and the ``before`` of the next page (None on the last page)."""
        limit = page_size(limit)
        # One row more than asked tells whether a next page exists.
        stories = await self._newest_first(user_id, limit + 1, before)
        if len(stories) > limit:
            return stories[:limit], stories[limit - 1].id
        return stories, None

    async def _newest_first(
        self, user_id: str, limit: int, before: str | None
    ) -> list[StoryRecord]:
        rows = await newest_first(
            self._sessions, Story, Story.created_at, Story.id, user_id, limit, before
        )
        return [StoryRecord.of(row) for row in rows]

    async def delete(self, story_id: str) -> bool:
        """Forget a story (its command never reached the bus). True when a row went."""
        async with self._writing() as session:
            result = await session.execute(
                delete(Story).where(Story.id == story_id), execution_options=_NO_SYNC
            )
        return _changed(result)

    # ------------------------------------------------------------ projector hooks

    async def apply_outcome(self, event: OutcomeEvent) -> bool:
        """Fold one outcome event into its story. Idempotent: replays set the same values.

        ``narration.failed`` keeps its error on the story, which still completes: it says
        why a story that asked for audio has none. ``document.analyzed`` is a live
        document's (keyed by ``doc_id``, no ``story_id``): no story of it. A story already
        completed, failed or cancelled keeps its status: a late or replayed
        ``story.completed`` cannot change it. True when a row changed.
        """
        if isinstance(event, DocumentAnalyzedOutcome | SuggestionFeedbackOutcome):
            return False
        owned = update(Story).where(Story.id == event.story_id, Story.user_id == event.user_id)
        if isinstance(event, EnhancementCompletedOutcome):
            return await self._update(
                owned.values(
                    enhanced_text=event.text,
                    suggestions=[s.model_dump() for s in event.suggestions],
                    insights=[i.model_dump() for i in event.insights],
                )
            )
        if isinstance(event, EnhancementFailedOutcome | NarrationFailedOutcome):
            return await self._update(owned.values(error=event.error.model_dump()))
        if isinstance(event, NarrationCompletedOutcome):
            audio = event.model_dump(
                include={"format", "duration_ms", "bytes", "sha256", "voice", "provider"}
            )
            return await self._update(owned.values(audio_result=audio))
        if isinstance(event, StoryCompletedOutcome):
            values: dict[str, Any] = {
                "status": event.status,
                "completed_at": datetime.fromisoformat(event.at),
            }
            if event.error is not None:
                values["error"] = event.error.model_dump()
            return await self._update(owned.where(Story.status.not_in(TERMINAL)).values(**values))
        return False

    async def _update(self, stmt: Update) -> bool:
        async with self._writing() as session:
            result = await session.execute(stmt, execution_options=_NO_SYNC)
        return _changed(result)


def _changed(result: Any) -> bool:
    return cast("CursorResult[Any]", result).rowcount > 0
