"""structlog set-up: JSON when not on a TTY, pretty on one; secrets redacted on every line.

Request, agent and task ids are bound with `log_context` and so appear on every
line logged while they are in scope. Standard-library loggers (uvicorn, httpx) are routed
through the same processors.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from types import MappingProxyType
from typing import Any

import structlog

from app.core.redaction import REDACTED, REDACTOR

# field names whose whole value is a secret ("input_tokens" is a count, not a token)
_SECRET_KEYS = re.compile(
    r"(?:^|[_-])(authorization|api[_-]?key|apikey|token|secret|password|cookie)$", re.I
)


def _redact(obj: Any, depth: int = 0) -> Any:
    if depth > 6:
        return REDACTOR.value(obj)
    if isinstance(obj, dict):
        return {
            k: (
                REDACTED if isinstance(k, str) and _SECRET_KEYS.search(k) else _redact(v, depth + 1)
            )
            for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        return [_redact(v, depth + 1) for v in obj]
    return REDACTOR.value(obj)


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask secret-named fields, and configured secrets and
    secret-shaped text (app.core.redaction) anywhere in the event, message included."""
    for key in list(event_dict):
        value = event_dict[key]
        if _SECRET_KEYS.search(key) and key != "event":
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _redact(value)
    return event_dict


# the level `configure_logging` filters below (structlog's default configuration: none)
_level = logging.NOTSET


def logs_at(level: int) -> bool:
    """Whether a line at `level` would be logged: for callers that would do work only to
    build a line that is then filtered out (the access log, once per request)."""
    return level >= _level


# What `log_context` binds: one variable holding every bound value, so binding a scope
# costs one `set` and one `reset` whatever the number of keys
_BOUND: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "bigthree_log_context", default=MappingProxyType({})
)


class log_context:  # lower case: used like the context manager function it replaced
    """Bind `values` to every line logged in this scope (`merge_log_context` adds them),
    and put back what was bound before on the way out.

    Hand-written: `structlog.contextvars.bound_contextvars` first copies the whole context
    to save the old values, and `bind_contextvars` sets one variable per key; on every
    request and every task this cost 6.6 µs and 4.3 µs a scope, against ~1 µs here
    (bench/README.md, runs 13 and 16)."""

    __slots__ = ("_token", "_values")

    def __init__(self, **values: Any) -> None:
        self._values = values

    def __enter__(self) -> None:
        self._token = _BOUND.set({**_BOUND.get(), **self._values})

    def __exit__(self, *_exc: object) -> None:
        _BOUND.reset(self._token)


def bound_log_context() -> Mapping[str, Any]:
    """The values `log_context` scopes bind here and now."""
    return _BOUND.get()


def merge_log_context(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: the values bound by `log_context`, under the line's own keys
    (a key the line sets itself wins, as with structlog's `merge_contextvars`)."""
    for key, value in _BOUND.get().items():
        event_dict.setdefault(key, value)
    return event_dict


def configure_logging(log_format: str = "auto", level: str = "INFO") -> None:
    global _level
    _level = logging.getLevelName(level)
    use_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    shared: list[Any] = [
        merge_log_context,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        # below `level` a log call returns at once, before any processor runs
        wrapper_class=structlog.make_filtering_bound_logger(_level),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_secrets,  # last before rendering: tracebacks are text that leaves too
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
