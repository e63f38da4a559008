"""A new story (or live document) admitted by its user's limits where its row is written,
in one transaction with it: what the limits count (the user's stories still running and
the newest of the last window; the documents held) is read under a lock on the user's
row (``lock_users``), so gateways sharing the database count each row once, and two of
them cannot both admit the user's last one.

The stories are written in batches (``Batched``), as the stories submitted meanwhile
arrive: one transaction and one writer's turn for many (each turn is a few trips through
the event loop, which under load is what bounds the rate, not the database), a Core
INSERT, not an ORM flush (by profile ten times the statement's cost), and one statement
for the tallies of every user in the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import Select, bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker
from sqlalchemy.sql.elements import BindParameter

from amplify_stream.errors import Conflict
from amplify_stream.store.batches import Batched
from amplify_stream.store.db import Story, User
from amplify_stream.store.sessions import writing_core

ACTIVE: frozenset[str] = frozenset({"queued", "running"})
_USER_IDS: BindParameter[str] = bindparam("user_ids", expanding=True)
_LOCK_USERS = select(User.id).where(User.id.in_(_USER_IDS)).order_by(User.id).with_for_update()


@dataclass(frozen=True, slots=True)
class StoryTally:
    """What a user's next story is admitted by, read under the lock on the user."""

    running: int  # stories not completed yet (queued or running)
    # When the ``per_window``-th newest of the stories created in the last window was:
    # None while there are fewer. A slot frees when it leaves the window.
    nth_newest: datetime | None


class Admission(Protocol):
    """The limits of a user's new story (``gateway/limits.py``): how many in a moving
    window, and the check of a tally, which raises to refuse."""

    @property
    def per_window(self) -> int: ...

    @property
    def window_s(self) -> float: ...

    def check(self, tally: StoryTally, now: datetime) -> None: ...


class DocumentAdmission(Protocol):
    """The limit of a user's new live document: the check of how many they hold, which
    raises to refuse."""

    def check(self, held: int) -> None: ...


async def lock_users(conn: AsyncConnection, users: list[str]) -> None:
    """Hold the users' rows until the transaction ends, before reading what they count:
    ``SELECT ... FOR UPDATE`` on PostgreSQL, in one order (no deadlock between two
    gateways' transactions), a statement of its own so that the reads after it see what
    was committed while it waited. SQLite has no row locks: the database's write lock,
    taken before the read, serialises every writer (of any process) until the commit."""
    if conn.dialect.name == "sqlite":
        await conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        await conn.execute(_LOCK_USERS, {"user_ids": sorted(set(users))})


@dataclass(slots=True)
class _NewStory:
    values: dict[str, Any]
    admission: Admission | None


class StoryInserts:
    """New stories' rows, each admitted by its ``Admission`` (none: written as it is)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._insert = Batched(self._insert_rows)
        self._tallies: dict[int, Select[str, int, datetime | None]] = {}

    async def insert(self, values: dict[str, Any], admission: Admission | None) -> None:
        """Write the row of ``values`` (its ``created_at`` set to when it was admitted),
        or raise what the admission raised, or ``Conflict`` (its id or its user's
        idempotency key is taken)."""
        await self._insert(_NewStory(values, admission))

    async def _insert_rows(self, rows: list[_NewStory]) -> list[Exception | None]:
        """The rows in transactions each of which holds one story per user at most (a
        tally counts the stories before it), in their order."""
        results: list[Exception | None] = [None] * len(rows)
        pending = list(range(len(rows)))
        while pending:
            users: set[str] = set()
            first: list[int] = []
            later: list[int] = []
            for i in pending:
                user = rows[i].values["user_id"]
                (later if user in users else first).append(i)
                users.add(user)
            for i, result in zip(first, await self._admit([rows[i] for i in first]), strict=True):
                results[i] = result
            pending = later
        return results

    async def _admit(self, rows: list[_NewStory]) -> list[Exception | None]:
        """One transaction: the users locked and tallied, one INSERT of the rows admitted.
        On a conflict, each row alone, so that only the rows in conflict fail."""
        results: list[Exception | None] = [None] * len(rows)
        try:
            async with writing_core(self._sessions) as conn:
                limited = [row for row in rows if row.admission is not None]
                if limited:
                    await lock_users(conn, [row.values["user_id"] for row in limited])
                # Once the users are locked: whoever held them before wrote older rows.
                now = datetime.now(UTC)
                tallies = await self._tally(conn, limited, now) if limited else {}
                for i, row in enumerate(rows):
                    row.values["created_at"] = now  # when admitted: the window counts it so
                    if row.admission is None:
                        continue
                    try:
                        row.admission.check(tallies[row.values["user_id"]], now)
                    except Exception as refused:  # the admission's own: the caller's to raise
                        results[i] = refused
                admitted = [
                    row.values for row, result in zip(rows, results, strict=True) if result is None
                ]
                if admitted:
                    await conn.execute(insert(Story), admitted)
        except IntegrityError:
            if len(rows) > 1:
                return [(await self._admit([row]))[0] for row in rows]
            # Two submits racing with one idempotency key: the loser lands here and can
            # answer with by_idempotency_key().
            return [Conflict("a story with this id or idempotency key already exists")]
        return results

    async def _tally(
        self, conn: AsyncConnection, rows: list[_NewStory], now: datetime
    ) -> dict[str, StoryTally]:
        """The tallies of the users of ``rows`` (one admission for them all, the users
        locked)."""
        users = sorted({row.values["user_id"] for row in rows})
        admission = cast("Admission", rows[0].admission)
        since = now - timedelta(seconds=admission.window_s)
        result = await conn.execute(
            self._tally_of(admission.per_window), {"user_ids": users, "since": since}
        )
        tallies = {user: StoryTally(0, None) for user in users}
        tallies.update({user: StoryTally(running, nth) for user, running, nth in result})
        return tallies

    def _tally_of(self, per_window: int) -> Select[str, int, datetime | None]:
        """The tally statement (built once per window size): for each user, the stories
        running, and the ``per_window``-th newest created since ``since`` (an index walk
        of at most ``per_window`` entries of ``ix_stories_user_created``)."""
        stmt = self._tallies.get(per_window)
        if stmt is None:
            mine = Story.user_id == User.id
            running = select(func.count()).where(mine, Story.status.in_(ACTIVE)).scalar_subquery()
            nth_newest = (
                select(Story.created_at)
                .where(mine, Story.created_at > bindparam("since"))
                .order_by(Story.created_at.desc())
                .offset(per_window - 1)
                .limit(1)
                .scalar_subquery()
            )
            stmt = self._tallies[per_window] = select(User.id, running, nth_newest).where(
                User.id.in_(_USER_IDS)
            )
        return stmt
