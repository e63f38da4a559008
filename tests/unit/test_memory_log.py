"""The memory bus's partition logs keep what Kafka would: retention by time, compaction,
and the embedded bound by size, which never drops what a consumer group has yet to
commit, nor a record of an open transaction. Readers below the log start move up to it."""

from __future__ import annotations

import time

from amplify_stream.bus.base import TopicPartition
from amplify_stream.bus.memory_log import (
    MIN_CLEANABLE,
    RECORD_OVERHEAD,
    TOMBSTONE_RETENTION_MS,
    Budget,
    Retention,
    Topic,
    Txn,
)

NOW_MS = int(time.time() * 1000)
MINUTE_MS = 60_000


def values(topic: Topic, start: int = 0, isolation: str = "read_uncommitted") -> list[bytes]:
    records, _ = topic.fetch(0, start, isolation, None)  # type: ignore[arg-type]
    return [r.value for r in records]


def test_records_older_than_the_retention_go_at_the_next_append() -> None:
    topic = Topic("t", 1)
    for n in range(5):
        topic.append(0, "k", b"old%d" % n, (), None, NOW_MS - 11 * MINUTE_MS)
    topic.retention = Retention(retention_ms=10 * MINUTE_MS)  # as a topic's config is altered
    assert topic.begin(0) == 0 and topic.end(0) == 5  # checked at the next append
    topic.append(0, "k", b"new", (), None)
    assert topic.begin(0) == 5 and topic.end(0) == 6
    assert values(topic) == [b"new"]  # a reader from 0 starts at the log start
    records, position = topic.fetch(0, 2, "read_uncommitted", None)
    assert [r.offset for r in records] == [5] and position == 6
    assert topic.valid_offset(0, 3) == 5 and topic.valid_offset(0, 6) == 6


def test_a_record_of_an_open_transaction_stays_however_old() -> None:
    topic = Topic("t", 1, Retention(retention_ms=MINUTE_MS))
    txn = Txn()
    topic.append(0, "k", b"plain", (), None, NOW_MS - 5 * MINUTE_MS)
    topic.append(0, "k", b"in txn", (), txn, NOW_MS - 5 * MINUTE_MS)
    topic.append(0, "k", b"after", (), None, NOW_MS - 5 * MINUTE_MS)
    topic.append(0, "k", b"new", (), None)
    assert topic.begin(0) == 1  # the open transaction holds the rest
    txn.state = "committed"
    topic.append(0, "k", b"newer", (), None)
    assert values(topic) == [b"new", b"newer"]


def test_the_bound_drops_the_oldest_but_never_what_a_reader_has_yet_to_read() -> None:
    size = RECORD_OVERHEAD + 1 + 100
    unread: dict[TopicPartition, int | None] = {TopicPartition("t", 0): None}
    budget = Budget(10 * size, unread.__getitem__)
    topic = Topic("t", 1, Retention(), budget)
    for n in range(30):
        topic.append(0, "k", b"%03d" % n + b"x" * 97, (), None)
    assert topic.begin(0) == 20 and topic.end(0) == 30
    assert len(values(topic)) == 10 and budget.total() == 10 * size
    unread[TopicPartition("t", 0)] = 22  # a reader has read up to 22
    for n in range(30, 40):
        topic.append(0, "k", b"%03d" % n + b"x" * 97, (), None)
    assert topic.begin(0) == 22  # over the bound, but 22 on is unread
    assert values(topic)[0].startswith(b"022")
    unread[TopicPartition("t", 0)] = 40
    topic.append(0, "k", b"040" + b"x" * 97, (), None)
    assert topic.begin(0) == 31 and len(values(topic)) == 10


def test_the_bound_is_shared_the_fullest_partition_gives_first() -> None:
    size = RECORD_OVERHEAD + 1 + 100
    budget = Budget(20 * size)
    busy, quiet = Topic("busy", 2, Retention(), budget), Topic("quiet", 1, Retention(), budget)
    for _ in range(5):
        quiet.append(0, "k", b"q" * 100, (), None)
    for n in range(100):
        busy.append(n % 2, "k", b"b" * 100, (), None)
    # The quiet topic keeps its history; the busy one has the rest of the room.
    assert quiet.begin(0) == 0 and len(values(quiet)) == 5
    kept = [busy.end(p) - busy.begin(p) for p in range(2)]
    assert sum(kept) == 15 and abs(kept[0] - kept[1]) <= 1
    assert budget.total() <= 20 * size


