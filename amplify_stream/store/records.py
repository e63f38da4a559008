"""What the stores return: frozen snapshots, never live ORM rows.

A snapshot is safe to hand to any task after its session is gone (no lazy load can fire
outside a session, which async SQLAlchemy turns into an error) and cannot be changed by
mistake in the belief that the change is saved. Changes go through the store's methods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from amplify_stream.store.db import Document, Story, User


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: str
    username: str
    password_hash: str = field(repr=False)
    created_at: datetime

    @classmethod
    def of(cls, row: User) -> UserRecord:
        return cls(row.id, row.username, row.password_hash, row.created_at)


@dataclass(frozen=True, slots=True)
class StoryRecord:
    id: str
    user_id: str
    title: str | None
    text: str = field(repr=False)
    focus: tuple[str, ...]
    rewrite: bool
    audio: bool  # narration was asked for
    voice: str | None
    idempotency_key: str | None
    status: str  # queued | running | completed | failed | cancelled
    created_at: datetime
    completed_at: datetime | None
    enhanced_text: str | None = field(repr=False)
    suggestions: tuple[dict[str, Any], ...] = field(repr=False)
    insights: tuple[dict[str, Any], ...] = field(repr=False)
    # The narration's result: format, duration_ms, bytes, sha256, voice, provider (the
    # gateway adds its own ``url``).
    audio_result: dict[str, Any] | None
    error: dict[str, Any] | None  # {code, message}
    stream_partition: int
    stream_offset: int  # the first offset of this story's events on stream_partition

    @classmethod
    def of(cls, row: Story) -> StoryRecord:
        return cls(
            id=row.id,
            user_id=row.user_id,
            title=row.title,
            text=row.text,
            focus=tuple(row.focus),
            rewrite=row.rewrite,
            audio=row.audio,
            voice=row.voice,
            idempotency_key=row.idempotency_key,
            status=row.status,
            created_at=row.created_at,
            completed_at=row.completed_at,
            enhanced_text=row.enhanced_text,
            suggestions=tuple(row.suggestions or ()),
            insights=tuple(row.insights or ()),
            audio_result=row.audio_result,
            error=row.error,
            stream_partition=row.stream_partition,
            stream_offset=row.stream_offset,
        )


@dataclass(frozen=True, slots=True)
class DocumentRecord:
    doc_id: str
    user_id: str
    title: str | None
    focus: tuple[str, ...]
    text: str = field(repr=False)
    version: int
    # The live set at ``version``, as in the owner's snapshot: id, focus, quote, message,
    # replacement, start_utf16, end_utf16.
    suggestions: tuple[dict[str, Any], ...] = field(repr=False)
    created_at: datetime
    updated_at: datetime
    # The snapshot's ``ignores`` (read for one document only).
    ignores: dict[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, row: Document) -> DocumentRecord:
        return cls(
            doc_id=row.doc_id,
            user_id=row.user_id,
            title=row.title,
            focus=tuple(row.focus),
            text=row.text,
            version=row.version,
            suggestions=tuple(row.suggestions or ()),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
