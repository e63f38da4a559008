"""An engine's sessions, and the one way the stores write through them.

SQLite has one writer at a time. The writers of a process take turns in the event loop
(one lock per engine, shared by every store built on its sessions) rather than in
SQLite's busy handler on pooled connections: there a writer sleeps (up to 100 ms a try)
while the lock-holder's commit waits for its turn of a busy loop, and past the busy
timeout a submission failed with "database is locked" (1% of them at 200 submissions/s).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from amplify_stream.store.errors import open_session


class StoreSessions(async_sessionmaker[AsyncSession]):
    """The sessions of one engine, with its writers' turn (SQLite only)."""

    def __init__(self, engine: AsyncEngine, **kw: Any) -> None:
        super().__init__(engine, **kw)
        self.write_turn = asyncio.Lock() if engine.dialect.name == "sqlite" else None


@contextlib.asynccontextmanager
async def writing(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session in a transaction, committed on exit, in the engine's turn of writers."""
    async with contextlib.AsyncExitStack() as stack:
        turn = sessions.write_turn if isinstance(sessions, StoreSessions) else None
        if turn is not None:
            await stack.enter_async_context(turn)
        session = await stack.enter_async_context(open_session(sessions))
        await stack.enter_async_context(session.begin())
        yield session
