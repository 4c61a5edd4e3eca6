"""`coder` agents over real HTTP: tool loops on every provider protocol, the workspace
sandbox through the files API and through model tool calls, limits and outcomes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.fake_upstream.client import FakeUpstreamClient
from tests.conftest import provider_env, unique
from tests.support.api import create_agent, submit, wait_task
from tests.support.procs import Proc, start_service, wait_until
from tests.support.wire import tool_results

MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-5", "gemini": "gemini-2.5-flash"}


def call(call_id: str, name: str, **arguments: Any) -> dict[str, Any]:
    return {"id": call_id, "name": name, "arguments": arguments}


def new_coder(http: httpx.Client, provider: str = "openai", **extra: Any) -> tuple[str, str]:
    """A coder agent with a unique name and model on `provider`; returns (name, model)."""
    name, model = unique("coder"), f"{MODELS[provider]}-{unique('t')}"
    create_agent(http, name, model=model, kind="coder", provider=provider, **extra)
    return name, model


def events(http: httpx.Client, agent: str, type_: str) -> list[dict[str, Any]]:
    response = http.get("/v1/events", params={"agent": agent, "type": type_, "limit": 1000})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["events"]
    return found


def declared_tools(provider: str, body: dict[str, Any]) -> list[str]:
    if provider == "openai":
        return [t["function"]["name"] for t in body["tools"]]
    if provider == "anthropic":
        return [t["name"] for t in body["tools"]]
    return [f["name"] for f in body["tools"][0]["functionDeclarations"]]


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_multi_step_tool_loop_round_trips_call_ids(
    client: httpx.Client, fake: FakeUpstreamClient, provider: str
) -> None:
    """Write + list (parallel), edit, read, answer: each tool result goes back to the model
    under its call id in the provider's own shape, and the task records the changed file."""
    name, model = new_coder(client, provider)
    fake.script(
        model,
        [
            {
                "tool_calls": [
                    call("call_w", "write_file", path="notes/todo.md", content="- one\n- two\n"),
                    call("call_l", "list_files"),
                ]
            },
            {
                "tool_calls": [
                    call(
                        "call_e",
                        "edit_file",
                        path="notes/todo.md",
                        old_text="- two",
                        new_text="- 2",
                    )
                ]
            },
            {"tool_calls": [call("call_r", "read_file", path="notes/todo.md")]},
            {"text": "updated the todo list"},
        ],
    )
    done = wait_task(client, submit(client, name, "keep a todo list")["id"])
    assert done["state"] == "succeeded", done
    assert done["result"] == "updated the todo list"
    assert done["files_changed"] == ["notes/todo.md"]

    sent = [r.body for r in fake.requests(model=model)]
    assert len(sent) == 4
    assert declared_tools(provider, sent[0]) == [
        "list_files",
        "read_file",
        "write_file",
        "edit_file",
        "search_files",
        "delete_file",
    ]
    first, last = tool_results(provider, sent[1]), tool_results(provider, sent[3])
    if provider == "openai":
        assert first == {
            "call_w": "created notes/todo.md (12 bytes)",
            "call_l": "notes/todo.md (12 bytes)",
        }
        assert last["call_r"] == "- one\n- 2\n"
    elif provider == "anthropic":
        assert first == {
            "call_w": ("created notes/todo.md (12 bytes)", False),
            "call_l": ("notes/todo.md (12 bytes)", False),
        }
        assert last["call_r"] == ("- one\n- 2\n", False)
    else:
        assert first == {
            "call_w": ("write_file", {"result": "created notes/todo.md (12 bytes)"}),
            "call_l": ("list_files", {"result": "notes/todo.md (12 bytes)"}),
        }
        assert last["call_r"] == ("read_file", {"result": "- one\n- 2\n"})

    listed = client.get(f"/v1/agents/{name}/files").json()
    assert [f["path"] for f in listed["files"]] == ["notes/todo.md"] and not listed["truncated"]
    content = client.get(f"/v1/agents/{name}/files/notes/todo.md").json()
    assert content == {"path": "notes/todo.md", "size": 10, "content": "- one\n- 2\n"}
    calls = [
        (e["payload"]["tool"], e["payload"]["call_id"]) for e in events(client, name, "tool.call")
    ]
    assert calls == [
        ("write_file", "call_w"),
        ("list_files", "call_l"),
        ("edit_file", "call_e"),
        ("read_file", "call_r"),
    ]
    results = events(client, name, "tool.result")
    assert [e["payload"]["is_error"] for e in results] == [False] * 4
    assert all(e["task_id"] == done["id"] for e in results)


