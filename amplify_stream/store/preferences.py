"""A user's preferences (docs/protocol.md section 6, "The writer's say"): the rules they
turned off everywhere, the words they vouched for, the focus a new document or story
reads. The gateway is their one writer; documents hear them by ``revision``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from amplify_stream.events import Focus
from amplify_stream.store.batches import Batched
from amplify_stream.store.db import UserPreferencesRow
from amplify_stream.store.errors import open_connection
from amplify_stream.store.sessions import writing

# Racing changes of one user's preferences: each retries on the other's revision.
_ATTEMPTS = 20


@dataclass(frozen=True)
class Preferences:
    rules_off: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    focus: tuple[Focus, ...] | None = None
    revision: int = 0
    updated_at: datetime | None = field(default=None, compare=False)


_SELECT = select(
    UserPreferencesRow.user_id,
    UserPreferencesRow.rules_off,
    UserPreferencesRow.words,
    UserPreferencesRow.focus,
    UserPreferencesRow.revision,
    UserPreferencesRow.updated_at,
).where(UserPreferencesRow.user_id.in_(bindparam("user_ids", expanding=True)))


class PreferenceStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._get = Batched(self._get_many)

    async def get(self, user_id: str) -> Preferences:
        """Read at every submission and every open: with the other users' asked
        meanwhile, in one statement built once, on a bare connection (as the stories'
        running count is)."""
        return await self._get(user_id)

    async def _get_many(self, user_ids: list[str]) -> list[Preferences]:
        async with open_connection(self._sessions.kw["bind"]) as conn:
            result = await conn.execute(_SELECT, {"user_ids": sorted(set(user_ids))})
            held = {
                user: _of(rules_off, words, focus, revision, updated_at)
                for user, rules_off, words, focus, revision, updated_at in result
            }
        return [held.get(user, Preferences()) for user in user_ids]

    async def change(
        self, user_id: str, how: Callable[[Preferences], Preferences]
    ) -> tuple[Preferences, Preferences]:
        """``how`` applied to the user's preferences as they are, stored under the next
        revision unless another change came first (then ``how`` runs again on that one):
        (before, after). Unchanged preferences keep their revision."""
        for _ in range(_ATTEMPTS):
            before = await self.get(user_id)
            after = how(before)
            if after == before:
                return before, before
            after = replace(after, revision=before.revision + 1, updated_at=datetime.now(UTC))
            if await self._store(user_id, before.revision, after):
                return before, after
        raise RuntimeError(f"preferences of {user_id} changed {_ATTEMPTS} times under a change")

    async def _store(self, user_id: str, revision: int, prefs: Preferences) -> bool:
        values = {
            "rules_off": list(prefs.rules_off),
            "words": list(prefs.words),
            "focus": None if prefs.focus is None else list(prefs.focus),
            "revision": prefs.revision,
            "updated_at": prefs.updated_at,
        }
        try:
            async with writing(self._sessions) as session:
                if revision == 0:
                    session.add(UserPreferencesRow(user_id=user_id, **values))
                    return True
                result = await session.execute(
                    update(UserPreferencesRow)
                    .where(
                        UserPreferencesRow.user_id == user_id,
                        UserPreferencesRow.revision == revision,
                    )
                    .values(**values)
                )
                return bool(getattr(result, "rowcount", 0))
        except IntegrityError:
            return False  # another first change won the insert


def _of(
    rules_off: list[str] | None,
    words: list[str] | None,
    focus: list[str] | None,
    revision: int,
    updated_at: datetime,
) -> Preferences:
    return Preferences(
        rules_off=tuple(rules_off or ()),
        words=tuple(words or ()),
        focus=None if focus is None else cast(tuple[Focus, ...], tuple(focus)),
        revision=revision,
        updated_at=updated_at,
    )
