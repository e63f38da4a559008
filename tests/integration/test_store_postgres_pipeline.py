"""The whole service with its store on PostgreSQL: register, log in, submit, complete and
read back, each step through the store, in a fresh schema of the test server
(``AMPLIFY_TEST_DATABASE_URL``). On the memory bus: the store is what is under test here,
and the bus has its own suite on Kafka."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text

from amplify_stream.store.db import create_engine
from tests.integration.conftest import Service
from tests.support import STORY, assert_story_stream, sign_up, ws_story

StartService = Callable[..., Awaitable[Service]]

pytestmark = pytest.mark.postgres

PASSWORD = "correct horse battery"  # what sign_up uses


@pytest.fixture
def bus_kind() -> str:
    return "memory"


async def settled(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], timeout: float = 30
) -> dict[str, Any]:
    """``GET /v1/stories/{id}`` once the projector has written the story's end."""
    async with asyncio.timeout(timeout):
        while True:
            async with session.get(url, headers=headers) as res:
                body: dict[str, Any] = await res.json()
                assert res.status == 200, body
            if body["status"] not in ("queued", "running"):
                return body
            await asyncio.sleep(0.05)


async def test_register_login_submit_complete_on_postgresql(
    service: StartService, session: aiohttp.ClientSession, postgres_url: str
) -> None:
    svc = await service(database_url=postgres_url)
    assert svc.settings.effective_database_url == postgres_url

    # Register and log in; usernames are case-insensitive here as on SQLite.
    token = await sign_up(session, svc.base, "Ada.Lovelace")
    other_case = {"username": "ADA.LOVELACE", "password": PASSWORD}
    async with session.post(f"{svc.base}/v1/auth/register", json=other_case) as res:
        assert res.status == 409, await res.text()
    async with session.post(f"{svc.base}/v1/auth/token", json=other_case) as res:
        assert res.status == 200, await res.text()
    auth = {"Authorization": f"Bearer {token}"}
    async with session.get(f"{svc.base}/v1/auth/me", headers=auth) as res:
        assert (await res.json())["username"] == "ada.lovelace"

    # Submit over the WebSocket and stream it to the end.
    submit = {"text": STORY, "title": "The lighthouse", "idempotency_key": "draft-1"}
    events = await ws_story(session, svc.base, token, submit)
    enhanced = assert_story_stream(events, STORY)
    story_id = events[0]["story_id"]

    # The same idempotency key again: the store's unique key finds the first story.
    async with session.post(f"{svc.base}/v1/stories", json=submit, headers=auth) as res:
        assert res.status == 202, await res.text()
        assert (await res.json())["story_id"] == story_id

    # The projector folds the outcomes into PostgreSQL; the gateway reads them back.
    story = await settled(session, f"{svc.base}/v1/stories/{story_id}", auth)
    assert story["status"] == "completed", story
    assert (story["title"], story["text"]) == ("The lighthouse", STORY)
    assert story["enhanced_text"] == enhanced["text"]
    assert len(story["suggestions"]) == enhanced["suggestions"]
    assert story["completed_at"] >= story["created_at"]
    async with session.get(f"{svc.base}/v1/stories", headers=auth) as res:
        assert [s["story_id"] for s in (await res.json())["stories"]] == [story_id]

    # ... and it is all in the test's PostgreSQL schema, not in a SQLite file.
    engine = create_engine(svc.settings)
    try:
        async with engine.connect() as conn:
            assert engine.dialect.name == "postgresql"
            users = (await conn.execute(text("SELECT username FROM users"))).scalars().all()
            row = (
                await conn.execute(
                    text("SELECT status, idempotency_key, focus FROM stories WHERE id = :id"),
                    {"id": story_id},
                )
            ).one()
    finally:
        await engine.dispose()
    assert users == ["ada.lovelace"]
    assert tuple(row) == ("completed", "draft-1", ["plot", "character", "dialogue", "setting"])
    assert not (svc.settings.data_dir / "amplify.db").exists()