def test_traversal_through_model_tool_calls_is_refused(
    client: httpx.Client, fake: FakeUpstreamClient, tmp_path: Path
) -> None:
    """A model asking for paths outside its workspace gets is_error tool results and an
    event; the task goes on to succeed and nothing is written outside."""
    name, model = new_coder(client, "anthropic")
    target = tmp_path / "evil.txt"
    fake.script(
        model,
        [
            {
                "tool_calls": [
                    call("t1", "read_file", path="../../../../etc/passwd"),
                    call("t2", "write_file", path=str(target), content="pwned"),
                    call("t3", "delete_file", path="C:\\Windows\\win.ini"),
                    call("t4", "read_file", path="~/.ssh/id_rsa"),
                ]
            },
            {"text": "could not"},
        ],
    )
    done = wait_task(client, submit(client, name, "escape")["id"])
    assert done["state"] == "succeeded" and done["files_changed"] == []
    results = tool_results("anthropic", fake.requests(model=model)[1].body)
    assert {cid: is_error for cid, (_, is_error) in results.items()} == dict.fromkeys(
        ["t1", "t2", "t3", "t4"], True
    )
    assert "'..' is not allowed" in results["t1"][0]
    assert "not relative to the workspace" in results["t2"][0]
    assert "backslashes" in results["t3"][0]
    refused = events(client, name, "tool.result")
    assert [e["payload"]["data"]["error"] for e in refused] == ["path_refused"] * 4
    assert not target.exists()


@pytest.mark.parametrize(
    "raw_path",
    [
        "%2e%2e/%2e%2e/etc/passwd",
        "..%2F..%2Fetc%2Fpasswd",
        "%2Fetc%2Fpasswd",
        "~/.bashrc",
        "a%00b",
        "C:%5CWindows%5Cwin.ini",
        "%5C%5Cserver%5Cshare",
    ],
)
def test_files_api_refuses_traversal(client: httpx.Client, raw_path: str) -> None:
    """Encoded traversal, absolute, '~', NUL, drive and UNC paths get 400 in the error shape."""
    name, _ = new_coder(client)
    response = client.get(f"/v1/agents/{name}/files/{raw_path}")
    assert response.status_code == 400, (raw_path, response.text)
    error = response.json()["error"]
    assert error["type"] == "bad_request" and error["reason"] == "path_refused"


def test_files_api_missing_and_non_coders(client: httpx.Client) -> None:
    """Missing files and agents are 404; chat agents have no files; bad globs are 400."""
    name, _ = new_coder(client)
    assert client.get(f"/v1/agents/{name}/files").json() == {"files": [], "truncated": False}
    missing = client.get(f"/v1/agents/{name}/files/nope.txt")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
    assert client.get("/v1/agents/ghost-agent/files").status_code == 404
    chat = unique("chat")
    create_agent(client, chat)
    no_files = client.get(f"/v1/agents/{chat}/files")
    assert no_files.status_code == 404
    assert "only coder and claude_code agents" in no_files.json()["error"]["message"]
    bad_glob = client.get(f"/v1/agents/{name}/files", params={"glob": "x" * 300})
    assert bad_glob.status_code == 422


# --- a service with tight limits and an allowed workspace root -----------------------------


