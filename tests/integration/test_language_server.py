"""``amplify-stream lsp`` driven as an editor drives it (pytest-lsp, the server in its own
process over stdio) against the whole service on both buses: a file opened, a sentence
typed key by key, diagnostics at the right positions in text with emoji and CJK (UTF-16
and UTF-32 positions), markup left alone, a quick fix applied, insights on hover, and the
connection to the service cut and recovered without a stale diagnostic; the writer's say
(dismiss, a rule off, a word vouched for) from the code actions, and the editor's settings
(the focus of a new document, rules off in the preferences)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Union

import aiohttp
import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from yarl import URL

from tests.integration.conftest import Service
from tests.live_documents import writer
from tests.proxy import CuttingProxy, cutting_proxy
from tests.support import record_timing, sign_up

StartService = Callable[..., Awaitable[Service]]

FAST = {"doc_idle_ms": 150, "doc_snapshot_ms": 200}


def position(text: str, index: int, encoding: str = "utf-16") -> types.Position:
    """The test's own reckoning of an LSP position: code point ``index`` of ``text``
    (lines split at ``\\n`` only: the test's texts have no other breaks)."""
    before = text[:index]
    line = before.count("\n")
    column = before[before.rfind("\n") + 1 :]
    units = len(column) if encoding == "utf-32" else len(column.encode("utf-16-le")) // 2
    return types.Position(line=line, character=units)


class Editor:
    """What an editor does with one file, and what it has been told about it."""

    def __init__(self, client: LanguageClient, uri: str, encoding: str) -> None:
        self.client = client
        self.uri = uri
        self.encoding = encoding
        self.text = ""
        self.version = 0
        # Each publishDiagnostics of the file ``until`` heard: its version and diagnostics.
        self.published: list[types.PublishDiagnosticsParams] = []

    def open(self, text: str, language: str) -> None:
        self.text, self.version = text, 1
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=self.uri, language_id=language, version=self.version, text=text
                )
            )
        )

    def replace(self, start: int, end: int, new: str) -> None:
        """One incremental change: code points ``[start, end)`` become ``new``."""
        change = types.TextDocumentContentChangePartial(
            range=types.Range(
                start=position(self.text, start, self.encoding),
                end=position(self.text, end, self.encoding),
            ),
            text=new,
        )
        self.text = self.text[:start] + new + self.text[end:]
        self.version += 1
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(
                    uri=self.uri, version=self.version
                ),
                content_changes=[change],
            )
        )

    async def type(self, at: int, words: str, every_s: float = 0.01) -> None:
        for i, char in enumerate(words):
            self.replace(at + i, at + i, char)
            await asyncio.sleep(every_s)

    @property
    def diagnostics(self) -> list[types.Diagnostic]:
        return list(self.client.diagnostics.get(self.uri, []))

    def quoted(self) -> dict[str, types.Diagnostic]:
        """Each diagnostic by the text it covers in the editor's text now."""
        return {self.slice(d.range): d for d in self.diagnostics}

    def slice(self, r: types.Range) -> str:
        return self.text[self.offset(r.start) : self.offset(r.end)]

    def offset(self, p: types.Position) -> int:
        """The code point of the text an LSP position (in the editor's encoding) is at."""
        lines = self.text.split("\n")
        before = sum(len(line) + 1 for line in lines[: p.line])
        line = lines[p.line]
        if self.encoding == "utf-32":
            return before + p.character
        units = 0
        for i, char in enumerate(line):
            if units == p.character:
                return before + i
            units += 2 if ord(char) > 0xFFFF else 1
        assert units == p.character, f"{p} is not on a character of {line!r}"
        return before + len(line)

    def apply(self, edit: types.TextEdit) -> None:
        """A server's text edit, applied where it says, as an editor applies it."""
        self.replace(self.offset(edit.range.start), self.offset(edit.range.end), edit.new_text)

    async def until(
        self, condition: Callable[[dict[str, types.Diagnostic]], bool], what: str, timeout=30.0
    ) -> dict[str, types.Diagnostic]:
        try:
            async with asyncio.timeout(timeout):
                while not condition(self.quoted()):
                    params = await self.client.wait_for_notification(
                        types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS
                    )
                    if params.uri == self.uri:
                        self.published.append(params)
        except TimeoutError:
            raise AssertionError(
                f"timed out waiting for {what}; diagnostics: {self.quoted()}"
            ) from None
        return self.quoted()


