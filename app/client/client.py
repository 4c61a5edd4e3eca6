"""`BigThreeClient`: one method per route, typed results, the server's error types."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any, Literal

import httpx
from httpx_sse import connect_sse
from pydantic import ValidationError

from app.agents.schemas import Agent, AgentCreate, CostReport, Task, TaskState
from app.client.errors import Unreachable, error_from_response
from app.client.models import BreakerStatus, ProviderStatus
from app.core.error_types import AppError, InvalidInput, Unauthorized
from app.events.schemas import Event, EventPage

DEFAULT_URL = "http://127.0.0.1:8000"
BreakerAction = Literal["reset", "force_open", "disable"]
# close codes after which the event stream is resumed: going away, too slow, server error,
# abnormal closure (no close frame)
_RESUMABLE = {1001, 1006, 1011, 1012, 4008}


class BigThreeClient:
    """A synchronous client. `url` and `api_key` default to `BIGTHREE_URL` (else
    http://127.0.0.1:8000) and `BIGTHREE_API_KEY`."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = (url or os.environ.get("BIGTHREE_URL") or DEFAULT_URL).rstrip("/")
        self._key = api_key if api_key is not None else os.environ.get("BIGTHREE_API_KEY")
        headers = {"authorization": f"Bearer {self._key}"} if self._key else {}
        self._timeout_s = timeout_s
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout_s, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> BigThreeClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- agents -------------------------------------------------------------------------

    def agents(self) -> list[Agent]:
        return [Agent.model_validate(a) for a in self._json("GET", "/v1/agents")["agents"]]

    def agent(self, name: str) -> Agent:
        return Agent.model_validate(self._json("GET", f"/v1/agents/{name}"))

    def create_agent(self, name: str, *, model: str, **spec: Any) -> Agent:
        """`spec`: the other AgentCreate fields (kind, provider, instructions, fallbacks,
        stream, workspace and each kind's own), validated here before anything is sent."""
        try:
            body = AgentCreate.model_validate({"name": name, "model": model, **spec})
        except ValidationError as exc:  # what the server would answer, without the round trip
            fields = [
                {"loc": ["body", *map(str, e["loc"])], "message": e["msg"], "type": e["type"]}
                for e in exc.errors()
            ]
            raise InvalidInput("request is invalid", fields=fields) from None
        payload = body.model_dump(mode="json", exclude_unset=True)
        return Agent.model_validate(self._json("POST", "/v1/agents", json=payload))

    def delete_agent(self, name: str) -> None:
        self._request("DELETE", f"/v1/agents/{name}")

    # --- tasks --------------------------------------------------------------------------

    def submit(
        self, agent: str, prompt: str, *, timeout_s: float | None = None, wait_s: float = 0
    ) -> Task:
        """Queue a task; with `wait_s`, the server holds the answer until the task finishes
        or `wait_s` passes (see `Task.state`)."""
        body: dict[str, Any] = {"prompt": prompt}
        if timeout_s is not None:
            body["timeout_s"] = timeout_s
        return self._task("POST", f"/v1/agents/{agent}/tasks", wait_s, json=body)

    def task(self, task_id: str, *, wait_s: float = 0) -> Task:
        return self._task("GET", f"/v1/tasks/{task_id}", wait_s)

    def wait(self, task_id: str, *, timeout_s: float | None = None, step_s: float = 30) -> Task:
        """The task once finished (or as it is after `timeout_s`), waiting on the server in
        steps of at most `step_s` seconds (keep it within the server's BIGTHREE_MAX_WAIT_S)."""
        end = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            left = step_s if end is None else min(step_s, end - time.monotonic())
            task = self.task(task_id, wait_s=max(left, 0.001))
            if task.state.finished or (end is not None and time.monotonic() >= end):
                return task

    def tasks(
        self, *, agent: str | None = None, state: TaskState | str | None = None, limit: int = 100
    ) -> list[Task]:
        params = _params(agent=agent, state=state and TaskState(state).value, limit=limit)
        body = self._json("GET", "/v1/tasks", params=params)
        return [Task.model_validate(t) for t in body["tasks"]]

    def cancel(self, task_id: str) -> Task:
        return Task.model_validate(self._json("POST", f"/v1/tasks/{task_id}/cancel"))

    def task_events(self, task_id: str, *, after_seq: int = 0) -> Iterator[Event]:
        """The task's events (stored, then live) until its terminal event, over Server-Sent
        Events; a dropped stream is resumed from the last event received."""
        last = after_seq
        while True:
            headers = {"last-event-id": str(last)}
            try:
                with connect_sse(
                    self._http,
                    "GET",
                    f"/v1/tasks/{task_id}/events",
                    headers=headers,
                    timeout=httpx.Timeout(self._timeout_s, read=None),
                ) as source:
                    if source.response.status_code == 204:
                        return
                    if source.response.is_error:
                        source.response.read()
                        raise error_from_response(source.response)
                    for sse in source.iter_sse():
                        event = Event.model_validate_json(sse.data)
                        last = event.seq
                        yield event
                return  # the server ends the stream after the terminal event
            except (httpx.RemoteProtocolError, httpx.ReadError):
                continue  # dropped mid-stream: resume from `last`
            except httpx.TransportError as exc:
                raise Unreachable(f"cannot reach {self.url}: {exc}") from exc

    # --- events -------------------------------------------------------------------------

    def events(
        self,
        *,
        after_seq: int = 0,
        agent: str | None = None,
        type: str | None = None,
        task_id: str | None = None,
        limit: int = 100,
    ) -> EventPage:
        params = _params(after_seq=after_seq, agent=agent, type=type, task_id=task_id, limit=limit)
        return EventPage.model_validate(self._json("GET", "/v1/events", params=params))

    def stream_events(
        self,
        *,
        after_seq: int = 0,
        agent: str | None = None,
        type: str | None = None,
        task_id: str | None = None,
        reconnect_s: float = 1.0,
    ) -> Iterator[Event]:
        """Stored events after `after_seq`, then live ones, over the WebSocket — forever.
        When the server drops the stream (restart, slow reader) it reconnects after
        `reconnect_s` with `after_seq` = the last seq received: no event lost or repeated."""
        # imported here: the WebSocket library is only needed by this stream (CLI start-up)
        from websockets.exceptions import ConnectionClosed, InvalidStatus
        from websockets.sync.client import connect

        last = after_seq
        while True:
            params = _params(after_seq=last, agent=agent, type=type, task_id=task_id)
            url = self.url.replace("http", "ws", 1) + f"/v1/events/ws?{httpx.QueryParams(params)}"
            headers = {"authorization": f"Bearer {self._key}"} if self._key else None
            try:
                with connect(url, additional_headers=headers, open_timeout=self._timeout_s) as ws:
                    for message in ws:
                        frame = json.loads(message)
                        if frame.get("type") == "error" and "seq" not in frame:
                            raise InvalidInput(frame["error"]["message"])
                        event = Event.model_validate(frame)
                        last = event.seq
                        yield event
            except InvalidStatus as exc:
                if exc.response.status_code in (401, 403):
                    raise Unauthorized("the server refused the API key") from exc
                raise
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else 1006
                if code not in _RESUMABLE:
                    raise AppError(f"event stream closed ({code})", code=code) from exc
            except OSError:
                pass  # refused or reset while the server restarts: try again
            time.sleep(reconnect_s)

    # --- providers and costs ------------------------------------------------------------

    def costs(self) -> CostReport:
        return CostReport.model_validate(self._json("GET", "/v1/costs"))

    def providers(self) -> list[ProviderStatus]:
        body = self._json("GET", "/v1/providers")
        return [ProviderStatus.model_validate(p) for p in body["providers"]]

    def breaker(
        self, provider: str, action: BreakerAction, *, model: str | None = None
    ) -> list[BreakerStatus]:
        body = {"action": action, **({"model": model} if model else {})}
        changed = self._json("POST", f"/v1/providers/{provider}/breaker", json=body)
        return [BreakerStatus.model_validate(b) for b in changed["breakers"]]

    # --- plumbing -----------------------------------------------------------------------

    def _task(self, method: str, path: str, wait_s: float, **kwargs: Any) -> Task:
        params = {"wait": wait_s} if wait_s > 0 else None
        # the server holds the request up to wait_s: give the read that much more time
        timeout = httpx.Timeout(self._timeout_s, read=self._timeout_s + wait_s)
        body = self._json(method, path, params=params, timeout=timeout, **kwargs)
        return Task.model_validate(body)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise Unreachable(f"cannot reach {self.url}: {exc}") from exc
        if response.is_error:
            raise error_from_response(response)
        return response


def _params(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}
