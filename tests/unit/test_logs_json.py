"""Structured logs: one JSON object per line, with the story of the task that logged."""

from __future__ import annotations

import asyncio
import io
import json
import logging

from amplify_stream.logs import configure_logging, story_id_var


async def test_json_lines_carry_the_story_of_the_task() -> None:
    stream = io.StringIO()
    handler = configure_logging("INFO", stream=stream, json_lines=True)
    log = logging.getLogger("amplify.test")
    try:

        async def work(story_id: str) -> None:
            story_id_var.set(story_id)
            await asyncio.sleep(0)
            log.info("working with Bearer abcdefghijklmnop")

        await asyncio.gather(work("story-a"), work("story-b"))
        log.info("outside any story")
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["story_id"] for line in lines] == ["story-a", "story-b", None]
    assert all(line["level"] == "INFO" and line["logger"] == "amplify.test" for line in lines)
    assert "abcdefghijklmnop" not in stream.getvalue()
