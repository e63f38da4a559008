"""The writer's say in the editor (docs/protocol.md section 6, "The writer's say"): code
actions that dismiss a suggestion, turn its rule off (in the document or everywhere) or
vouch for its word, run on this server as commands (``workspace/executeCommand``), so an
editor needs nothing but its own code-action menu.

A command sends ``doc.dismiss`` or ``doc.word`` on the service's socket and answers once
the service has: with its ``doc.ignores``, or an error the editor shows. The diagnostics
are not removed here: the service is the truth, and its ``doc.retracted`` (to every
editor watching the document) takes them away.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Callable
from typing import Any

from lsprotocol import types

from amplify_stream.client.live import Frame, Mark
from amplify_stream.lsp.editor_view import View, diagnostic, touched
from amplify_stream.lsp.open_file import OpenFile
from amplify_stream.lsp.positions import LineIndex

DISMISS_COMMAND = "amplify.dismiss"
WORD_COMMAND = "amplify.addWord"
# Long enough for a pass of the service's under load; an editor waits on it.
ANSWER_TIMEOUT_S = 15.0
# The contract's word: 1 to 64 characters, one line, no spaces around it.
MAX_WORD_CHARS = 64
_ONE_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")  # noqa: RUF001 (the curly apostrophe)
# Findings about a name whatever its shape ("Mary Ann"): vouching for it is the answer.
_NAME_RULES = frozenset({"character.lookalike_names"})
_QUOTE_IN_TITLE = 30


class SayError(Exception):
    """What the writer is told when their decision did not reach the service."""


def say_actions(file: OpenFile, within: types.Range, view: View) -> list[types.CodeAction]:
    """For each suggestion ``within`` touches: dismiss it, turn its rule off here or
    everywhere, and vouch for its word when it is about one. The same rule or word under
    two suggestions is offered once."""
    index = LineIndex.of(file.text, view.encoding)
    marks = touched(file, within, index)
    actions: list[types.CodeAction] = []
    offered: set[tuple[str, str]] = set()
    for mark in marks:
        found = diagnostic(index, mark, view)

        # Two suggestions under the cursor: say which one each dismissal is.
        which = f" ({_short(mark.event['quote'])})" if len(marks) > 1 else ""
        actions.append(
            _action(
                file,
                found,
                f"Dismiss this suggestion{which}",
                DISMISS_COMMAND,
                {"id": mark.id, "scope": "suggestion"},
            )
        )
        rule = mark.event.get("rule")
        if rule is not None and ("rule", rule) not in offered:
            offered.add(("rule", rule))
            for scope, where in (("document", "in this document"), ("everywhere", "everywhere")):
                actions.append(
                    _action(
                        file,
                        found,
                        f"Turn off {rule} {where}",
                        DISMISS_COMMAND,
                        {"id": mark.id, "rule": rule, "scope": scope},
                    )
                )
        word = word_of(mark)
        if word is not None and ("word", word) not in offered:
            offered.add(("word", word))
            actions.append(
                _action(
                    file,
                    found,
                    f"Add '{word}' to my words",
                    WORD_COMMAND,
                    {"word": word, "scope": "everywhere"},
                )
            )
    return actions


def _action(
    file: OpenFile, found: types.Diagnostic, title: str, command: str, args: dict[str, Any]
) -> types.CodeAction:
    return types.CodeAction(
        title=title,
        kind=types.CodeActionKind.QuickFix,
        diagnostics=[found],
        command=types.Command(title=title, command=command, arguments=[{"uri": file.uri, **args}]),
    )


def word_of(mark: Mark) -> str | None:
    """The word a finding is about, when it is about one: its quote is a single word, or
    a name (the look-alike names)."""
    quote = str(mark.event.get("quote", ""))
    word = quote.strip()
    if not word or len(word) > MAX_WORD_CHARS or "\n" in word or "\r" in word:
        return None
    if mark.event.get("rule") in _NAME_RULES or _ONE_WORD.fullmatch(word):
        return word
    return None


class Say:
    """The commands' side of the socket: a frame out, its answer back by ``request_id``."""

    def __init__(
        self, get_file: Callable[[str], OpenFile | None], send: Callable[[Frame], bool]
    ) -> None:
        self._get_file = get_file
        self._send = send
        self._pending: dict[str, asyncio.Future[Frame]] = {}
        self._requests = itertools.count(1)

    async def dismiss(self, args: Any) -> Frame:
        """``amplify.dismiss``: ``{uri, id?, rule?, scope?, undo?}``."""
        uri, scope = _text(args, "uri"), args.get("scope", "suggestion")
        if scope not in ("suggestion", "document", "everywhere"):
            raise SayError(f"no such scope: {scope!r}")
        file = self._file(uri)
        assert file.live is not None
        sid, rule, undo = args.get("id"), args.get("rule"), args.get("undo") is True
        if scope != "suggestion" and isinstance(rule, str):
            # The rule the writer chose, by name: its suggestion may be gone by now.
            frame = file.live.dismiss(rule=rule, scope=scope, undo=undo)
        elif isinstance(sid, str):
            if not undo and sid not in file.live.marks:
                raise SayError("that suggestion is no longer there")
            frame = file.live.dismiss(sid, scope=scope, undo=undo)
        else:
            raise SayError("a suggestion's id or a rule is needed")
        return await self._ask(file, frame)

    async def add_word(self, args: Any) -> Frame:
        """``amplify.addWord``: ``{uri, word, scope?, undo?}`` (``everywhere`` unless the
        scope says ``document``)."""
        uri, word = _text(args, "uri"), _text(args, "word")
        scope = args.get("scope", "everywhere")
        if scope not in ("document", "everywhere"):
            raise SayError(f"no such scope: {scope!r}")
        file = self._file(uri)
        assert file.live is not None
        return await self._ask(
            file, file.live.vouch(word, scope=scope, undo=args.get("undo") is True)
        )

    def answer(self, frame: Frame) -> bool:
        """Settle the command a frame answers. True when the frame is nothing but that
        answer: an error about a ``doc.dismiss``, which must not read as the file's (a
        refused edit reopens the file)."""
        future = self._pending.get(str(frame.get("request_id") or ""))
        if future is None:
            return False
        if frame.get("type") == "doc.ignores":
            if not future.done():
                future.set_result(frame)
            return False  # the file keeps what it says
        if frame.get("type") == "error":
            if not future.done():
                future.set_exception(SayError(f"{frame.get('code')}: {frame.get('message')}"))
            return True
        return False

    def lost(self) -> None:
        """The socket went: no answer will come on it."""
        for future in self._pending.values():
            if not future.done():
                future.set_exception(SayError("the connection to the service dropped; try again"))

    def _file(self, uri: str) -> OpenFile:
        file = self._get_file(uri)
        if file is None:
            raise SayError(f"{uri} is not open")
        if file.doc_id is None or not file.synced or file.live is None:
            raise SayError("the file is not connected to the service yet; try again")
        return file

    async def _ask(self, file: OpenFile, frame: Frame) -> Frame:
        assert file.doc_id is not None
        request_id = f"say-{next(self._requests)}"
        frame |= {"doc_id": file.doc_id, "request_id": request_id}
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            if not self._send(frame):
                raise SayError("not connected to the service; try again")
            async with asyncio.timeout(ANSWER_TIMEOUT_S):
                return await future
        except TimeoutError:
            raise SayError("the service did not answer") from None
        finally:
            self._pending.pop(request_id, None)


def _text(args: Any, name: str) -> str:
    value = args.get(name) if isinstance(args, dict) else None
    if not isinstance(value, str) or not value:
        raise SayError(f"the command needs {name!r}")
    return value


def _short(quote: str) -> str:
    one_line = " ".join(quote.split())
    if len(one_line) <= _QUOTE_IN_TITLE:
        return f'"{one_line}"'
    return f'"{one_line[: _QUOTE_IN_TITLE - 1]}…"'
