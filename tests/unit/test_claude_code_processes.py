"""The launcher the Claude Code CLI runs through: own process group, PID file, a scrubbed
environment, death with the service, and reaping after a crash (a stand-in CLI here)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.agents.kinds.claude_code.processes import RUN_MARKER, ClaudeProcesses, alive
from tests.support.procs import wait_until

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")

FAKE_CLI = f"""#!{sys.executable}
import json, os, sys, time
with open(sys.argv[1], "w") as out:
    json.dump({{"pid": os.getpid(), "pgid": os.getpgid(0), "env": dict(os.environ),
               "argv": sys.argv[1:]}}, out)
time.sleep(120)
"""


@pytest.fixture
def fake_cli(tmp_path: Path) -> Path:
    path = tmp_path / "claude"
    path.write_text(FAKE_CLI)
    path.chmod(0o755)
    return path


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[ClaudeProcesses]:
    procs = ClaudeProcesses(tmp_path / "claude_code")
    procs.prepare()
    yield procs
    procs.reap_leftovers()


def launch(
    processes: ClaudeProcesses, cli: Path, run_id: str, report: Path
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "OPENAI_API_KEY": "sk-other-provider",
        "BIGTHREE_API_KEYS": "service-key-0123456789",
        "ANTHROPIC_API_KEY": "sk-ant-for-the-cli",
        "HOME": "/private/home",
        **processes.env(run_id, cli, keep=["ANTHROPIC_API_KEY", "HOME"]),
    }
    child = subprocess.Popen([str(processes.launcher), str(report)], env=env)
    wait_until(report.exists, timeout=20, what="the stand-in CLI to report")
    wait_until(lambda: report.stat().st_size > 0, timeout=5, what="the report")
    return child


def test_the_cli_runs_in_its_own_group_with_a_scrubbed_environment(
    processes: ClaudeProcesses, fake_cli: Path, tmp_path: Path
) -> None:
    """The CLI is exec'd in place of the launcher (same PID, recorded), leads its own
    process group, keeps the run's marker and what the runner set, and inherits none of
    the service's other secrets."""
    report = tmp_path / "report.json"
    child = launch(processes, fake_cli, "run-1", report)
    try:
        seen = json.loads(report.read_text())
        assert seen["pid"] == child.pid == seen["pgid"]
        assert processes.pid_of("run-1") == child.pid
        env = seen["env"]
        assert env["ANTHROPIC_API_KEY"] == "sk-ant-for-the-cli" and env["HOME"] == "/private/home"
        assert env[RUN_MARKER] == "run-1"
        assert "OPENAI_API_KEY" not in env and "BIGTHREE_API_KEYS" not in env
        assert not any(name.startswith("BIGTHREE_CC_") and name != RUN_MARKER for name in env)
        assert seen["argv"] == [str(report)]
    finally:
        assert processes.end("run-1") == [child.pid]
        child.wait(timeout=10)
    assert processes.pid_of("run-1") is None


def test_the_cli_dies_with_the_service(
    processes: ClaudeProcesses, fake_cli: Path, tmp_path: Path
) -> None:
    """SIGKILL of the process that started the launcher kills the CLI (PR_SET_PDEATHSIG)."""
    report = tmp_path / "report.json"
    parent_code = (
        "import os, subprocess, sys, time\n"
        "from pathlib import Path\n"
        "from app.agents.kinds.claude_code.processes import ClaudeProcesses\n"
        "p = ClaudeProcesses(Path(sys.argv[1]))\n"
        "env = {**os.environ, **p.env('run-2', Path(sys.argv[2]), keep=[])}\n"
        "subprocess.Popen([str(p.launcher), sys.argv[3]], env=env)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code, str(processes.base), str(fake_cli), str(report)]
    )
    try:
        wait_until(lambda: report.exists() and report.stat().st_size > 0, timeout=20)
        cli = json.loads(report.read_text())["pid"]
        assert alive(cli)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
    wait_until(lambda: not alive(cli), timeout=10, what="the CLI to die with its parent")


def test_leftovers_are_reaped_at_start_and_only_ours(
    processes: ClaudeProcesses, fake_cli: Path, tmp_path: Path
) -> None:
    """A PID file left by a crash: its marked process group is killed at the next start;
    a PID file naming a process without the run's marker kills nothing."""
    child = launch(processes, fake_cli, "run-3", tmp_path / "report.json")
    (processes.runs / "run-4.pid").write_text(str(os.getpid()))  # a reused PID: not ours
    restarted = ClaudeProcesses(processes.base)
    assert restarted.reap_leftovers() == 1
    child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    assert list(processes.runs.glob("*.pid")) == []
    assert alive(os.getpid())
