"""The store on each backend: every test that asks for ``settings`` runs on ``[sqlite]`` and
``[postgresql]`` (a fresh schema per test on the server of ``AMPLIFY_TEST_DATABASE_URL``)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from amplify_stream.config import Settings
from amplify_stream.errors import Conflict, NotFound, NotReady
from amplify_stream.events import (
    EnhancementCompletedOutcome,
    EnhancementFailedOutcome,
    EnhancementTimings,
    ErrorInfo,
    InsightFields,
    NarrationCompletedOutcome,
    NarrationTimings,
    StoryCompletedOutcome,
    StoryOptions,
    StoryStatus,
    StoryTimings,
    SuggestionFields,
    Usage,
)
from amplify_stream.events.documents import DocumentSnapshot, LiveSuggestionRecord
from amplify_stream.store.db import Story, create_engine, create_schema, ping, session_factory
from amplify_stream.store.documents import DocumentStore
from amplify_stream.store.errors import StoreUnavailable
from amplify_stream.store.records import StoryRecord
from amplify_stream.store.stories import StoryStore
from amplify_stream.store.users import UserStore

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
POSTGRESQL_ONLY = pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
        return url
    # The data dir is not there yet: create_engine makes it.
    return f"sqlite+aiosqlite:///{tmp_path / 'data' / 'amplify.db'}"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        _env_file=None, data_dir=tmp_path / "data", database_url=database_url, jwt_secret="s" * 48
    )


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings)
    try:
        await create_schema(engine)
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def users(engine: AsyncEngine) -> UserStore:
    return UserStore(session_factory(engine))


@pytest.fixture
def stories(engine: AsyncEngine) -> StoryStore:
    return StoryStore(session_factory(engine))


async def new_story(
    stories: StoryStore, user_id: str, story_id: str, key: str | None = None
) -> StoryRecord:
    return await stories.create_story(
        story_id=story_id,
        user_id=user_id,
        options=StoryOptions(text=f"Once upon {story_id}.", title=story_id, idempotency_key=key),
        stream_partition=1,
        stream_offset=42,
    )


def story_completed(
    story_id: str, user_id: str, status: StoryStatus = "completed", error: ErrorInfo | None = None
) -> StoryCompletedOutcome:
    """The outcome that ends a story: what the projector folds into its row."""
    return StoryCompletedOutcome(
        story_id=story_id, user_id=user_id, attempt=1, status=status, error=error,
        timings=StoryTimings(total_ms=30),
    )  # fmt: skip


# ------------------------------------------------------------ engine


@SQLITE_ONLY
async def test_engine_makes_the_data_dir_and_uses_wal(
    settings: Settings, engine: AsyncEngine
) -> None:
    assert (settings.data_dir / "amplify.db").exists()
    async with engine.connect() as conn:
        assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 5000
        assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1


async def test_ping(engine: AsyncEngine, stories: StoryStore) -> None:
    await ping(engine)
    await stories.ping()


async def test_ping_fails_on_an_unreachable_database(tmp_path: Path) -> None:
    # A directory where the file should be: SQLite cannot open it.
    bad = create_engine(Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path}"))
    try:
        with pytest.raises(NotReady) as info:
            await ping(bad)
        assert str(tmp_path) not in info.value.message
    finally:
        await bad.dispose()
        # aiosqlite stops the worker thread of a failed connect without awaiting it; let it
        # finish while this test's loop is still open, or it reports to a closed loop.
        for thread in threading.enumerate():
            if thread.name.endswith("(_connection_worker_thread)"):
                thread.join(timeout=2)


async def test_ping_fails_on_an_unreachable_postgresql() -> None:
    # Nothing listens on port 1. Needs no server, so it runs everywhere.
    url = "postgresql+asyncpg://amplify:s3cret@127.0.0.1:1/amplify"
    bad = create_engine(Settings(_env_file=None, database_url=url))
    try:
        with pytest.raises(NotReady) as info:
            await ping(bad)
        assert "s3cret" not in info.value.message and "127.0.0.1" not in info.value.message
    finally:
        await bad.dispose()


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("sqlite+aiosqlite:///{tmp}", id="sqlite"),  # a directory: cannot open
        pytest.param("postgresql+asyncpg://amplify:s3cret@127.0.0.1:1/amplify", id="postgresql"),
    ],
)
async def test_an_unreachable_database_is_store_unavailable(tmp_path: Path, url: str) -> None:
    """The stores raise their own ``StoreUnavailable``, never the driver's errors. Needs
    no server (nothing listens on port 1), so it runs everywhere."""
    bad = create_engine(Settings(_env_file=None, database_url=url.format(tmp=tmp_path)))
    sessions = session_factory(bad)
    try:
        with pytest.raises(StoreUnavailable) as info:
            await StoryStore(sessions).get_for_user("s", "u")
        assert "s3cret" not in str(info.value) and str(tmp_path) not in str(info.value)
        with pytest.raises(StoreUnavailable):
            await StoryStore(sessions).apply_outcome(story_completed("s", "u"))  # a write
        with pytest.raises(StoreUnavailable):
            await UserStore(sessions).by_username("ada")
    finally:
        await bad.dispose()
        for thread in threading.enumerate():  # as in test_ping_fails_on_an_unreachable_database
            if thread.name.endswith("(_connection_worker_thread)"):
                thread.join(timeout=2)


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgres://u@127.0.0.1:1/x", "asyncpg"),
        ("postgresql://u@127.0.0.1:1/x", "asyncpg"),
        ("postgresql+asyncpg://u@127.0.0.1:1/x", "asyncpg"),
        ("sqlite:///{tmp}/a.db", "aiosqlite"),
    ],
)
async def test_urls_as_pasted_get_the_async_driver(tmp_path: Path, url: str, driver: str) -> None:
    engine = create_engine(Settings(_env_file=None, database_url=url.format(tmp=tmp_path)))
    try:
        assert engine.dialect.driver == driver
    finally:
        await engine.dispose()


@POSTGRESQL_ONLY
async def test_postgresql_column_types(engine: AsyncEngine) -> None:
    """What SQLite does not check: real types, the unique key, aware times back from the server."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = current_schema()"
            )
        )
        types = {name: kind for name, kind in rows}
        uniques = (
            await conn.execute(
                text(
                    "SELECT conname FROM pg_constraint WHERE contype = 'u'"
                    " AND conrelid = 'stories'::regclass"
                )
            )
        ).scalars()
        assert list(uniques) == ["uq_stories_user_id_idempotency_key"]
    assert types["stories.created_at"] == "timestamp with time zone"
    assert types["users.created_at"] == "timestamp with time zone"
    for column in ("focus", "suggestions", "insights", "audio_result", "error"):
        assert types[f"stories.{column}"] == "jsonb"
    assert types["stories.stream_offset"] == "bigint"


