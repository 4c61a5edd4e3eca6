"""The client side of `WS /v1/realtime`: the messages a client sends, and the close codes.

Client → service, one JSON text frame each (docs/realtime.md has examples):

    {"type": "input_text", "text": "..."}          a user turn; the model answers it
    {"type": "input_audio", "audio": "<base64>"}   PCM16, 24 kHz mono, appended to the turn
    {"type": "commit"}                             end the audio turn; the model answers it
    {"type": "cancel"}                             interrupt the response in progress
    {"type": "close"}                              end the session (close code 1000)
    {"type": "ping"}                               answered with {"type": "pong"}

A message that is JSON but not one of these gets an `error` frame and the session goes on;
a binary frame closes with 1003, a frame that is not JSON with 1007.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from app.core.redaction import redact_value

# close codes (RFC 6455 ones, and 4xxx for this service)
NORMAL = 1000
GOING_AWAY = 1001  # the service is shutting down
UNSUPPORTED_DATA = 1003  # a binary frame
INVALID_PAYLOAD = 1007  # a frame that is not JSON
INTERNAL_ERROR = 1011
TRY_AGAIN_LATER = 1013  # too many sessions open
SESSION_TIME_LIMIT = 4001  # the session reached BIGTHREE_REALTIME_MAX_SESSION_S
SLOW_CLIENT = 4008  # the client read too slowly
UPSTREAM_CLOSED = 4502  # upstream dropped the session: reconnect for a new one
UPSTREAM_UNAVAILABLE = 4503  # upstream could not be reached (or refused): try again later

MAX_TEXT_CHARS = 20_000


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputText(_Message):
    type: Literal["input_text"]
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)


class InputAudio(_Message):
    type: Literal["input_audio"]
    audio: str = Field(min_length=1)

    @field_validator("audio")
    @classmethod
    def _is_base64(cls, value: str) -> str:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("audio must be base64 (PCM16, 24 kHz mono)") from None
        return value


class Commit(_Message):
    type: Literal["commit"]


class Cancel(_Message):
    type: Literal["cancel"]


class Close(_Message):
    type: Literal["close"]


class Ping(_Message):
    type: Literal["ping"]


ClientMessage = Annotated[
    InputText | InputAudio | Commit | Cancel | Close | Ping, Field(discriminator="type")
]
_adapter: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)


class NotJSON(ValueError):
    """The frame is not a JSON object (the session closes with 1007)."""


class InvalidMessage(ValueError):
    """JSON, but not a message this protocol knows (an `error` frame; the session goes on)."""


def parse_client_message(text: str) -> ClientMessage:
    try:
        raw = json.loads(text)
    except ValueError:
        raise NotJSON("frames must be JSON text") from None
    if not isinstance(raw, dict):
        raise NotJSON("frames must be JSON objects")
    try:
        return _adapter.validate_python(raw)
    except ValidationError as exc:
        raise InvalidMessage(_describe(exc, raw)) from None


def _describe(exc: ValidationError, raw: dict[str, Any]) -> str:
    kinds = "input_text, input_audio, commit, cancel, close, ping"
    if raw.get("type") not in kinds.split(", "):
        return f"unknown message type {raw.get('type')!r}; expected one of: {kinds}"
    err = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in err["loc"][1:]) or "message"
    return f"invalid {raw['type']}: {where}: {err['msg']}"


def error_frame(
    kind: str, message: str, *, source: str = "service", **extra: Any
) -> dict[str, Any]:
    """`{"type": "error", "source": "service"|"upstream", "error": {"type", "message", ...}}`,
    redacted (an upstream's message may echo the key it was sent)."""
    error = {"type": kind, "message": message, **extra}
    return {"type": "error", "source": source, "error": redact_value(error)}


@dataclass(frozen=True, slots=True)
class SessionEnd:
    """How a session ended: the close code and reason the client gets, and a metric label."""

    code: int
    reason: str
    outcome: str  # bigthree_realtime_sessions_total{reason}

    @property
    def close_reason(self) -> str:
        """The reason cut to what a close frame can carry (123 bytes)."""
        return self.reason.encode()[:120].decode(errors="ignore")


# upstream delta events (GA names, then the beta ones) → the client frame and its field
_DELTAS = {
    "response.output_text.delta": ("text.delta", "delta"),
    "response.text.delta": ("text.delta", "delta"),
    "response.output_audio.delta": ("audio.delta", "audio"),
    "response.audio.delta": ("audio.delta", "audio"),
    "response.output_audio_transcript.delta": ("transcript.delta", "delta"),
    "response.audio_transcript.delta": ("transcript.delta", "delta"),
}


def delta_frame(event: dict[str, Any]) -> dict[str, Any] | None:
    """The client frame for an upstream text/audio/transcript delta, or None."""
    kind = _DELTAS.get(str(event.get("type")))
    if kind is None:
        return None
    frame_type, field = kind
    return {
        "type": frame_type,
        "response_id": event.get("response_id"),
        field: event.get("delta", ""),
    }