async def start_editor(
    base: str,
    token: str,
    *,
    encodings: list[str] | None = None,
    by_options: bool = False,
    settings: dict[str, Any] | None = None,
) -> LanguageClient:
    """The language server in its own process, initialized as VS Code does (or offering
    ``encodings``), configured by the environment (or the initialization options); the
    editor's ``amplify`` ``settings``, when given, are what ``workspace/configuration``
    answers."""
    env = {k: v for k, v in os.environ.items() if k not in ("AMPLIFY_URL", "AMPLIFY_TOKEN")}
    options: Any = None
    if by_options:
        options = {"url": base, "token": token}
    else:
        env |= {"AMPLIFY_URL": base, "AMPLIFY_TOKEN": token}
    config = ClientServerConfig(
        server_command=[sys.executable, "-m", "amplify_stream.cli", "lsp"], server_env=env
    )
    client = await config.start()
    _tell_code_actions_from_commands(client)
    if settings is not None:
        client.set_configuration(settings, section="amplify")
    capabilities = client_capabilities("visual-studio-code")
    if encodings is not None:
        capabilities.general = types.GeneralClientCapabilities(position_encodings=encodings)
    result = await client.initialize_session(
        types.InitializeParams(capabilities=capabilities, initialization_options=options)
    )
    expected = encodings[0] if encodings else "utf-16"
    assert result.capabilities.position_encoding == expected
    return client


def _tell_code_actions_from_commands(client: LanguageClient) -> None:
    """Read a code action with a ``command`` as a CodeAction, as editors do: lsprotocol
    2025.0.0 (``_code_action_hook``) takes every item with a ``command`` key for a Command,
    though a Command's is a string and a CodeAction's an object."""
    converter = client.protocol._converter

    def structure(item: Any, _: Any) -> types.Command | types.CodeAction:
        kind = types.Command if isinstance(item.get("command"), str) else types.CodeAction
        return converter.structure(item, kind)

    # typing.Union, as lsprotocol registers it (``X | Y`` is another type to cattrs).
    converter.register_structure_hook(Union[types.Command, types.CodeAction], structure)  # noqa: UP007


@pytest.fixture
async def editors() -> AsyncIterator[list[LanguageClient]]:
    started: list[LanguageClient] = []
    yield started
    for client in started:
        await client.shutdown_session()
        await client.stop()


STORY = "🌊 The harbour 港口 was quiet.\n"
SENTENCE = "Mara was very angry at the wall."


