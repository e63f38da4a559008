"""``local``: the offline enhancement provider. Deterministic craft heuristics; the rewrite
streams in small pieces at a model-like pace, with suggestions released as it passes them."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator

from amplify_stream.config.groups import WorkerSettings
from amplify_stream.providers.base import (
    EnhancementProvider,
    EnhancementRequest,
    Piece,
    RewriteDelta,
    UsageReport,
)
from amplify_stream.providers.local.analysis import analyze, suggestion_end


class LocalProvider(EnhancementProvider):
    name = "local"
    model = "craft-heuristics-1"

    def __init__(self, settings: WorkerSettings) -> None:
        self._piece_delay_s = max(0, settings.local_piece_delay_ms) / 1000

    async def stream(self, request: EnhancementRequest) -> AsyncIterator[Piece]:
        """The rewrite's pieces (when asked for) with each suggestion right after the piece
        that completes its quote, then one insight per focus, and the usage. Without a
        rewrite the suggestions come at the same pace, as a model reading the story would
        find them, not all at once."""
        # Up to ~100 ms of CPU for the largest story: keep the event loop free meanwhile.
        analysis = await asyncio.to_thread(analyze, request.text, request.focus, request.rewrite)
        pending = deque(analysis.suggestions)
        for index, (original_end, piece) in enumerate(analysis.pieces):
            if index:
                # Zero still yields to the loop, so other stories stream meanwhile.
                await asyncio.sleep(self._piece_delay_s)
            if request.rewrite:
                yield RewriteDelta(piece)
            while pending and suggestion_end(pending[0]) <= original_end:
                yield pending.popleft()
        for suggestion in pending:
            yield suggestion
        for insight in analysis.insights:
            yield insight
        yield UsageReport(analysis.input_tokens, analysis.output_tokens)
