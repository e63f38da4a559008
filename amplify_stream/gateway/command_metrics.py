"""The story commands' own figures on ``/metrics`` (``producers/commands.py``), read from
the publisher at each scrape."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from producers.commands import CommandPublisher


class CommandCollector(Collector):
    def __init__(self, publisher: CommandPublisher) -> None:
        self._publisher = publisher

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "amplify_story_commands_refused",
            "Story commands not published (503: the bus did not take them in time)",
            value=self._publisher.refused,
        )
        yield CounterMetricFamily(
            "amplify_story_commands_unknown",
            "Story commands refused though their commit went out: its answer did not come "
            "within the wait, so the coordinator decided (rare; see producers/commands.py)",
            value=self._publisher.unknown,
        )


def register(registry: CollectorRegistry, publisher: CommandPublisher) -> None:
    registry.register(CommandCollector(publisher))