@POSTGRESQL_ONLY
async def test_postgresql_keeps_big_offsets_and_utc(
    engine: AsyncEngine, users: UserStore, stories: StoryStore
) -> None:
    ada = await users.create("ada", "h")
    created = await stories.create_story(
        story_id="s1",
        user_id=ada.id,
        options=StoryOptions(text="Once."),
        stream_partition=2,
        stream_offset=2**40,  # past INTEGER, as a long-lived Kafka topic gets
    )
    async with engine.connect() as conn:
        # Whatever zone a session is in, the same UTC instant comes back (the SET is
        # rolled back with the transaction when the connection goes back to the pool).
        await conn.execute(text("SET TIME ZONE INTERVAL '+05:30' HOUR TO MINUTE"))
        seen = (await conn.execute(select(Story.created_at))).scalar_one()
    assert seen == created.created_at and seen.tzinfo is UTC
    story = await stories.get_for_user("s1", ada.id)
    assert story.stream_offset == 2**40 and story.created_at == created.created_at


async def test_create_schema_twice_is_harmless(engine: AsyncEngine) -> None:
    await create_schema(engine)


async def test_processes_starting_together_both_get_the_schema(settings: Settings) -> None:
    engines = [create_engine(settings) for _ in range(4)]
    try:
        await asyncio.gather(*(create_schema(e) for e in engines))
        await UserStore(session_factory(engines[0])).create("ada", "h")
    finally:
        for e in engines:
            await e.dispose()


