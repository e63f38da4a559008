"""``amplify-stream serve``: the gateway and every worker in one process (the embedded
default). ``create_app`` builds the gateway alone; this adds the workers to it, as one
more cleanup context, so they start once the store and the bus are up and stop first."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from amplify_stream.config import Settings
from amplify_stream.gateway import keys
from amplify_stream.gateway.app import create_app
from consumers.narrator import Narrator
from consumers.runtime import running


def create_service(settings: Settings) -> web.Application:
    app = create_app(settings)
    app.cleanup_ctx.append(_workers)
    return app


async def _workers(app: web.Application) -> AsyncIterator[None]:
    bus, settings, metrics = app[keys.BUS], app[keys.SETTINGS], app[keys.METRICS]
    # The projector stops last, so outcomes written while the others stop still land.
    async with (
        running(
            "projector",
            bus,
            settings,
            store=app[keys.STORY_STORE],
            documents=app[keys.DOCUMENT_STORE],
        ),
        running("narrator", bus, settings, metrics=metrics) as narrator,
        running("enhancer", bus, settings, metrics=metrics),
        running("documents", bus, settings, metrics=metrics),
    ):
        assert isinstance(narrator, Narrator)
        # /readyz stays the gateway's readiness (bus, store); this only adds what the
        # workers of this process know: the speech provider the narrator chose (``auto``
        # picks one at start-up), over the configured one a bare gateway reports.
        app[keys.WORKER_CHECKS] = {"speech_provider": narrator.speech.name}
        yield
