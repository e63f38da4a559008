"""The settings, one group per part of the service; ``Settings`` joins them.

Each group is a plain model a part can ask for alone (``create_bus(settings: BusSettings)``
needs nothing else). The environment names stay flat (``AMPLIFY_<FIELD>``, as the
contract names them), so the groups are joined by inheritance, not nested: pydantic-settings
reads nested models only from ``AMPLIFY_<GROUP>__<FIELD>`` names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from amplify_stream.config.rules import normalize_origin


class ServiceSettings(BaseModel):
    """The process: where it listens, keeps its data, and logs."""

    env: Literal["development", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("./data")
    database_url: str | None = None
    log_level: str = "INFO"
    # json: one object per line with story_id, for log pipelines; text: for a terminal.
    log_format: Literal["json", "text"] = "json"
    # The event loop of the gateway and worker processes: uvloop (when installed) costs
    # less per socket event than asyncio's own; "asyncio" forces the standard one.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    # Workers serve /metrics on this port when set (the gateway serves it on its own).
    metrics_port: int | None = None

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'amplify.db'}"


class BusSettings(BaseModel):
    """The bus: which one, and how Kafka is reached and waited for."""

    bus: Literal["memory", "kafka"] = "memory"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = "amplify"
    # Partitions of each topic a worker group reads: the most members a group can have.
    topic_partitions: int = Field(default=6, ge=1)
    # Partitions of the stream topic, its own count: a gateway reads its share of them
    # (its home slice) plus those its sockets watch, so more partitions mean finer
    # slices. Fixed at creation: adding partitions later moves keys (a running story's
    # records would land elsewhere). Best without a common factor with topic_partitions,
    # since a story's id picks both its stream and its stories partition.
    stream_partitions: int = Field(default=16, ge=1)
    # How long a gateway reads on a stream partition after its last socket there left
    # (``gateway/relay_interest.py``): a client that comes back soon costs no restart.
    relay_linger_s: float = Field(default=30.0, ge=0)
    # Linger for the low-latency stream producer; a few ms batches a burst of deltas.
    stream_linger_ms: int = 2
    # A worker that stops heartbeating loses its stories to another after this long.
    kafka_session_timeout_ms: int = 10_000
    # How long an idle fetch waits at the broker. A record wakes it at once; the wait only
    # sets how often an idle consumer asks again (each ask costs it and the broker CPU).
    kafka_fetch_max_wait_ms: int = Field(default=500, ge=1, le=30_000)
    kafka_request_timeout_ms: int = 15_000
    # An open transaction of a killed worker holds read_committed readers back this long.
    kafka_transaction_timeout_ms: int = 10_000
    # How long the gateway waits for the bus before answering 503 (nothing accepted).
    bus_timeout_s: float = 5.0
    # The memory bus keeps at most this many bytes of records, all topics together (on
    # top of each topic's retention): the oldest of the fullest partition go first, never
    # one a reader of the topic has yet to read. Bounds what `make run` holds however long
    # it serves; the stream topic's share is how far back a client can resume (past it,
    # cursor_expired). 32 MiB is minutes of a busy small team's tokens; what a process
    # holds on top of its records grows with this bound (allocator fragmentation): the
    # soak measured +10% from minute 3 to 10 at 48 MiB, +14% at 64 MiB.
    memory_bus_bytes: int = Field(default=32 * 1024 * 1024, ge=1024 * 1024)

    def topic(self, name: str) -> str:
        """The full topic name: ``topic("stories")`` -> ``amplify.stories.v1``."""
        return f"{self.topic_prefix}.{name}.v1"


class AuthSettings(BaseModel):
    """Accounts and who may call. HS256 signs with jwt_secret; RS256/EdDSA with PEM key
    files (a gateway holding only the public key checks tokens but does not issue them)."""

    jwt_algorithm: Literal["HS256", "RS256", "EdDSA"] = "HS256"
    jwt_secret: SecretStr | None = None
    jwt_private_key_file: Path | None = None
    jwt_public_key_file: Path | None = None
    jwt_issuer: str = "amplify-stream"
    jwt_audience: str = "amplify-stream"
    access_token_ttl_s: int = 3600
    bcrypt_rounds: int = Field(default=12, ge=4, le=31)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            value = [o for o in value.split(",") if o.strip()]
        if isinstance(value, list):
            # A typo must not silently turn CORS off: refuse what is not an origin.
            return [normalize_origin(o) if isinstance(o, str) else o for o in value]
        return value


class LimitsSettings(BaseModel):
    """What one client may send, and how often."""

    max_story_chars: int = 50_000
    max_title_chars: int = 200
    max_ws_frame_bytes: int = 256 * 1024
    # Per user: stories accepted in any 60 s, and stories not yet completed at one time.
    submissions_per_minute: int = Field(default=30, ge=1)
    max_running_per_user: int = Field(default=5, ge=1)
    # Sign-in attempts in any 60 s (each one costs a bcrypt check), per username and per
    # client address; registrations count against the address too.
    login_attempts_per_minute_per_user: int = Field(default=10, ge=1)
    login_attempts_per_minute_per_address: int = Field(default=30, ge=1)
    # Live documents, per user: edits in any second (a burst of typing batched per frame
    # stays far below) and documents held.
    doc_edits_per_second: int = Field(default=60, ge=1)
    max_documents_per_user: int = Field(default=100, ge=1)
    # Changes in one doc.edit frame.
    max_doc_changes: int = Field(default=256, ge=1)
    # Redis (redis://host:port/db), when set: a user's edits a second and Gemini calls in
    # flight are counted there, once for all the gateways and documents owners that share
    # it. Unset, each process counts its own (the embedded default). Stories a minute and
    # running are counted in the store, which every gateway shares anyway.
    redis_url: str | None = None


class WorkerSettings(BaseModel):
    """The workers: how much each takes on, and how it stops."""

    enhancer_provider: Literal["auto", "gemini", "local"] = "auto"
    enhancer_concurrency: int = 16
    # Stories one narrator holds at once (each waits for its sentences; cheap), and how
    # many of them synthesize at the same moment.
    narrator_stories: int = 1024
    narrator_concurrency: int = 4
    # On SIGTERM a worker finishes what it runs for this long, then hands the rest back
    # (uncommitted: another member of its group runs it again).
    worker_shutdown_grace_s: float = Field(default=10.0, ge=0)
    # Pacing of the offline analyzer's rewrite, so it streams like a model does.
    local_piece_delay_ms: int = 15


class DocumentSettings(BaseModel):
    """Live documents (docs/protocol.md section 6): when passes run, what one user may do."""

    # Quiet after an edit before the changed paragraphs are read again.
    doc_idle_ms: int = Field(default=300, ge=0)
    # How often an owner writes the snapshots of the documents that changed (and commits
    # its place in the edit log with them): a new owner folds at most this much again.
    doc_snapshot_ms: int = Field(default=1000, ge=10)
    # A document with no command for this long, whose snapshot holds it whole, leaves its
    # owner's memory; its next command reads it back from that snapshot.
    doc_evict_s: float = Field(default=300, gt=0)
    # Per user: Gemini calls in flight at once.
    doc_gemini_calls_per_user: int = Field(default=2, ge=1)


class GeminiSettings(BaseModel):
    """The Gemini provider (google-genai)."""

    gemini_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("GEMINI_API_KEY", "AMPLIFY_GEMINI_API_KEY")
    )
    gemini_model: str = "gemini-2.5-flash"
    gemini_base_url: str | None = None
    gemini_retry_attempts: int = 4
    gemini_retry_initial_delay_s: float = 0.5
    gemini_retry_max_delay_s: float = 8.0
    # No piece from the provider for this long ends the story as failed.
    gemini_idle_timeout_s: float = 30.0


class SpeechSettings(BaseModel):
    """Narration: which speech provider, which voice, where the files go."""

    speech_provider: Literal["auto", "edge", "espeak"] = "auto"
    # None: the provider's own default ("en-US-AriaNeural" for edge, "en-us" for espeak).
    voice: str | None = None
    edge_tts_url: str | None = None
    # Where narration files go; None means data_dir / "audio".
    audio_dir: Path | None = None
    tts_retry_attempts: int = 3
    tts_retry_initial_delay_s: float = 0.5
    tts_timeout_s: float = 20.0
    espeak_rate_wpm: int = 175
