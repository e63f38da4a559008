"""``create_app(settings)``: wires the gateway together, and nothing else.

Every long-lived resource lives in its own cleanup context, in dependency order. The
workers are no part of it: ``amplify_stream/service.py`` adds them for ``serve``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import aiohttp_cors
from aiohttp import web

from amplify_stream.audio_store import AudioStore
from amplify_stream.auth.passwords import PasswordHasher
from amplify_stream.auth.tokens import TokenService
from amplify_stream.bus import create_bus
from amplify_stream.config import Settings
from amplify_stream.events.text_limits import TextLimits
from amplify_stream.gateway import (
    api_docs,
    auth_routes,
    command_metrics,
    document_routes,
    health,
    keys,
    preference_routes,
    relay_metrics,
    rule_routes,
    security,
    story_routes,
    ws,
)
from amplify_stream.gateway.documents import Documents
from amplify_stream.gateway.http import error_middleware
from amplify_stream.gateway.limits import Limiter
from amplify_stream.gateway.openapi import DocumentCache
from amplify_stream.gateway.page import routes as page_routes
from amplify_stream.gateway.relay import RelayHub
from amplify_stream.gateway.sockets import SocketRegistry
from amplify_stream.gateway.submission import Stories
from amplify_stream.gateway.writers_say import WritersSay
from amplify_stream.limits_redis import shared_redis
from amplify_stream.metrics import Metrics
from amplify_stream.store.db import create_engine, create_schema, session_factory
from amplify_stream.store.documents import DocumentStore
from amplify_stream.store.preferences import PreferenceStore
from amplify_stream.store.stories import StoryStore
from amplify_stream.store.users import UserStore
from amplify_stream.topics import Topics
from producers.commands import CommandPublisher
from producers.documents import DocumentCommands
from producers.stories import StoryCommands

# A story command whose commit went out waits for the coordinator's answer this many bus
# timeouts (a broker restarting), then up to a minute to read from the log what became of
# it, before it is refused without knowing (producers/commands.py).
STORY_COMMIT_WAIT_FACTOR = 3
STORY_SETTLE_S = 60.0
# Story command producers taking turns (producers/commands.py): with one, a story waited
# p50 ~30 ms at 200/s, with three ~2.5 ms (benchmarks/story_commands.py).
STORY_PRODUCERS = 3

# JSON envelope around the largest story, with room for multi-byte characters.
_BODY_OVERHEAD = 64 * 1024


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware],
        client_max_size=settings.max_story_chars * 4 + _BODY_OVERHEAD,
    )
    security.install(app, settings)
    app[keys.SETTINGS] = settings
    app[keys.TOPICS] = Topics.from_settings(settings)
    app[keys.PASSWORDS] = PasswordHasher(settings.bcrypt_rounds)
    app[keys.TOKENS] = TokenService(settings)
    app[keys.METRICS] = Metrics()
    app[keys.SOCKETS] = SocketRegistry(app[keys.METRICS])
    app[keys.AUDIO] = AudioStore(settings.effective_audio_dir)
    app[keys.LIMITS] = Limiter(settings, redis=shared_redis(settings))
    app.cleanup_ctx.extend([_store, _bus, _gateway])
    app.on_shutdown.append(_close_sockets)
    app.on_cleanup.append(_close_limits)
    app[keys.OPENAPI] = DocumentCache(TextLimits.of(settings))
    for table in (
        health.routes,
        auth_routes.routes,
        story_routes.routes,
        document_routes.routes,
        rule_routes.routes,
        preference_routes.routes,
        ws.routes,
        page_routes,
        api_docs.routes,
    ):
        app.router.add_routes(table)
    _cors(app, settings)
    return app


def _cors(app: web.Application, settings: Settings) -> None:
    cors = aiohttp_cors.setup(
        app,
        defaults={
            origin: aiohttp_cors.ResourceOptions(  # type: ignore[no-untyped-call]
                allow_credentials=False,
                expose_headers=("Location", "Retry-After"),
                allow_headers=("Authorization", "Content-Type", "Last-Event-ID"),
                allow_methods=("GET", "POST", "PUT", "DELETE"),
            )
            for origin in settings.cors_origins
        },
    )
    for route in list(app.router.routes()):
        if (
            route.method in ("GET", "POST", "PUT", "DELETE")
            and route.resource is not None
            and route.resource.canonical != "/v1/stream"
        ):
            cors.add(route)


async def _store(app: web.Application) -> AsyncIterator[None]:
    engine = create_engine(app[keys.SETTINGS])
    await create_schema(engine)
    sessions = session_factory(engine)
    app[keys.USERS] = UserStore(sessions)
    app[keys.STORY_STORE] = StoryStore(sessions)
    app[keys.DOCUMENT_STORE] = DocumentStore(sessions)
    app[keys.PREFERENCES] = PreferenceStore(sessions)
    yield
    await engine.dispose()


async def _bus(app: web.Application) -> AsyncIterator[None]:
    bus = create_bus(app[keys.SETTINGS])
    await bus.start()
    await bus.ensure_topics(app[keys.TOPICS].specs())
    app[keys.BUS] = bus
    yield
    await bus.close()


async def _gateway(app: web.Application) -> AsyncIterator[None]:
    bus, topics = app[keys.BUS], app[keys.TOPICS]
    settings = app[keys.SETTINGS]
    # Document commands: idempotent, acks from all replicas. A record gives up with the
    # gateway (bus_timeout_s) rather than after the bus's 15 s, and a producer whose
    # record failed is replaced at once (KafkaProducer).
    producer = bus.producer(client_id="gateway-commands", request_timeout_s=settings.bus_timeout_s)
    await producer.start()
    # Story commands: committed in transactions, so one refused (503) never runs. The ids
    # are this process's own: two gateways sharing one would fence each other. (So a
    # gateway killed mid-transaction holds its partitions' read_committed readers back
    # until the coordinator aborts it: AMPLIFY_KAFKA_TRANSACTION_TIMEOUT_MS.)
    process = uuid.uuid4().hex
    story_publisher = CommandPublisher(
        [
            bus.producer(
                transactional_id=f"{settings.topic_prefix}.gateway-stories.{process}.{i}",
                client_id="gateway-stories",
                request_timeout_s=settings.bus_timeout_s,
            )
            for i in range(STORY_PRODUCERS)
        ],
        bus,
        commit_wait_s=STORY_COMMIT_WAIT_FACTOR * settings.bus_timeout_s,
        settle_s=STORY_SETTLE_S,
    )
    await story_publisher.start()
    command_metrics.register(app[keys.METRICS].registry, story_publisher)
    relay = RelayHub(
        bus,
        topics.stream,
        group_id=f"{settings.topic_prefix}.gateways",
        linger_s=settings.relay_linger_s,
        position_timeout_s=settings.bus_timeout_s,
    )
    await relay.start()
    app[keys.RELAY] = relay
    relay_metrics.register(app[keys.METRICS].registry, relay)
    app[keys.STORIES] = Stories(
        settings,
        settings.bus_timeout_s,
        topics,
        bus,
        app[keys.STORY_STORE],
        StoryCommands(story_publisher, topics.stories, settings.bus_timeout_s),
        relay,
        app[keys.LIMITS],
        app[keys.PREFERENCES],
    )
    commands = DocumentCommands(producer, topics.documents)
    say = WritersSay(
        app[keys.PREFERENCES],
        app[keys.DOCUMENT_STORE],
        commands,
        producer,
        topics.outcomes,
        app[keys.METRICS],
        settings.bus_timeout_s,
    )
    app[keys.DOCUMENTS] = Documents(
        settings,
        settings.bus_timeout_s,
        app[keys.DOCUMENT_STORE],
        commands,
        relay,
        app[keys.LIMITS],
        say,
    )
    yield
    await relay.stop()
    await story_publisher.stop()
    await producer.stop()


async def _close_sockets(app: web.Application) -> None:
    await app[keys.SOCKETS].close_all()


async def _close_limits(app: web.Application) -> None:
    await app[keys.LIMITS].aclose()