# ------------------------------------------------------------ users


async def test_create_and_find_user(users: UserStore) -> None:
    created = await users.create("Ada", "$2b$04$hash")
    assert created.username == "ada"
    assert created.created_at.tzinfo is UTC
    assert await users.by_username("ada") == created
    assert await users.by_id(created.id) == created
    assert await users.by_username("nobody") is None
    assert await users.by_id("no-such-id") is None


async def test_usernames_are_case_insensitive(users: UserStore) -> None:
    created = await users.create("Grace.Hopper", "h")
    assert await users.by_username("GRACE.hopper") == created
    with pytest.raises(Conflict):
        await users.create("grace.HOPPER", "h2")


async def test_duplicate_username_conflicts(users: UserStore) -> None:
    await users.create("ada", "h")
    with pytest.raises(Conflict) as info:
        await users.create("ada", "h2")
    assert info.value.http_status == 409


# ------------------------------------------------------------ stories


async def test_create_and_get_story(users: UserStore, stories: StoryStore) -> None:
    ada = await users.create("ada", "h")
    created = await new_story(stories, ada.id, "s1")
    assert created.status == "queued"
    assert created.focus == ("plot", "character", "dialogue", "setting")
    assert (created.stream_partition, created.stream_offset) == (1, 42)
    assert created.suggestions == () and created.audio_result is None and created.error is None
    assert await stories.get_for_user("s1", ada.id) == created


async def test_other_users_story_is_not_found(users: UserStore, stories: StoryStore) -> None:
    ada, bob = await users.create("ada", "h"), await users.create("bob", "h")
    await new_story(stories, ada.id, "ada-story")
    with pytest.raises(NotFound) as not_owned:
        await stories.get_for_user("ada-story", bob.id)
    with pytest.raises(NotFound) as missing:
        await stories.get_for_user("no-such-story", bob.id)
    # Nothing tells the two apart.
    assert not_owned.value.body() == missing.value.body()
    assert await stories.list_for_user(bob.id) == []


async def test_idempotency_key(users: UserStore, stories: StoryStore) -> None:
    ada, bob = await users.create("ada", "h"), await users.create("bob", "h")
    first = await new_story(stories, ada.id, "s1", key="k1")
    assert await stories.by_idempotency_key(ada.id, "k1") == first
    assert await stories.by_idempotency_key(ada.id, "k2") is None
    assert await stories.by_idempotency_key(bob.id, "k1") is None
    with pytest.raises(Conflict):
        await new_story(stories, ada.id, "s2", key="k1")
    # Keys are per user, and stories without a key never collide.
    await new_story(stories, bob.id, "s3", key="k1")
    await new_story(stories, ada.id, "s4")
    await new_story(stories, ada.id, "s5")


async def test_duplicate_story_id_conflicts(users: UserStore, stories: StoryStore) -> None:
    ada = await users.create("ada", "h")
    await new_story(stories, ada.id, "s1")
    with pytest.raises(Conflict):
        await new_story(stories, ada.id, "s1")


async def test_list_newest_first_with_pages(users: UserStore, stories: StoryStore) -> None:
    ada, bob = await users.create("ada", "h"), await users.create("bob", "h")
    for i in range(7):
        await new_story(stories, ada.id, f"s{i}")
    await new_story(stories, bob.id, "bob-story")

    seen: list[str] = []
    before: str | None = None
    while page := await stories.list_for_user(ada.id, limit=3, before=before):
        assert len(page) <= 3
        seen += [s.id for s in page]
        before = page[-1].id
    assert seen == [f"s{i}" for i in reversed(range(7))]

    with pytest.raises(NotFound):
        await stories.list_for_user(ada.id, before="bob-story")
    assert len(await stories.list_for_user(ada.id, limit=0)) == 1
    assert len(await stories.list_for_user(ada.id, limit=10_000)) == 7


