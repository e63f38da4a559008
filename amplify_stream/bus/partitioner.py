"""Key -> partition, exactly as Kafka's default partitioner does it.

Both backends use this one function, so a story lands in the same partition on either,
and ``partition_for`` agrees with where aiokafka's ``DefaultPartitioner`` (and the Java
client) put a keyed record: ``toPositive(murmur2(key)) % partitions``.
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def partition_for_key(key: str, partitions: int) -> int:
    if partitions < 1:
        raise ValueError(f"a topic has at least one partition, not {partitions}")
    return (int(murmur2(key.encode())) & 0x7FFFFFFF) % partitions
