"""Secrets never leave: every log line, stored row and response of a run is searched for
every configured secret (API key, provider keys) and for a rejected token.

The run goes where secrets have leaked before: WebSocket URLs with `?token=` (uvicorn logs
each one, accepted or refused), a provider whose 401 echoes the key it was sent (task
error, `llm.error` and `task.failed` events), a posted event that carries a key, a bearer
header with a wrong key, and the realtime socket.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from app.fake_upstream.client import FakeUpstreamClient
from tests.conftest import unique
from tests.reliability.conftest import (
    ANTHROPIC_KEY,
    API_KEY,
    AUTH,
    GEMINI_KEY,
    OPENAI_KEY,
    SECRETS,
    keyed_env,
)
from tests.support.api import create_agent, submit, wait_task, ws_url
from tests.support.procs import Proc, start_service

WRONG_TOKEN = "wrong-token-never-valid-31337"


def test_no_secret_in_logs_rows_or_responses(
    tmp_path: Path, fake_upstream: Proc, fake: FakeUpstreamClient
) -> None:
    """Nothing the service writes or answers holds a secret, even where text echoes one."""
    data = tmp_path / "data"
    proc = start_service(tmp_path, env=keyed_env(fake_upstream.url), data_dir=data)
    answers: list[str] = []
    try:
        with httpx.Client(base_url=proc.url, headers=AUTH, timeout=30) as http:
            model = unique("echo-key")
            fake.script(
                model,
                [
                    {
                        "status": 401,
                        "error": {"message": f"Incorrect API key provided: {OPENAI_KEY}"},
                    }
                ],
            )
            agent = unique("leaky")
            answers.append(str(create_agent(http, agent, model=model)))
            task = wait_task(http, submit(http, agent, "hello")["id"])
            assert task["state"] == "failed" and task["error"]["type"] == "authentication"
            assert "***" in task["error"]["message"]
            answers.append(str(task))
            for secret in (OPENAI_KEY, API_KEY, ANTHROPIC_KEY, GEMINI_KEY):
                posted = http.post(
                    "/v1/events", json={"type": "note", "payload": {"text": f"key={secret}"}}
                )
                answers.append(posted.text)
            answers.append(http.get("/v1/events", params={"limit": 1000}).text)
            answers.append(http.get(f"/v1/agents/{agent}/tasks").text)
            answers.append(http.get("/metrics").text)
            wrong = httpx.get(
                proc.url + "/v1/agents", headers={"Authorization": f"Bearer {WRONG_TOKEN}"}
            )
            assert wrong.status_code == 401
            answers.append(wrong.text + str(wrong.headers))
        for path in ("/v1/events/ws", "/v1/realtime"):
            with connect(ws_url(proc.url, path, token=API_KEY, type="none")) as ws:
                ws.close()
            with pytest.raises(InvalidStatus) as refused:
                connect(ws_url(proc.url, path, token=WRONG_TOKEN))
            assert refused.value.response.status_code == 403
    finally:
        proc.stop()
    rows = "\n".join(sqlite3.connect(data / "bigthree.db").iterdump())
    logs = proc.logs()
    assert "WebSocket /v1/events/ws?token=***" in logs  # the access lines are there, redacted
    for where, text in (("logs", logs), ("stored rows", rows), ("responses", "\n".join(answers))):
        for secret in (*SECRETS, WRONG_TOKEN):
            assert secret not in text, f"{secret!r} found in {where}"
