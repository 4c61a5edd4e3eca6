"""Serving one provider request: record it, take its step, wait, then answer or misbehave.

Order of precedence for a step: `malformed` (200, unparseable body) > error (`status` >= 400
or `error` set; also `stream_error` on a non-streaming request) > a completion, streamed or
not; `stream_error` and `reset_mid_body` then shape how a completion's body is cut.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from app.fake_upstream import computer_use
from app.fake_upstream.dialect import Dialect, as_dict, dumps
from app.fake_upstream.faults import WireResponse, chunk_body, malformed, pause
from app.fake_upstream.records import RequestLog
from app.fake_upstream.reply import build_reply
from app.fake_upstream.script import ErrorSpec, ScriptBook, Step

SSE = "text/event-stream"
JSON = "application/json"


@dataclass
class FakeState:
    """Everything the fake remembers: the scripts and the request log."""

    scripts: ScriptBook = field(default_factory=ScriptBook)
    log: RequestLog = field(default_factory=RequestLog)
    screens: list[computer_use.ScreenRecord] = field(default_factory=list)

    def reset(self) -> None:
        self.scripts.clear()
        self.log.clear()
        self.screens.clear()


async def _read_json(request: Request) -> tuple[Any, bool]:
    raw = await request.body()
    try:
        return json.loads(raw), True
    except ValueError:
        return raw.decode(errors="replace"), False


async def serve(
    request: Request, state: FakeState, dialect: Dialect, *, model: str | None, stream: bool | None
) -> Response:
    """Handle a provider call; `model`/`stream` come from the URL when the protocol says so."""
    body, is_json = await _read_json(request)
    model = model if model is not None else str(as_dict(body).get("model") or "")
    state.log.record(
        path=request.url.path,
        model=model,
        headers=dict(request.headers),
        query=dict(request.query_params),
        body=body,
    )
    request_id = dialect.request_id()
    if not is_json:
        problem = ErrorSpec(message="The request body is not valid JSON.")
        payload = dumps(dialect.error_body(400, problem, None, request_id))
        return WireResponse(
            [payload],
            status_code=400,
            content_length=True,
            headers={dialect.request_id_header: request_id},
        )
    default: Callable[[], Step] = Step
    if computer_use.is_computer_use(body):
        records, unfit = computer_use.check(body, model)
        if unfit is not None:
            payload = dumps(dialect.error_body(400, ErrorSpec(message=unfit), None, request_id))
            return WireResponse(
                [payload],
                status_code=400,
                content_length=True,
                headers={dialect.request_id_header: request_id},
            )
        state.screens.extend(records)
        base = str(request.base_url)
        default = partial(computer_use.default_step, body, base)
    step = state.scripts.take(model) or default()
    if not await pause(request, step.latency_s):
        return Response(status_code=499)  # the client left; nobody will read this
    streaming = bool(as_dict(body).get("stream")) if stream is None else stream
    return answer(dialect, step, body, model=model, stream=streaming, request_id=request_id)


def answer(
    dialect: Dialect, step: Step, body: Any, *, model: str, stream: bool, request_id: str
) -> Response:
    """The response a step makes for a (recorded, already delayed) request."""
    headers = {dialect.request_id_header: request_id, **step.headers}
    if step.malformed:
        return malformed(stream=stream, headers=headers)
    if step.is_error or (step.stream_error is not None and not stream):
        error = step.error
        if error is None and step.stream_error is not None:
            error = ErrorSpec(type=step.stream_error.type, message=step.stream_error.message)
        payload = dialect.error_body(step.error_status, error, step.retry_delay_s, request_id)
        return _json_response(dumps(payload), step.error_status, headers, step)
    reply = build_reply(step, dialect.read_prompt(body), id_prefix=dialect.tool_id_prefix)
    if not stream:
        return _json_response(dumps(dialect.render(reply, model)), 200, headers, step)
    events = dialect.stream_events(reply, model, body)
    if step.stream_error is not None:
        events = [events[0], dialect.stream_error_event(step.stream_error, request_id)]
    return WireResponse(
        events,
        headers=headers,
        media_type=SSE,
        drip_s=step.drip_s,
        cut_after=1 if step.reset_mid_body else None,
    )


def _json_response(payload: bytes, status: int, headers: dict[str, str], step: Step) -> Response:
    """A JSON body with a true content-length, dripped in 4 slices and/or cut halfway."""
    parts = chunk_body(payload, 4) if step.drip_s > 0 or step.reset_mid_body else [payload]
    return WireResponse(
        parts,
        status_code=status,
        headers=headers,
        media_type=JSON,
        drip_s=step.drip_s,
        cut_after=max(1, len(parts) // 2) if step.reset_mid_body else None,
        content_length=True,
    )
