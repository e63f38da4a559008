"""How long a Kafka producer's request may wait: the bus's setting, unless the caller gives
up sooner (the gateway's command producer, after ``bus_timeout_s``)."""

from __future__ import annotations

from amplify_stream.bus.kafka import KafkaBus
from amplify_stream.bus.kafka_clients import KafkaProducer
from amplify_stream.config import Settings


def test_request_timeout_is_the_bus_setting_unless_given() -> None:
    bus = KafkaBus(Settings(bus="kafka", kafka_request_timeout_ms=15000))
    default = bus.producer()
    shorter = bus.producer(request_timeout_s=5.0)
    assert isinstance(default, KafkaProducer) and isinstance(shorter, KafkaProducer)
    assert default._config["request_timeout_ms"] == 15000
    assert shorter._config["request_timeout_ms"] == 5000