@pytest.fixture(scope="module")
def limits(
    tmp_path_factory: pytest.TempPathFactory, fake_upstream: Proc
) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("coder-limits")
    roots, data = tmp / "projects", tmp / "data"
    roots.mkdir()
    env = {
        **provider_env(fake_upstream.url),
        "BIGTHREE_TOOL_LOOP_MAX_STEPS": "4",
        "BIGTHREE_TASK_MAX_COST_USD": "0.1",
        "BIGTHREE_WORKSPACE_MAX_FILE_BYTES": "4096",
        "BIGTHREE_WORKSPACE_QUOTA_BYTES": "16384",
        "BIGTHREE_WORKSPACE_ROOTS": str(roots),
    }
    proc = start_service(tmp, env=env, data_dir=data)
    with httpx.Client(base_url=proc.url, timeout=10.0) as http:
        yield {"http": http, "data": data, "roots": roots, "tmp": tmp}
    proc.stop()


def test_step_limit_fails_the_task(limits: dict[str, Any], fake: FakeUpstreamClient) -> None:
    """A model that keeps calling tools stops after BIGTHREE_TOOL_LOOP_MAX_STEPS calls."""
    http = limits["http"]
    name, model = new_coder(http)
    fake.script(model, [{"tool_calls": [call("c", "list_files")], "repeat": -1}])
    done = wait_task(http, submit(http, name, "loop forever")["id"])
    assert done["state"] == "failed" and done["error"]["type"] == "step_limit", done
    assert "after 4 steps" in done["error"]["message"]
    assert len(fake.requests(model=model)) == 4
    assert len(events(http, name, "tool.result")) == 3


def test_cost_cap_fails_the_task(limits: dict[str, Any], fake: FakeUpstreamClient) -> None:
    """Once the task's spend reaches BIGTHREE_TASK_MAX_COST_USD it stops with cost_limit."""
    http = limits["http"]
    name, model = new_coder(http)
    expensive = {"input_tokens": 1_000_000, "output_tokens": 0}  # $0.15 on gpt-4o-mini
    fake.script(model, [{"tool_calls": [call("c", "list_files")], "usage": expensive}])
    done = wait_task(http, submit(http, name, "spend")["id"])
    assert done["state"] == "failed" and done["error"]["type"] == "cost_limit", done
    assert done["error"]["details"]["max_cost_usd"] == 0.1
    assert done["cost_usd"] == pytest.approx(0.15)
    assert len(fake.requests(model=model)) == 1


