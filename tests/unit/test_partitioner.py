"""Key -> partition as Kafka's default partitioner does it, on both paths of ours."""

from __future__ import annotations

import uuid

from aiokafka.partitioner import DefaultPartitioner

from amplify_stream.bus.partitioner import keyed_partitioner, partition_for_key


def test_our_partitioner_agrees_with_aiokafkas_default() -> None:
    theirs = DefaultPartitioner()
    for n in range(2000):
        key = str(uuid.UUID(int=n * 7919 + 1)).encode()
        for partitions in (1, 3, 4, 12):
            all_partitions = list(range(partitions))
            expected = theirs(key, all_partitions, all_partitions)
            # Twice: the second answer comes from the remembered hash.
            for _ in range(2):
                assert keyed_partitioner(key, all_partitions, all_partitions) == expected
                assert partition_for_key(key.decode(), partitions) == expected


def test_a_record_without_a_key_goes_to_an_available_partition() -> None:
    picked = {keyed_partitioner(None, [0, 1, 2, 3], [2]) for _ in range(50)}
    assert picked == {2}
    assert {keyed_partitioner(None, [0, 1, 2], []) for _ in range(200)} == {0, 1, 2}
