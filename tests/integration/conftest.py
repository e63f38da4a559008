"""Fixtures that run the whole service in the test's event loop: gateway and workers in one
app (``serve``), on the memory bus and on the real Kafka broker."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from amplify_stream.config import Settings
from amplify_stream.gateway.app import create_app
from amplify_stream.topics import Topics

KAFKA = os.environ.get("AMPLIFY_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:9092")


@dataclass
class Service:
    settings: Settings
    base: str
    app: web.Application

    @property
    def topics(self) -> Topics:
        return Topics.from_settings(self.settings)


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.kafka)])
def bus_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def make_settings(tmp_path: Path, bus_kind: str) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "bus": bus_kind,
            "kafka_bootstrap_servers": KAFKA,
            "topic_prefix": f"t{uuid.uuid4().hex[:10]}",
            "data_dir": tmp_path,
            "bcrypt_rounds": 4,
            "local_piece_delay_ms": 1,
            "enhancer_provider": "local",
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return make


@pytest.fixture
async def service(
    make_settings: Callable[..., Settings],
) -> AsyncIterator[Callable[..., Awaitable[Service]]]:
    servers: list[TestServer] = []

    async def start(**overrides: Any) -> Service:
        settings = make_settings(**overrides)
        app = create_app(settings, workers=True)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return Service(settings, str(server.make_url("")).rstrip("/"), app)

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client
