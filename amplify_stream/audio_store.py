"""Where whole narrations are kept: one MP3 file per story in the audio directory.

A narration is written to ``<id>.mp3.<writer>.part`` as it is made and renamed to
``<id>.mp3`` once complete, so a file that exists under its final name is always whole.
Each writer has a part file of its own: two narrators on one story (the owner and a
zombie it took over from) never write to, or delete, each other's. Several gateways
serving audio need this directory on shared storage.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import BinaryIO


class AudioStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, story_id: str) -> Path | None:
        """The finished narration, or None."""
        path = self.directory / f"{_safe(story_id)}.mp3"
        return path if path.is_file() else None

    def writer(self, story_id: str) -> NarrationWriter:
        self.directory.mkdir(parents=True, exist_ok=True)
        return NarrationWriter(self.directory / f"{_safe(story_id)}.mp3")


class NarrationWriter:
    """Appends chunks and keeps the running sha256 and size of what was written."""

    def __init__(self, final: Path) -> None:
        self._final = final
        self._part = final.with_name(f"{final.name}.{uuid.uuid4().hex[:12]}.part")
        self._file: BinaryIO = self._part.open("xb")
        self._sha = hashlib.sha256()
        self.bytes = 0

    def write(self, data: bytes) -> None:
        # Chunks are a few KiB into the page cache: cheaper inline than via a thread.
        self._file.write(data)
        self._sha.update(data)
        self.bytes += len(data)

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    def commit(self) -> None:
        self._file.close()
        os.replace(self._part, self._final)

    def discard(self) -> None:
        self._file.close()
        self._part.unlink(missing_ok=True)


def _safe(story_id: str) -> str:
    if not story_id or not all(c.isalnum() or c == "-" for c in story_id):
        raise ValueError("not a story id")
    return story_id
