"""The "direct" baseline's server, in a process of its own: our gemini provider against
the fake, each piece sent on a WebSocket the moment it arrives, no bus in between.

    python -m benchmarks.direct GEMINI_BASE_URL PORT

It prints ``ready`` once it listens; SIGTERM stops it. In its own process so that the
benchmark's client does not share an event loop (and a core) with it: the baseline
measures the provider streamed to a socket, not the harness.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time

from aiohttp import web

from amplify_stream.config import Settings
from amplify_stream.providers.base import EnhancementRequest, RewriteDelta
from amplify_stream.providers.gemini import GeminiProvider


async def serve(gemini_base: str, port: int) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        gemini_api_key="bench-key",  # type: ignore[arg-type]
        gemini_base_url=gemini_base,
    )
    provider = GeminiProvider(settings)

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        text = (await ws.receive_json())["text"]
        req = EnhancementRequest(story_id="direct", text=text, focus=["plot"], rewrite=True)
        async for piece in provider.stream(req):
            if isinstance(piece, RewriteDelta):
                await ws.send_str(json.dumps({"at_ms": time.time() * 1000, "text": piece.text}))
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/direct", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        print("ready", flush=True)
        await stop.wait()
    finally:
        await provider.aclose()
        await runner.cleanup()


def main() -> None:
    coro = serve(sys.argv[1], int(sys.argv[2]))
    try:
        import uvloop  # the service's own loop, for a like-for-like baseline
    except ImportError:
        asyncio.run(coro)
    else:
        uvloop.run(coro)


if __name__ == "__main__":
    main()
