"""The whole service in the test's event loop: gateway and workers in one app (as
``serve`` runs them), on each bus backend of ``bus_kind``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from amplify_stream.config import Settings
from amplify_stream.fakes.gemini import FakeGeminiConfig, FakeGeminiServer, serve_fake_gemini
from amplify_stream.gateway import keys
from amplify_stream.service import create_service
from amplify_stream.topics import Topics
from tests.conftest import SettingsFactory, delete_topics


@dataclass
class Service:
    settings: Settings
    base: str
    app: web.Application
    server: TestServer

    @property
    def topics(self) -> Topics:
        return Topics.from_settings(self.settings)

    async def stop(self) -> None:
        """Shut the app down as a process would (idempotent; the fixture also does it)."""
        await self.server.close()


@pytest.fixture
async def service(
    make_settings: SettingsFactory, bus_kind: str
) -> AsyncIterator[Callable[..., Awaitable[Service]]]:
    servers: list[TestServer] = []
    settings = make_settings(bus=bus_kind)

    async def start(**overrides: Any) -> Service:
        app = create_service(make_settings(bus=bus_kind, **overrides))
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return Service(app[keys.SETTINGS], str(server.make_url("")).rstrip("/"), app, server)

    yield start
    for server in servers:
        await server.close()
    if settings.bus == "kafka":
        await delete_topics(settings.kafka_bootstrap_servers, f"{settings.topic_prefix}.")


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def fake_gemini() -> AsyncIterator[Callable[..., Awaitable[FakeGeminiServer]]]:
    """``await fake_gemini(**FakeGeminiConfig fields)``: a fake Gemini on a free port."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**config: Any) -> FakeGeminiServer:
            values: dict[str, Any] = {"port": 0, "first_token_ms": 20, "tokens_per_s": 400}
            fake = serve_fake_gemini(FakeGeminiConfig(**(values | config)))
            return await stack.enter_async_context(fake)

        yield start
