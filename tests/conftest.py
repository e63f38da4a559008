"""Shared fixtures. Backend-neutral tests ask for ``bus`` (or ``settings``) and run once
per backend: ``[memory]`` and ``[kafka]``. The kafka runs need the broker at
``AMPLIFY_TEST_KAFKA_BOOTSTRAP`` (default 127.0.0.1:9092) and fail when it is missing.
"""

from __future__ import annotations

import itertools
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from amplify_stream.bus import Bus, BusUnavailable, create_bus
from amplify_stream.config import Settings

KAFKA_BOOTSTRAP_ENV = "AMPLIFY_TEST_KAFKA_BOOTSTRAP"

SettingsFactory = Callable[..., Settings]


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


async def delete_topics(servers: str, prefix: str) -> None:
    """A shared broker would collect thousands of test topics otherwise."""
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    try:
        await admin.start()
        names = [name for name in await admin.list_topics() if name.startswith(prefix)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()