async def test_delete(users: UserStore, stories: StoryStore) -> None:
    ada = await users.create("ada", "h")
    await new_story(stories, ada.id, "s1")
    assert await stories.delete("s1")
    assert not await stories.delete("s1")
    with pytest.raises(NotFound):
        await stories.get_for_user("s1", ada.id)


async def test_status_and_outcomes(users: UserStore, stories: StoryStore) -> None:
    ada = await users.create("ada", "h")
    await new_story(stories, ada.id, "s1")
    assert (await stories.get_for_user("s1", ada.id)).status == "queued"

    suggestion = SuggestionFields(
        id="g1", focus="plot", quote="Once", start=0, end=4, start_utf16=0, end_utf16=4,
        message="Open stronger.",
    )  # fmt: skip
    enhanced = EnhancementCompletedOutcome(
        story_id="s1", user_id=ada.id, attempt=1, provider="local", model="m", input_chars=10,
        text="Once, long ago.", suggestions=[suggestion],
        insights=[InsightFields(focus="plot", summary="Thin.", metrics={"beats": 1.0})],
        usage=Usage(), timings=EnhancementTimings(queue_ms=1, first_token_ms=2, total_ms=3),
    )  # fmt: skip
    narrated = NarrationCompletedOutcome(
        story_id="s1", user_id=ada.id, attempt=1, provider="espeak", voice="en-us",
        duration_ms=1200.0, bytes=999, sha256="ab" * 32, chunks=3, words=4,
        timings=NarrationTimings(first_audio_ms=10, total_ms=20),
    )  # fmt: skip
    done = StoryCompletedOutcome(
        story_id="s1", user_id=ada.id, attempt=1, status="completed",
        timings=StoryTimings(total_ms=30), at="2030-01-02T03:04:05.678Z",
    )  # fmt: skip
    for event in (enhanced, narrated, done):
        assert await stories.apply_outcome(event)

    story = await stories.get_for_user("s1", ada.id)
    assert story.status == "completed"
    assert story.completed_at == datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    assert story.enhanced_text == "Once, long ago."
    assert story.suggestions == (suggestion.model_dump(),)
    assert story.insights[0]["metrics"] == {"beats": 1.0}
    assert story.audio_result == {
        "format": "audio/mpeg", "duration_ms": 1200.0, "bytes": 999, "sha256": "ab" * 32,
        "voice": "en-us", "provider": "espeak",
    }  # fmt: skip
    assert story.error is None

    # A terminal story stays terminal, whatever arrives late or twice.
    assert not await stories.apply_outcome(done)
    failed = story_completed("s1", ada.id, "failed", ErrorInfo(code="x", message="y"))
    assert not await stories.apply_outcome(failed)
    assert not await stories.apply_outcome(story_completed("s1", ada.id, "cancelled"))
    story = await stories.get_for_user("s1", ada.id)
    assert story.status == "completed" and story.error is None
    # An outcome naming another owner changes nothing.
    assert not await stories.apply_outcome(enhanced.model_copy(update={"user_id": "someone"}))


async def test_failed_story_keeps_its_error(users: UserStore, stories: StoryStore) -> None:
    ada = await users.create("ada", "h")
    await new_story(stories, ada.id, "s1")
    error = ErrorInfo(code="provider_error", message="the model refused")
    assert await stories.apply_outcome(story_completed("s1", ada.id, "failed", error))
    story = await stories.get_for_user("s1", ada.id)
    assert story.status == "failed"
    assert story.error == {"code": "provider_error", "message": "the model refused"}
    assert story.completed_at is not None


# ------------------------------------------------------------ several processes


