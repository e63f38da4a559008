"""Live documents (docs/protocol.md section 6): the functional core of their owner.

- ``state.py``: one document (its text at its version, the live suggestions and their
  spans, which paragraphs are current) and the analysis pass under way on it.
- ``partition.py``: the documents of one partition of the edit log, folded command by
  command into the answers their watchers hear.
- ``snapshot.py``: a document to and from its snapshot record, and its live suggestions
  as a client hears them.
- ``analyzers.py``: the port of an analysis pass; ``local_pass.py`` and ``gemini_pass.py``
  its backends; ``create_document_analyzer`` picks one. ``call_slots.py``: each user's
  provider calls in flight (per process, or once for every owner in Redis).

Pure but for the passes' provider calls: the owner (``consumers/document_owner.py``) is
the shell that reads the log, times the passes and writes the answers.
"""

from __future__ import annotations

from amplify_stream.config import Settings
from amplify_stream.documents.analyzers import DocumentAnalyzer


def create_document_analyzer(settings: Settings) -> DocumentAnalyzer:
    """The backend of the enhancement provider in use (imported lazily: the offline one
    needs no Gemini client)."""
    if settings.enhancement_provider_name == "gemini":
        from amplify_stream.documents.call_slots import call_slots
        from amplify_stream.documents.gemini_pass import GeminiAnalyzer
        from amplify_stream.limits_redis import shared_redis

        slots = call_slots(settings.doc_gemini_calls_per_user, shared_redis(settings))
        return GeminiAnalyzer(settings, slots=slots)
    from amplify_stream.documents.local_pass import LocalAnalyzer

    return LocalAnalyzer()
