"""The one redaction point: every secret the service knows, masked wherever text leaves it.

It knows the configured secrets themselves (BIGTHREE_API_KEYS, the provider keys: added by
`remember_secrets` when the app is built) and secret-shaped text that is not configured here
(a rejected bearer token, a `?token=` or `?key=` query value in a logged URL, `sk-...` /
`AIza...` keys a provider echoes back). Applied to: log lines (the structlog processor in
app.core.logging), event payloads (the bus normalises every payload), task errors
(`TaskError`), and error response bodies (`app.core.errors.problem`).

The set of secrets is process-wide on purpose: log records from any library (uvicorn's
WebSocket access lines included) pass through one processor that cannot be handed the app's
state, and the secrets are process configuration like the logging set-up itself.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import Any

from pydantic import SecretStr

REDACTED = "***"
# short ASCII strings are masked once and the answer kept (event payload keys and values
# such as "provider", "openai" or "input_tokens" recur in every event; each mask is two
# regex passes); the memo is emptied when full, and replaced whenever a secret is learnt
MEMO_MAX_CHARS = 64
MEMO_ENTRIES = 4096
# configured secrets shorter than this are not masked by value (they would mask ordinary
# words); every configurable secret is longer (API keys need 16 characters)
MIN_SECRET_CHARS = 8
_SHAPES = re.compile(
    r"(?P<bearer>Bearer\s+)[A-Za-z0-9._~+/=-]{6,}"
    r"|(?P<query>[?&](?:token|key|api_key|apikey|access_token)=)[^&\s\"'#]+"
    r"|sk-[A-Za-z0-9_-]{8,}"
    r"|AIza[0-9A-Za-z_-]{20,}",
    re.IGNORECASE,
)


def _shape_sub(match: re.Match[str]) -> str:
    prefix = match.group("bearer") or match.group("query") or ""
    return prefix + REDACTED


class Redactor:
    """Masks known secrets and secret-shaped text in strings and JSON-like values."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._known: re.Pattern[str] | None = None
        # short ASCII strings masked already, text -> masked; read by `jsonsafe` before
        # anything else (nearly every string of an event payload is one of these: ASCII, so
        # no lone surrogate to repair); replaced, never changed in place, when a secret is
        # learnt
        self.memo: dict[str, str] = {}
        self._lock = threading.Lock()

    def add(self, secrets: Iterable[str]) -> None:
        with self._lock:
            fresh = {s for s in secrets if len(s) >= MIN_SECRET_CHARS} - self._secrets
            if not fresh:
                return
            self._secrets |= fresh
            # longest first, so a key that contains another is masked whole
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._known = re.compile("|".join(re.escape(s) for s in ordered))
            # after the pattern: a reader that finds the new memo also finds the new
            # pattern, and an answer masked without it lands in the memo let go here
            self.memo = {}

    def text(self, value: str) -> str:
        if len(value) > MEMO_MAX_CHARS or not value.isascii():
            return self._mask(value, self._known)
        memo = self.memo  # before the pattern (see `add`)
        masked = memo.get(value)
        if masked is None:
            masked = self._mask(value, self._known)
            if len(memo) >= MEMO_ENTRIES:
                memo.clear()
            memo[value] = masked
        return masked

    @staticmethod
    def _mask(value: str, known: re.Pattern[str] | None) -> str:
        if known is not None:
            value = known.sub(REDACTED, value)
        return _SHAPES.sub(_shape_sub, value)

    def value(self, obj: Any, depth: int = 0) -> Any:
        """`obj` with every string in it (keys included) redacted; other values kept."""
        if isinstance(obj, str):
            return self.text(obj)
        if depth > 64:
            return obj
        if isinstance(obj, dict):
            return {
                (self.text(k) if isinstance(k, str) else k): self.value(v, depth + 1)
                for k, v in obj.items()
            }
        if isinstance(obj, list | tuple):
            return [self.value(v, depth + 1) for v in obj]
        return obj


REDACTOR = Redactor()


def redact(text: str) -> str:
    return REDACTOR.text(text)


def redact_value(obj: Any) -> Any:
    return REDACTOR.value(obj)


def remember_secrets(secrets: Iterable[SecretStr | None]) -> None:
    """Teach the redactor the configured secrets (API keys, provider keys)."""
    REDACTOR.add(s.get_secret_value() for s in secrets if s is not None)
