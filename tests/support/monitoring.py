"""Helpers for the deploy/monitoring tests: external tools, a real Prometheus, the dashboard."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.procs import Proc, free_port, start_process

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "grafana" / "dashboards" / "bigthree.json"
ALERTS = ROOT / "prometheus" / "alerts.yml"


def require_tool(name: str, hint: str) -> str:
    """Path of tool `name` (PATH or the venv); skip without it, but fail under CI."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found:
        return found
    message = f"{name} not found: {hint}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI must install it)")
    pytest.skip(message)


def load_dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def all_panels(panels: Sequence[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def dashboard_targets(dashboard: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(panel title / refId, expr) for every query of every panel."""
    found = []
    for panel in all_panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            found.append((f"{panel['title']} / {target['refId']}", str(target.get("expr", ""))))
    return found


_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Replace Grafana variables ($name, ${name}); an unknown one raises KeyError."""

    def replace(match: re.Match[str]) -> str:
        return values[match.group(1) or match.group(2)]

    return _VARIABLE.sub(replace, expr)


def alert_rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in data["groups"] for rule in group["rules"] if "alert" in rule]


@dataclass
class Prometheus:
    proc: Proc

    @property
    def url(self) -> str:
        return self.proc.url

    def api(self, path: str, **params: str) -> Any:
        """GET an /api/v1 endpoint; return `data`, raise AssertionError on any error."""
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10.0)
        body = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            raise AssertionError(f"{path} {params}: {response.status_code} {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; the result list (empty when there is no data)."""
        data = self.api("query", query=expr)
        if data["resultType"] == "scalar":
            return [{"value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result


@contextmanager
def running_prometheus(
    tmp: Path,
    *,
    targets: Sequence[str] = (),
    job: str = "bigthree",
    interval: str = "1s",
    rule_files: Sequence[Path] = (),
) -> Iterator[Prometheus]:
    """A real Prometheus on loopback scraping `targets` every `interval`; stopped on exit."""
    binary = require_tool("prometheus", "apt-get install -y prometheus")
    config: dict[str, Any] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {
                "job_name": job,
                "scrape_timeout": interval,
                "static_configs": [{"targets": list(targets)}],
            }
        ]
        if targets
        else [],
    }
    config_file = tmp / "prometheus-test.yml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    proc = start_process(
        [
            binary,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={tmp / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
        ],
        url=f"http://127.0.0.1:{port}",
        health_path="/-/ready",
        env={},
        log_path=tmp / f"prometheus-{port}.log",
    )
    try:
        yield Prometheus(proc)
    finally:
        proc.stop()
