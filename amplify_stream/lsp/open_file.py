"""One file the editor has open, as the language server holds it."""

from __future__ import annotations

from dataclasses import dataclass

from amplify_stream.client.live import LiveDocument
from amplify_stream.lsp.markup import Kind


@dataclass
class OpenFile:
    uri: str
    kind: Kind
    text: str  # the editor's
    version: int  # the editor's version of ``text``
    doc_id: str | None = None
    # The service's document as this server holds it (None until first opened); its text
    # is always ``text``: the editor's changes are applied to it as they come.
    live: LiveDocument | None = None
    # Every change in ``live`` was sent on the current socket.
    synced: bool = False
    # The request_id of the ``doc.open`` in flight.
    opening: str | None = None
    # Why the service does not check this file (too large), when it does not.
    stopped: str | None = None
    # The last creation was refused for the count of documents, and leftovers deleted.
    collected: bool = False
    # The live suggestions on markup, as the text was when the service last sent some:
    # found again only then (a 50,000-character Markdown file takes ~45 ms to parse), not
    # at each keystroke, which only moves or retracts marks.
    on_markup: frozenset[str] = frozenset()
    markup_stale: bool = True
