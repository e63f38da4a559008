"""Key -> partition, exactly as Kafka's default partitioner does it.

Both backends use this one function, so a story lands in the same partition on either,
and ``partition_for`` agrees with where aiokafka's ``DefaultPartitioner`` (and the Java
client) put a keyed record: ``toPositive(murmur2(key)) % partitions``.

The hash of a key is remembered: a story's every word is a record with its key, and
aiokafka's murmur2 is pure Python (about 10 us a record, 5% of an enhancer's CPU a word).
"""

from __future__ import annotations

import functools
import random

from aiokafka.partitioner import murmur2

# Keys in flight at once (stories streaming, documents open) rather than all ever seen.
_REMEMBERED_KEYS = 8192


@functools.lru_cache(maxsize=_REMEMBERED_KEYS)
def _positive_hash(key: bytes) -> int:
    return int(murmur2(key)) & 0x7FFFFFFF


def partition_for_key(key: str, partitions: int) -> int:
    if partitions < 1:
        raise ValueError(f"a topic has at least one partition, not {partitions}")
    return _positive_hash(key.encode()) % partitions


def partition_of_new_key(key: str, partitions: int) -> int:
    """``partition_for_key`` without remembering the hash: for keys drawn and mostly
    thrown away (``RelayHub.mint``), which must not push out the keys in flight."""
    return (int(murmur2(key.encode())) & 0x7FFFFFFF) % partitions


def keyed_partitioner(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """aiokafka's ``DefaultPartitioner``, with the key's hash remembered (the producer's
    ``partitioner``)."""
    if key is None:
        return random.choice(available or all_partitions)
    return all_partitions[_positive_hash(key) % len(all_partitions)]
