"""The story commands' own figures on ``/metrics`` (``producers/commands.py``), read from
the publisher at each scrape."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from producers.commands import CommandPublisher


class CommandCollector(Collector):
    def __init__(self, publisher: CommandPublisher) -> None:
        self._publisher = publisher

    def collect(self) -> Iterator[Metric]:
        publisher = self._publisher
        yield CounterMetricFamily(
            "amplify_story_commands_refused",
            "Story commands not published (503: the bus did not take them in time)",
            value=publisher.refused,
        )
        yield CounterMetricFamily(
            "amplify_story_commands_settled",
            "Commits of story commands not answered in time, whose outcome was then read "
            "from the log",
            value=publisher.settled,
        )
        yield CounterMetricFamily(
            "amplify_story_commands_unknown",
            "Story commands refused though their commit went out, its outcome never learned "
            "(they may run; see producers/commands.py)",
            value=publisher.unknown,
        )
        yield GaugeMetricFamily(
            "amplify_story_command_producers_renewing",
            "Story command producers starting again after a failure (none takes commands)",
            value=len(publisher.renewing),
        )


def register(registry: CollectorRegistry, publisher: CommandPublisher) -> None:
    registry.register(CommandCollector(publisher))
