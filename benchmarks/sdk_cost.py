"""CPU per streamed chunk of our Gemini provider (the google-genai SDK inside) against
the fake Gemini in another process, unpaced: what one enhancer process pays for every
SSE chunk, whatever the bus does after it.

    python -m benchmarks.sdk_cost [STREAMS] [WORDS]
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time

import aiohttp

from amplify_stream.config import Settings
from amplify_stream.providers.base import EnhancementRequest
from amplify_stream.providers.gemini import GeminiProvider
from benchmarks.measure import story
from benchmarks.stack import COMMAND, free_port


async def main(streams: int, words: int) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMPLIFY_")}
    env |= {
        "AMPLIFY_FAKE_GEMINI_PORT": str(port),
        "AMPLIFY_FAKE_GEMINI_FIRST_TOKEN_MS": "0",
        "AMPLIFY_FAKE_GEMINI_TOKENS_PER_S": "1000000",
        "AMPLIFY_LOG_LEVEL": "WARNING",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    fake = await asyncio.create_subprocess_exec(COMMAND, "fake", "gemini", env=env)
    base = f"http://127.0.0.1:{port}"
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        gemini_api_key="bench-key",  # type: ignore[arg-type]
        gemini_base_url=base,
    )
    provider = GeminiProvider(settings)
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{base}/_fake/record"):
                        break
                await asyncio.sleep(0.1)

            async def one(i: int) -> None:
                request = EnhancementRequest(
                    story_id=f"s{i}", text=story(words, i), focus=["plot"], rewrite=True
                )
                async for _ in provider.stream(request):
                    pass

            await one(-1)  # warm-up: imports, schemas, the connection pool
            async with session.get(f"{base}/_fake/record") as res:
                before = sum(c["chunks_sent"] for c in (await res.json())["calls"])
            cpu, wall = time.process_time(), time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(streams)))
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            async with session.get(f"{base}/_fake/record") as res:
                chunks = sum(c["chunks_sent"] for c in (await res.json())["calls"]) - before
        print(
            f"{streams} streams, {chunks} chunks in {wall:.2f} s: "
            f"{cpu / chunks * 1e6:.0f} us CPU per chunk ({chunks / cpu:.0f} chunks per CPU second)"
        )
    finally:
        await provider.aclose()
        fake.terminate()
        await fake.wait()


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    asyncio.run(main(*(args + [50, 90][len(args) :])))
