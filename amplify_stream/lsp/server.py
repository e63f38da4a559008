"""``amplify-stream lsp``: live documents in the writer's own editor, over the Language
Server Protocol on stdio (pygls).

Every plain text, Markdown and reStructuredText file the editor opens becomes a live
document of the service (docs/protocol.md section 6) on one WebSocket; its suggestions
come back as diagnostics (source ``amplify``, the rule as the code), those with a
replacement as quick fixes, and the insights as a hover on the first line and as the
command ``amplify.insights``. Code actions dismiss a suggestion, turn its rule off or
vouch for its word (``say.py``); the settings under ``amplify`` choose a new document's
focus and add rules off to the writer's preferences (``settings.py``). The service is
named by ``AMPLIFY_URL`` and the token by ``AMPLIFY_TOKEN``, or by the editor's
initialization options ``url`` and ``token``; never on the command line, where any user
of the machine could read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from importlib.metadata import version
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer

from amplify_stream.client.api import DEFAULT_URL, AmplifyClient
from amplify_stream.client.errors import ClientError
from amplify_stream.client.live import Frame
from amplify_stream.logs import configure_logging
from amplify_stream.lsp.editor_view import fixes, insights, rules_url, say_lines
from amplify_stream.lsp.files import TITLE_PREFIX, Files
from amplify_stream.lsp.link import ServiceLink
from amplify_stream.lsp.markup import kind_of
from amplify_stream.lsp.preferences import PreferenceSync
from amplify_stream.lsp.say import DISMISS_COMMAND, WORD_COMMAND, Say, SayError, say_actions
from amplify_stream.lsp.settings import SECTION, read_settings, section_of

log = logging.getLogger(__name__)

INSIGHTS_COMMAND = "amplify.insights"
# How long a shutdown waits for the service to forget the closed files' documents.
DELETE_WAIT_S = 5.0
# How long the start waits for the editor's settings before opening the files without.
CONFIGURATION_WAIT_S = 3.0
# LSP's RequestFailed: the request was valid, the service said no (or did not answer).
REQUEST_FAILED = -32803


class WriterServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("amplify-stream", version("amplify-stream"))
        self.files = Files(self._send, self._publish, self._tell, self._delete, self._collect)
        self.say = Say(self.files.get, self._send)
        self.client: AmplifyClient | None = None
        self.link: ServiceLink | None = None
        self.preferences: PreferenceSync | None = None
        self._initial_settings: Any = None
        self._link_task: asyncio.Task[None] | None = None
        self._deleting: set[asyncio.Task[None]] = set()
        self._settling: set[asyncio.Task[None]] = set()  # the start, settings pulled

    def configure(self, options: Any) -> None:
        """The service and the token: initialization options first, then the
        environment."""
        opts = options if isinstance(options, dict) else {}
        url = opts.get("url") or os.environ.get("AMPLIFY_URL") or DEFAULT_URL
        token = opts.get("token") or os.environ.get("AMPLIFY_TOKEN")
        self.client = AmplifyClient(str(url), token=str(token) if token else None)
        self.files.view.rules_url = rules_url(self.client.base_url)
        self.link = ServiceLink(
            self.client,
            on_open=self.files.connected,
            on_frame=self._receive,
            on_lost=self._lost,
            on_refused=lambda why: self._tell(types.MessageType.Error, f"amplify: {why}"),
        )
        self.preferences = PreferenceSync(
            self.client, lambda why: self._tell(types.MessageType.Warning, why)
        )
        # ``{"amplify": {...}}`` as in the editor's settings, or the keys themselves.
        section = section_of(opts)
        self._initial_settings = section if section is not None else _settings_keys(opts)

    async def start(self) -> None:
        """After ``initialized``: the editor's settings (the initialization options, then
        what ``workspace/configuration`` says), then the socket, so that the first files'
        documents are opened with the focus asked for."""
        self.apply_settings(self._initial_settings)
        if self.pulls_configuration:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CONFIGURATION_WAIT_S):
                    await self.pull_settings()
        self.start_link()

    @property
    def pulls_configuration(self) -> bool:
        workspace = self.client_capabilities.workspace
        return bool(workspace is not None and workspace.configuration)

    async def pull_settings(self) -> None:
        try:
            found = await self.workspace_configuration_async(
                types.ConfigurationParams(items=[types.ConfigurationItem(section=SECTION)])
            )
        except Exception as exc:  # an editor's error answer: its settings are not to be had
            log.warning("workspace/configuration failed: %r", exc)
            return
        if found and found[0] is not None:  # an editor without the section keeps the options
            self.apply_settings(found[0])

    def apply_settings(self, raw: Any) -> None:
        """The ``amplify`` settings: the focus for new documents here, the rules off into
        the writer's preferences (only what they add)."""
        settings, problems = read_settings(raw)
        for problem in problems:
            self._tell(types.MessageType.Warning, f"amplify: {problem}")
        self.files.focus = settings.focus
        if self.preferences is not None and self.client is not None and self.client.token:
            self.preferences.want_off(settings.disabled_rules)

    def settle(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` (about the settings) beside the editor's messages, which keep
        coming meanwhile."""
        task = asyncio.create_task(work)
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    def _receive(self, frame: Frame) -> None:
        if not self.say.answer(frame):
            self.files.receive(frame)

    def _lost(self) -> None:
        self.say.lost()
        self.files.disconnected()

    def start_link(self) -> None:
        assert self.client is not None and self.link is not None
        if not self.client.token:
            self._tell(
                types.MessageType.Error,
                "amplify: no token; set AMPLIFY_TOKEN (or the initialization option token)",
            )
            return
        self._link_task = asyncio.create_task(self.link.run())

    async def stop(self) -> None:
        """The editor is done: its files' documents are deleted, the socket closed."""
        self.files.close_all()
        if self._deleting:
            await asyncio.wait(self._deleting, timeout=DELETE_WAIT_S)
        for task in self._settling:
            task.cancel()
        if self.preferences is not None:
            self.preferences.cancel()
        if self._link_task is not None:
            self._link_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._link_task
        if self.client is not None:
            await self.client.close()

    # ------------------------------------------------------------ Files' callbacks

    def _send(self, frame: dict[str, Any]) -> bool:
        return self.link is not None and self.link.send(frame)

    def _publish(self, uri: str, version: int, diagnostics: list[types.Diagnostic]) -> None:
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=version)
        )

    def _tell(self, kind: types.MessageType, message: str) -> None:
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    def _delete(self, doc_id: str) -> None:
        if self.client is None:
            return
        task = asyncio.create_task(self._delete_document(self.client, doc_id))
        self._deleting.add(task)
        task.add_done_callback(self._deleting.discard)

    def _collect(self, keep: set[str], then: Callable[[], None]) -> None:
        if self.client is None:
            return
        task = asyncio.create_task(self._collect_documents(self.client, keep, then))
        self._deleting.add(task)
        task.add_done_callback(self._deleting.discard)

    async def _collect_documents(
        self, client: AmplifyClient, keep: set[str], then: Callable[[], None]
    ) -> None:
        """Delete this user's editor documents that no file here holds: those of servers
        that ended without closing their files. A running server whose document goes
        this way makes a new one at its next edit (``not_found``)."""
        try:
            left = [d for d in await client.document_ids(TITLE_PREFIX) if d not in keep]
            log.warning("deleting %d documents left by earlier editor sessions", len(left))
            for doc_id in left:
                await self._delete_document(client, doc_id)
        except ClientError as exc:
            log.warning("could not list the documents to delete: %s", exc)
        finally:
            then()

    @staticmethod
    async def _delete_document(client: AmplifyClient, doc_id: str) -> None:
        try:
            await client.delete_document(doc_id)
        except ClientError as exc:
            if exc.code != "not_found":
                log.warning("document %s not deleted: %s", doc_id, exc)


server = WriterServer()


@server.feature(types.INITIALIZE)
def _initialize(ls: WriterServer, params: types.InitializeParams) -> None:
    ls.configure(params.initialization_options)


# Synchronous on purpose (as the files' below): the encoding and the settings pushed apply
# to every message after them.
@server.feature(types.INITIALIZED)
def _initialized(ls: WriterServer, params: types.InitializedParams) -> None:
    encoding = ls.workspace.position_encoding
    if encoding is not None:
        # The enum's value: str() of a str enum is its name in Python 3.11.
        ls.files.view.encoding = getattr(encoding, "value", encoding)
    ls.settle(ls.start())


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
def _did_change_configuration(ls: WriterServer, params: types.DidChangeConfigurationParams) -> None:
    section = section_of(params.settings)
    if section is not None:
        ls.apply_settings(section)
    elif ls.pulls_configuration:
        # The pull model: the notification says only that something changed.
        ls.settle(ls.pull_settings())


@server.feature(types.SHUTDOWN)
async def _shutdown(ls: WriterServer, params: None) -> None:
    await ls.stop()


# Synchronous on purpose: pygls runs each as it arrives, so changes keep their order.
@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def _did_open(ls: WriterServer, params: types.DidOpenTextDocumentParams) -> None:
    doc = params.text_document
    kind = kind_of(doc.uri, doc.language_id)
    if kind is not None:
        ls.files.did_open(doc.uri, kind, doc.text, doc.version)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def _did_change(ls: WriterServer, params: types.DidChangeTextDocumentParams) -> None:
    doc = params.text_document
    ls.files.did_change(doc.uri, doc.version, params.content_changes)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def _did_close(ls: WriterServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.files.did_close(params.text_document.uri)


@server.feature(
    types.TEXT_DOCUMENT_CODE_ACTION,
    types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]),
)
def _code_action(ls: WriterServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    file = ls.files.get(params.text_document.uri)
    if file is None:
        return []
    return fixes(file, params.range, ls.files.view) + say_actions(file, params.range, ls.files.view)


@server.feature(types.TEXT_DOCUMENT_HOVER)
def _hover(ls: WriterServer, params: types.HoverParams) -> types.Hover | None:
    file = ls.files.get(params.text_document.uri)
    if file is None or params.position.line != 0:
        return None
    found = insights(file)
    lines = [f"**{i['focus']}**: {i['summary']}" + _metrics(i.get("metrics")) for i in found]
    lines += say_lines(file)
    if not lines:
        return None
    return types.Hover(
        contents=types.MarkupContent(
            kind=types.MarkupKind.Markdown, value="\n\n".join(["*amplify*", *lines])
        )
    )


@server.command(INSIGHTS_COMMAND)
def _insights(ls: WriterServer, uri: str) -> list[dict[str, Any]]:
    """The file's insights now (one per focus), for an editor to show as it likes."""
    file = ls.files.get(uri)
    return [] if file is None else insights(file)


@server.command(DISMISS_COMMAND)
async def _dismiss(ls: WriterServer, args: Any) -> Frame:
    """``{uri, id?, rule?, scope?, undo?}``: ``doc.dismiss``; answers the ``doc.ignores``."""
    try:
        return await ls.say.dismiss(args)
    except SayError as exc:
        raise JsonRpcException(f"amplify: {exc}", code=REQUEST_FAILED) from None


@server.command(WORD_COMMAND)
async def _add_word(ls: WriterServer, args: Any) -> Frame:
    """``{uri, word, scope?, undo?}``: ``doc.word``; answers the ``doc.ignores``."""
    try:
        return await ls.say.add_word(args)
    except SayError as exc:
        raise JsonRpcException(f"amplify: {exc}", code=REQUEST_FAILED) from None


def _settings_keys(options: dict[str, Any]) -> dict[str, Any] | None:
    keys: dict[str, Any] = {k: options[k] for k in ("focus", "disabledRules") if k in options}
    return keys or None


def _metrics(metrics: Any) -> str:
    if not isinstance(metrics, dict) or not metrics:
        return ""
    return " (" + ", ".join(f"{k} {v}" for k, v in metrics.items()) + ")"


def main() -> int:
    # stdout is the protocol's: every log line goes to stderr, which editors keep.
    configure_logging(os.environ.get("AMPLIFY_LOG_LEVEL", "INFO"), stream=sys.stderr)
    logging.getLogger("pygls").setLevel(logging.WARNING)
    server.start_io()
    return 0
