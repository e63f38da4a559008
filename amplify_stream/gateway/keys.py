"""Every piece of shared state of the gateway app, as typed keys, in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from amplify_stream.audio_store import AudioStore
    from amplify_stream.auth.passwords import PasswordHasher
    from amplify_stream.auth.tokens import TokenService
    from amplify_stream.bus.base import Bus
    from amplify_stream.config import Settings
    from amplify_stream.gateway.documents import Documents
    from amplify_stream.gateway.limits import Limiter
    from amplify_stream.gateway.openapi import DocumentCache
    from amplify_stream.gateway.relay import RelayHub
    from amplify_stream.gateway.sockets import SocketRegistry
    from amplify_stream.gateway.submission import Stories
    from amplify_stream.metrics import Metrics
    from amplify_stream.store.documents import DocumentStore
    from amplify_stream.store.preferences import PreferenceStore
    from amplify_stream.store.stories import StoryStore
    from amplify_stream.store.users import UserStore
    from amplify_stream.topics import Topics

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
TOPICS: web.AppKey[Topics] = web.AppKey("topics")
BUS: web.AppKey[Bus] = web.AppKey("bus")
USERS: web.AppKey[UserStore] = web.AppKey("users")
STORY_STORE: web.AppKey[StoryStore] = web.AppKey("story_store")
DOCUMENT_STORE: web.AppKey[DocumentStore] = web.AppKey("document_store")
PREFERENCES: web.AppKey[PreferenceStore] = web.AppKey("preferences")
PASSWORDS: web.AppKey[PasswordHasher] = web.AppKey("passwords")
TOKENS: web.AppKey[TokenService] = web.AppKey("tokens")
RELAY: web.AppKey[RelayHub] = web.AppKey("relay")
STORIES: web.AppKey[Stories] = web.AppKey("stories")
DOCUMENTS: web.AppKey[Documents] = web.AppKey("documents")
SOCKETS: web.AppKey[SocketRegistry] = web.AppKey("sockets")
AUDIO: web.AppKey[AudioStore] = web.AppKey("audio")
LIMITS: web.AppKey[Limiter] = web.AppKey("limits")
OPENAPI: web.AppKey[DocumentCache] = web.AppKey("openapi")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")

# What the workers of a one-process service add to /readyz's checks (set by
# amplify_stream/service.py); absent in a bare gateway. They never decide readiness.
WORKER_CHECKS: web.AppKey[dict[str, str]] = web.AppKey("worker_checks")
