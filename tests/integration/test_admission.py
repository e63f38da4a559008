"""A story or a live document admitted by its user's limits where its row is written
(``store/admission.py``: ``StoryStore.create_story`` with ``Limiter.stories``,
``DocumentStore.create`` with ``Limiter.documents``), on ``[sqlite]`` and
``[postgresql]``: counted once whatever number of gateways (here, engines: what a gateway
process holds) share the database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from amplify_stream.config import Settings
from amplify_stream.errors import Conflict, RateLimited
from amplify_stream.events import StoryOptions
from amplify_stream.gateway.limits import DocumentAdmission, StoryAdmission
from amplify_stream.store.db import Story, create_engine, create_schema, session_factory
from amplify_stream.store.documents import DocumentStore
from amplify_stream.store.stories import StoryStore
from amplify_stream.store.users import UserStore
from tests.integration.test_store import story_completed


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'amplify.db'}"
    return Settings(_env_file=None, data_dir=tmp_path / "data", database_url=url)


@pytest.fixture
async def engines(settings: Settings) -> AsyncIterator[list[AsyncEngine]]:
    """Three engines on one database, as three gateway processes hold."""
    made = [create_engine(settings) for _ in range(3)]
    try:
        for engine in made:
            await create_schema(engine)
        yield made
    finally:
        for engine in made:
            await engine.dispose()


def admission(settings: Settings, **limits: int) -> StoryAdmission:
    return StoryAdmission(settings.model_copy(update=limits), window_s=60)


async def submit(
    stories: StoryStore, user_id: str, admit: StoryAdmission, n: int, key: str | None = None
) -> None:
    await stories.create_story(
        story_id=f"{user_id}-{n}",
        user_id=user_id,
        options=StoryOptions(text="Once upon a time.", idempotency_key=key),
        stream_partition=0,
        stream_offset=n,
        admission=admit,
    )


async def rows_of(engine: AsyncEngine, user_id: str) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).where(Story.user_id == user_id)) or 0)


async def test_one_user_through_three_engines_gets_exactly_the_limit(
    settings: Settings, engines: list[AsyncEngine]
) -> None:
    stores = [StoryStore(session_factory(engine)) for engine in engines]
    ada = await UserStore(session_factory(engines[0])).create("ada", "h")
    bob = await UserStore(session_factory(engines[0])).create("bob", "h")
    admit = admission(settings, submissions_per_minute=7, max_running_per_user=1000)
    # 60 at once, spread over the three: many land in one batch of an engine, and the
    # engines' transactions race for the same user.
    attempts = [
        submit(stores[n % 3], user, admit, n)
        for n in range(60)
        for user in ([ada.id] if n % 4 else [ada.id, bob.id])
    ]
    results = await asyncio.gather(*attempts, return_exceptions=True)
    refused = [r for r in results if isinstance(r, RateLimited)]
    assert all(r is None or isinstance(r, RateLimited) for r in results), results
    assert len(results) - len(refused) == 14  # 7 each
    assert await rows_of(engines[1], ada.id) == 7
    assert await rows_of(engines[2], bob.id) == 7
    assert {r.retry_after for r in refused} <= {59, 60}


async def test_retry_after_is_when_the_nth_newest_leaves_the_window(
    settings: Settings, engines: list[AsyncEngine]
) -> None:
    stories = StoryStore(session_factory(engines[0]))
    ada = await UserStore(session_factory(engines[0])).create("ada", "h")
    admit = admission(settings, submissions_per_minute=2, max_running_per_user=100)
    await submit(stories, ada.id, admit, 1)
    await submit(stories, ada.id, admit, 2)

    async def created(n: int, seconds_ago: float) -> None:
        at = datetime.now(UTC) - timedelta(seconds=seconds_ago)
        async with engines[0].begin() as conn:
            await conn.execute(
                update(Story).where(Story.id == f"{ada.id}-{n}").values(created_at=at)
            )

    await created(1, 50)
    await created(2, 20)
    with pytest.raises(RateLimited) as refused:
        await submit(stories, ada.id, admit, 3)
    assert refused.value.retry_after == 10  # the older of the two leaves in 10 s
    # Refused: no row, no slot taken. Once the older one has left, one more goes in.
    assert await rows_of(engines[0], ada.id) == 2
    await created(1, 61)
    await submit(stories, ada.id, admit, 4)
    with pytest.raises(RateLimited) as refused:
        await submit(stories, ada.id, admit, 5)
    assert refused.value.retry_after == 40  # now the one of 20 s ago is the 2nd newest


async def test_running_stories_are_counted_under_the_same_lock(
    settings: Settings, engines: list[AsyncEngine]
) -> None:
    stores = [StoryStore(session_factory(engine)) for engine in engines]
    ada = await UserStore(session_factory(engines[0])).create("ada", "h")
    admit = admission(settings, submissions_per_minute=100, max_running_per_user=3)
    results = await asyncio.gather(
        *(submit(stores[n % 3], ada.id, admit, n) for n in range(12)), return_exceptions=True
    )
    assert [r for r in results if r is not None and not isinstance(r, RateLimited)] == []
    assert sum(r is None for r in results) == 3
    refusal = next(r for r in results if isinstance(r, RateLimited))
    assert "3 of your stories are still running" in str(refusal)
    # A story that ends frees its place.
    done = next(n for n, r in enumerate(results) if r is None)
    assert await stores[0].apply_outcome(story_completed(f"{ada.id}-{done}", ada.id))
    await submit(stores[1], ada.id, admit, 100)


async def test_a_raced_idempotency_key_is_one_story(
    settings: Settings, engines: list[AsyncEngine]
) -> None:
    stories = StoryStore(session_factory(engines[0]))
    ada = await UserStore(session_factory(engines[0])).create("ada", "h")
    admit = admission(settings, submissions_per_minute=10, max_running_per_user=10)
    results = await asyncio.gather(
        *(submit(stories, ada.id, admit, n, key="draft") for n in range(3)),
        submit(stories, ada.id, admit, 9),
        return_exceptions=True,
    )
    # One of the three with the key is written, the other two learn of it (Conflict).
    assert sum(isinstance(r, Conflict) for r in results[:3]) == 2 and results[3] is None
    assert await rows_of(engines[0], ada.id) == 2


async def test_documents_held_are_counted_under_the_same_lock(
    engines: list[AsyncEngine],
) -> None:
    stores = [DocumentStore(session_factory(engine)) for engine in engines]
    ada = await UserStore(session_factory(engines[0])).create("ada", "h")
    admit = DocumentAdmission(max_documents=3)

    async def create(n: int) -> None:
        await stores[n % 3].create(
            f"d{n}", ada.id, title=None, focus=["plot"], text="", admission=admit
        )

    results = await asyncio.gather(*(create(n) for n in range(12)), return_exceptions=True)
    assert sum(r is None for r in results) == 3
    refused = [r for r in results if r is not None]
    assert all(isinstance(r, RateLimited) and "you hold 3 documents" in str(r) for r in refused)
    assert await stores[1].count_for_user(ada.id) == 3
    # A deleted one frees its place.
    await stores[2].delete(next(f"d{n}" for n, r in enumerate(results) if r is None))
    await create(100)