async def test_two_engines_share_one_database(settings: Settings, engine: AsyncEngine) -> None:
    other = create_engine(settings)  # as a second process would
    try:
        await create_schema(other)
        users_a, users_b = (
            UserStore(session_factory(engine)),
            UserStore(session_factory(other)),
        )
        stories_a, stories_b = (
            StoryStore(session_factory(engine)),
            StoryStore(session_factory(other)),
        )
        ada = await users_a.create("ada", "h")
        assert await users_b.by_username("ADA") == ada
        await new_story(stories_b, ada.id, "s1")
        assert (await stories_a.get_for_user("s1", ada.id)).id == "s1"
        assert await stories_a.apply_outcome(story_completed("s1", ada.id))
        assert (await stories_b.get_for_user("s1", ada.id)).status == "completed"

        # Racing sign-ups for one name through both engines: exactly one wins.
        results = await asyncio.gather(
            users_a.create("bob", "h"), users_b.create("BOB", "h"), return_exceptions=True
        )
        assert sorted(type(r).__name__ for r in results) == ["Conflict", "UserRecord"]
    finally:
        await other.dispose()


async def test_many_writers_at_once_all_land(
    engine: AsyncEngine, users: UserStore, stories: StoryStore
) -> None:
    # A burst of submissions with their outcomes folded in between: on SQLite the writers
    # of one process take turns in the loop, never failing with "database is locked".
    owner = await users.create("burst", "hash")
    ids = [f"burst-{n}" for n in range(200)]

    async def submit_and_start(story_id: str) -> None:
        await new_story(stories, owner.id, story_id)
        error = ErrorInfo(code="provider_error", message="retried")
        failed = EnhancementFailedOutcome(
            story_id=story_id, user_id=owner.id, attempt=1, error=error, attempts=1
        )
        assert await stories.apply_outcome(failed)  # the story goes on (still active)

    async with asyncio.timeout(60):
        await asyncio.gather(*(submit_and_start(story_id) for story_id in ids))
    active = select(func.count()).where(Story.user_id == owner.id, Story.status == "queued")
    async with engine.connect() as conn:
        assert await conn.scalar(active) == len(ids)


# ------------------------------------------------------------ live documents

CREATED = "2030-01-01T00:00:00.000Z"


@pytest.fixture
def documents(engine: AsyncEngine) -> DocumentStore:
    return DocumentStore(session_factory(engine))


def at(second: int) -> str:
    return f"2030-01-02T00:00:{second:02d}.000Z"


def snapshot(
    doc_id: str,
    user_id: str,
    version: int,
    *,
    text: str = "Mara opened the door.",
    when: str = CREATED,
    suggestions: tuple[LiveSuggestionRecord, ...] = (),
    deleted: bool = False,
) -> DocumentSnapshot:
    return DocumentSnapshot(
        doc_id=doc_id,
        user_id=user_id,
        at=when,
        created_at=CREATED,
        offset=version,
        title="Draft",
        focus=["plot", "dialogue"],
        text=text,
        version=version,
        suggestions=list(suggestions),
        current=[True],
        ids=len(suggestions),
        across=[],
        analyzed_version=version,
        deleted=deleted,
    )


MARA = LiveSuggestionRecord(
    id="s1", focus="plot", quote="Mara", message="Who is she?", start_utf16=0, end_utf16=4
)


async def test_create_and_get_document(users: UserStore, documents: DocumentStore) -> None:
    ada = await users.create("ada", "h")
    await documents.create("d1", ada.id, title="Draft", focus=["plot"], text="Once.")
    doc = await documents.get_for_user("d1", ada.id)
    assert (doc.doc_id, doc.user_id, doc.title, doc.focus) == ("d1", ada.id, "Draft", ("plot",))
    assert (doc.text, doc.version, doc.suggestions) == ("Once.", 0, ())
    assert doc.created_at == doc.updated_at
    assert doc.created_at.tzinfo is UTC
    assert await documents.exists_for_user("d1", ada.id)
    assert await documents.count_for_user(ada.id) == 1
    with pytest.raises(Conflict):
        await documents.create("d1", ada.id, title=None, focus=["plot"], text="")


