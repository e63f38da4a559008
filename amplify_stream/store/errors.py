"""The store's own error, and the one place where the database's errors become it.

Every session the stores open comes from ``open_session``: a failure of the database
itself (down, unreachable, the connection lost or timed out) leaves it as
``StoreUnavailable``; any other error (a bad statement, a broken constraint) passes as it
is, for the store's own handling.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker


class StoreUnavailable(Exception):
    """The database does not answer (down, unreachable, the connection lost or timed
    out). A passing failure: the same call is to be tried again once it is back."""


def _unavailable(exc: Exception) -> bool:
    """Errors that pass once the database is back (as opposed to a bad statement)."""
    if isinstance(exc, OperationalError | InterfaceError | OSError | TimeoutError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


@contextlib.asynccontextmanager
async def open_session(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session of ``sessions``, whose database failures leave as ``StoreUnavailable``."""
    with _unavailable_as_store_error():
        async with sessions() as session:
            yield session


@contextlib.asynccontextmanager
async def open_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection of ``engine``, for a Core statement on a hot path (none of a
    session's bookkeeping), whose database failures leave as ``StoreUnavailable``."""
    with _unavailable_as_store_error():
        async with engine.connect() as conn:
            yield conn


@contextlib.contextmanager
def _unavailable_as_store_error() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        if not _unavailable(exc):
            raise
        # The type only: a driver's message may carry the URL (the cause keeps it all).
        raise StoreUnavailable(f"the store does not answer ({type(exc).__name__})") from exc
