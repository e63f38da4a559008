"""The service as separate processes against the real broker, and ``serve`` as ``make run``
starts it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import Proc, base_env, wait_ready
from tests.live_documents import check_marks, writer
from tests.support import STORY, assert_story_stream, free_port, sign_up, ws_story

Start = Callable[..., Awaitable[Proc]]


@pytest.mark.kafka
async def test_gateway_and_worker_processes_stream_a_story(
    processes: Start, tmp_path: Path
) -> None:
    port = free_port()
    env = base_env(tmp_path, AMPLIFY_BUS="kafka", AMPLIFY_PORT=str(port))
    enhancer = await processes("enhancer", ["worker", "enhancer"], env)
    narrator = await processes("narrator", ["worker", "narrator"], env)
    projector = await processes("projector", ["worker", "projector"], env)
    documents = await processes("documents", ["worker", "documents"], env)
    await enhancer.wait_for_line("enhancer running")
    await documents.wait_for_line("documents running")
    await narrator.wait_for_line("narrator running")
    await projector.wait_for_line("projector running")
    gateway = await processes("gateway", ["gateway"], env)
    base = f"http://127.0.0.1:{port}"
    await gateway.wait_for_line(f"live editor at {base}/")
    await wait_ready(base)
    async with aiohttp.ClientSession() as session:
        token = await sign_up(session, base, "margaret")
        events = await ws_story(session, base, token, {"text": STORY})
        assert_story_stream(events, STORY)
        started = next(e for e in events if e["type"] == "audio.started")
        assert started["provider"] == "espeak"  # edge-tts out of reach: the offline voice
        assert any(e["type"] == "audio.completed" for e in events)
        # A second story, without narration, through the same processes.
        events = await ws_story(session, base, token, {"text": STORY, "audio": False})
        assert events[-1]["status"] == "completed"
        # The projector process put the result in the store the gateway reads.
        story = await stored_story(session, base, token, events[0]["story_id"])
        assert story["status"] == "completed"
        enhanced = next(e for e in events if e["type"] == "enhancement.completed")
        assert story["enhanced_text"] == enhanced["text"]
        # A live document: the gateway publishes, the documents process owns and answers,
        # the projector process stores its snapshots.
        await live_document(session, base, token)
    # All stop cleanly on SIGTERM, within the bound.
    assert await gateway.stop() == 0
    assert await enhancer.stop() == 0
    assert await narrator.stop() == 0
    assert await projector.stop() == 0
    assert await documents.stop() == 0


async def live_document(session: aiohttp.ClientSession, base: str, token: str) -> None:
    """Type a sentence into a new live document; its marks come, and the store has it."""
    async with writer(session, base, token) as w:
        doc = await w.open("The harbour.\n")
        await w.type("Mara was very angry.")
        await w.settled()
        assert "very angry" in {m.event["quote"] for m in doc.marks.values()}
        check_marks(doc)
    url = f"{base}/v1/documents/{doc.doc_id}"
    async with asyncio.timeout(30):
        while True:
            async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as res:
                stored = await res.json()
            if res.status == 200 and stored["version"] == doc.version:
                break
            await asyncio.sleep(0.1)
    assert stored["text"] == doc.text


async def stored_story(
    session: aiohttp.ClientSession, base: str, token: str, story_id: str
) -> dict[str, Any]:
    """``GET /v1/stories/{id}`` once the projector has stored the story's end."""
    async with asyncio.timeout(30):
        while True:
            async with session.get(
                f"{base}/v1/stories/{story_id}", headers={"Authorization": f"Bearer {token}"}
            ) as res:
                story: dict[str, Any] = await res.json()
                assert res.status == 200, story
            if story["status"] != "queued":
                return story
            await asyncio.sleep(0.1)


async def test_serve_is_the_one_process_quick_start(processes: Start, tmp_path: Path) -> None:
    port = free_port()
    env = base_env(tmp_path, AMPLIFY_PORT=str(port))  # the defaults: memory bus, local provider
    serve = await processes("serve", ["serve"], env)
    base = f"http://127.0.0.1:{port}"
    await serve.wait_for_line(f"open the live editor at {base}/")
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/") as res:
            assert res.status == 200
            assert "amplify-stream" in await res.text()
        async with session.get(f"{base}/readyz") as res:
            body = await res.json()
            assert res.status == 200, body
            assert body["checks"]["bus"] == "ok"
            assert body["checks"]["enhancer_provider"] == "local"
        token = await sign_up(session, base, "alan")
        events = await ws_story(session, base, token, {"text": STORY})
        assert_story_stream(events, STORY)
        await live_document(session, base, token)
    assert await serve.stop() == 0
