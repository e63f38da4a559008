"""What the editor shows of an open file: its live suggestions as diagnostics (less those
on markup), a quick fix for each replacement, and the document's insights. Positions are
in the editor's ``encoding`` (``UTF16`` unless it asked for another)."""

from __future__ import annotations

from lsprotocol import types

from amplify_stream.client.live import Frame, Mark
from amplify_stream.lsp.markup import non_prose, overlaps
from amplify_stream.lsp.open_file import OpenFile
from amplify_stream.lsp.positions import LineIndex

SOURCE = "amplify"


def marks(file: OpenFile) -> list[Mark]:
    """The file's live suggestions, less those on markup, in text order."""
    if file.live is None or file.stopped is not None:
        return []
    found = file.live.marks.values()
    if file.markup_stale:
        markup = non_prose(file.text, file.kind)
        file.on_markup = frozenset(
            m.id for m in found if overlaps(markup, m.start_utf16, m.end_utf16)
        )
        file.markup_stale = False
    shown = [m for m in found if m.id not in file.on_markup]
    return sorted(shown, key=lambda m: (m.start_utf16, m.end_utf16, m.id))


def diagnostics(file: OpenFile, encoding: str) -> list[types.Diagnostic]:
    index = LineIndex.of(file.text, encoding)
    return [_diagnostic(index, m) for m in marks(file)]


def fixes(file: OpenFile, within: types.Range, encoding: str) -> list[types.CodeAction]:
    """A quick fix for each suggestion with a replacement that ``within`` touches."""
    index = LineIndex.of(file.text, encoding)
    lo, hi = index.offset_utf16(within.start), index.offset_utf16(within.end)
    actions = []
    for mark in marks(file):
        replacement = mark.event.get("replacement")
        touches = mark.start_utf16 <= hi and lo <= mark.end_utf16
        if replacement is None or not touches:
            continue
        diagnostic = _diagnostic(index, mark)
        edit = types.TextDocumentEdit(
            text_document=types.OptionalVersionedTextDocumentIdentifier(
                uri=file.uri, version=file.version
            ),
            edits=[types.TextEdit(range=diagnostic.range, new_text=replacement)],
        )
        actions.append(
            types.CodeAction(
                title=f'Replace "{mark.event["quote"]}" with "{replacement}"',
                kind=types.CodeActionKind.QuickFix,
                diagnostics=[diagnostic],
                edit=types.WorkspaceEdit(document_changes=[edit]),
                is_preferred=True,
            )
        )
    return actions


def insights(file: OpenFile) -> list[Frame]:
    if file.live is None:
        return []
    return [
        {k: v for k, v in frame.items() if k in ("focus", "summary", "metrics", "version")}
        for frame in file.live.insights.values()
    ]


def _diagnostic(index: LineIndex, mark: Mark) -> types.Diagnostic:
    event = mark.event
    message = event["message"]
    if event.get("replacement") is not None:
        message += f' (suggested: "{event["replacement"]}")'
    return types.Diagnostic(
        range=index.range_utf16(mark.start_utf16, mark.end_utf16),
        message=message,
        severity=types.DiagnosticSeverity.Information,
        code=event["focus"],
        source=SOURCE,
        data={"id": mark.id, "replacement": event.get("replacement")},
    )
