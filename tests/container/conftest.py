"""Container tests: build the Dockerfile in a private Docker engine (scripts/container_smoke.sh).

They run in the default suite where the machine has what they need (root, the Debian packages
docker.io and debootstrap, a bookworm mirror in the apt sources, python 3.11); elsewhere they
skip with the missing pieces named, and under CI they fail instead. Deselect them with
`pytest -m "not container"`.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "scripts" / "container_smoke.sh"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "container: builds and runs the Docker image with a private dockerd "
        "(root, apt-get install -y docker.io debootstrap)",
    )


@pytest.fixture(autouse=True)
def _container_prerequisites(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("container") is None:
        return
    check = subprocess.run(
        ["bash", str(SMOKE), "--check"], capture_output=True, text=True, timeout=60, check=False
    )
    if check.returncode == 0:
        return
    missing = "; ".join(check.stdout.split("\n")).strip("; ")
    message = f"container test needs: {missing or check.stderr.strip()}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI must install apt packages docker.io debootstrap)")
    pytest.skip(message)
