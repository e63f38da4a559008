"""The event bus: one port (``base``), two backends (``kafka``, ``memory``)."""

from __future__ import annotations

from amplify_stream.bus.base import (
    Bus,
    BusError,
    BusFenced,
    BusUnavailable,
    GroupConsumer,
    Headers,
    Isolation,
    Position,
    Producer,
    RebalanceCallback,
    Record,
    TopicPartition,
    TopicSpec,
    format_cursor,
    is_bus_error,
    parse_cursor,
)
from amplify_stream.config.groups import BusSettings

__all__ = [
    "Bus",
    "BusError",
    "BusFenced",
    "BusUnavailable",
    "GroupConsumer",
    "Headers",
    "Isolation",
    "Position",
    "Producer",
    "RebalanceCallback",
    "Record",
    "TopicPartition",
    "TopicSpec",
    "create_bus",
    "format_cursor",
    "is_bus_error",
    "parse_cursor",
]


def create_bus(settings: BusSettings) -> Bus:
    """The backend ``settings.bus`` names (imported lazily: memory needs no broker client)."""
    if settings.bus == "kafka":
        from amplify_stream.bus.kafka import KafkaBus

        return KafkaBus(settings)
    from amplify_stream.bus.memory import MemoryBus

    return MemoryBus(settings)
