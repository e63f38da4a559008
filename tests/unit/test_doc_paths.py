"""Every path the README and the contract name in back ticks exists.

The docs drift when code moves: a module becomes a package, a file changes floors. This
reads each `...` span of the documents below and holds the ones that name a file of the
repository against the tree git tracks:
- a path from the top (``consumers/worker.py``, ``docs/schemas/``) must exist; ``<...>``
  stands for any name (``benchmarks/results/<date>.json``);
- a path from inside a package (``store/batches.py``) or a file's bare name (``mp3.py``)
  must be the tail of a tracked path;
- paths that ``make test`` writes (``GENERATED``) are left out, as are routes (``/v1``),
  URLs, MIME types and paths outside the repository (``~/.cache``).
"""

from __future__ import annotations

import re
import subprocess
from fnmatch import fnmatch
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = ("README.md", "docs/protocol.md")
# Written by `make test` or at run time, never tracked.
GENERATED = ("test-artifacts/", "data/", ".venv/")
# The user's own files, named in the set-ups of their editors.
THEIRS = {"init.lua", "settings.json"}
FILE_SUFFIX = re.compile(r"[\w-]\.(py|md|js|mjs|css|html|sh|lua|json|yaml|yml|toml|txt|png|cfg)$")
SPAN = re.compile(r"`([^`\n]+)`")


@cache
def tracked() -> tuple[str, ...]:
    """Tracked files and their folders (``a/b/``), from the repository's root."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    files = [f for f in out if f and (ROOT / f).exists()]
    folders = {str(Path(f).parent) + "/" for f in files} - {"./"}
    more = {p for folder in folders for p in _parents(folder)}
    return tuple(sorted(set(files) | folders | more))


def _parents(folder: str) -> list[str]:
    parts = folder.rstrip("/").split("/")
    return ["/".join(parts[:i]) + "/" for i in range(1, len(parts))]


def named_path(span: str, tops: set[str]) -> str | None:
    """The repository path ``span`` names, or None when it names none."""
    span = span.split(":", 1)[0] if re.match(r"^[\w./-]+\.py:\w", span) else span
    if " " in span or "://" in span or span.startswith(("/", "~", "$")):
        return None
    span = span.removeprefix("./")
    top = span.split("/", 1)[0]
    from_top = "/" in span and (top in tops or top + "/" in tops)
    if from_top or FILE_SUFFIX.search(span.rstrip("/")):
        return span
    return None


def missing_paths(text: str, files: tuple[str, ...]) -> list[str]:
    """The paths named in ``text``'s back ticks that match nothing in ``files``."""
    tops = {f.split("/", 1)[0] + ("/" if "/" in f else "") for f in files}
    missing = []
    for span in SPAN.findall(text):
        path = named_path(span, tops)
        if path is None or path.startswith(GENERATED) or path in THEIRS:
            continue
        stem = re.sub(r"<[^>]*>", "*", path.rstrip("/"))
        patterns = (stem, stem + "/")  # a file, or a folder with or without its slash
        top = path.split("/", 1)[0]
        if top in tops or top + "/" in tops:
            found = any(fnmatch(f, p) for f in files for p in patterns)
        else:
            found = any(fnmatch(f, p) or fnmatch(f, "*/" + p) for f in files for p in patterns)
        if found:
            continue
        missing.append(span)
    return sorted(set(missing))


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_path_a_document_names_exists(document: str) -> None:
    text = (ROOT / document).read_text(encoding="utf-8")
    missing = missing_paths(text, tracked())
    assert not missing, f"{document} names paths that do not exist: {', '.join(missing)}"


def test_the_check_catches_drift_and_passes_what_exists() -> None:
    files = ("amplify_stream/config/groups.py", "amplify_stream/speech/mp3.py", "README.md")
    files += ("amplify_stream/", "amplify_stream/config/", "amplify_stream/speech/")
    text = (
        "`amplify_stream/config.py` `amplify_stream/config/` `speech/mp3.py` `mp3.py` "
        "`gone.py` `amplify_stream/speech/mp3.py:frames` `amplify_stream/<x>/groups.py` "
        "`/v1/stories` `audio/mpeg` `http://127.0.0.1:8080` `~/.cache/x.txt` "
        "`test-artifacts/lsp.txt` `make run` `README.md` `.json` `amplify_stream/speech`"
    )
    assert missing_paths(text, files) == ["amplify_stream/config.py", "gone.py"]


# The Layout lists every part of the house: each module and package at the top of these.
LAYOUT_PACKAGES = ("amplify_stream", "consumers", "producers")
LAYOUT_TOPS = ("amplify_stream", "consumers", "producers", "tests", "benchmarks", "scripts")


def layout_block(readme: str) -> str:
    """The fenced block of README's Layout section."""
    section = readme.split("### Layout", 1)[1]
    return section.split("```", 2)[1]


def unnamed_parts(block: str, root: Path) -> list[str]:
    """The modules and packages under ``LAYOUT_PACKAGES`` (and the folders of
    ``LAYOUT_TOPS``) that ``block`` does not name."""
    parts = [f"{top}/" for top in LAYOUT_TOPS]
    for package in LAYOUT_PACKAGES:
        for entry in sorted((root / package).iterdir()):
            if entry.name.startswith(("_", ".")) or entry.name == "py.typed":
                continue
            if entry.is_dir() and (entry / "__init__.py").exists():
                parts.append(f"{package}/{entry.name}/")
            elif entry.suffix == ".py":
                parts.append(f"{package}/{entry.name}")
    missing = []
    for part in parts:
        name = part.rstrip("/").rsplit("/", 1)[-1]
        stem = name.removesuffix(".py")
        if not re.search(rf"(?<![\w.]){re.escape(stem)}(\.py|/)?(?![\w])", block):
            missing.append(part)
    return missing


def test_the_layout_names_every_part() -> None:
    block = layout_block((ROOT / "README.md").read_text(encoding="utf-8"))
    missing = unnamed_parts(block, ROOT)
    assert not missing, f"README's Layout leaves out: {', '.join(missing)}"
