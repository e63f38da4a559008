"""A user's rows newest first, in pages: the keyset both list routes use."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from amplify_stream.errors import NotFound
from amplify_stream.store.errors import open_session

MAX_PAGE_SIZE = 100

Row = TypeVar("Row")


async def newest_first(
    sessions: async_sessionmaker[AsyncSession],
    model: type[Row],
    when: InstrumentedAttribute[Any],
    key: InstrumentedAttribute[Any],
    user_id: str,
    limit: int,
    before: str | None,
) -> list[Row]:
    """``model``'s rows of ``user_id`` by ``when`` then ``key``, newest first, at most
    ``limit``, after the row whose ``key`` is ``before`` (``NotFound`` when the user has
    none such). Keyset on (when, key): stable while rows are added, the key breaking ties
    between rows of the same microsecond."""
    owner = model.user_id  # type: ignore[attr-defined]
    stmt = select(model).where(owner == user_id)
    async with open_session(sessions) as session:
        if before is not None:
            anchor = (
                await session.execute(select(when, key).where(key == before, owner == user_id))
            ).one_or_none()
            if anchor is None:
                raise NotFound(f"{model.__name__.lower()} not found")
            at, anchor_key = anchor
            stmt = stmt.where(or_(when < at, and_(when == at, key < anchor_key)))
        stmt = stmt.order_by(when.desc(), key.desc()).limit(limit)
        return list((await session.scalars(stmt)).all())


def page_size(limit: int) -> int:
    return max(1, min(limit, MAX_PAGE_SIZE))
