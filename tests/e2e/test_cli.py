"""``amplify-stream submit`` as a user runs it, against a real ``serve`` process."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from amplify_stream.client import AmplifyClient
from tests.conftest import delete_topics
from tests.e2e.conftest import COMMAND, KAFKA, Proc, base_env, closed_port
from tests.support import STORY, free_port, sign_up

Start = Callable[..., Awaitable[Proc]]
PASSWORD = "correct horse battery"  # what tests.support.sign_up registers


async def serve(processes: Start, tmp_path: Path, **env: str) -> str:
    port = free_port()
    proc = await processes("serve", ["serve"], base_env(tmp_path, AMPLIFY_PORT=str(port), **env))
    base = f"http://127.0.0.1:{port}"
    await proc.wait_for_line(f"open the live editor at {base}/")
    return base


async def cli(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> tuple[int, str, str]:
    """Run ``amplify-stream`` with only the variables given (and PATH): exit code,
    stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        COMMAND,
        *args,
        env={"PATH": os.environ["PATH"], "NO_PROXY": "127.0.0.1,localhost", **(env or {})},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(90):
        out, err = await process.communicate(stdin.encode() if stdin is not None else None)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def events_of(base: str, token: str, story_id: str) -> list[dict[str, Any]]:
    async with AmplifyClient(base, token) as client, client.resume(story_id) as stream:
        return [event async for event in stream]


async def account(base: str, username: str) -> str:
    async with aiohttp.ClientSession() as session:
        return await sign_up(session, base, username)


async def test_submit_prints_the_rewrite_and_writes_the_audio(
    processes: Start, tmp_path: Path
) -> None:
    base = await serve(processes, tmp_path)
    token = await account(base, "iris")
    story = tmp_path / "story.txt"
    story.write_text(STORY)
    mp3 = tmp_path / "out.mp3"
    code, out, err = await cli(
        "submit",
        str(story),
        "--url",
        base,
        "--username",
        "iris",
        "--audio-out",
        str(mp3),
        "--title",
        "Lighthouse",
        env={"AMPLIFY_PASSWORD": PASSWORD},
    )
    assert code == 0, err
    assert PASSWORD not in out + err
    match = re.search(r"story (\S+) accepted", err)
    assert match, err
    events = await events_of(base, token, match.group(1))
    rewrite = next(e for e in events if e["type"] == "enhancement.completed")["text"]
    assert out.startswith(rewrite + "\n")
    # Then the table of suggestions: a header and one row per suggestion.
    table = out[len(rewrite) :].strip().splitlines()
    assert table[0].split() == ["focus", "quote", "message", "replacement"]
    suggestions = [e for e in events if e["type"] == "suggestion"]
    assert len(table) == 2 + len(suggestions)
    assert {row.split()[0] for row in table[2:]} == {s["focus"] for s in suggestions}
    audio = next(e for e in events if e["type"] == "audio.completed")
    assert hashlib.sha256(mp3.read_bytes()).hexdigest() == audio["sha256"]
    assert "audio: " in err and "completed" in err.splitlines()[-1]
    assert "\r" not in err  # no progress line when stderr is not a terminal


async def test_submit_json_lines_from_stdin(processes: Start, tmp_path: Path) -> None:
    base = await serve(processes, tmp_path)
    token = await account(base, "june")
    code, out, err = await cli(
        "submit",
        "-",
        "--json",
        "--no-audio",
        "--focus",
        "dialogue,character",
        env={"AMPLIFY_URL": base, "AMPLIFY_TOKEN": token},
        stdin=STORY,
    )
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert events[0]["type"] == "story.accepted"
    assert events[-1] == events[-1] | {"type": "story.completed", "status": "completed"}
    assert not any(e["type"].startswith("audio.") for e in events)
    assert {e["focus"] for e in events if e["type"] == "suggestion"} <= {"dialogue", "character"}
    deltas = "".join(e["text"] for e in events if e["type"] == "enhancement.delta")
    assert deltas == next(e for e in events if e["type"] == "enhancement.completed")["text"]


