"""A real editor: Neovim (Debian's 0.7, headless) with ``amplify-stream lsp`` attached to
a Markdown file, against ``amplify-stream serve`` as a user starts it. A sentence with a
known problem is typed key by key after CJK and an emoji, and the diagnostics appear at
its words: Neovim turns the server's UTF-16 positions into byte columns itself, so a
wrong conversion on either side shows here. Then the writer's say through Neovim's own
code actions: one suggestion dismissed, a rule turned off in the document, each gone when
the service retracts it; and the editor's settings in the writer's preferences."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.conftest import Proc, run_to_end, start_serve
from tests.support import record_timing, sign_up

Start = Callable[..., Awaitable[Proc]]

SCRIPT = Path(__file__).parent / "neovim" / "attach_and_type.lua"
NVIM = os.environ.get("AMPLIFY_NVIM", "nvim")
FIRST_LINE = "🌊 The harbour 港口. "
SENTENCE = "Mara was very angry at the wall."
# With the cursor on the words ``at``, the code action ``title``.
ACTIONS = [
    {"at": "was very", "title": "Dismiss this suggestion"},
    {"at": "very angry", "title": "Turn off plot.intensifier in this document"},
]


@pytest.mark.editor
@pytest.mark.timeout(180)
async def test_neovim_shows_the_diagnostic_where_the_words_are(
    processes: Start, tmp_path: Path
) -> None:
    if shutil.which(NVIM) is None:
        pytest.fail(f"{NVIM} is missing: run scripts/neovim.sh", pytrace=False)
    _, base, env = await start_serve(processes, tmp_path)
    async with aiohttp.ClientSession() as session:
        token = await sign_up(session, base, "ada")

    page = tmp_path / "harbour.md"
    page.write_text(FIRST_LINE + "\n\n```\nShe was very angry in code.\n```\n", encoding="utf-8")
    out = tmp_path / "nvim.json"
    nvim_env = {
        **env,
        "AMPLIFY_URL": base,
        "AMPLIFY_TOKEN": token,
        "AMPLIFY_LSP_CMD": json.dumps([sys.executable, "-m", "amplify_stream.cli", "lsp"]),
        "AMPLIFY_SENTENCE": SENTENCE,
        "AMPLIFY_WANT": "2",
        "AMPLIFY_ACTIONS": json.dumps(ACTIONS),
        "AMPLIFY_SETTINGS": json.dumps({"amplify": {"disabledRules": ["plot.filler"]}}),
        "AMPLIFY_NVIM_OUT": str(out),
        "HOME": str(tmp_path),  # no user configuration, no shada of the machine's user
    }
    nvim = await asyncio.create_subprocess_exec(
        NVIM,
        "--headless",
        "--clean",
        "-n",
        str(page),
        "-c",
        f"luafile {SCRIPT}",
        env=nvim_env,
        cwd=tmp_path,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    printed, ended = await run_to_end(nvim, 120)
    if not ended:
        pytest.fail(f"nvim did not finish: {printed[-2000:]}")
    assert out.is_file(), printed[-2000:]
    result = json.loads(out.read_text())
    assert "error" not in result, result
    assert result["appeared"], result
    assert result["line"] == FIRST_LINE + SENTENCE

    by_quote = {}
    line = result["line"].encode("utf-8")
    for d in result["diagnostics"]:
        assert d["lnum"] == 0 == d["end_lnum"], d  # nothing in the code block
        by_quote[line[d["col"] : d["end_col"]].decode("utf-8")] = d
    assert set(by_quote) == {"was very angry", "very angry"}, result["diagnostics"]
    angry = by_quote["very angry"]
    assert (angry["source"], angry["code"]) == ("amplify", "plot.intensifier")
    assert "'very' props up 'angry'" in angry["message"]
    record_timing(
        f"last keystroke to its diagnostic (Neovim 0.7 headless, serve on the memory bus, "
        f"default doc_idle_ms 300): {result['ms'] / 1000:.3f}s"
    )

    dismissed, turned_off = result["actions"]
    # On "was": the one suggestion there, with its rule; chosen from Neovim's menu.
    assert dismissed["offered"] == [
        "Dismiss this suggestion",
        "Turn off character.telling in this document",
        "Turn off character.telling everywhere",
    ]
    assert dismissed["went"], dismissed
    assert [line[d["col"] : d["end_col"]].decode() for d in dismissed["diagnostics"]] == [
        "very angry"
    ]
    assert "Turn off plot.intensifier in this document" in turned_off["offered"]
    assert turned_off["went"] and turned_off["diagnostics"] == [], turned_off
    # The setting reached the writer's preferences (Neovim told it at on_init, seconds
    # ago; the union is written beside the editing, so it may still be on its way).
    rules_off = None
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(50):
            async with session.get(f"{base}/v1/me/preferences", headers=headers) as res:
                rules_off = (await res.json())["rules_off"]
            if rules_off:
                break
            await asyncio.sleep(0.1)
    assert rules_off == ["plot.filler"]
