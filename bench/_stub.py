"""A raw-ASGI OpenAI-compatible stub: the fastest upstream this machine can serve, for the
hot-path rows (the scriptable fake upstream costs more CPU per call than the service does).

    python -m bench._stub --port 8125

`POST /v1/chat/completions` answers a fixed completion after the latency named by the
model: `lat-0` at once, `lat-200` after 200 ms. `GET /health` answers 200.
"""

from __future__ import annotations

import argparse
import asyncio
import json

import uvicorn
from starlette.types import Receive, Scope, Send

from app.server import uvicorn_config
from bench._asgi import not_http, read_body, send_json

_HEADERS = [(b"content-type", b"application/json"), (b"x-request-id", b"req_stub")]
_BODIES: dict[str, bytes] = {}


def _body(model: str) -> bytes:
    body = _BODIES.get(model)
    if body is None:
        body = _BODIES[model] = json.dumps(
            {
                "id": "chatcmpl-stub",
                "object": "chat.completion",
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "ok"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
            }
        ).encode()
    return body


def _latency_s(model: str) -> float:
    _, _, value = model.partition("lat-")
    return float(value) / 1000 if value.isdigit() else 0.0


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if await not_http(scope, receive, send):
        return
    request = await read_body(receive)
    if scope["path"] == "/health":
        body = b'{"status":"ok"}'
    else:
        model = json.loads(request or b"{}").get("model", "lat-0")
        latency = _latency_s(model)
        if latency:
            await asyncio.sleep(latency)
        body = _body(model)
    await send_json(send, body, headers=_HEADERS)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="OpenAI-compatible stub for the benchmark")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.Server(uvicorn_config(app, host=args.host, port=args.port)).run()
