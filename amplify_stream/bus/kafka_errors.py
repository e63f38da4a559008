"""aiokafka's errors turned into the bus port's, at the Kafka backend's boundary.

Every method the backend's objects offer to callers raises its aiokafka errors through
here: ``ProducerFenced`` becomes ``BusFenced``; any other ``KafkaError``, and the socket
errors and timeouts beneath aiokafka (``OSError``), become ``BusUnavailable``. Errors of
the caller's own code (the body of a transaction or of a read) pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from aiokafka.errors import KafkaError, ProducerFenced

from amplify_stream.bus.base import BusError, BusFenced, BusUnavailable


def to_bus_error(exc: BaseException, servers: str) -> BaseException:
    """The port's error for one of aiokafka's (with it as the cause); others as they are."""
    if not isinstance(exc, KafkaError | OSError):
        return exc
    error: BusError
    if isinstance(exc, ProducerFenced):
        error = BusFenced(f"a newer producer took this transactional id: {exc}")
    else:
        error = BusUnavailable(f"Kafka at {servers}: {exc!r}")
    error.__cause__ = exc
    return error


@contextmanager
def bus_errors(servers: str) -> Iterator[None]:
    """aiokafka's errors raised inside leave as the port's (the original as their cause)."""
    try:
        yield
    except (KafkaError, OSError) as exc:
        raise to_bus_error(exc, servers) from exc
