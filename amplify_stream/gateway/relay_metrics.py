"""The relay's own figures on ``/metrics``, read from it at each scrape: what it reads
per record costs nothing more than the count it keeps anyway."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from amplify_stream.gateway.relay import RelayHub


class RelayCollector(Collector):
    def __init__(self, relay: RelayHub) -> None:
        self._relay = relay

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "amplify_relay_records_read",
            "Records of the stream topic this gateway's relay read (every key, watched or not)",
            value=self._relay.records_read,
        )
        yield CounterMetricFamily(
            "amplify_relay_reader_starts",
            "Times the relay's reader started (again): the partitions it reads changed",
            value=self._relay.reader_starts,
        )
        partitions = GaugeMetricFamily(
            "amplify_relay_partitions",
            "Stream partitions: this gateway's home slice, and those its relay reads now",
            labels=["kind"],
        )
        partitions.add_metric(["home"], len(self._relay.home))
        partitions.add_metric(["read"], len(self._relay.reading))
        yield partitions


def register(registry: CollectorRegistry, relay: RelayHub) -> None:
    registry.register(RelayCollector(relay))
