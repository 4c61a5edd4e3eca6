"""Start real processes (the service, the fake upstream) on loopback for tests, and stop them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

BIGTHREE = [sys.executable, "-m", "app.cli"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(
    predicate: Callable[[], bool], timeout: float = 15.0, what: str = "condition"
) -> None:
    """Poll `predicate` until it holds; fail with `what` after `timeout` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class Proc:
    popen: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.popen.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        return self.popen.wait(timeout=timeout)

    def wait_healthy(self, health_path: str = "/health", timeout: float = 30.0) -> None:
        """Wait until the process answers `health_path` (fail with its log if it exits)."""
        try:
            wait_until(
                lambda: self.popen.poll() is not None or _healthy(self.url + health_path),
                timeout=timeout,
                what=f"{self.popen.args} to become healthy",
            )
        except AssertionError:
            self.stop()
            raise AssertionError(f"process did not start:\n{self.logs()}") from None
        if self.popen.poll() is not None:
            raise AssertionError(f"process exited with {self.popen.returncode}:\n{self.logs()}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def start_process(
    args: list[str],
    *,
    url: str,
    health_path: str,
    env: Mapping[str, str],
    log_path: Path,
    wait: bool = True,
) -> Proc:
    """Start `args`; unless `wait` is False, return once it answers `health_path`."""
    full_env = {**os.environ, **env}
    log = log_path.open("wb")
    # run from the test's temp dir so a developer's .env never leaks into a test
    popen = subprocess.Popen(
        args, env=full_env, stdout=log, stderr=subprocess.STDOUT, cwd=log_path.parent
    )
    proc = Proc(popen, url, log_path)
    if wait:
        proc.wait_healthy(health_path)
    return proc


def start_fake_upstream(tmp: Path) -> Proc:
    port = free_port()
    return start_process(
        [*BIGTHREE, "fake-upstream", "--port", str(port)],
        url=f"http://127.0.0.1:{port}",
        health_path="/_fake/health",
        env={},
        log_path=tmp / f"fake-upstream-{port}.log",
    )


def start_service(
    tmp: Path,
    env: Mapping[str, str] | None = None,
    data_dir: Path | None = None,
    port: int | None = None,
    *,
    wait: bool = True,
) -> Proc:
    """The service on 127.0.0.1 (`port`: a free one unless given, e.g. to restart in place)."""
    port = port or free_port()
    data = data_dir or (tmp / f"data-{port}")
    base_env = {
        "BIGTHREE_DATA_DIR": str(data),
        "BIGTHREE_LOG_FORMAT": "json",
        "BIGTHREE_LOG_LEVEL": "INFO",
        "BIGTHREE_API_KEYS": "",
        "BIGTHREE_DRAIN_GRACE_S": "2",
        # never let a developer's real keys or .env reach a test
        "OPENAI_API_KEY": "sk-test-not-a-real-key",
        "ANTHROPIC_API_KEY": "sk-ant-test-not-a-real-key",
        "GEMINI_API_KEY": "gemini-test-not-a-real-key",
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",
        "GEMINI_BASE_URL": "http://127.0.0.1:9",
    }
    return start_process(
        [*BIGTHREE, "serve", "--host", "127.0.0.1", "--port", str(port)],
        url=f"http://127.0.0.1:{port}",
        health_path="/health",
        env={**base_env, **(env or {})},
        log_path=tmp / f"service-{port}.log",
        wait=wait,
    )


@contextmanager
def running(proc: Proc) -> Iterator[Proc]:
    try:
        yield proc
    finally:
        proc.stop()