async def test_typed_sentence_gets_diagnostics_and_a_quick_fix(
    service: StartService, session: aiohttp.ClientSession, editors: list[LanguageClient]
) -> None:
    svc = await service(**FAST)
    token = await sign_up(session, svc.base, "ada")
    client = await start_editor(svc.base, token)
    editors.append(client)
    editor = Editor(client, "file:///tmp/harbour.md", "utf-16")
    code = "\n```\nShe was very angry in code.\n```\nSee `was very angry` here.\n"
    editor.open(STORY + "港口 🌊 " + code, "markdown")
    # Typed on the second line, after CJK and an emoji: UTF-16 columns differ from code
    # points there.
    at = len(STORY) + len("港口 🌊 ")
    started = time.monotonic()
    await editor.type(at, SENTENCE)
    typed = time.monotonic()
    found = await editor.until(
        lambda q: {"was very angry", "very angry"} <= set(q), "the sentence's diagnostics"
    )
    arrived = time.monotonic()
    record_timing(
        f"last keystroke to its diagnostic (pytest-lsp, {svc.settings.bus} bus, doc_idle_ms "
        f"{FAST['doc_idle_ms']}): {arrived - typed:.3f}s"
    )
    line = STORY.count("\n")
    angry = found["very angry"]
    column = len((f"港口 🌊 {SENTENCE}"[: f"港口 🌊 {SENTENCE}".index("very")]).encode("utf-16-le"))
    assert angry.range.start == types.Position(line=line, character=column // 2)
    assert (angry.source, angry.code) == ("amplify", "plot.intensifier")
    assert angry.severity == types.DiagnosticSeverity.Information
    assert found["was very angry"].code == "character.telling"
    # Nothing in the fenced block or the inline code: the same words there are markup.
    assert len(editor.diagnostics) == 2, editor.quoted()
    assert started < typed

    # The quick fix of the suggestion with a replacement, applied as an editor applies it.
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=editor.uri),
            range=angry.range,
            context=types.CodeActionContext(diagnostics=[angry]),
        )
    )
    assert actions is not None
    fixes = [a for a in actions if isinstance(a, types.CodeAction) and a.edit]
    assert [a.title for a in actions][:2] == [
        'Replace "very angry" with "furious"',
        'Dismiss this suggestion ("was very angry")',
    ]
    assert len(fixes) == 1 and fixes[0].kind == types.CodeActionKind.QuickFix, actions
    edit = fixes[0].edit
    assert edit is not None and edit.document_changes
    change = edit.document_changes[0]
    assert isinstance(change, types.TextDocumentEdit)
    assert change.text_document.version == editor.version
    (text_edit,) = change.edits
    assert isinstance(text_edit, types.TextEdit)
    # Where the server says: its range covers the words, and nothing else.
    assert editor.slice(text_edit.range) == "very angry"
    before_fix = {d.data["id"] for d in editor.diagnostics if isinstance(d.data, dict)}
    editor.apply(text_edit)
    fixed = SENTENCE.replace("very angry", "furious")
    assert fixed in editor.text
    # The fixed words' diagnostics go at once (the change overlaps them).
    published = len(editor.published)
    await editor.until(lambda q: "very angry" not in q, "the fixed diagnostic gone", 5)
    # The service's next pass agrees: it reads the fixed line, and only a pass of the fixed
    # text can tell "was furious" (a new suggestion: an id no diagnostic had before the fix,
    # a message quoting the fixed words), published for the fixed version.
    after = await editor.until(lambda q: "was furious" in q, "the pass after the fix", 30)
    furious = after["was furious"]
    assert furious.code == "character.telling"
    assert isinstance(furious.data, dict) and furious.data["id"] not in before_fix
    assert "'was furious'" in furious.message, furious.message
    assert editor.published[-1].version == editor.version
    assert len(editor.published) > published
    # And nothing on the fixed word is the intensifier the fix answered.
    word = editor.text.index(fixed) + fixed.index("furious")
    span = range(word, word + len("furious"))
    on_fix = [
        d
        for d in editor.diagnostics
        if editor.offset(d.range.start) < span.stop and span.start < editor.offset(d.range.end)
    ]
    assert all(d.code != "plot.intensifier" for d in on_fix), editor.quoted()

    # Insights on a hover over the first line; and the command.
    hover = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=editor.uri),
            position=types.Position(line=0, character=0),
        )
    )
    assert hover is not None and isinstance(hover.contents, types.MarkupContent)
    assert "**" in hover.contents.value
    insights = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="amplify.insights", arguments=[editor.uri])
    )
    assert insights and {i["focus"] for i in insights} <= {
        "plot",
        "character",
        "dialogue",
        "setting",
    }


async def test_utf32_positions_when_the_editor_offers_them(
    service: StartService, session: aiohttp.ClientSession, editors: list[LanguageClient]
) -> None:
    svc = await service(**FAST)
    token = await sign_up(session, svc.base, "ada")
    client = await start_editor(svc.base, token, encodings=["utf-32", "utf-16"])
    editors.append(client)
    editor = Editor(client, "file:///tmp/notes.txt", "utf-32")
    editor.open("🌊🌊 港口 ", "plaintext")
    await editor.type(len(editor.text), SENTENCE, every_s=0)
    found = await editor.until(lambda q: "very angry" in q, "the diagnostic")
    assert found["very angry"].range.start.character == len("🌊🌊 港口 Mara was ")