async def test_other_users_document_is_not_found(
    users: UserStore, documents: DocumentStore
) -> None:
    ada, bob = await users.create("ada", "h"), await users.create("bob", "h")
    await documents.create("ada-doc", ada.id, title=None, focus=["plot"], text="Once.")
    with pytest.raises(NotFound) as not_owned:
        await documents.get_for_user("ada-doc", bob.id)
    with pytest.raises(NotFound) as missing:
        await documents.get_for_user("no-such-doc", bob.id)
    # Nothing tells the two apart.
    assert not_owned.value.body() == missing.value.body()
    assert not await documents.exists_for_user("ada-doc", bob.id)
    assert not await documents.exists_for_user("no-such-doc", ada.id)
    assert await documents.count_for_user(bob.id) == 0
    assert await documents.list_for_user(bob.id) == []


async def test_delete_document(users: UserStore, documents: DocumentStore) -> None:
    ada = await users.create("ada", "h")
    await documents.create("d1", ada.id, title=None, focus=["plot"], text="Once.")
    await documents.delete("d1")
    await documents.delete("d1")  # gone already: nothing to do
    assert not await documents.exists_for_user("d1", ada.id)
    with pytest.raises(NotFound):
        await documents.get_for_user("d1", ada.id)


async def test_a_newer_snapshot_replaces_the_row(
    users: UserStore, documents: DocumentStore
) -> None:
    ada = await users.create("ada", "h")
    await documents.create("d1", ada.id, title="Draft", focus=["plot", "dialogue"], text="M.")
    created = await documents.get_for_user("d1", ada.id)

    assert await documents.apply_snapshot(snapshot("d1", ada.id, 3, when=at(5)))
    doc = await documents.get_for_user("d1", ada.id)
    assert (doc.version, doc.text, doc.suggestions) == (3, "Mara opened the door.", ())
    assert doc.updated_at == datetime.fromisoformat(at(5))
    assert doc.created_at == created.created_at  # the gateway's, kept

    # The same version again, with a pass's suggestions: the live set is replaced, but the
    # document did not change, so it keeps its place in the list.
    later = snapshot("d1", ada.id, 3, when=at(9), suggestions=(MARA,))
    assert await documents.apply_snapshot(later)
    doc = await documents.get_for_user("d1", ada.id)
    assert doc.suggestions == (MARA.model_dump(),)
    assert doc.updated_at == datetime.fromisoformat(at(5))

    # An older version (a replay from before) never overwrites a newer one.
    assert not await documents.apply_snapshot(snapshot("d1", ada.id, 2, text="M", when=at(7)))
    assert await documents.get_for_user("d1", ada.id) == doc
    # A replay of the newest changes nothing visible either.
    await documents.apply_snapshot(later)
    assert await documents.get_for_user("d1", ada.id) == doc


async def test_a_snapshot_of_a_document_not_in_the_store_inserts_it(
    users: UserStore, documents: DocumentStore
) -> None:
    ada = await users.create("ada", "h")
    assert await documents.apply_snapshot(snapshot("d1", ada.id, 4, when=at(3)))
    doc = await documents.get_for_user("d1", ada.id)
    assert (doc.version, doc.title, doc.focus) == (4, "Draft", ("plot", "dialogue"))
    assert doc.created_at == datetime.fromisoformat(CREATED)
    assert doc.updated_at == datetime.fromisoformat(at(3))


async def test_snapshots_of_other_users_change_nothing(
    users: UserStore, documents: DocumentStore
) -> None:
    ada, bob = await users.create("ada", "h"), await users.create("bob", "h")
    await documents.create("d1", ada.id, title=None, focus=["plot"], text="Once.")
    before = await documents.get_for_user("d1", ada.id)
    # Another user's snapshot under the same id, and one of a user the store never had.
    assert not await documents.apply_snapshot(snapshot("d1", bob.id, 9))
    assert not await documents.apply_snapshot(snapshot("d1", bob.id, 9, deleted=True))
    assert not await documents.apply_snapshot(snapshot("d2", "no-such-user", 1))
    assert await documents.get_for_user("d1", ada.id) == before
    assert not await documents.exists_for_user("d2", "no-such-user")


