"""Live documents in the store: the row the gateway writes when a document is created, and
what the projector folds in from the owners' snapshots (``GET /v1/documents...``).

(In progress: the bodies are being written; the signatures are the contract.)
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from amplify_stream.events import Focus
from amplify_stream.events.documents import DocumentSnapshot


class DocumentStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def create(
        self, doc_id: str, user_id: str, *, title: str | None, focus: list[Focus], text: str
    ) -> None:
        """The document's row at version 0, written before its first command."""
        raise NotImplementedError

    async def count_for_user(self, user_id: str) -> int:
        raise NotImplementedError

    async def exists_for_user(self, doc_id: str, user_id: str) -> bool:
        raise NotImplementedError

    async def delete(self, doc_id: str) -> None:
        raise NotImplementedError

    async def apply_snapshot(self, snapshot: DocumentSnapshot) -> None:
        """Fold an owner's snapshot in (idempotent; an older version never overwrites a
        newer one; a deleted marker removes the row)."""
        raise NotImplementedError