def test_size_limit_quota_and_binary(limits: dict[str, Any], fake: FakeUpstreamClient) -> None:
    """Over-size writes and reads, writes past the quota and binary reads are refused to
    the model and over the API; the files that fit are written."""
    http, data = limits["http"], limits["data"]
    name, model = new_coder(http)
    workspace = data / "workspaces" / name
    workspace.mkdir(parents=True)
    (workspace / "big.log").write_text("z" * 5000)
    (workspace / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    writes = [
        call(f"w{i}", "write_file", path=f"part{i}.txt", content="q" * 2000) for i in range(5)
    ]
    fake.script(
        model,
        [
            {
                "tool_calls": [
                    call("big", "write_file", path="huge.txt", content="x" * 5000),
                    call("rb", "read_file", path="big.log"),
                    call("png", "read_file", path="logo.png"),
                    *writes,
                ]
            },
            {"text": "done"},
        ],
    )
    done = wait_task(http, submit(http, name, "fill it up")["id"])
    assert done["state"] == "succeeded", done
    outcome = {
        e["payload"]["call_id"]: e["payload"]["data"].get("error")
        for e in events(http, name, "tool.result")
    }
    # 5000 (big.log) + 11 (png) + 5 * 2000 = 15011 <= 16384; a sixth part would not fit
    assert outcome == {
        "big": "too_large",
        "rb": "too_large",
        "png": "binary",
        "w0": None,
        "w1": None,
        "w2": None,
        "w3": None,
        "w4": None,
    }
    assert done["files_changed"] == [f"part{i}.txt" for i in range(5)]
    fake.script(
        model,
        [
            {"tool_calls": [call("w5", "write_file", path="part5.txt", content="q" * 2000)]},
            {"text": "ok"},
        ],
    )
    wait_task(http, submit(http, name, "one more")["id"])
    quota = events(http, name, "tool.result")[-1]["payload"]
    assert quota["call_id"] == "w5" and quota["data"]["error"] == "quota_exceeded"
    too_big = http.get(f"/v1/agents/{name}/files/big.log")
    assert too_big.status_code == 413 and too_big.json()["error"]["reason"] == "too_large"
    binary = http.get(f"/v1/agents/{name}/files/logo.png")
    assert binary.status_code == 400 and binary.json()["error"]["reason"] == "binary"


def test_workspace_must_be_inside_an_allowed_root(
    limits: dict[str, Any], fake: FakeUpstreamClient
) -> None:
    """A coder may work in a directory under BIGTHREE_WORKSPACE_ROOTS; anything else —
    outside, through a symlink, or on a non-coder — is refused with 422."""
    http, roots, tmp = limits["http"], limits["roots"], limits["tmp"]
    project = roots / "app"
    project.mkdir()
    (roots / "sneaky").symlink_to(tmp)
    name, model = new_coder(http, workspace=str(project))
    assert http.get(f"/v1/agents/{name}").json()["workspace"] == os.path.realpath(project)
    fake.script(
        model,
        [
            {"tool_calls": [call("w", "write_file", path="main.py", content="print('hi')\n")]},
            {"text": "ok"},
        ],
    )
    assert wait_task(http, submit(http, name, "write main")["id"])["state"] == "succeeded"
    assert (project / "main.py").read_text() == "print('hi')\n"
    for bad in (str(tmp), str(roots / "sneaky" / "x"), str(roots / ".." / "data"), "relative"):
        body = {"name": unique("bad"), "kind": "coder", "model": "m", "workspace": bad}
        response = http.post("/v1/agents", json=body)
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["error"]["type"] == "validation_error"
    chat = http.post(
        "/v1/agents", json={"name": unique("c"), "model": "m", "workspace": str(project)}
    )
    assert chat.status_code == 422


def test_cancel_during_a_tool_loop_leaves_no_partial_file(
    tmp_path: Path, fake_upstream: Proc, fake: FakeUpstreamClient
) -> None:
    """Cancelling while a coder writes large files leaves each file absent or complete and
    no temp file behind."""
    data = tmp_path / "data"
    proc = start_service(tmp_path, env=provider_env(fake_upstream.url), data_dir=data)
    try:
        with httpx.Client(base_url=proc.url, timeout=10.0) as http:
            name, model = new_coder(http)
            size = 1_500_000
            writes = [
                call(f"w{i}", "write_file", path=f"blob{i}.txt", content=str(i) * size)
                for i in range(6)
            ]
            fake.script(model, [{"tool_calls": writes}, {"latency_s": 30, "repeat": -1}])
            task = submit(http, name, "write blobs")

            def first_write_done() -> bool:
                return bool(events(http, name, "tool.result"))

            wait_until(first_write_done, timeout=20, what="the first write to finish")
            cancelled = http.post(f"/v1/tasks/{task['id']}/cancel").json()
            assert cancelled["state"] == "cancelled"
            workspace = data / "workspaces" / name
            leftovers = [p.name for p in workspace.iterdir() if p.name.startswith(".bigthree")]
            assert leftovers == []
            present = sorted(p.name for p in workspace.iterdir())
            assert present and sorted(cancelled["files_changed"]) == present
            for path in workspace.iterdir():
                index = path.name.removeprefix("blob").removesuffix(".txt")
                assert path.read_text() == index * size, path
    finally:
        proc.stop()