async def test_the_service_goes_away_and_comes_back(
    service: StartService, session: aiohttp.ClientSession, editors: list[LanguageClient]
) -> None:
    svc = await service(**FAST)
    token = await sign_up(session, svc.base, "ada")
    url = URL(svc.base)
    assert url.host is not None and url.port is not None
    async with cutting_proxy(url.host, url.port) as (proxy, port):
        client = await start_editor(f"http://127.0.0.1:{port}", token, by_options=True)
        editors.append(client)
        editor = Editor(client, "file:///tmp/chapter.rst", "utf-16")
        directive = ".. note:: It was very cold, ``was very cold``.\n\n"
        editor.open(f"Chapter\n=======\n\n{directive}", "restructuredtext")
        await editor.type(len(editor.text), SENTENCE, every_s=0)
        await editor.until(lambda q: set(q) == {"was very angry", "very angry"}, "diagnostics")
        # Nothing on the directive's line: reStructuredText markup.
        assert all(d.range.start.line == 5 for d in editor.diagnostics), editor.quoted()
        doc_id = await _document_titled(session, svc.base, token, "editor: chapter.rst")
        connections = proxy.connections
        outage = await _type_while_down(proxy, editor, session, svc.base, token, doc_id)
        # Typed while the link was down: the diagnostics moved with the text at once.
        moved = editor.quoted()
        assert set(moved) <= {"was very angry", "very angry"}, moved
        # Back: the file is opened again, the service told the difference, and a new
        # sentence gets its diagnostics.
        await editor.type(len(editor.text), " Tom was very sad.", every_s=0)
        await editor.until(lambda q: "was very sad" in q, "the new sentence's diagnostic", 30)
        assert proxy.connections > connections
        assert set(editor.quoted()) >= {"was very angry", "very angry", "was very sad"}
        # The typing of the outage reached the service over a connection made after the
        # link came back: the first one the proxy let through since it went down.
        back = [t for t in proxy.accepted_at if t > outage.down]
        assert back and back[0] > outage.up, (outage, proxy.accepted_at)
    # The service holds the editor's text (its own copy, from the document's owner, and
    # the store's, which follows the owner's snapshots: a moment behind).
    async with writer(session, svc.base, token) as w:
        assert (await w.reopen(doc_id)).text == editor.text
    headers = {"Authorization": f"Bearer {token}"}
    stored = ""
    for _ in range(100):
        async with session.get(f"{svc.base}/v1/documents/{doc_id}", headers=headers) as res:
            stored = (await res.json())["text"]
        if stored == editor.text:
            break
        await asyncio.sleep(0.1)
    assert stored == editor.text


@dataclass
class Outage:
    """When (monotonic) the link went down, the server first found it down (a connection
    it tried was refused), the writer typed, and the link came back."""

    down: float
    noticed: float
    typed: float
    up: float


async def _type_while_down(
    proxy: CuttingProxy,
    editor: Editor,
    session: aiohttp.ClientSession,
    base: str,
    token: str,
    doc_id: str,
) -> Outage:
    """The link to the service down, and kept down (every new connection refused) until
    the writer has typed and the service is seen without the typing; then up again."""
    before = await _service_copy(session, base, token, doc_id)
    down = time.monotonic()
    proxy.down()
    # The language server knows its link is down: it tried another and was refused.
    noticed = await proxy.refused(timeout=10)
    start = editor.text.index("Mara")
    typed = time.monotonic()
    editor.replace(start, start, "Dawn. ")
    moved = position(editor.text, editor.text.index("very angry"))
    await editor.until(
        lambda q: "very angry" in q and q["very angry"].range.start == moved,
        "the diagnostics moved by the typing",
        5,
    )
    # The service (its document's owner, over a socket of the test's own) has not heard
    # of it: the text and version of before the outage.
    during = await _service_copy(session, base, token, doc_id)
    assert during == before and "Dawn." not in during[0], (before, during)
    up = time.monotonic()
    proxy.up()
    outage = Outage(down, noticed, typed, up)
    assert down < noticed < typed < up, outage
    assert not [t for t in proxy.accepted_at if down < t < up], (outage, proxy.accepted_at)
    return outage


async def _service_copy(
    session: aiohttp.ClientSession, base: str, token: str, doc_id: str
) -> tuple[str, int]:
    """The document's text and version as its owner holds them now."""
    async with writer(session, base, token) as w:
        doc = await w.reopen(doc_id)
        return doc.text, doc.version


async def _document_titled(
    session: aiohttp.ClientSession, base: str, token: str, title: str
) -> str:
    """The id of the user's only document, once the store lists it, titled ``title``."""
    headers = {"Authorization": f"Bearer {token}"}
    listed: list[dict[str, Any]] = []
    for _ in range(100):
        async with session.get(f"{base}/v1/documents", headers=headers) as res:
            listed = (await res.json())["documents"]
        if listed:
            break
        await asyncio.sleep(0.1)
    assert [d["title"] for d in listed] == [title]
    return str(listed[0]["doc_id"])


