"""Live documents in the store: the row the gateway writes when a document is created, and
what the projector folds in from the owners' snapshots (``GET /v1/documents...``).

The document itself lives with its owner (the edit log and the snapshots topic); this is
its projection, for reading: a snapshot behind the owner by up to ``doc_snapshot_ms``.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Select, and_, case, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from amplify_stream.errors import Conflict, NotFound
from amplify_stream.events import Focus
from amplify_stream.events.documents import DocumentSnapshot
from amplify_stream.store.admission import DocumentAdmission, lock_users
from amplify_stream.store.db import Document, DocumentIgnoresRow
from amplify_stream.store.errors import open_session
from amplify_stream.store.pages import newest_first, page_size
from amplify_stream.store.records import DocumentRecord
from amplify_stream.store.sessions import writing

# Bulk DELETE: no ORM objects are loaded in these sessions, nothing to synchronize.
_NO_SYNC = {"synchronize_session": False}


def _held(user_id: str) -> Select[int]:
    return select(func.count()).select_from(Document).where(Document.user_id == user_id)


class DocumentStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        bind = sessions.kw.get("bind")
        self._dialect = "" if bind is None else bind.dialect.name

    def _writing(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        """The one way rows are written (``store.sessions.writing``: the engine's turn of
        writers, shared with the story store's)."""
        return writing(self._sessions)

    async def create(
        self,
        doc_id: str,
        user_id: str,
        *,
        title: str | None,
        focus: list[Focus],
        text: str,
        admission: DocumentAdmission | None = None,
    ) -> None:
        """The document's row at version 0, written before its first command.
        ``Conflict`` when the id is taken; what ``admission.check`` raises when the user
        holds too many (counted under a lock on the user, ``store/admission.py``)."""
        now = datetime.now(UTC)
        row = Document(
            doc_id=doc_id,
            user_id=user_id,
            title=title,
            focus=list(focus),
            text=text,
            version=0,
            suggestions=[],
            created_at=now,
            updated_at=now,
        )
        try:
            async with self._writing() as session:
                if admission is not None:
                    await lock_users(await session.connection(), [user_id])
                    admission.check(await session.scalar(_held(user_id)) or 0)
                session.add(row)
        except IntegrityError:
            raise Conflict("a document with this id already exists") from None

    async def count_for_user(self, user_id: str) -> int:
        async with open_session(self._sessions) as session:
            return int(await session.scalar(_held(user_id)) or 0)

    async def exists_for_user(self, doc_id: str, user_id: str) -> bool:
        stmt = select(Document.doc_id).where(Document.doc_id == doc_id, Document.user_id == user_id)
        async with open_session(self._sessions) as session:
            return await session.scalar(stmt) is not None

    async def get_for_user(self, doc_id: str, user_id: str) -> DocumentRecord:
        """The document if ``user_id`` owns it. ``NotFound`` alike for missing and not owned."""
        stmt = select(Document).where(Document.doc_id == doc_id, Document.user_id == user_id)
        async with open_session(self._sessions) as session:
            row = await session.scalar(stmt)
            ignores = None if row is None else await session.get(DocumentIgnoresRow, doc_id)
        if row is None:
            raise NotFound("document not found")
        return replace(DocumentRecord.of(row), ignores=None if ignores is None else ignores.ignores)

    async def ids_for_user(self, user_id: str) -> list[str]:
        """Every document of the user (at most ``max_documents_per_user``)."""
        stmt = select(Document.doc_id).where(Document.user_id == user_id)
        async with open_session(self._sessions) as session:
            return list(await session.scalars(stmt))

    async def list_for_user(
        self, user_id: str, *, limit: int = 20, before: str | None = None
    ) -> list[DocumentRecord]:
        """The user's documents, most recently updated first, at most ``limit`` (capped at
        MAX_PAGE_SIZE).

        ``before`` is a doc_id, normally the last one of the previous page: the page starts
        right after it. ``NotFound`` when the user has no such document.
        """
        return await self._newest_first(user_id, page_size(limit), before)

    async def page_for_user(
        self, user_id: str, *, limit: int = 20, before: str | None = None
    ) -> tuple[list[DocumentRecord], str | None]:
        """``list_for_user``, and the ``before`` of the next page (None on the last page)."""
        limit = page_size(limit)
        # One row more than asked tells whether a next page exists.
        docs = await self._newest_first(user_id, limit + 1, before)
        if len(docs) > limit:
            return docs[:limit], docs[limit - 1].doc_id
        return docs, None

    async def _newest_first(
        self, user_id: str, limit: int, before: str | None
    ) -> list[DocumentRecord]:
        # A document edited while the client pages moves to the front: not seen twice.
        rows = await newest_first(
            self._sessions, Document, Document.updated_at, Document.doc_id, user_id, limit, before
        )
        return [DocumentRecord.of(row) for row in rows]

    async def delete(self, doc_id: str) -> None:
        async with self._writing() as session:
            await session.execute(
                delete(Document).where(Document.doc_id == doc_id), execution_options=_NO_SYNC
            )

    # ------------------------------------------------------------ projector hook

    async def apply_snapshot(self, snapshot: DocumentSnapshot) -> bool:
        """Fold an owner's snapshot in (idempotent; an older version never overwrites a
        newer one; a deleted marker removes the row). True when a row changed.

        ``updated_at`` moves only with the version: a snapshot that only brings a pass's
        suggestions, or a replay, leaves the document where it was in the list. A
        snapshot of a user this store does not know changes nothing.
        """
        owned = and_(Document.doc_id == snapshot.doc_id, Document.user_id == snapshot.user_id)
        if snapshot.deleted:
            async with self._writing() as session:
                result = await session.execute(
                    delete(Document).where(owned), execution_options=_NO_SYNC
                )
            return _changed(result)
        insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        stmt = insert(Document).values(
            doc_id=snapshot.doc_id,
            user_id=snapshot.user_id,
            title=snapshot.title,
            focus=list(snapshot.focus),
            text=snapshot.text,
            version=snapshot.version,
            suggestions=[s.model_dump() for s in snapshot.suggestions],
            created_at=datetime.fromisoformat(snapshot.created_at),
            updated_at=datetime.fromisoformat(snapshot.at),
        )
        new = stmt.excluded
        upsert = stmt.on_conflict_do_update(
            index_elements=[Document.doc_id],
            set_={
                "title": new.title,
                "focus": new.focus,
                "text": new.text,
                "version": new.version,
                "suggestions": new.suggestions,
                "updated_at": case(
                    (Document.version < new.version, new.updated_at),
                    else_=Document.updated_at,
                ),
            },
            where=and_(Document.user_id == new.user_id, Document.version <= new.version),
        )
        try:
            async with self._writing() as session:
                result = await session.execute(upsert)
                if _changed(result):
                    await self._keep_ignores(session, snapshot)
        except IntegrityError:
            # Only the user's foreign key can fail here: a user this store does not hold.
            return False
        return _changed(result)

    async def _keep_ignores(self, session: AsyncSession, snapshot: DocumentSnapshot) -> None:
        insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        ignores = snapshot.ignores.model_dump() if snapshot.ignores is not None else {}
        stmt = insert(DocumentIgnoresRow).values(doc_id=snapshot.doc_id, ignores=ignores)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[DocumentIgnoresRow.doc_id], set_={"ignores": stmt.excluded.ignores}
            )
        )


def _changed(result: Any) -> bool:
    return cast("CursorResult[Any]", result).rowcount > 0
