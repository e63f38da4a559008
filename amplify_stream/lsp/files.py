"""The editor's open files as live documents of the service (docs/protocol.md section 6).

Each file is mirrored by a ``LiveDocument``: the editor's text, the version the service
will give it, and the live suggestions with their spans moved by every change as it is
typed (the section's shifting rule), so a diagnostic never points at text that moved.

The editor's text is the truth. Whenever the service's copy may differ from it (a socket
that dropped, a ``version_conflict``, a refused edit), the file is opened again by its
``doc_id`` and the difference between the text ``doc.opened`` gives and the editor's is
sent as one edit. While that is under way the file's changes are applied here only, and
the events still arriving for the old version are ignored.

What the editor is shown of a file (diagnostics, quick fixes, insights) is
``amplify_stream/lsp/editor_view.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Sequence
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

from lsprotocol import types

from amplify_stream.client.live import Frame, LiveDocument
from amplify_stream.lsp.editor_view import View, diagnostics
from amplify_stream.lsp.markup import Kind
from amplify_stream.lsp.open_file import OpenFile
from amplify_stream.lsp.positions import service_changes
from amplify_stream.text.edits import Change, utf16_length

log = logging.getLogger(__name__)

# A document the service could not open (the bus down, a limit) is tried again after this.
RETRY_OPEN_S = 2.0
_TITLE_CHARS = 200
# The titles of the documents this server makes: how a later one knows the leftovers of
# a server that ended without closing its files (an editor killed), to delete them when
# the per-user count of documents is reached.
TITLE_PREFIX = "editor: "


class Files:
    def __init__(
        self,
        send: Callable[[Frame], bool],
        publish: Callable[[str, int, list[types.Diagnostic]], None],
        tell: Callable[[types.MessageType, str], None],
        delete: Callable[[str], None],
        collect: Callable[[set[str], Callable[[], None]], None],
    ) -> None:
        """``send`` a frame on the socket (False when there is none); ``publish`` a
        file's diagnostics; ``tell`` the writer something; ``delete`` a document;
        ``collect`` the documents of earlier servers (all but the ids given), then call
        back."""
        self._send = send
        self._publish = publish
        self._tell = tell
        self._delete = delete
        self._collect = collect
        self.view = View()
        # The areas a new document is checked for (the editor's ``amplify.focus``); None:
        # the service's choice.
        self.focus: tuple[str, ...] | None = None
        self._files: dict[str, OpenFile] = {}
        self._by_doc: dict[str, OpenFile] = {}
        self._by_request: dict[str, OpenFile] = {}
        self._requests = itertools.count(1)
        self._dirty: set[str] = set()
        self._flush_scheduled = False

    def get(self, uri: str) -> OpenFile | None:
        return self._files.get(uri)

    # ------------------------------------------------------------ the editor

    def did_open(self, uri: str, kind: Kind, text: str, version: int) -> None:
        file = OpenFile(uri, kind, text, version)
        self._files[uri] = file
        self._open(file)

    def did_change(
        self, uri: str, version: int, changes: Sequence[types.TextDocumentContentChangeEvent]
    ) -> None:
        file = self._files.get(uri)
        if file is None:
            return
        file.text, edits = service_changes(file.text, changes, self.view.encoding)
        file.version = version
        if file.live is not None and edits:
            frame = file.live.edit(edits, request_id=self._request_id())
            if file.synced and not self._send(frame):
                file.synced = False
        self._changed(file)

    def did_close(self, uri: str) -> None:
        file = self._files.pop(uri, None)
        if file is None:
            return
        self._publish(uri, file.version, [])
        self._forget(file)

    def close_all(self) -> None:
        for uri in list(self._files):
            self.did_close(uri)

    # ------------------------------------------------------------ the service

    def connected(self) -> None:
        """A new socket: every file is opened again on it."""
        for file in self._files.values():
            self._open(file)

    def disconnected(self) -> None:
        for file in self._files.values():
            file.synced, file.opening = False, None
        self._by_request.clear()

    def receive(self, frame: Frame) -> None:
        kind = frame.get("type")
        if kind == "doc.opened":
            self._opened(frame)
        elif kind == "error":
            self._refused(frame)
        elif isinstance(kind, str) and kind.startswith("doc."):
            file = self._by_doc.get(frame.get("doc_id", ""))
            if file is None or not file.synced or file.live is None:
                return  # another file's, or of a version before the file was reopened
            file.live.receive(frame)
            if kind != "doc.ack":
                self._changed(file, suggestions_came=True)

    def _opened(self, frame: Frame) -> None:
        file = self._by_request.pop(frame.get("request_id") or "", None)
        if file is None or file.opening != frame.get("request_id"):
            return
        if self._files.get(file.uri) is not file:
            # Closed while it was being opened: the service forgets it too.
            self._send({"type": "doc.close", "doc_id": frame["doc_id"]})
            self._delete(frame["doc_id"])
            return
        file.opening, file.collected = None, False
        file.doc_id = frame["doc_id"]
        self._by_doc[file.doc_id] = file
        live = file.live = LiveDocument.opened(frame)
        file.synced = True
        if live.text != file.text:
            # What the editor changed that the service does not have: one edit.
            self._send(live.edit([_difference(live.text, file.text)], self._request_id()))
        self._changed(file, suggestions_came=True)

    def _refused(self, frame: Frame) -> None:
        code, message = frame.get("code"), frame.get("message", "")
        request_id = frame.get("request_id") or ""
        file = self._by_request.pop(request_id, None) or self._by_doc.get(frame.get("doc_id") or "")
        if file is None or self._files.get(file.uri) is not file:
            return
        log.info("the service refused a frame of %s: %s %s", file.uri, code, message)
        if file.opening is not None and file.opening != request_id:
            return  # about an edit before the reopen under way, which settles it
        answers_open = file.opening == request_id
        file.synced, file.opening = False, None
        if code == "story_too_large":
            file.stopped = message
            self._tell(types.MessageType.Warning, f"{_name(file.uri)} is not checked: {message}")
            self._changed(file)
        elif code == "not_found":
            # Deleted elsewhere: a new document for the file.
            if file.doc_id is not None:
                self._by_doc.pop(file.doc_id, None)
            file.doc_id, file.live = None, None
            self._open(file)
        elif code == "rate_limited" and answers_open and file.doc_id is None:
            self._refused_creation(file, message)
        elif code in ("rate_limited", "unavailable") or answers_open:
            delay = float(frame.get("retry_after") or RETRY_OPEN_S)
            asyncio.get_running_loop().call_later(delay, self._reopen, file)
        else:
            # version_conflict, or an edit refused: the service's copy is not the
            # editor's; it is opened again and told the difference.
            self._open(file)

    def _refused_creation(self, file: OpenFile, message: str) -> None:
        """The user holds as many documents as they may: the leftovers of servers that
        ended without closing their files go, once, and the file is tried again; if the
        count is still reached, the writer is told and the file is not checked."""
        if file.collected:
            file.stopped = message
            self._tell(types.MessageType.Warning, f"{_name(file.uri)} is not checked: {message}")
            self._changed(file)
            return
        file.collected = True
        self._collect(set(self._by_doc), lambda: self._reopen(file))

    def _reopen(self, file: OpenFile) -> None:
        if self._files.get(file.uri) is file and not file.synced and file.opening is None:
            self._open(file)

    # ------------------------------------------------------------ internals

    def _open(self, file: OpenFile) -> None:
        if file.stopped is not None:
            return
        request_id = self._request_id()
        file.synced = False
        if self._send(_open_frame(file, request_id, self.focus)):
            file.opening = request_id
            self._by_request[request_id] = file

    def _forget(self, file: OpenFile) -> None:
        if file.doc_id is not None:
            self._by_doc.pop(file.doc_id, None)
            self._send({"type": "doc.close", "doc_id": file.doc_id})
            # The file is the document; the service's copy goes with the editor's.
            self._delete(file.doc_id)
        # A doc.open in flight is answered to no file: ``_opened`` deletes it.

    def _request_id(self) -> str:
        return f"lsp-{next(self._requests)}"

    def _changed(self, file: OpenFile, *, suggestions_came: bool = False) -> None:
        """Publish the file's diagnostics once this turn of the loop is over (a reopen
        brings many frames at once)."""
        file.markup_stale |= suggestions_came
        self._dirty.add(file.uri)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, set()
        for uri in dirty:
            file = self._files.get(uri)
            if file is not None:
                self._publish(uri, file.version, diagnostics(file, self.view))


def _open_frame(file: OpenFile, request_id: str, focus: tuple[str, ...] | None) -> Frame:
    """``doc.open`` of the file: again by its ``doc_id``, or as a new document (its text,
    a title naming it, the editor's focus when it has one)."""
    frame: dict[str, Any] = {"type": "doc.open", "request_id": request_id}
    if file.doc_id is not None:
        return frame | {"doc_id": file.doc_id}
    frame |= {"text": file.text, "title": (TITLE_PREFIX + _name(file.uri))[:_TITLE_CHARS]}
    if focus is not None:
        frame["focus"] = list(focus)
    return frame


def _difference(old: str, new: str) -> Change:
    """One change that turns ``old`` into ``new``: what lies between their common start
    and common end (never splitting a surrogate pair: the strings are code points)."""
    start = 0
    limit = min(len(old), len(new))
    while start < limit and old[start] == new[start]:
        start += 1
    end = 0
    while end < limit - start and old[len(old) - 1 - end] == new[len(new) - 1 - end]:
        end += 1
    start16 = utf16_length(old[:start])
    return Change(
        start16, start16 + utf16_length(old[start : len(old) - end]), new[start : len(new) - end]
    )


def _name(uri: str) -> str:
    return PurePosixPath(unquote(urlparse(uri).path)).name or uri
