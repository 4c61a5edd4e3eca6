"""A lane past FastAPI's router for the few routes clients call most often.

Hand-written because no library gives "this FastAPI route, without FastAPI's per-request
machinery": on this service's ~60 routes, route matching (a regex per route, tried in order)
and dependency solving cost three to four times the work of a task read itself
(bench/README.md, run 8). The lane is the innermost of the layers every request gets
(`_front` in app/main.py: request ids, access log, metrics, the unhandled-error guard and
the body limit all still apply) and takes a request only when it can answer exactly as the
FastAPI route would: the same auth check, the same body parsing (`json.loads`, then the
route's model in Python mode, as FastAPI does), the same manager call and the same error
rendering (`app_error_response`). Anything else — a query string other than a plain
`wait=<seconds>` on a route that takes one, a body that does not validate, a chunked or
non-JSON body, a failed auth, a handler that declines — goes on to FastAPI untouched (the
body replayed), so FastAPI stays the definition of every route: its OpenAPI document, its
validation errors and its 401s.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.asgi import JSON, scope_header
from app.core.config import Settings
from app.core.errors import AppError, app_error_response
from app.core.security import extract_bearer, key_is_valid

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class LaneRequest:
    scope: Scope
    param: str  # the path's one variable part ("" for a path without one)
    body: bytes
    wait_s: float = 0.0  # the `wait` query parameter, on a route that `takes_wait`

    @property
    def app(self) -> Any:
        """The application (`provided(request, ...)` reads its state, as for a route)."""
        return self.scope["app"]

    def error(self, exc: AppError) -> Response:
        """`exc` as FastAPI's exception handler would answer it."""
        return app_error_response((self.scope.get("state") or {}).get("request_id"), exc)


# None: not taken here, FastAPI answers
LaneHandler = Callable[[LaneRequest], Awaitable[Response | None]]


@dataclass(frozen=True, slots=True)
class LaneEntry:
    """A FastAPI route (method + path template, at most one path parameter) the lane may
    answer with `handler`; `takes_body`: a JSON request body is read and passed on;
    `takes_wait`: a query string of `wait=<seconds>` alone (digits, a decimal point) is
    read and passed on; `public`: the route asks for no key."""

    method: str
    template: str
    handler: LaneHandler
    takes_body: bool = False
    takes_wait: bool = False
    public: bool = False


def parse_body(model: type[M], raw: bytes) -> M | None:
    """`raw` as `model`, the way FastAPI reads a JSON body; None when it would refuse it
    (FastAPI then answers with its own error)."""
    try:
        return model.model_validate(json.loads(raw))
    except (ValueError, RecursionError):  # JSON, UTF-8 and validation errors are ValueErrors
        return None


@dataclass(frozen=True, slots=True)
class _Compiled:
    pattern: re.Pattern[str]
    entry: LaneEntry
    route: BaseRoute  # FastAPI's route, named in the scope for the metrics' handler label


def _compile(entry: LaneEntry, routes: Sequence[BaseRoute]) -> _Compiled:
    for route in routes:
        if (
            isinstance(route, APIRoute)
            and route.path == entry.template
            and entry.method in (route.methods or ())
        ):
            pattern = re.sub(r"\\\{[a-z_]+\\\}", "([^/]+)", re.escape(entry.template))
            return _Compiled(re.compile(pattern), entry, route)
    raise LookupError(f"the fast lane names no FastAPI route: {entry.method} {entry.template}")


class FastLane:
    """Pure ASGI middleware; innermost, so everything outside it applies to the lane too."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute], lane: Sequence[LaneEntry]):
        self.app = app
        self._by_method: dict[str, list[_Compiled]] = {}
        for entry in lane:
            self._by_method.setdefault(entry.method, []).append(_compile(entry, routes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = self._match(scope) if scope["type"] == "http" else None
        if match is None:
            await self.app(scope, receive, send)
            return
        compiled, param, wait_s = match
        body = b""
        if compiled.entry.takes_body:
            if not _has_json_length(scope):  # chunked or not JSON: FastAPI's to judge
                await self.app(scope, receive, send)
                return
            read = await _read_body(receive)
            if read is None:
                return  # the client went away: nobody to answer
            body = read
            receive = _replaying(body, receive)
        scope["route"] = compiled.route  # FastAPI's, should the lane decline (or fail)
        response = await compiled.entry.handler(LaneRequest(scope, param, body, wait_s))
        if response is None:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)

    def _match(self, scope: Scope) -> tuple[_Compiled, str, float] | None:
        candidates = self._by_method.get(scope["method"])
        if not candidates:
            return None
        query: bytes = scope["query_string"]
        wait = _WAIT.fullmatch(query) if query else None
        if query and wait is None:
            return None
        path = scope["path"]
        for compiled in candidates:
            found = compiled.pattern.fullmatch(path)
            if found:
                if wait is not None and not compiled.entry.takes_wait:
                    return None
                if not (compiled.entry.public or _authorized(scope)):
                    return None
                param = found.group(1) if found.groups() else ""
                return compiled, param, float(wait.group(1)) if wait is not None else 0.0
        return None


# `wait=<seconds>` as FastAPI's `float` query parameter reads it, in the plain spellings;
# anything else (a sign, an exponent, `inf`, a second parameter) is FastAPI's to judge
_WAIT = re.compile(rb"wait=(\d{1,9}(?:\.\d{1,9})?)")


def _authorized(scope: Scope) -> bool:
    """The check every lane route's AuthDep makes; a refused request goes on to FastAPI,
    which answers the 401."""
    settings: Settings = scope["app"].state.settings
    if not settings.auth_enabled:
        return True
    return key_is_valid(settings, extract_bearer(_text_header(scope, b"authorization")))


def _has_json_length(scope: Scope) -> bool:
    """A declared length (the body limit has already checked it) and a JSON media type."""
    length = _text_header(scope, b"content-length")
    media = (_text_header(scope, b"content-type") or "").partition(";")[0].strip().lower()
    return length is not None and length.isdigit() and int(length) > 0 and media == JSON


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that hands FastAPI the body already read, then defers to the real one."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


def _text_header(scope: Scope, name: bytes) -> str | None:
    value = scope_header(scope, name)
    return None if value is None else value.decode("latin-1")
