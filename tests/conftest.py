"""Shared fixtures. Backend-neutral tests ask for ``bus`` (or ``settings``) and run once
per backend: ``[memory]`` and ``[kafka]``. The kafka runs need the broker at
``AMPLIFY_TEST_KAFKA_BOOTSTRAP`` (default 127.0.0.1:9092) and fail when it is missing.
Likewise tests of the store on PostgreSQL (``postgres_url``) need the server at
``AMPLIFY_TEST_DATABASE_URL`` (``scripts/postgres.sh start``) and fail without it, and
tests of the cluster-wide limits (``redis_url``) the Redis at ``AMPLIFY_TEST_REDIS_URL``
(``scripts/redis.sh start``).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from sqlalchemy.engine import URL, make_url

from amplify_stream.bus import Bus, BusUnavailable, create_bus
from amplify_stream.bus.kafka_topics import delete_topics
from amplify_stream.config import Settings
from tests.support import TEST_STREAM_PARTITIONS, TEST_TOPIC_PARTITIONS

KAFKA_BOOTSTRAP_ENV = "AMPLIFY_TEST_KAFKA_BOOTSTRAP"
DATABASE_URL_ENV = "AMPLIFY_TEST_DATABASE_URL"
# What scripts/postgres.sh start prints.
DEFAULT_TEST_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:55432/amplify_test"
REDIS_URL_ENV = "AMPLIFY_TEST_REDIS_URL"
# What scripts/redis.sh start prints.
DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:56379/0"

SettingsFactory = Callable[..., Settings]


# ---------------------------------------------------------------- markers

# A test that asks for a server's fixture carries that server's marker, so that
# `-m "not kafka and not postgres"` (`make check`) deselects it even where its module
# forgot the mark. (The ``[kafka]`` runs of ``bus_kind`` are marked by their parameter.)
_MARKER_OF_FIXTURE = {
    "kafka_bootstrap": "kafka",
    "postgres_server": "postgres",
    "redis_url": "redis",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in getattr(item, "fixturenames", ()):
            marker = _MARKER_OF_FIXTURE.get(fixture)
            if marker is not None:
                item.add_marker(marker)


# ---------------------------------------------------------------- backends


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The test broker; a clear failure (never a skip) when nothing listens there."""
    servers = os.environ.get(KAFKA_BOOTSTRAP_ENV, "127.0.0.1:9092")
    host, _, port = servers.split(",")[0].rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError as exc:
        pytest.fail(_no_broker(servers, exc), pytrace=False)
    return servers


def _no_broker(servers: str, error: object) -> str:
    return (
        f"no Kafka broker at {servers} ({error}). Start one with `scripts/kafka.sh start` "
        f"or point {KAFKA_BOOTSTRAP_ENV} at one; deselect with -m 'not kafka'."
    )


@pytest.fixture(
    params=[
        pytest.param("memory", id="memory"),
        pytest.param("kafka", id="kafka", marks=pytest.mark.kafka),
    ]
)
def bus_kind(request: pytest.FixtureRequest) -> str:
    """The backend under test; every fixture built on ``settings`` follows it."""
    name: str = request.param
    if name == "kafka":
        request.getfixturevalue("kafka_bootstrap")
    return name


@pytest.fixture(scope="session")
def postgres_server() -> URL:
    """The test PostgreSQL; a clear failure (never a skip) when nothing listens there."""
    url = make_url(os.environ.get(DATABASE_URL_ENV, DEFAULT_TEST_DATABASE_URL))
    try:
        socket.create_connection((url.host or "127.0.0.1", url.port or 5432), timeout=3).close()
    except OSError as exc:
        pytest.fail(_no_postgres(url, exc), pytrace=False)
    return url


def _no_postgres(url: URL, error: object) -> str:
    return (
        f"no PostgreSQL at {url.render_as_string()} ({error}). Start one with "
        f"`scripts/postgres.sh start` or point {DATABASE_URL_ENV} at one; "
        "deselect with -m 'not postgres'."
    )


