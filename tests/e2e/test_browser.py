"""The live editor page in a real browser: ``amplify-stream serve`` as a user starts it, and
``browser/editor.spec.mjs`` driving Debian's Chromium through playwright-core.

``scripts/browser.sh`` installs both (``make test`` runs it first). A missing browser or
Node package fails this test; it never skips.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import Proc, base_env, wait_ready
from tests.support import STORY, free_port

Start = Callable[..., Awaitable[Proc]]

ROOT = Path(__file__).resolve().parents[2]
BROWSER_TESTS = Path(__file__).resolve().parent / "browser"
ARTIFACTS = ROOT / "test-artifacts"
# AMPLIFY_DOCS_SCREENSHOT=1 also refreshes the README's picture (off by default: a test run
# should not change tracked files).
DOCS_SCREENSHOT = ROOT / "docs" / "editor.png"
CHROMIUM = os.environ.get("AMPLIFY_CHROMIUM", "/usr/bin/chromium")


def _missing() -> list[str]:
    missing = []
    if shutil.which("node") is None:
        missing.append("node")
    if not Path(CHROMIUM).is_file():
        missing.append(CHROMIUM)
    if not (BROWSER_TESTS / "node_modules" / "playwright-core").is_dir():
        missing.append(str(BROWSER_TESTS / "node_modules" / "playwright-core"))
    return missing


@pytest.mark.browser
@pytest.mark.timeout(240)
async def test_editor_page_streams_resumes_and_plays(processes: Start, tmp_path: Path) -> None:
    missing = _missing()
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run scripts/browser.sh", pytrace=False)
    port = free_port()
    env = base_env(
        tmp_path,
        AMPLIFY_PORT=str(port),
        AMPLIFY_SPEECH_PROVIDER="espeak",
        # Slow enough that the browser can cut the connection while the rewrite streams.
        AMPLIFY_LOCAL_PIECE_DELAY_MS="120",
    )
    serve = await processes("serve", ["serve"], env)
    base = f"http://127.0.0.1:{port}"
    await serve.wait_for_line(f"open the live editor at {base}/")
    await wait_ready(base)

    node_env = {
        **os.environ,
        "AMPLIFY_BASE_URL": base,
        "AMPLIFY_STORY": STORY,
        "ARTIFACTS_DIR": str(ARTIFACTS),
        "CHROMIUM": CHROMIUM,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    if os.environ.get("AMPLIFY_DOCS_SCREENSHOT") == "1":
        node_env["DOCS_SCREENSHOT"] = str(DOCS_SCREENSHOT)
    spec = await asyncio.create_subprocess_exec(
        "node",
        "editor.spec.mjs",
        cwd=BROWSER_TESTS,
        env=node_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(180):
            out, _ = await spec.communicate()
    except TimeoutError:
        spec.kill()
        out, _ = await spec.communicate()
    report = out.decode(errors="replace")
    print(report)
    assert spec.returncode == 0, (
        f"{report}\n--- service output ---\n{''.join(serve.output)[-4000:]}"
    )
    assert (ARTIFACTS / "editor.png").is_file()
