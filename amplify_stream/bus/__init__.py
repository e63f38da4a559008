"""The event bus: one port (``base``), two backends (``kafka``, ``memory``)."""

from __future__ import annotations

from amplify_stream.bus.base import (
    Bus,
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
    parse_cursor,
)
from amplify_stream.config import Settings

__all__ = [
    "Bus",
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


def is_bus_error(exc: BaseException) -> bool:
    """A failure of the bus itself (broker away, timeouts): the work is to be retried,
    never reported as the story's own failure. A fenced producer is not one: retrying
    would fence the member that owns the work now."""
    from aiokafka.errors import KafkaError, ProducerFenced

    if isinstance(exc, BusFenced | ProducerFenced):
        return False
    return isinstance(exc, BusUnavailable | KafkaError | ConnectionError | TimeoutError)


def create_bus(settings: Settings) -> Bus:
    """The backend ``settings.bus`` names (imported lazily: memory needs no broker client)."""
    if settings.bus == "kafka":
        from amplify_stream.bus.kafka import KafkaBus

        return KafkaBus(settings)
    from amplify_stream.bus.memory import MemoryBus

    return MemoryBus(settings)