@pytest.fixture
async def postgres_url(postgres_server: URL) -> AsyncIterator[str]:
    """The URL of an empty schema on the test server, for this test alone.

    A new role whose search_path is a new schema it owns: whatever connects with the URL
    (the test's engines, the whole app) sees that schema only. Milliseconds, where a
    database per test takes a checkpoint and up to seconds on a busy machine.
    """
    name = f"amplify_t_{uuid.uuid4().hex[:16]}"
    password = uuid.uuid4().hex  # for servers that ask for one; the test cluster trusts
    try:
        admin = await asyncpg.connect(
            host=postgres_server.host,
            port=postgres_server.port,
            user=postgres_server.username,
            password=postgres_server.password,
            database=postgres_server.database,
            timeout=10,
        )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        pytest.fail(_no_postgres(postgres_server, exc), pytrace=False)
    try:
        await admin.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
        await admin.execute(f"CREATE SCHEMA {name} AUTHORIZATION {name}")
        await admin.execute(f"ALTER ROLE {name} SET search_path = {name}")
        url = postgres_server.set(username=name, password=password)
        yield url.render_as_string(hide_password=False)
    finally:
        # A failed test may have left sessions open; they would hold the drop up.
        with contextlib.suppress(asyncpg.PostgresError):
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", name
            )
        await admin.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        await admin.execute(f"DROP ROLE IF EXISTS {name}")
        await admin.close()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis; a clear failure (never a skip) when nothing listens there. Tests
    share it: what they count is keyed by their own topic prefix (``make_settings``)."""
    url = os.environ.get(REDIS_URL_ENV, DEFAULT_TEST_REDIS_URL)
    parsed = urlsplit(url)
    try:
        socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=3
        ).close()
    except OSError as exc:
        pytest.fail(
            f"no Redis at {url} ({exc}). Start one with `scripts/redis.sh start` or point "
            f"{REDIS_URL_ENV} at one; deselect with -m 'not redis'.",
            pytrace=False,
        )
    return url


# ---------------------------------------------------------------- settings


@pytest.fixture
def make_settings(tmp_path: Path) -> SettingsFactory:
    """``make_settings(**overrides)``: settings with topic names no other test shares."""
    prefix = f"t{uuid.uuid4().hex[:12]}"

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "bus": "memory",
            "kafka_bootstrap_servers": os.environ.get(KAFKA_BOOTSTRAP_ENV, "127.0.0.1:9092"),
            "topic_prefix": prefix,
            "data_dir": tmp_path / "data",
            "jwt_secret": "test-secret-" + "x" * 32,
            "bcrypt_rounds": 4,
            # The offline analyzer, paced just enough to stream in pieces.
            "enhancer_provider": "local",
            "local_piece_delay_ms": 1,
            # Offline speech: tests never reach the internet (edge tests use the fake).
            "speech_provider": "espeak",
            "topic_partitions": TEST_TOPIC_PARTITIONS,
            "stream_partitions": TEST_STREAM_PARTITIONS,
        }
        return Settings(_env_file=None, **(values | overrides))

    return make


@pytest.fixture
def settings(make_settings: SettingsFactory, bus_kind: str) -> Settings:
    return make_settings(bus=bus_kind)


@pytest.fixture
def unique_topic(settings: Settings) -> Callable[..., str]:
    """``unique_topic("events")`` -> a topic name used by this test only (and each call anew)."""
    counter = itertools.count()

    def unique(name: str = "topic") -> str:
        return settings.topic(f"{name}{next(counter)}")

    return unique


# ---------------------------------------------------------------- the bus


@pytest.fixture
async def bus(settings: Settings) -> AsyncIterator[Bus]:
    instance = create_bus(settings)
    try:
        await instance.start()
    except BusUnavailable as exc:
        pytest.fail(_no_broker(settings.kafka_bootstrap_servers, exc), pytrace=False)
    try:
        yield instance
    finally:
        await instance.close()
        if settings.bus == "kafka":
            await delete_topics(settings.kafka_bootstrap_servers, f"{settings.topic_prefix}.")
