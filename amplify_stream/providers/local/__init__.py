"""The offline ``local`` enhancement provider: a craft analyzer built from deterministic
heuristics, one module per focus, over one structural model of the story (``sentences``)."""

from __future__ import annotations

from amplify_stream.providers.local.analysis import Analysis, analyze, approx_tokens
from amplify_stream.providers.local.provider import LocalProvider
from amplify_stream.providers.local.rewrite import rewrite_text

__all__ = ["Analysis", "LocalProvider", "analyze", "approx_tokens", "rewrite_text"]
