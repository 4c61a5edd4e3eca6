"""JSON that the store and every reader can round-trip: the rules, a check, a repair.

Used for every event payload and every free-text field a client sends (`ValidText`). The
rules (the door refuses what breaks them with 422; `normalise` repairs what internal
emitters pass, and what an older database holds, so nothing stored can break a reader):

- strings are Unicode scalar values: no lone surrogates (`"\\ud800"` parses as JSON but can
  be neither encoded as UTF-8 nor served back), in keys as in values;
- numbers are finite: no NaN/Infinity (not JSON; `1e400` parses to infinity). Integers of
  any size are kept exactly (Python's parser already refuses more than 4,300 digits); a
  JavaScript reader sees those beyond 2^53 rounded, as it would anywhere;
- containers nest at most `MAX_DEPTH` levels (serialisers and parsers recurse);
- the whole payload encodes to at most `BIGTHREE_EVENT_PAYLOAD_MAX_BYTES`: a larger one is
  stored as `{"truncated": true, "original_bytes", "preview"}` (Claude Code hooks may post
  long transcripts; truncating keeps the event rather than failing the hook).

`normalise` also masks secrets (app.core.redaction) in every string, keys included.
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any

from pydantic import AfterValidator, Strict

from app.core.redaction import REDACTOR

MAX_DEPTH = 32
TOO_DEEP = "<nested too deep>"
_SURROGATE = re.compile("[\ud800-\udfff]")


class PayloadRefused(ValueError):
    """A value breaks one of the payload rules; the message says where and which."""


def _where(path: list[str]) -> str:
    return "".join(path) or "payload"


def check(value: Any, path: list[str] | None = None, depth: int = 0) -> None:
    """Raise `PayloadRefused` unless `value` (parsed JSON) obeys the rules above."""
    path = path if path is not None else []
    if isinstance(value, str):
        _check_text(value, path)
    elif isinstance(value, bool | int) or value is None:
        return
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise PayloadRefused(f"{_where(path)}: numbers must be finite (no NaN or Infinity)")
    elif isinstance(value, dict | list):
        if depth >= MAX_DEPTH:
            raise PayloadRefused(f"{_where(path)}: nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                _check_text(key, path)
                check(item, [*path, f"[{key!r}]"], depth + 1)
        else:
            for index, item in enumerate(value):
                check(item, [*path, f"[{index}]"], depth + 1)
    else:
        raise PayloadRefused(f"{_where(path)}: {type(value).__name__} is not a JSON value")


def _check_text(text: Any, path: list[str]) -> None:
    if not isinstance(text, str):
        raise PayloadRefused(f"{_where(path)}: object keys must be strings")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise PayloadRefused(
            f"{_where(path)}: text holds a lone surrogate (not valid Unicode)"
        ) from None


def _valid_text(text: str) -> str:
    _check_text(text, [])
    return text


# a free-text request field: refused (422) if it holds a lone surrogate
ValidText = Annotated[str, AfterValidator(_valid_text)]


def number_only(value: Any) -> Any:
    """For a `JsonInt` field's before-validator: never true/false or "3"."""
    if isinstance(value, bool | str):
        raise ValueError("must be an integer")
    return value


# a JSON integer in a strictly typed model: 3 or 3.0 (both are JSON Schema integers), not
# 3.5; its model refuses true and "3" with `number_only` (a validator here would hide the
# field's bounds from the OpenAPI document)
JsonInt = Annotated[int, Strict(False)]


def _text(text: str) -> str:
    masked = REDACTOR.memo.get(text)
    if masked is not None:  # seen before, and ASCII (the memo holds no other): nothing to repair
        return masked
    if not text.isascii():  # (ASCII is known without a scan) no surrogate can hide in it
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = _SURROGATE.sub("\ufffd", text)
    return REDACTOR.text(text)


def _repair(value: Any, depth: int) -> Any:
    # exact types first: every event payload passes here, and nearly all of its values are
    # plain str, int, float and dict (subclasses take the general path below)
    kind = type(value)
    if kind is str:
        return _text(value)
    if kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is dict and depth < MAX_DEPTH:
        return _repair_dict(value, depth)
    return _repair_other(value, depth)


def _repair_dict(value: dict[Any, Any], depth: int) -> dict[str, Any]:
    return {_text(k if type(k) is str else str(k)): _repair(v, depth + 1) for k, v in value.items()}


def _repair_other(value: Any, depth: int) -> Any:
    """Subclasses of the plain types (enum members kept or masked like their values),
    lists and tuples, containers past the depth limit, and any other object (its text)."""
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict | list | tuple):
        if depth >= MAX_DEPTH:
            return TOO_DEEP
        if isinstance(value, dict):
            return _repair_dict(value, depth)
        return [_repair(v, depth + 1) for v in value]
    return _text(str(value))


def repair(payload: dict[str, Any]) -> dict[str, Any]:
    """`payload` made to obey the rules but size (repaired, redacted); a new object."""
    repaired: dict[str, Any] = _repair(payload, 0)
    return repaired


def normalise(payload: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """`payload` made to obey the rules: repaired, redacted, and truncated when too large."""
    repaired = repair(payload)
    encoded = json.dumps(repaired, ensure_ascii=False, allow_nan=False)
    size = len(encoded.encode("utf-8"))
    if size <= max_bytes:
        return repaired
    return {"truncated": True, "original_bytes": size, "preview": encoded[: max_bytes // 2]}


def deeper_than(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether containers in `value` nest more than `limit` levels (stops at the first)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def text_may_nest_deeper(text: str, limit: int = MAX_DEPTH) -> bool:
    """Cheap pre-check on JSON text: fewer brackets than `limit` cannot nest deeper."""
    return text.count("[") + text.count("{") > limit


def decode_stored(text: str | bytes | None, max_bytes: int = 1 << 30) -> dict[str, Any]:
    """A stored payload column, read safely: whatever an older version stored (a lone
    surrogate, nesting a parser cannot follow, NaN) renders as a repaired payload."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        return {"unreadable": True, "preview": _text(raw[:512])}
    if not isinstance(value, dict):
        value = {"value": value}
    return normalise(value, max_bytes)
