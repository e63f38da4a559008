"""Accounts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from amplify_stream.errors import Conflict
from amplify_stream.store.db import User
from amplify_stream.store.errors import open_session
from amplify_stream.store.records import UserRecord


def normalize_username(username: str) -> str:
    """Usernames are case-insensitive: stored and looked up lowercased."""
    return username.lower()


class UserStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def create(self, username: str, password_hash: str) -> UserRecord:
        """A new user; ``Conflict`` when the name is taken, in any letter case."""
        row = User(
            id=str(uuid.uuid4()),
            username=normalize_username(username),
            password_hash=password_hash,
            created_at=datetime.now(UTC),
        )
        try:
            async with open_session(self._sessions) as session, session.begin():
                session.add(row)
        except IntegrityError:
            # The unique index decides, so two racing sign-ups cannot both win.
            raise Conflict("this username is already taken") from None
        return UserRecord.of(row)

    async def by_username(self, username: str) -> UserRecord | None:
        stmt = select(User).where(User.username == normalize_username(username))
        async with open_session(self._sessions) as session:
            row = await session.scalar(stmt)
        return None if row is None else UserRecord.of(row)

    async def by_id(self, user_id: str) -> UserRecord | None:
        async with open_session(self._sessions) as session:
            row = await session.get(User, user_id)
        return None if row is None else UserRecord.of(row)

    async def replace_password_hash(self, user_id: str, old: str, new: str) -> bool:
        """Store ``new`` where the user's hash is still ``old`` (a rehash at another cost
        never overwrites a hash changed meanwhile); True when it was stored."""
        stmt = (
            update(User)
            .where(User.id == user_id, User.password_hash == old)
            .values(password_hash=new)
        )
        async with open_session(self._sessions) as session, session.begin():
            result = await session.execute(stmt)
        return bool(getattr(result, "rowcount", 0))