async def test_a_deleted_marker_removes_the_row(users: UserStore, documents: DocumentStore) -> None:
    ada = await users.create("ada", "h")
    await documents.create("d1", ada.id, title=None, focus=["plot"], text="Once.")
    await documents.apply_snapshot(snapshot("d1", ada.id, 5))
    # The owner's marker carries version 0: it removes the row whatever its version.
    assert await documents.apply_snapshot(snapshot("d1", ada.id, 0, deleted=True))
    assert not await documents.exists_for_user("d1", ada.id)
    assert not await documents.apply_snapshot(snapshot("d1", ada.id, 0, deleted=True))


async def test_documents_newest_first_with_pages(
    users: UserStore, documents: DocumentStore
) -> None:
    ada, bob = await users.create("ada", "h"), await users.create("bob", "h")
    for i in range(7):
        await documents.create(f"d{i}", ada.id, title=None, focus=["plot"], text="Once.")
    await documents.create("bob-doc", bob.id, title=None, focus=["plot"], text="Once.")
    # Edited in another order than created; d5 and d6 in the same millisecond.
    edited = {"d3": 1, "d0": 2, "d6": 3, "d5": 3, "d1": 4, "d4": 5, "d2": 6}
    for doc_id, second in edited.items():
        await documents.apply_snapshot(snapshot(doc_id, ada.id, 1, when=at(second)))
    newest_first = ["d2", "d4", "d1", "d6", "d5", "d0", "d3"]

    seen: list[str] = []
    before: str | None = None
    while page := await documents.list_for_user(ada.id, limit=3, before=before):
        assert len(page) <= 3
        seen += [d.doc_id for d in page]
        before = page[-1].doc_id
    assert seen == newest_first

    pages: list[list[str]] = []
    after: str | None = None
    while True:
        page, after = await documents.page_for_user(ada.id, limit=3, before=after)
        pages.append([d.doc_id for d in page])
        if after is None:
            break
    assert pages == [newest_first[:3], newest_first[3:6], newest_first[6:]]

    with pytest.raises(NotFound):
        await documents.list_for_user(ada.id, before="bob-doc")
    assert len(await documents.list_for_user(ada.id, limit=0)) == 1
    assert len(await documents.list_for_user(ada.id, limit=10_000)) == 7
    assert [d.doc_id for d in await documents.list_for_user(bob.id)] == ["bob-doc"]


@POSTGRESQL_ONLY
async def test_postgresql_document_column_types(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        types: dict[str, str] = dict(
            (
                await conn.execute(
                    text(
                        "SELECT column_name, data_type FROM information_schema.columns "
                        "WHERE table_name = 'documents'"
                    )
                )
            ).all()
        )
    assert types["focus"] == types["suggestions"] == "jsonb"
    assert types["created_at"] == types["updated_at"] == "timestamp with time zone"


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("sqlite+aiosqlite:///{tmp}", id="sqlite"),  # a directory: cannot open
        pytest.param("postgresql+asyncpg://amplify:s3cret@127.0.0.1:1/amplify", id="postgresql"),
    ],
)
async def test_an_unreachable_database_is_store_unavailable_for_documents(
    tmp_path: Path, url: str
) -> None:
    """As for the stories: the store's own error, for reads and writes alike."""
    bad = create_engine(Settings(_env_file=None, database_url=url.format(tmp=tmp_path)))
    store = DocumentStore(session_factory(bad))
    try:
        with pytest.raises(StoreUnavailable) as info:
            await store.get_for_user("d", "u")
        assert "s3cret" not in str(info.value) and str(tmp_path) not in str(info.value)
        with pytest.raises(StoreUnavailable):
            await store.apply_snapshot(snapshot("d", "u", 1))
        with pytest.raises(StoreUnavailable):
            await store.delete("d")
    finally:
        await bad.dispose()
        for thread in threading.enumerate():  # as in test_ping_fails_on_an_unreachable_database
            if thread.name.endswith("(_connection_worker_thread)"):
                thread.join(timeout=2)
