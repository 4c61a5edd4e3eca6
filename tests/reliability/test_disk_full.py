"""A full disk is a state, not a crash: the data directory on a small tmpfs, filled for real.

While the disk is full: writes a client asked for answer 503 `storage_unavailable` with
Retry-After and are never stored later; /ready says why; a task that finishes keeps its
outcome in memory. Once space is freed: the outcome and its terminal event are stored, every
201 is in the log and no 503 is. A SIGTERM while data is still unwritten exits non-zero and
says what was lost. Mounting needs root (CI runs as root); elsewhere the test is skipped.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.fake_upstream.client import FakeUpstreamClient
from tests.conftest import provider_env
from tests.support.api import create_agent, submit, wait_task
from tests.support.procs import Proc, start_service, wait_until

MODEL = "disk-full-model"
BLOB = "x" * 20_000  # large events fill a WAL quickly


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str = "6m") -> Iterator[Path]:
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {done.stderr.strip() or done.returncode}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the file system refuses another byte."""
    filler = disk / f"filler-{len(list(disk.glob('filler-*')))}"
    try:
        with filler.open("wb") as f:
            while True:
                f.write(b"\0" * 65_536)
                f.flush()
                os.fsync(f.fileno())
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    with contextlib.suppress(OSError), filler.open("ab") as f:  # the last few bytes too
        for _ in range(65_536):
            f.write(b"\0")
            f.flush()
    return filler


def ready(http: httpx.Client) -> httpx.Response:
    return http.get("/ready")


def kept(http: httpx.Client, operation: str) -> int:
    """How many writes of `operation` the service holds until the store takes them."""
    count: int = ready(http).json().get("pending_writes", {}).get(operation, 0)
    return count


def post_until_refused(http: httpx.Client, tag: str) -> tuple[list[int], httpx.Response]:
    """Post large events until one is refused; the seqs of those that were stored."""
    stored: list[int] = []
    for i in range(500):
        r = http.post("/v1/events", json={"type": tag, "payload": {"i": i, "blob": BLOB}})
        if r.status_code != 201:
            return stored, r
        stored.append(r.json()["seq"])
    raise AssertionError("the full disk never refused a write")


def test_full_disk_refuses_keeps_and_recovers(tmp_path, fake_upstream: Proc) -> None:
    fake = FakeUpstreamClient(fake_upstream.url)
    with small_tmpfs(tmp_path / "disk") as disk:
        data = disk / "data"
        env = {**provider_env(fake_upstream.url), "BIGTHREE_STORE_SHUTDOWN_WRITE_S": "1"}
        proc = start_service(tmp_path, env=env, data_dir=data)
        try:
            with httpx.Client(base_url=proc.url, timeout=30) as http:
                create_agent(http, "filler", model=MODEL)
                # the task is answered only when the fake's latency is over: it is running
                # while the disk fills, and finishes while the disk is full
                fake.script(MODEL, [{"latency_s": 3.0}])
                task = submit(http, "filler", "finish while full")
                wait_task(http, task["id"], {"running"})
                fill(disk)
                stored, refused = post_until_refused(http, "full")
                assert http.get(f"/v1/tasks/{task['id']}").json()["state"] == "running"

                assert refused.status_code == 503
                assert refused.json()["error"]["type"] == "storage_unavailable"
                assert int(refused.headers["retry-after"]) > 0
                again = http.post("/v1/events", json={"type": "full", "payload": {"i": -1}})
                assert again.status_code == 503 and "retry-after" in again.headers
                no_task = http.post("/v1/agents/filler/tasks", json={"prompt": "no"})
                assert no_task.status_code == 503
                not_ready = ready(http)
                assert not_ready.status_code == 503 and "retry-after" in not_ready.headers
                assert not_ready.json()["checks"]["store_writes"] == "disk_full"

                # the outcome is kept, not dropped: the store says running until space is back
                wait_until(lambda: kept(http, "task_finished") == 1, 20, "the outcome to be kept")
                assert http.get(f"/v1/tasks/{task['id']}").json()["state"] == "running"

                for each in disk.glob("filler-*"):
                    each.unlink()
                done = wait_task(http, task["id"], timeout=30)
                assert done["state"] == "succeeded"
                wait_until(lambda: ready(http).status_code == 200, 20, "/ready to recover")
                log = http.get("/v1/events", params={"type": "full", "limit": 1000}).json()
                assert [e["seq"] for e in log["events"]] == stored  # every 201, no 503
                terminal = http.get(
                    "/v1/events", params={"type": "task.succeeded", "limit": 1000}
                ).json()["events"]
                assert [e["task_id"] for e in terminal] == [task["id"]]

                # shutdown while an outcome is unwritten: non-zero exit, and the log says what
                fake.script(MODEL, [{"latency_s": 3.0}])
                last = submit(http, "filler", "lost at shutdown")
                wait_task(http, last["id"], {"running"})
                fill(disk)
                post_until_refused(http, "full-again")
                wait_until(lambda: kept(http, "task_finished") == 1, 20, "the outcome to be kept")
            proc.signal()
            code = proc.wait(timeout=60)
            assert code == 3
            logs = proc.logs()
            assert "store_writes_lost" in logs and last["id"] in logs
        finally:
            proc.stop()
