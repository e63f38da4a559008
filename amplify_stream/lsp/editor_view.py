"""What the editor shows of an open file: its live suggestions as diagnostics (less those
on markup), a quick fix for each replacement, and the document's insights. Positions are
in the editor's encoding (``UTF16`` unless it asked for another)."""

from __future__ import annotations

from dataclasses import dataclass

from lsprotocol import types

from amplify_stream.client.live import Frame, Mark
from amplify_stream.lsp.markup import non_prose, overlaps
from amplify_stream.lsp.open_file import OpenFile
from amplify_stream.lsp.positions import UTF16, LineIndex

SOURCE = "amplify"
# Gemini's notes of its own (``model.<focus>``) have no entry in the catalogue.
_UNLISTED_RULES = "model."


@dataclass
class View:
    """How this editor is shown things: its position encoding, and where a rule's entry
    is (the catalogue's address; None before the service is known)."""

    encoding: str = UTF16
    rules_url: str | None = None

    def rule_href(self, rule: str | None) -> str | None:
        if rule is None or self.rules_url is None or rule.startswith(_UNLISTED_RULES):
            return None
        return f"{self.rules_url}#{rule}"


def rules_url(base_url: str) -> str:
    """Where a rule's entry is: the gateway's page of the catalogue (``GET /rules``, one
    anchor per rule id; public, like ``/docs``, so a browser opens it without a token)."""
    return base_url.rstrip("/") + "/rules"


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


def diagnostics(file: OpenFile, view: View) -> list[types.Diagnostic]:
    index = LineIndex.of(file.text, view.encoding)
    return [diagnostic(index, m, view) for m in marks(file)]


def touched(file: OpenFile, within: types.Range, index: LineIndex) -> list[Mark]:
    """The shown suggestions that ``within`` touches (a cursor at either end counts)."""
    lo, hi = index.offset_utf16(within.start), index.offset_utf16(within.end)
    return [m for m in marks(file) if m.start_utf16 <= hi and lo <= m.end_utf16]


def fixes(file: OpenFile, within: types.Range, view: View) -> list[types.CodeAction]:
    """A quick fix for each suggestion with a replacement that ``within`` touches."""
    index = LineIndex.of(file.text, view.encoding)
    actions = []
    for mark in touched(file, within, index):
        replacement = mark.event.get("replacement")
        if replacement is None:
            continue
        found = diagnostic(index, mark, view)
        edit = types.TextDocumentEdit(
            text_document=types.OptionalVersionedTextDocumentIdentifier(
                uri=file.uri, version=file.version
            ),
            edits=[types.TextEdit(range=found.range, new_text=replacement)],
        )
        actions.append(
            types.CodeAction(
                title=f'Replace "{mark.event["quote"]}" with "{replacement}"',
                kind=types.CodeActionKind.QuickFix,
                diagnostics=[found],
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


def say_lines(file: OpenFile) -> list[str]:
    """What the writer has decided about the document, as the service last told it
    (``doc.ignores``): for the hover, since a dismissed finding shows nowhere else."""
    told = file.live.ignores if file.live is not None else None
    if told is None:
        return []
    user = told.get("user") or {}
    parts = [
        ("turned off here", told.get("rules_off")),
        ("turned off everywhere", user.get("rules_off")),
        ("your words here", told.get("words")),
        ("your words", user.get("words")),
    ]
    lines = [f"*{what}*: {', '.join(items)}" for what, items in parts if items]
    if told.get("dismissed"):
        lines.append(f"*dismissed*: {len(told['dismissed'])}")
    return lines


def diagnostic(index: LineIndex, mark: Mark, view: View) -> types.Diagnostic:
    """A suggestion as a diagnostic: its rule as the code (the focus when it has none),
    linked to the rule's entry; ``data`` keeps the suggestion's id for the code actions."""
    event = mark.event
    message = event["message"]
    if event.get("replacement") is not None:
        message += f' (suggested: "{event["replacement"]}")'
    rule = event.get("rule")
    href = view.rule_href(rule)
    return types.Diagnostic(
        range=index.range_utf16(mark.start_utf16, mark.end_utf16),
        message=message,
        severity=types.DiagnosticSeverity.Information,
        code=rule or event["focus"],
        code_description=types.CodeDescription(href=href) if href else None,
        source=SOURCE,
        data={"id": mark.id, "rule": rule, "replacement": event.get("replacement")},
    )