async def test_documents_left_by_a_killed_server_make_room(
    service: StartService, session: aiohttp.ClientSession, editors: list[LanguageClient]
) -> None:
    """An editor killed without closing its files leaves their documents; once the user
    holds the most they may, the next server deletes those (only those) and goes on."""
    svc = await service(**FAST, max_documents_per_user=3)
    token = await sign_up(session, svc.base, "ada")
    async with writer(session, svc.base, token) as w:
        await w.open("My novel.", title="My novel")
    killed = await start_editor(svc.base, token)
    for name in ("a", "b"):
        Editor(killed, f"file:///tmp/{name}.txt", "utf-16").open("Some words.", "plaintext")
    headers = {"Authorization": f"Bearer {token}"}

    async def titles() -> list[str]:
        async with session.get(f"{svc.base}/v1/documents", headers=headers) as res:
            return sorted(d["title"] for d in (await res.json())["documents"])

    for _ in range(100):
        if len(await titles()) == 3:
            break
        await asyncio.sleep(0.1)
    assert await titles() == ["My novel", "editor: a.txt", "editor: b.txt"]
    # Killed as a crashed editor's server ends: no shutdown, nothing deleted.
    assert killed._server is not None
    killed._server.kill()
    await killed.stop()
    assert await titles() == ["My novel", "editor: a.txt", "editor: b.txt"]

    client = await start_editor(svc.base, token)
    editors.append(client)
    editor = Editor(client, "file:///tmp/c.txt", "utf-16")
    editor.open("Now ", "plaintext")
    await editor.type(len(editor.text), SENTENCE, every_s=0)
    await editor.until(lambda q: "very angry" in q, "the new file's diagnostics")
    assert await titles() == ["My novel", "editor: c.txt"]


NAMES = "Marta poured the tea. Martha took a cup. Marta smiled. Martha drank."


async def act(editor: Editor, quote: str, title: str) -> Any:
    """Run the code action ``title`` offered with the cursor on ``quote``, as an editor
    does: the command it names, on the server."""
    here = position(editor.text, editor.text.index(quote))
    actions = await editor.client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=editor.uri),
            range=types.Range(start=here, end=here),
            context=types.CodeActionContext(diagnostics=editor.diagnostics),
        )
    )
    chosen = [a for a in actions or [] if a.title == title]
    assert len(chosen) == 1, [a.title for a in actions or []]
    command = chosen[0].command
    assert isinstance(chosen[0], types.CodeAction) and command is not None
    return await editor.client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=command.command, arguments=command.arguments)
    )


async def preferences(session: aiohttp.ClientSession, base: str, token: str) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    async with session.get(f"{base}/v1/me/preferences", headers=headers) as res:
        assert res.status == 200, await res.text()
        return await res.json()


