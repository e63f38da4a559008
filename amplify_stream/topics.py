"""The topic names (docs/protocol.md section 4) and how they are created."""

from __future__ import annotations

from dataclasses import dataclass

from amplify_stream.bus.base import TopicSpec
from amplify_stream.config.groups import BusSettings

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class Topics:
    stories: str
    stream: str
    outcomes: str
    dlq: str
    segments: str
    # Live documents: the edit log (commands, key doc_id), and each document's newest
    # snapshot (compacted, partitioned like the log: a partition's owner reads its own).
    documents: str
    snapshots: str
    partitions: int
    stream_partitions: int

    @classmethod
    def from_settings(cls, settings: BusSettings) -> Topics:
        return cls(
            stories=settings.topic("stories"),
            stream=settings.topic("stream"),
            outcomes=settings.topic("outcomes"),
            dlq=settings.topic("dlq"),
            segments=settings.topic("segments"),
            documents=settings.topic("documents"),
            snapshots=settings.topic("document-snapshots"),
            partitions=settings.topic_partitions,
            stream_partitions=settings.stream_partitions,
        )

    def specs(self) -> list[TopicSpec]:
        # The stream topic is the resume window: a day is plenty for a client to come back.
        return [
            TopicSpec(self.stories, self.partitions, retention_ms=7 * DAY_MS),
            TopicSpec(self.stream, self.stream_partitions, retention_ms=DAY_MS),
            TopicSpec(self.outcomes, self.partitions, retention_ms=30 * DAY_MS),
            TopicSpec(self.dlq, 1, retention_ms=30 * DAY_MS),
            TopicSpec(self.segments, self.partitions, retention_ms=DAY_MS),
            # The log needs only what the last snapshot does not hold; a week is ample.
            TopicSpec(self.documents, self.partitions, retention_ms=7 * DAY_MS),
            TopicSpec(self.snapshots, self.partitions, compacted=True),
        ]