def test_a_record_of_an_open_transaction_is_not_dropped_for_room() -> None:
    size = RECORD_OVERHEAD + 1 + 100
    budget = Budget(3 * size)
    topic = Topic("t", 1, Retention(), budget)
    txn = Txn()
    topic.append(0, "k", b"t" * 100, (), txn)
    for _ in range(5):
        topic.append(0, "k", b"p" * 100, (), None)
    assert topic.begin(0) == 0 and budget.total() == 6 * size  # held by the transaction
    txn.state = "committed"
    topic.append(0, "k", b"p" * 100, (), None)
    assert topic.begin(0) == 4


def test_compaction_keeps_the_newest_record_of_each_key() -> None:
    topic = Topic("t", 1, Retention(compacted=True))
    for n in range(MIN_CLEANABLE * 2):
        topic.append(0, f"doc{n % 3}", b"v%d" % n, (), None)
    kept = values(topic)
    assert len(kept) < MIN_CLEANABLE + 3  # cleaned at least once
    newest, _ = topic.fetch(0, 0, "read_uncommitted", None)
    last = {r.key: r.value for r in newest}
    appended = range(MIN_CLEANABLE * 2)
    assert last == {f"doc{n % 3}": b"v%d" % n for n in appended[-3:]}
    keys = [r.key for r in newest]
    assert len(keys) - len(set(keys)) < MIN_CLEANABLE  # what was cleaned holds each key once
    assert topic.begin(0) == 0  # compaction does not move the log start
    # Offsets keep their gaps: a reader between two records gets the next one.
    records, position = topic.fetch(0, 1, "read_uncommitted", 1)
    assert records and records[0].offset >= 1 and position > records[0].offset


def test_compaction_leaves_what_an_open_transaction_may_abort_and_drops_the_aborted() -> None:
    topic = Topic("t", 1, Retention(compacted=True))
    aborted, open_txn = Txn(), Txn()
    topic.append(0, "a", b"a1", (), None)
    topic.append(0, "a", b"a2 aborted", (), aborted)
    aborted.state = "aborted"
    topic.append(0, "b", b"b1", (), None)
    topic.append(0, "b", b"b2 open", (), open_txn)
    for n in range(MIN_CLEANABLE):
        topic.append(0, "c", b"c%d" % n, (), None)
    kept = values(topic)
    assert kept[:3] == [b"a1", b"b1", b"b2 open"]  # b1 stays until b2 is committed
    assert b"a2 aborted" not in kept
    assert values(topic, isolation="read_committed") == [b"a1", b"b1"]


def test_a_tombstone_is_kept_a_day_then_goes() -> None:
    topic = Topic("t", 1, Retention(compacted=True))
    topic.append(0, "old", b"state", (), None, NOW_MS - TOMBSTONE_RETENTION_MS - MINUTE_MS)
    topic.append(0, "old", b"", (), None, NOW_MS - TOMBSTONE_RETENTION_MS - MINUTE_MS)
    topic.append(0, "recent", b"state", (), None)
    topic.append(0, "recent", b"", (), None)
    for n in range(MIN_CLEANABLE):
        topic.append(0, "other", b"%d" % n, (), None)
    records, _ = topic.fetch(0, 0, "read_uncommitted", None)
    assert "old" not in {r.key for r in records}
    assert (records[0].key, records[0].value) == ("recent", b"")


def test_over_the_bound_a_compacted_topic_gives_its_superseded_records_only() -> None:
    size = RECORD_OVERHEAD + 1 + 100
    budget = Budget(10 * size)
    snaps = Topic("snaps", 1, Retention(compacted=True), budget)
    for n in range(8):  # two keys, each written four times: too few for a cleaning yet
        snaps.append(0, "ab"[n % 2], b"%03d" % n + b"s" * 97, (), None)
    assert len(values(snaps)) == 8
    other = Topic("other", 1, Retention(), budget)
    for _ in range(6):
        other.append(0, "k", b"o" * 100, (), None)
    # Over the bound: the superseded snapshots went; the newest of each key stays.
    assert sorted(v[:3] for v in values(snaps)) == [b"006", b"007"]
    assert budget.total() <= 10 * size