async def test_the_writers_say_from_the_code_actions(
    service: StartService, session: aiohttp.ClientSession, editors: list[LanguageClient]
) -> None:
    svc = await service(**FAST)
    token = await sign_up(session, svc.base, "ada")
    client = await start_editor(svc.base, token)
    editors.append(client)
    editor = Editor(client, "file:///tmp/tea.txt", "utf-16")
    editor.open(f"{NAMES}\n{SENTENCE}\n", "plaintext")
    found = await editor.until(
        lambda q: {"Martha", "was very angry", "very angry"} <= set(q), "the diagnostics"
    )
    angry = found["very angry"]
    assert angry.code == "plot.intensifier" and angry.code_description is not None
    href = angry.code_description.href
    assert href == f"{svc.base}/rules#plot.intensifier"
    assert isinstance(angry.data, dict) and angry.data["id"]
    # The link resolves, in a browser without the token: the page holding the entry the
    # fragment names.
    async with session.get(href.split("#")[0]) as res:
        assert res.status == 200
        assert '<section id="plot.intensifier">' in await res.text()

    # Each goes when the service retracts it, not before: the command answers with the
    # service's doc.ignores.
    ignores = await act(editor, "was very", "Dismiss this suggestion")
    assert ignores["type"] == "doc.ignores"
    assert [d["quote"] for d in ignores["dismissed"]] == ["was very angry"]
    await editor.until(lambda q: "was very angry" not in q, "the dismissed one gone", 10)
    ignores = await act(editor, "very angry", "Turn off plot.intensifier in this document")
    assert ignores["rules_off"] == ["plot.intensifier"]
    await editor.until(lambda q: "very angry" not in q, "the rule's diagnostic gone", 10)
    await act(editor, "Martha", "Add 'Martha' to my words")
    await editor.until(lambda q: "Martha" not in q, "the name's diagnostic gone", 10)
    assert (await preferences(session, svc.base, token))["words"] == ["Martha"]
    # What the writer decided shows on the first line's hover (the service's doc.ignores).
    hover = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=editor.uri),
            position=types.Position(line=0, character=0),
        )
    )
    assert hover is not None and isinstance(hover.contents, types.MarkupContent)
    assert "*turned off here*: plot.intensifier" in hover.contents.value
    assert "*your words*: Martha" in hover.contents.value
    assert "*dismissed*: 1" in hover.contents.value

    # The next pass of that line holds them: the dismissed sentence and the rule stay
    # quiet while a new sentence is read.
    await editor.type(len(NAMES) + 1 + len(SENTENCE), " Tom was very sad.", every_s=0)
    after = await editor.until(lambda q: "was very sad" in q, "the new sentence's diagnostic")
    assert not {"was very angry", "very angry", "very sad", "Martha"} & set(after), after
    await act(editor, "was very sad", "Turn off character.telling everywhere")
    await editor.until(lambda q: "was very sad" not in q, "the rule off everywhere", 10)
    assert (await preferences(session, svc.base, token))["rules_off"] == ["character.telling"]
    # A refusal is the command's error, and the file carries on.
    with pytest.raises(Exception, match="no longer there"):
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="amplify.dismiss", arguments=[{"uri": editor.uri, "id": "gone"}]
            )
        )


async def test_settings_choose_the_focus_and_turn_rules_off_in_the_preferences(
    service: StartService, session: aiohttp.ClientSession, editors: list[LanguageClient]
) -> None:
    svc = await service(**FAST)
    token = await sign_up(session, svc.base, "ada")
    # Pulled at the start (workspace/configuration), before any file is opened.
    pulled = {"focus": ["character"], "disabledRules": ["plot.filler"]}
    client = await start_editor(svc.base, token, settings=pulled)
    editors.append(client)
    Editor(client, "file:///tmp/one.txt", "utf-16").open("Mara was very angry.", "plaintext")
    first = await preferences(session, svc.base, token)
    for _ in range(100):
        if first["rules_off"]:
            break
        await asyncio.sleep(0.1)
        first = await preferences(session, svc.base, token)
    assert first["rules_off"] == ["plot.filler"] and first["focus"] is None

    # Pushed (didChangeConfiguration with the settings): a union, the focus of the next
    # new document.
    pushed = {"focus": ["dialogue", "setting"], "disabledRules": ["plot.intensifier"]}
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"amplify": pushed})
    )
    Editor(client, "file:///tmp/two.txt", "utf-16").open("Mara was very angry.", "plaintext")
    # The pull model (no settings in the notification): the server asks. Saying nothing
    # new, it changes nothing (that no PUT is sent: tests/unit/test_lsp_preferences.py).
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    # Then something new: the revision counts the changes.
    client.set_configuration({"disabledRules": ["plot.passive"]}, section="amplify")
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    rules = ["plot.filler", "plot.intensifier", "plot.passive"]
    now = first
    for _ in range(100):
        now = await preferences(session, svc.base, token)
        if now["rules_off"] == rules:
            break
        await asyncio.sleep(0.1)
    assert now["rules_off"] == rules
    assert now["revision"] == first["revision"] + 2

    headers = {"Authorization": f"Bearer {token}"}
    focus: dict[str, Any] = {}
    for _ in range(100):
        async with session.get(f"{svc.base}/v1/documents", headers=headers) as res:
            listed = (await res.json())["documents"]
        for doc in listed:
            async with session.get(
                f"{svc.base}/v1/documents/{doc['doc_id']}", headers=headers
            ) as res:
                focus[doc["title"]] = (await res.json())["focus"]
        if len(focus) == 2:
            break
        await asyncio.sleep(0.1)
    assert focus == {"editor: one.txt": ["character"], "editor: two.txt": ["dialogue", "setting"]}
