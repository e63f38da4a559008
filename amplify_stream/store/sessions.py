"""An engine's sessions, and the one way the stores write through them (a session, or
a bare connection for Core statements, in the same turn).

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

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from amplify_stream.store.errors import open_connection, open_session


class StoreSessions(async_sessionmaker[AsyncSession]):
    """The sessions of one engine, with its writers' turn (SQLite only)."""

    def __init__(self, engine: AsyncEngine, **kw: Any) -> None:
        super().__init__(engine, **kw)
        self.write_turn = asyncio.Lock() if engine.dialect.name == "sqlite" else None


@contextlib.asynccontextmanager
async def writing(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session in a transaction, committed on exit, in the engine's turn of writers."""
    async with _turn(sessions), open_session(sessions) as session, session.begin():
        yield session


@contextlib.asynccontextmanager
async def writing_core(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncConnection]:
    """``writing`` for Core statements on a hot path: a bare connection, none of a
    session's bookkeeping."""
    async with (
        _turn(sessions),
        open_connection(sessions.kw["bind"]) as conn,
        conn.begin(),
    ):
        yield conn


def _turn(
    sessions: async_sessionmaker[AsyncSession],
) -> contextlib.AbstractAsyncContextManager[Any]:
    """The engine's turn of writers (SQLite), or nothing to wait for."""
    if isinstance(sessions, StoreSessions) and sessions.write_turn is not None:
        return sessions.write_turn
    return contextlib.nullcontext()
