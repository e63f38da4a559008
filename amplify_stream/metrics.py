"""Production metrics (Prometheus): one ``Metrics`` per process, passed to whoever records.

Not prometheus-client's global registry: each app (and each test) owns its registry,
so nothing leaks between them.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Milliseconds: relay latency lives in the low ms; first token/audio in the 100s-1000s.
_RELAY_MS = (0.5, 1, 2, 5, 10, 20, 50, 100, 250, 500, 1000, 5000)
_FIRST_MS = (50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000)
# Older records are history being replayed to a resuming client, not relay latency.
_REPLAY_AFTER_MS = 10_000


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.stories = Counter(
            "amplify_stories", "Stories ended, by status", ["status"], registry=r
        )
        self.first_token_ms = Histogram(
            "amplify_first_token_ms",
            "From submission to the provider's first piece",
            buckets=_FIRST_MS,
            registry=r,
        )
        self.first_suggestion_ms = Histogram(
            "amplify_first_suggestion_ms",
            "From submission to the first suggestion",
            buckets=_FIRST_MS,
            registry=r,
        )
        self.findings_skipped = Counter(
            "amplify_findings_skipped",
            "Suggestions and insights a provider wrote against the schema, left out",
            ["provider", "kind"],
            registry=r,
        )
        self.first_audio_ms = Histogram(
            "amplify_first_audio_ms",
            "From submission to the first audio chunk",
            buckets=_FIRST_MS,
            registry=r,
        )
        self.relay_ms = Histogram(
            "amplify_relay_latency_ms",
            "From a worker producing a stream event to the gateway writing it to a client",
            buckets=_RELAY_MS,
            registry=r,
        )
        self.open_sockets = Gauge("amplify_open_sockets", "Open WebSockets", registry=r)
        self.consumer_lag = Gauge(
            "amplify_consumer_lag",
            "Records not yet finished, per consumer group and partition",
            ["group", "topic", "partition"],
            registry=r,
        )
        self.provider_errors = Counter(
            "amplify_provider_errors",
            "Provider failures, by provider and error code",
            ["provider", "code"],
            registry=r,
        )

        self.ownership_events = Counter(
            "amplify_partition_ownership_events",
            "A worker's hold on its input partitions: writes held until the group confirmed "
            "it (held), transactions the broker fenced (fenced), records handed over to the "
            "partition's new owner (handed_over)",
            ["group", "event"],
            registry=r,
        )

        # Live documents (docs/protocol.md section 6).
        self.suggestion_feedback = Counter(
            "amplify_suggestion_feedback",
            "Writers' decisions about suggestions (suggestion.feedback), by rule and action",
            ["rule", "action"],
            registry=r,
        )
        self.doc_edits = Counter(
            "amplify_doc_edits",
            "doc.edit commands folded by document owners, by result",
            ["result"],
            registry=r,
        )
        self.doc_ack_ms = Histogram(
            "amplify_doc_ack_latency_ms",
            "From a doc.edit frame reaching the gateway to its doc.ack written to the socket",
            buckets=_RELAY_MS,
            registry=r,
        )
        self.doc_analysis_ms = Histogram(
            "amplify_doc_analysis_ms",
            "From the end of a document's idle wait to its doc.analyzed",
            buckets=_RELAY_MS,
            registry=r,
        )
        self.doc_paragraphs_read = Histogram(
            "amplify_doc_paragraphs_reread",
            "Paragraphs an analysis pass read again",
            buckets=(0, 1, 2, 3, 5, 10, 20, 50, 100, 500),
            registry=r,
        )
        # Bounded owners: idle documents leave memory, their snapshot the truth.
        self.doc_resident = Gauge(
            "amplify_doc_resident",
            "Live documents a documents owner holds in memory, per partition of the edit log",
            ["partition"],
            registry=r,
        )
        self.doc_evictions = Counter(
            "amplify_doc_evictions",
            "Idle documents that left a documents owner's memory (AMPLIFY_DOC_EVICT_S)",
            registry=r,
        )
        self.doc_loads = Counter(
            "amplify_doc_loads",
            "Evicted documents read back from their snapshot for a command, by result "
            "(loaded, unreadable)",
            ["result"],
            registry=r,
        )
        self.doc_load_ms = Histogram(
            "amplify_doc_load_ms",
            "From a command for an evicted document to the document back in memory",
            buckets=_RELAY_MS,
            registry=r,
        )
        self.doc_cache_hit_ratio = Gauge(
            "amplify_doc_paragraph_cache_hit_ratio",
            "Share of paragraph analyses answered from the per-process content cache",
            registry=r,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def observe_relay(metrics: Metrics, produced_ms: int) -> None:
    """The relay latency of a record just written to a client."""
    latency = time.time() * 1000 - produced_ms
    if 0 <= latency < _REPLAY_AFTER_MS:
        metrics.relay_ms.observe(latency)