async def test_a_failing_story_exits_1_and_errors_exit_2(processes: Start, tmp_path: Path) -> None:
    # Gemini out of reach: the enhancement fails, and so does the story.
    base = await serve(
        processes,
        tmp_path,
        GEMINI_API_KEY="any",
        AMPLIFY_ENHANCER_PROVIDER="gemini",
        AMPLIFY_GEMINI_BASE_URL=f"http://127.0.0.1:{closed_port()}",
        AMPLIFY_GEMINI_RETRY_ATTEMPTS="1",
    )
    token = await account(base, "kay")
    env = {"AMPLIFY_URL": base, "AMPLIFY_TOKEN": token}
    code, out, err = await cli("submit", "-", "--no-audio", env=env, stdin=STORY)
    assert code == 1, err
    assert "failed" in err.splitlines()[-1]
    code, out, err = await cli(
        "submit",
        "-",
        "--username",
        "kay",
        env={"AMPLIFY_URL": base, "AMPLIFY_PASSWORD": "nope-nope"},
        stdin=STORY,
    )
    assert code == 2
    assert "error: unauthorized" in err
    assert "nope-nope" not in out + err
    code, _, err = await cli(
        "submit",
        "-",
        env={"AMPLIFY_URL": f"http://127.0.0.1:{closed_port()}", "AMPLIFY_TOKEN": "x"},
        stdin=STORY,
    )
    assert code == 2
    assert "error: unavailable" in err
    code, _, err = await cli("submit", "-", "--audio-out", "x.mp3", "--no-audio", stdin=STORY)
    assert code == 2


@pytest.mark.kafka
async def test_watch_command(tmp_path: Path) -> None:
    env = base_env(tmp_path, AMPLIFY_BUS="kafka")
    watch = ["watch", "--once", "--json", "--from", "earliest"]
    code, _, err = await cli(*watch, env=env)
    assert code == 2
    assert "does not exist" in err
    try:
        code, _, err = await cli("topics", "create", env=env)
        assert code == 0, err
        code, out, err = await cli(*watch, "--group", "e2e-watch", env=env)
        assert code == 0, err
        [snapshot] = [json.loads(line) for line in out.splitlines()]
        assert snapshot["stories_total"] == {"completed": 0, "failed": 0, "cancelled": 0}
    finally:
        await delete_topics(KAFKA, env["AMPLIFY_TOPIC_PREFIX"] + ".")


async def test_preferences_shown_and_changed(processes: Start, tmp_path: Path) -> None:
    base = await serve(processes, tmp_path)
    token = await account(base, "lena")
    env = {"AMPLIFY_URL": base, "AMPLIFY_TOKEN": token}
    code, out, err = await cli("preferences", env=env)
    assert code == 0, err
    assert out.splitlines() == [
        "rules off  none",
        "words      none",
        "focus      all areas",
        "revision   0",
    ]
    # Signed in by name; each change is a GET then a PUT at the revision read.
    code, out, err = await cli(
        "preferences",
        "--username",
        "lena",
        "--rule-off",
        "plot.passive",
        "--rule-off",
        "setting.opening",
        "--word",
        "Maura",
        "--focus",
        "plot,dialogue",
        "--json",
        env={"AMPLIFY_URL": base, "AMPLIFY_PASSWORD": PASSWORD},
    )
    assert code == 0, err
    assert PASSWORD not in out + err
    shown = json.loads(out)
    assert shown | {"updated_at": None} == {
        "rules_off": ["plot.passive", "setting.opening"],
        "words": ["Maura"],
        "focus": ["plot", "dialogue"],
        "revision": 1,
        "updated_at": None,
    }
    assert shown["updated_at"]
    code, out, err = await cli(
        "preferences", "--rule-on", "plot.passive", "--word", "Zed", "--focus", "all", env=env
    )
    assert code == 0, err
    assert out.splitlines()[:3] == [
        "rules off  setting.opening",
        "words      Maura, Zed",
        "focus      all areas",
    ]
    assert out.splitlines()[3].startswith("revision   2, updated ")
    async with AmplifyClient(base, token) as client:
        stored = await client.preferences()
    assert (stored.rules_off, stored.words, stored.focus, stored.revision) == (
        ("setting.opening",),
        ("Maura", "Zed"),
        None,
        2,
    )
    # Nothing to change: no PUT, the revision stays.
    code, out, err = await cli("preferences", "--rule-off", "setting.opening", env=env)
    assert code == 0 and "revision   2," in out, err
    # Refusals: the service's (an unknown rule), the command's own, no credentials.
    code, _, err = await cli("preferences", "--rule-off", "no.such", env=env)
    assert code == 2 and "error: invalid_message" in err, err
    code, _, err = await cli("preferences", "--word", "x", "--remove-word", "x", env=env)
    assert code == 2 and "both name x" in err, err
    code, _, err = await cli("preferences", env={"AMPLIFY_URL": base})
    assert code == 2 and "error: unauthorized" in err, err
    async with AmplifyClient(base, token) as client:
        assert (await client.preferences()).revision == 2
