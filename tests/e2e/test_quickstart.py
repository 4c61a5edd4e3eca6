"""The README's "try it" flow, as a new user runs it: CLI processes, curl-like HTTP, a WS watch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.api import open_events, recv_until, wait_task
from tests.support.procs import BIGTHREE, start_fake_upstream, start_service

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_try_it_flow(tmp_path: Path) -> None:
    """fake-upstream + serve + create agent + task + events over WS + result, as documented."""
    readme = README.read_text()
    for documented in (
        "make fake-upstream",
        "OPENAI_BASE_URL=http://127.0.0.1:9100/v1 make run",
        "/v1/events/ws",
        '"kind": "chat"',
        "echo: hello there",
    ):
        assert documented in readme, documented
    fake = start_fake_upstream(tmp_path)
    service = start_service(
        tmp_path, env={"OPENAI_BASE_URL": f"{fake.url}/v1", "OPENAI_API_KEY": ""}
    )
    try:
        with httpx.Client(base_url=service.url, timeout=10) as http, open_events(service.url) as ws:
            created = http.post(
                "/v1/agents",
                json={
                    "name": "helper",
                    "kind": "chat",
                    "provider": "openai",
                    "model": "gpt-4o-mini",
                },
            )
            assert created.status_code == 201
            task = http.post("/v1/agents/helper/tasks", json={"prompt": "hello there"})
            assert task.status_code == 202 and task.json()["state"] in {"queued", "running"}
            seen = recv_until(ws, lambda e: e["type"] == "task.succeeded")
            assert [e["type"] for e in seen if e.get("task_id") == task.json()["id"]] == [
                "task.queued",
                "task.running",
                "llm.request",
                "llm.response",
                "task.succeeded",
            ]
            done = wait_task(http, task.json()["id"])
            assert done["result"] == "echo: hello there"
            # the documented failure demo: a scripted 429 is retried after the hint
            http.post(
                f"{fake.url}/_fake/script",
                json={
                    "model": "gpt-4o-mini",
                    "steps": [{"status": 429, "headers": {"retry-after": "1"}}],
                },
            )
            again = http.post("/v1/agents/helper/tasks", json={"prompt": "again"}).json()
            types = [
                e["type"]
                for e in recv_until(
                    ws, lambda e: e["type"] == "task.succeeded" and e["task_id"] == again["id"]
                )
            ]
            assert types.index("llm.error") < types.index("llm.retry") < types.index("llm.response")
            assert wait_task(http, again["id"])["attempts"] == 2
    finally:
        service.stop()
        fake.stop()


def test_check_config_cli_reports_findings(tmp_path: Path) -> None:
    """`bigthree check-config` prints one line per finding and fails on an unsafe public bind."""
    env_file = tmp_path / ".env"
    env_file.write_text(f"BIGTHREE_HOST=0.0.0.0\nBIGTHREE_DATA_DIR={tmp_path / 'data'}\n")
    result = subprocess.run(
        [*BIGTHREE, "check-config", "--env-file", str(env_file)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert any(
        line.startswith("ERROR") and "BIGTHREE_API_KEYS" in line
        for line in result.stdout.splitlines()
    )


def test_cli_help_lists_the_subcommands() -> None:
    """The `bigthree` console script offers serve, fake-upstream and check-config."""
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    for command in ("serve", "fake-upstream", "check-config"):
        assert command in result.stdout
