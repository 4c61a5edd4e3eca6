"""Small helpers over the service's HTTP and WebSocket API, for tests and benchmarks."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

from tests.support.procs import wait_until

FINISHED = {"succeeded", "failed", "cancelled", "timed_out", "interrupted"}


def create_agent(
    http: httpx.Client, name: str, model: str = "gpt-4o-mini", **extra: Any
) -> dict[str, Any]:
    response = http.post(
        "/v1/agents",
        json={"name": name, "kind": "chat", "provider": "openai", "model": model, **extra},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def submit(http: httpx.Client, agent: str, prompt: str, **extra: Any) -> dict[str, Any]:
    response = http.post(f"/v1/agents/{agent}/tasks", json={"prompt": prompt, **extra})
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_task(
    http: httpx.Client, task_id: str, states: set[str] | None = None, timeout: float = 20.0
) -> dict[str, Any]:
    """Poll the task until it reaches one of `states` (default: any finished state)."""
    wanted = states or FINISHED
    seen: dict[str, Any] = {}

    def reached() -> bool:
        seen.update(http.get(f"/v1/tasks/{task_id}").json())
        return seen.get("state") in wanted

    wait_until(reached, timeout=timeout, what=f"task {task_id} to reach {sorted(wanted)}")
    return seen


def ws_url(base: str, path: str, **params: Any) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items() if v is not None)
    return base.replace("http://", "ws://") + path + (f"?{query}" if query else "")


def stalled_socket(base: str) -> socket.socket:
    """A connected socket with a small fixed receive buffer (no TCP autotuning), for a
    client that reads as little as it can."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32_768)
    sock.connect((host, int(port)))
    return sock


def open_events(
    base: str,
    *,
    headers: dict[str, str] | None = None,
    stalled: bool = False,
    **params: Any,
) -> ClientConnection:
    """Open the event stream. `stalled=True` makes a client that reads as little as it can:
    a one-frame receive queue and a small fixed socket buffer (no TCP autotuning)."""
    sock = stalled_socket(base) if stalled else None
    return connect(
        ws_url(base, "/v1/events/ws", **params),
        open_timeout=10,
        close_timeout=5,
        additional_headers=headers,
        max_queue=1 if stalled else 16,
        sock=sock,
    )


def recv_json(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    message = ws.recv(timeout=timeout)
    body: dict[str, Any] = json.loads(message)
    return body


def recv_until(ws: ClientConnection, predicate: Any, timeout: float = 15.0) -> list[dict[str, Any]]:
    """Receive events until one satisfies `predicate`; return all received, in order."""
    got: list[dict[str, Any]] = []
    while True:
        event = recv_json(ws, timeout=timeout)
        got.append(event)
        if predicate(event):
            return got
