"""Tables, the engine and the schema of the store (SQLAlchemy 2 async).

SQLite (a file in the data directory) by default, PostgreSQL by URL
(``postgresql+asyncpg://...``). Several processes may share one SQLite file: WAL lets
readers run beside the writer, and a busy timeout makes a writer wait for the lock instead
of failing at once. The same tables work on both: JSON is JSONB on PostgreSQL, datetimes
are aware UTC in and out, and the pragmas are SQLite's alone.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from amplify_stream.config.groups import ServiceSettings
from amplify_stream.errors import NotReady
from amplify_stream.store.sessions import StoreSessions

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 5000
# The async driver for URLs as people paste them: postgres:// and postgresql:// (which
# would mean psycopg2) run on asyncpg, plain sqlite:// on aiosqlite.
_ASYNC_DRIVERS = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
}
# Any fixed number: the PostgreSQL advisory lock that create_schema holds while it runs.
SCHEMA_LOCK_KEY = 0x616D706C69667931  # "amplify1"

# Named constraints, so later migrations (Alembic) can address them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out. SQLite keeps no zone, so UTC is stored naive there."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: give the store aware UTC datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# none_as_null: a Python None is SQL NULL, not the JSON text "null".
Json = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # Lowercased by UserStore, so uniqueness is case-insensitive on every backend.
    username: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Story(Base):
    __tablename__ = "stories"
    __table_args__ = (
        # NULL keys never collide, so stories without a key are unaffected.
        UniqueConstraint("user_id", "idempotency_key"),
        # Serves "this user's stories, newest first" and every lookup by user_id.
        Index("ix_stories_user_created", "user_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    focus: Mapped[list[str]] = mapped_column(Json)
    rewrite: Mapped[bool] = mapped_column(Boolean)
    audio: Mapped[bool] = mapped_column(Boolean)  # narration was asked for
    voice: Mapped[str | None] = mapped_column(String(100))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="queued", server_default="queued")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    enhanced_text: Mapped[str | None] = mapped_column(Text)
    suggestions: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    insights: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    # The narration's result (format, duration_ms, bytes, sha256...); named apart from
    # ``audio``, the request flag above.
    audio_result: Mapped[dict[str, Any] | None] = mapped_column(Json)
    error: Mapped[dict[str, Any] | None] = mapped_column(Json)
    # Where this story's events start on the stream topic. Kafka offsets are 64-bit: an
    # INTEGER column would overflow on PostgreSQL (SQLite's is 64-bit anyway).
    stream_partition: Mapped[int] = mapped_column(Integer)
    stream_offset: Mapped[int] = mapped_column(BigInteger)


class Document(Base):
    """A live document as the store shows it (``GET /v1/documents...``): the row the
    gateway writes when the document is created, then its owner's newest snapshot."""

    __tablename__ = "documents"
    __table_args__ = (
        # Serves "this user's documents, most recently changed first" and every lookup by
        # user_id.
        Index("ix_documents_user_updated", "user_id", "updated_at", "doc_id"),
    )

    doc_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str | None] = mapped_column(Text)
    focus: Mapped[list[str]] = mapped_column(Json)
    text: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer)
    # The live set at ``version``, as the snapshot holds it (UTF-16 spans).
    suggestions: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the store last saw the document move to a new version.
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DocumentIgnoresRow(Base):
    """What the writer said of a document's suggestions (``ignores`` of its snapshot):
    beside the document's row, so the stores made before it need no migration."""

    __tablename__ = "document_ignores"

    doc_id: Mapped[str] = mapped_column(
        ForeignKey("documents.doc_id", ondelete="CASCADE"), primary_key=True
    )
    ignores: Mapped[dict[str, Any]] = mapped_column(Json)


class UserPreferencesRow(Base):
    """A user's preferences (``/v1/me/preferences``); ``revision`` orders them for the
    documents that hear them and serves as the compare-and-set of a change."""

    __tablename__ = "user_preferences"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    rules_off: Mapped[list[str]] = mapped_column(Json, default=list)
    words: Mapped[list[str]] = mapped_column(Json, default=list)
    focus: Mapped[list[str] | None] = mapped_column(Json)
    revision: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


def create_engine(settings: ServiceSettings) -> AsyncEngine:
    """The async engine for ``settings.effective_database_url``. Dispose of it when done."""
    url = make_url(settings.effective_database_url)
    url = url.set(drivername=_ASYNC_DRIVERS.get(url.drivername, url.drivername))
    if url.get_backend_name() != "sqlite":
        # Drop connections the server closed while they sat in the pool.
        return _create_async_engine(url, pool_pre_ping=True)
    _make_sqlite_dir(url)
    engine = _create_async_engine(url)
    event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
    return engine


def session_factory(engine: AsyncEngine) -> StoreSessions:
    # expire_on_commit=False: reading a row after commit must not need another query.
    return StoreSessions(engine, expire_on_commit=False)


async def create_schema(engine: AsyncEngine) -> None:
    """Create missing tables and indexes (migrations come later).

    Safe when several processes start at once, on either backend.
    """
    if engine.dialect.name == "postgresql":
        async with engine.begin() as conn:
            # DDL is transactional here: processes take turns under a transaction-level
            # advisory lock (freed at commit), and each one after the first finds the
            # tables the first committed instead of colliding on CREATE.
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            await conn.run_sync(Base.metadata.create_all)
        return
    attempts = 5
    for attempt in range(attempts):
        try:
            async with engine.begin() as conn:
                await conn.run_sync(Base.metadata.create_all)
            return
        except DBAPIError:
            # Processes starting together: another one created a table between our check
            # and our CREATE (SQLite runs DDL outside a transaction). The next pass skips it.
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.05 * (attempt + 1))


async def ping(engine: AsyncEngine, timeout_s: float = 2.0) -> None:
    """Readiness: ``NotReady`` unless the database answers ``SELECT 1`` within ``timeout_s``."""
    try:
        async with asyncio.timeout(timeout_s), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # whatever the driver raises, the store is not ready
        # The type only: a driver's message may carry the URL.
        raise NotReady(f"the store does not answer ({type(exc).__name__})") from exc


def _make_sqlite_dir(url: URL) -> None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return  # in memory, or a URI the caller manages
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()
