"""``amplify-stream submit FILE|-``: send a story to a running service and follow it.

stdout gets the rewrite as it streams, then a table of the suggestions (or, with
``--json``, every event as one JSON line); stderr gets a progress line of the audio
received (on a terminal only) and a last line on how the story ended.
Exit codes: 0 completed, 1 the story failed or was cancelled (or ``--audio-out`` got no
audio), 2 an error (unreachable service, wrong password, invalid story...).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from amplify_stream.client import AmplifyClient, ClientError, StoryStream
from amplify_stream.commands.common import add_service_arguments, client_for, parse_focus, sign_in
from amplify_stream.events import ALL_FOCUS
from amplify_stream.speech import mp3


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    submit = sub.add_parser("submit", help="submit a story to a running service and follow it")
    submit.add_argument("file", help="the story, UTF-8 text ('-' reads stdin)")
    add_service_arguments(submit)
    submit.add_argument("--title")
    submit.add_argument("--voice")
    submit.add_argument(
        "--focus",
        action="append",
        help=f"comma-separated subset of {','.join(ALL_FOCUS)} (default: all)",
    )
    submit.add_argument("--no-audio", action="store_true", help="no narration")
    submit.add_argument("--no-rewrite", action="store_true", help="suggestions only")
    submit.add_argument("--audio-out", type=Path, metavar="FILE", help="write the MP3 here")
    submit.add_argument("--json", action="store_true", help="every event as a JSON line")


def run(args: argparse.Namespace, env: dict[str, str] | None = None) -> int:
    env = dict(os.environ) if env is None else env
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text("utf-8")
        focus = parse_focus(args.focus)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.no_audio and args.audio_out is not None:
        print("error: --audio-out needs the narration; drop --no-audio", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_submit(args, env, text, focus))
    except ClientError as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


async def _submit(
    args: argparse.Namespace, env: dict[str, str], text: str, focus: list[str] | None
) -> int:
    async with client_for(args, env) as client:
        await sign_in(client, args, env)
        stream = client.submit(
            text,
            title=args.title,
            focus=focus,
            rewrite=not args.no_rewrite,
            audio=not args.no_audio,
            voice=args.voice,
        )
        view = _View(sys.stdout, sys.stderr, as_json=args.json)
        async with stream:
            async for event in stream:
                view.show(event)
        view.finish()
        status = stream.feed.status
        wrote = True
        if args.audio_out is not None and status == "completed":
            wrote = await _write_audio(client, stream, view.audio, args.audio_out)
        print(f"story {stream.story_id} {status}", file=sys.stderr)
        return 0 if status == "completed" and wrote else 1


async def _write_audio(
    client: AmplifyClient, stream: StoryStream, audio: _Audio, path: Path
) -> bool:
    """The MP3 from the streamed chunks, checked against ``audio.completed``; the kept
    file from the service when the chunks do not add up."""
    if audio.completed is None:
        print("no audio: the narration did not complete", file=sys.stderr)
        return False
    data = b"".join(audio.chunks)
    if hashlib.sha256(data).hexdigest() != audio.completed["sha256"]:
        assert stream.story_id is not None
        data = await client.download_audio(stream.story_id)
    await asyncio.to_thread(path.write_bytes, data)
    print(f"audio: {len(data)} bytes written to {path}", file=sys.stderr)
    return True


@dataclass
class _Audio:
    chunks: list[bytes] = field(default_factory=list)
    ms: float = 0.0
    completed: dict[str, Any] | None = None

    def add(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "audio.chunk":
            chunk = base64.b64decode(event["data"])
            self.chunks.append(chunk)
            self.ms += mp3.duration_ms(chunk)  # each chunk holds whole frames
        elif kind == "audio.reset":  # an abandoned narration attempt: start over
            self.chunks.clear()
            self.ms = 0.0
        elif kind == "audio.completed":
            self.completed = event


class _View:
    """What a person (or a script, with ``--json``) sees of one story."""

    def __init__(self, out: TextIO, err: TextIO, *, as_json: bool) -> None:
        self.out, self.err, self.as_json = out, err, as_json
        self.audio = _Audio()
        self.suggestions: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.progress = err.isatty() and not as_json
        # On one terminal the progress line would cut into the streaming rewrite.
        self.rewriting = out.isatty()
        self.open_line = False  # the rewrite so far does not end with a newline

    def show(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        self.audio.add(event)
        if self.as_json:
            self.out.write(json.dumps(event, ensure_ascii=False) + "\n")
            self.out.flush()
            return
        if kind == "story.accepted":
            self.err.write(f"story {event['story_id']} accepted\n")
        elif kind == "enhancement.delta":
            self.out.write(event["text"])
            self.out.flush()
            self.open_line = not event["text"].endswith("\n")
        elif kind == "enhancement.reset":
            self.out.write(f"\n[the rewrite restarted: {event.get('reason', '')}]\n")
        elif kind == "enhancement.completed":
            self._end_text()
        elif kind == "suggestion":
            self.suggestions.append(event)
        elif kind == "error":
            self.errors.append(event)
            self._line(f"{event['code']}: {event['message']}")
        if self.progress and not self.rewriting and kind in ("audio.chunk", "audio.completed"):
            self.err.write(f"\raudio: {self.audio.ms / 1000:.1f} s received")
            self.err.flush()

    def _end_text(self) -> None:
        if self.open_line:
            self.out.write("\n")
            self.open_line = False
            self.out.flush()
        self.rewriting = False

    def _line(self, message: str) -> None:
        if self.progress and self.audio.ms:
            self.err.write("\n")
        self.err.write(message + "\n")

    def finish(self) -> None:
        if self.as_json:
            return
        if self.rewriting:
            self._end_text()
        if self.progress and self.audio.ms:
            self.err.write("\n")
            self.err.flush()
        if self.suggestions:
            self.out.write("\n" + suggestion_table(self.suggestions) + "\n")
        self.out.flush()


def suggestion_table(suggestions: list[dict[str, Any]], width: int | None = None) -> str:
    """focus, quote, message, replacement: one row each, the widest cells cut to fit."""
    width = width or max(60, shutil.get_terminal_size((120, 24)).columns)
    headers = ("focus", "quote", "message", "replacement")
    rows = [
        tuple(_flat(c) for c in (s["focus"], s["quote"], s["message"], s.get("replacement") or ""))
        for s in suggestions
    ]
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    room = width - 2 * (len(headers) - 1)
    while sum(widths) > room and max(widths) > 12:
        widths[widths.index(max(widths))] -= 1
    lines = [_row(headers, widths), _row(tuple("-" * w for w in widths), widths)]
    lines += [_row(row, widths) for row in rows]
    return "\n".join(lines)


def _row(cells: tuple[str, ...], widths: list[int]) -> str:
    return "  ".join(_cell(cell, w) for cell, w in zip(cells, widths, strict=True)).rstrip()


def _flat(text: str) -> str:
    return " ".join(text.split())


def _cell(text: str, width: int) -> str:
    if len(text) > width:
        text = text[: width - 3] + "..."
    return text.ljust(width)
