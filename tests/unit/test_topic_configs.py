"""What a topic is created with on Kafka (``bus/kafka_topics.py``): its retention or
compaction, and with three replicas ``min.insync.replicas`` 2, so an acks=all write is
held by two brokers before it is acknowledged (issue 25)."""

from __future__ import annotations

import pytest

from amplify_stream.bus.base import TopicSpec
from amplify_stream.bus.kafka_topics import topic_configs, weaker
from amplify_stream.config.groups import BusSettings
from amplify_stream.topics import Topics


@pytest.mark.parametrize("replicas", [1, 2])
def test_fewer_than_three_replicas_keep_the_brokers_default(replicas: int) -> None:
    spec = TopicSpec("t", 3, retention_ms=1000)
    assert topic_configs(spec, replicas) == {"retention.ms": "1000"}


def test_every_topic_of_the_service_on_three_brokers_needs_two_in_sync() -> None:
    for spec in Topics.from_settings(BusSettings()).specs():
        configs = topic_configs(spec, 3)
        assert configs["min.insync.replicas"] == "2", spec.name
        if spec.compacted:
            assert configs["cleanup.policy"] == "compact"
        else:
            assert configs["retention.ms"] == str(spec.retention_ms)


def test_existing_topics_weaker_than_new_ones_are_named_with_what_they_lack() -> None:
    factors = {"ok": 3, "one-replica": 1, "lax": 3, "both": 2}
    in_sync = {"ok": 2, "one-replica": 2, "lax": 1, "both": 1}
    findings = weaker(factors, in_sync, replicas=3)
    assert [f.split(":")[0] for f in findings] == ["both", "lax", "one-replica"]
    assert "replication factor 2 (new topics get 3)" in findings[0]
    assert "min.insync.replicas 1 (new topics get 2" in findings[0]
    assert "replication factor" not in findings[1]
    assert "min.insync.replicas" not in findings[2]


def test_on_a_single_broker_nothing_is_weaker() -> None:
    assert weaker({"t": 1}, {"t": 1}, replicas=1) == []
