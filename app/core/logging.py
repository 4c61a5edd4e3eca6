"""structlog set-up: JSON when not on a TTY, pretty on one; secrets redacted on every line.

Request, agent and task ids are bound with `structlog.contextvars` and so appear on every
line logged while they are in scope. Standard-library loggers (uvicorn, httpx) are routed
through the same processors.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
from collections.abc import Iterator, MutableMapping
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


@contextlib.contextmanager
def log_context(**values: Any) -> Iterator[None]:
    """Bind `values` to every line logged in this scope, and put back what was bound
    before on the way out. `structlog.contextvars.bound_contextvars` does the same but
    first copies the whole context to save the old values, on every request and every
    task: 6.6 µs a scope with thirty context variables set, against 2.8 µs here, where
    the variables' own tokens (structlog's `reset_contextvars`) restore them exactly."""
    tokens = structlog.contextvars.bind_contextvars(**values)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


def configure_logging(log_format: str = "auto", level: str = "INFO") -> None:
    use_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
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
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
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
