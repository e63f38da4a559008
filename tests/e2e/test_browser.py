"""The live editor page in a real browser: ``amplify-stream serve`` as a user starts it, and
a spec under ``browser/`` driving Debian's Chromium through playwright-core:
``editor.spec.mjs`` (story mode), ``live.spec.mjs`` (live mode, docs/protocol.md
section 6) and ``say.spec.mjs`` (the writer's say on a live document), each against its
own service.

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

from tests.e2e.conftest import Proc, run_to_end, start_serve
from tests.support import STORY

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
    node_env = {"AMPLIFY_STORY": STORY}
    if os.environ.get("AMPLIFY_DOCS_SCREENSHOT") == "1":
        node_env["DOCS_SCREENSHOT"] = str(DOCS_SCREENSHOT)
    await _run_spec(
        processes,
        tmp_path,
        "editor.spec.mjs",
        service_env={
            "AMPLIFY_SPEECH_PROVIDER": "espeak",
            # Slow enough that the browser can cut the connection while the rewrite streams.
            "AMPLIFY_LOCAL_PIECE_DELAY_MS": "120",
        },
        node_env=node_env,
    )
    assert (ARTIFACTS / "editor.png").is_file()


@pytest.mark.browser
@pytest.mark.timeout(240)
async def test_live_mode_marks_move_and_go_as_the_writer_types(
    processes: Start, tmp_path: Path
) -> None:
    await _run_spec(
        processes,
        tmp_path,
        "live.spec.mjs",
        # A short idle time and frequent snapshots: each pause of the writer's is analyzed
        # quickly, and the store catches up quickly.
        service_env={"AMPLIFY_DOC_IDLE_MS": "150", "AMPLIFY_DOC_SNAPSHOT_MS": "200"},
        node_env={},
    )
    assert (ARTIFACTS / "live.png").is_file()


@pytest.mark.browser
@pytest.mark.timeout(240)
async def test_the_writers_say_dismisses_vouches_and_undoes(
    processes: Start, tmp_path: Path
) -> None:
    await _run_spec(
        processes,
        tmp_path,
        "say.spec.mjs",
        service_env={"AMPLIFY_DOC_IDLE_MS": "150", "AMPLIFY_DOC_SNAPSHOT_MS": "200"},
        node_env={},
    )
    assert (ARTIFACTS / "say.png").is_file()


async def _run_spec(
    processes: Start,
    tmp_path: Path,
    spec_file: str,
    service_env: dict[str, str],
    node_env: dict[str, str],
) -> None:
    missing = _missing()
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run scripts/browser.sh", pytrace=False)
    serve, base, _ = await start_serve(processes, tmp_path, **service_env)

    spec = await asyncio.create_subprocess_exec(
        "node",
        spec_file,
        cwd=BROWSER_TESTS,
        env={
            **os.environ,
            "AMPLIFY_BASE_URL": base,
            "ARTIFACTS_DIR": str(ARTIFACTS),
            "CHROMIUM": CHROMIUM,
            "NO_PROXY": "127.0.0.1,localhost",
            **node_env,
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    report, _ = await run_to_end(spec, 180)
    print(report)
    assert spec.returncode == 0, (
        f"{report}\n--- service output ---\n{''.join(serve.output)[-4000:]}"
    )
