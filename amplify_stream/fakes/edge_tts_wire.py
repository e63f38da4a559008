"""The edge-tts WebSocket wire format, as the fake edge-tts server speaks it.

Client to server, text frames: ``Header:Value`` lines, a blank line, a body;
``Path:speech.config`` (JSON: output format, which boundaries to send) then
``Path:ssml`` (the SSML: voice and XML-escaped text). Server to client: text frames the
same way (``turn.start``, ``response``, ``audio.metadata``, ``turn.end``) and binary audio
frames: a 2-byte big-endian header length N, N bytes of headers each ending with
``\\r\\n`` (``X-RequestId`` first: edge-tts reads the length bytes as part of the first
header line), then MP3 bytes. The last audio frame has no ``Content-Type`` and no data.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from email.utils import formatdate
from xml.sax.saxutils import escape, unescape

from edge_tts.drm import generate_sec_ms_gec_v2

from amplify_stream.speech.base import WordMark

REQUIRED_QUERY = ("TrustedClientToken", "ConnectionId", "Sec-MS-GEC", "Sec-MS-GEC-Version")
OUTPUT_FORMAT = "audio-24khz-48kbitrate-mono-mp3"
TICKS_PER_MS = 10_000
_VOICE = re.compile(r"<voice\s+name=['\"]([^'\"]*)['\"]\s*>")
_PROSODY = re.compile(r"<prosody[^>]*>(.*)</prosody>", re.DOTALL)
_LONG_VOICE = re.compile(r"^Microsoft Server Speech Text to Speech Voice \(([^,]+),\s*(.+)\)$")
_ENTITIES = {"&apos;": "'", "&quot;": '"'}


class WireError(ValueError):
    """A client message the service would not take."""


@dataclass(frozen=True, slots=True)
class ClientMessage:
    headers: dict[str, str]
    body: str

    @property
    def path(self) -> str:
        return self.headers.get("Path", "")


@dataclass(frozen=True, slots=True)
class SynthesisRequest:
    request_id: str
    voice: str  # as sent: "Microsoft Server Speech Text to Speech Voice (en-US, AriaNeural)"
    text: str  # unescaped

    @property
    def locale(self) -> str:
        """``en-US`` from the long voice name (or the short one)."""
        match = _LONG_VOICE.match(self.voice)
        if match:
            return match.group(1)
        return "-".join(self.voice.split("-")[:2])


def parse_client_message(data: str) -> ClientMessage:
    head, sep, body = data.partition("\r\n\r\n")
    if not sep:
        raise WireError("no blank line after the headers")
    headers: dict[str, str] = {}
    for line in head.split("\r\n"):
        key, colon, value = line.partition(":")
        if not colon:
            raise WireError(f"bad header line {line!r}")
        headers[key.strip()] = value.strip()
    return ClientMessage(headers, body)


def word_boundaries_wanted(config: ClientMessage) -> bool:
    """From ``speech.config``: whether the client asked for word boundaries."""
    try:
        audio = json.loads(config.body)["context"]["synthesis"]["audio"]
    except (ValueError, KeyError, TypeError) as exc:
        raise WireError("speech.config is not the expected JSON") from exc
    if audio.get("outputFormat") != OUTPUT_FORMAT:
        raise WireError(f"unsupported output format {audio.get('outputFormat')!r}")
    return str(audio.get("metadataoptions", {}).get("wordBoundaryEnabled")) == "true"


def parse_ssml(message: ClientMessage) -> SynthesisRequest:
    voice, text = _VOICE.search(message.body), _PROSODY.search(message.body)
    if voice is None or text is None:
        raise WireError("SSML without a voice or prosody element")
    return SynthesisRequest(
        request_id=message.headers.get("X-RequestId", uuid.uuid4().hex),
        voice=voice.group(1),
        text=unescape(text.group(1), _ENTITIES),
    )


def missing_query(query: dict[str, str]) -> list[str]:
    return [name for name in REQUIRED_QUERY if not query.get(name)]


def token_valid(token: str, server_now: float) -> bool:
    """Whether ``Sec-MS-GEC`` is the one for the server's clock (its 5-minute window, or
    either neighbour: clocks and Date headers are rounded)."""
    return token in {generate_sec_ms_gec_v2(server_now + d) for d in (-300.0, 0.0, 300.0)}


def http_date(server_now: float) -> str:
    return formatdate(server_now, usegmt=True)


def text_frame(request_id: str, path: str, body: object) -> str:
    return (
        f"X-RequestId:{request_id}\r\n"
        "Content-Type:application/json; charset=utf-8\r\n"
        f"Path:{path}\r\n\r\n"
        f"{json.dumps(body, separators=(',', ':'))}"
    )


def turn_start(request_id: str) -> str:
    return text_frame(request_id, "turn.start", {"context": {"serviceTag": uuid.uuid4().hex}})


def response(request_id: str, stream_id: str) -> str:
    body = {
        "context": {"serviceTag": uuid.uuid4().hex},
        "audio": {"type": "inline", "streamId": stream_id},
    }
    return text_frame(request_id, "response", body)


def turn_end(request_id: str) -> str:
    return text_frame(request_id, "turn.end", {"context": {"serviceTag": uuid.uuid4().hex}})


def word_boundary(request_id: str, mark: WordMark) -> str:
    """One ``audio.metadata`` frame: edge-tts reads one boundary per frame."""
    text = escape(mark.text)
    body = {
        "Metadata": [
            {
                "Type": "WordBoundary",
                "Data": {
                    "Offset": round(mark.offset_ms * TICKS_PER_MS),
                    "Duration": round(mark.duration_ms * TICKS_PER_MS),
                    "text": {"Text": text, "Length": len(text), "BoundaryType": "WordBoundary"},
                },
            }
        ]
    }
    return text_frame(request_id, "audio.metadata", body)


def audio_frame(request_id: str, stream_id: str, mp3: bytes) -> bytes:
    """A binary audio frame; ``mp3=b""`` makes the closing one (no Content-Type)."""
    content_type = "Content-Type:audio/mpeg\r\n" if mp3 else ""
    headers = (
        f"X-RequestId:{request_id}\r\n{content_type}X-StreamId:{stream_id}\r\nPath:audio\r\n"
    ).encode()
    return len(headers).to_bytes(2, "big") + headers + mp3
