"""`bigthree check-config`: validate a configuration before the service starts.

Loads the Settings from an env file plus the process environment (the environment wins, as
it does at start-up). Every rule about the values is the Settings model's own (so `serve`
refuses exactly what is reported here); all of its problems are reported in one run, then
what only this command checks: provider keys present and plausibly shaped, the data and
artifacts directories writable (artifacts shared by replicas on PostgreSQL), the port free,
authentication set for a non-loopback bind, and risky combinations (WARN).

Each finding is one line, `ERROR ...`, `WARN ...` or `OK ...`; the exit code is 1 when any
finding is an error, else 0. A finding names settings by their environment variable and
never prints a secret's value.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TextIO
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import AliasChoices, SecretStr

from app.agents.kinds.claude_code.availability import check_config as claude_code_check
from app.core.config import (
    PROVIDERS,
    Loaded,
    ProviderSpec,
    Settings,
    env_name,
    is_loopback,
    load_settings,
)

Level = Literal["ERROR", "WARN", "OK"]

# the container's stop timeout in docker-compose.yml (stop_grace_period) and the Dockerfile docs
CONTAINER_STOP_GRACE_S = 30.0


@dataclass(frozen=True)
class Finding:
    level: Level
    message: str

    def __str__(self) -> str:
        return f"{self.level} {self.message}"


def known_env_names() -> set[str]:
    """Every environment variable name that sets some field of Settings."""
    names: set[str] = set()
    for field_name, field in Settings.model_fields.items():
        names.add(env_name(field_name))
        names.add(f"BIGTHREE_{field_name.upper()}")
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(choice for choice in alias.choices if isinstance(choice, str))
    return names


def _load(env_file: str) -> tuple[Loaded, list[Finding]]:
    findings: list[Finding] = []
    path = Path(env_file)
    if path.is_file():
        findings.append(Finding("OK", f"reading {env_file} (the environment overrides it)"))
    else:
        findings.append(Finding("WARN", f"{env_file} not found: using the environment only"))
    loaded = load_settings(env_file if path.is_file() else None)
    return loaded, findings + [Finding("ERROR", line) for line in loaded.problems]


def _unknown_names(env_file: str, environ: Mapping[str, str]) -> list[Finding]:
    known = known_env_names()
    from_file: set[str] = set()
    if Path(env_file).is_file():
        from_file = {name for name in dotenv_values(env_file) if name}
    names = {
        name.upper() for name in from_file | set(environ) if name.upper().startswith("BIGTHREE_")
    }
    return [
        Finding("WARN", f"{name} is not a setting (typo?); it is ignored")
        for name in sorted(names - known)
    ]


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value() if value is not None else ""


def _check_provider(settings: Settings, spec: ProviderSpec) -> list[Finding]:
    key_var = env_name(spec.key_field)
    url_var = env_name(spec.url_field)
    key = _secret(getattr(settings, spec.key_field))
    url: str = getattr(settings, spec.url_field)
    default_url = Settings.model_fields[spec.url_field].default
    custom_url = url != str(default_url).rstrip("/")
    is_default = settings.default_provider == spec.name
    findings = _check_url(url_var, url)

    if not key:
        if custom_url:
            return [
                *findings,
                Finding("OK", f"{spec.name}: custom endpoint {url_var}, no key needed"),
            ]
        if is_default:
            return [
                *findings,
                Finding(
                    "ERROR",
                    f"{spec.name} is BIGTHREE_DEFAULT_PROVIDER but {key_var} is not set "
                    f"(or point {url_var} at an OpenAI-compatible server)",
                ),
            ]
        return [
            *findings,
            Finding("WARN", f"{spec.name}: {key_var} not set; agents using {spec.name} will fail"),
        ]

    return [*findings, Finding("OK", f"{spec.name}: {key_var} set and plausibly shaped")]


def _check_url(var: str, url: str) -> list[Finding]:
    """Advice about a base URL the Settings model already accepted."""
    parts = urlsplit(url)
    if parts.scheme == "http" and parts.hostname and not is_loopback(parts.hostname):
        return [
            Finding(
                "WARN",
                f"{var} uses plain http to {parts.hostname}:{parts.port or 80}: "
                "keys and prompts travel unencrypted",
            )
        ]
    return []


def _check_cors(settings: Settings) -> list[Finding]:
    if "*" in settings.cors_origins and settings.auth_enabled:
        return [Finding("WARN", "BIGTHREE_CORS_ORIGINS allows any origin ('*')")]
    return []


def _check_database(settings: Settings) -> list[Finding]:
    if not settings.database_url:
        return []
    from sqlalchemy.engine import make_url

    url = make_url(settings.database_url)  # the Settings model checked that it parses
    if not url.drivername.startswith("sqlite"):
        return [Finding("WARN", f"BIGTHREE_DATABASE_URL driver {url.drivername!r} is untested")]
    if url.database and url.database != ":memory:":
        return _check_writable("directory of BIGTHREE_DATABASE_URL", Path(url.database).parent)
    return []


def _check_artifacts(settings: Settings) -> list[Finding]:
    """Where screenshots go: writable, and shared when replicas share PostgreSQL."""
    if settings.artifacts_dir is not None:
        return _check_writable("BIGTHREE_ARTIFACTS_DIR", settings.artifacts_dir)
    if settings.artifacts_per_replica:
        return [
            Finding(
                "WARN",
                "BIGTHREE_DATABASE_URL is PostgreSQL but BIGTHREE_ARTIFACTS_DIR is not set: "
                "each replica keeps browser screenshots under its own BIGTHREE_DATA_DIR, so "
                "the others answer 404 not_on_this_replica for them; point it at one "
                "directory every replica shares",
            )
        ]
    return []


def _check_writable(what: str, directory: Path) -> list[Finding]:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".bigthree-check-"):
            pass
    except OSError as exc:
        return [Finding("ERROR", f"{what} {directory} is not writable: {exc.strerror or exc}")]
    return [Finding("OK", f"{what} {directory} is writable")]


def _check_bind(settings: Settings, host: str, port: int) -> list[Finding]:
    findings: list[Finding] = []
    reason = settings.unsafe_bind_reason(host)
    if reason:
        findings.append(Finding("ERROR", reason))
    elif settings.auth_enabled:
        count = len(settings.api_keys)
        findings.append(Finding("OK", f"authentication on: {count} key(s) in BIGTHREE_API_KEYS"))
    else:
        findings.append(Finding("OK", f"no BIGTHREE_API_KEYS: allowed on loopback {host}"))
    if not 1 <= port <= 65535:
        return [*findings, Finding("ERROR", f"port {port} is out of range 1-65535")]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return [*findings, Finding("ERROR", f"cannot resolve bind host {host!r}: {exc.strerror}")]
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        # as uvicorn does: a port only in TIME_WAIT is free, one with a listener is not
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            return [
                *findings,
                Finding("ERROR", f"cannot bind {host}:{port}: {exc.strerror or exc}"),
            ]
    return [*findings, Finding("OK", f"{host}:{port} is free to bind")]


def _check_browser(
    settings: Settings, playwright_path: Callable[[], str | None] | None = None
) -> list[Finding]:
    """Whether browser agents can run: a Chromium to launch (the service starts without)."""
    from app.tools.browser.executable import BrowserUnavailable, choose, playwright_chromium_path

    try:
        choice = choose(
            settings.browser_executable, (playwright_path or playwright_chromium_path)()
        )
    except BrowserUnavailable as exc:
        level: Level = "ERROR" if settings.browser_executable is not None else "WARN"
        return [
            Finding(
                level,
                f"browser agents: {exc.message}; browser tasks will fail with "
                "browser_unavailable (the service still starts)",
            )
        ]
    findings = [Finding("OK", f"browser agents: Chromium available: {choice.description}")]
    if not settings.browser_allowed_origins:
        findings.append(
            Finding(
                "OK",
                "BIGTHREE_BROWSER_ALLOWED_ORIGINS is empty: a browser agent reaches only the "
                "origins it is created with",
            )
        )
    return findings


def _check_combinations(settings: Settings) -> list[Finding]:
    findings: list[Finding] = []
    if settings.drain_grace_s >= CONTAINER_STOP_GRACE_S:
        findings.append(
            Finding(
                "WARN",
                f"BIGTHREE_DRAIN_GRACE_S={settings.drain_grace_s:g} is not below the container "
                f"stop timeout ({CONTAINER_STOP_GRACE_S:g} s in docker-compose.yml): raise "
                "stop_grace_period too, or tasks are killed mid-drain",
            )
        )
    if settings.provider_read_timeout_s > settings.max_task_timeout_s:
        findings.append(
            Finding(
                "WARN",
                "BIGTHREE_PROVIDER_READ_TIMEOUT_S exceeds BIGTHREE_MAX_TASK_TIMEOUT_S: "
                "the task deadline always cuts the read first",
            )
        )
    if settings.bulkhead_max_concurrent > settings.provider_max_connections:
        findings.append(
            Finding(
                "WARN",
                "BIGTHREE_BULKHEAD_MAX_CONCURRENT exceeds BIGTHREE_PROVIDER_MAX_CONNECTIONS: "
                "admitted calls will queue for pooled connections",
            )
        )
    if settings.max_concurrent_tasks > settings.bulkhead_max_concurrent:
        findings.append(
            Finding(
                "WARN",
                "BIGTHREE_MAX_CONCURRENT_TASKS exceeds BIGTHREE_BULKHEAD_MAX_CONCURRENT: when "
                "every task calls one provider at once, the excess fail with bulkhead_full "
                "(raise the bulkhead or BIGTHREE_BULKHEAD_MAX_WAIT_S)",
            )
        )
    if settings.max_concurrent_tasks > settings.provider_max_connections:
        findings.append(
            Finding(
                "WARN",
                "BIGTHREE_MAX_CONCURRENT_TASKS exceeds BIGTHREE_PROVIDER_MAX_CONNECTIONS: "
                "tasks will wait for pooled connections",
            )
        )
    return findings


def check_settings(
    settings: Settings,
    host: str | None = None,
    port: int | None = None,
    environ: Mapping[str, str] | None = None,
    env_file: str = ".env",
) -> list[Finding]:
    """Every finding about an already-loaded `settings`, in a stable order."""
    findings = _unknown_names(env_file, os.environ if environ is None else environ)
    for spec in PROVIDERS:
        findings += _check_provider(settings, spec)
    findings += _check_cors(settings)
    if settings.database_url:
        findings += _check_database(settings)
    else:
        findings += _check_writable("BIGTHREE_DATA_DIR", settings.data_dir)
    findings += _check_artifacts(settings)
    findings += _check_browser(settings)
    findings += _check_combinations(settings)
    findings.append(Finding(*claude_code_check(settings)))
    findings += _check_bind(settings, host or settings.host, port or settings.port)
    return findings


def run_check(env_file: str, host: str | None, port: int | None, out: TextIO | None = None) -> int:
    """Print one line per finding; 1 if any is an error, else 0."""
    stream = out or sys.stdout
    loaded, findings = _load(env_file)
    if loaded.settings is not None:
        more = check_settings(loaded.settings, host, port, env_file=env_file)
        if loaded.substituted:
            # some settings stand at defaults: say nothing reassuring, nothing about them
            hidden = {env_name(name) for name in loaded.substituted}
            more = [
                f for f in more if f.level != "OK" and not any(var in f.message for var in hidden)
            ]
        findings += more
    for finding in findings:
        print(finding, file=stream)
    return 1 if any(f.level == "ERROR" for f in findings) else 0
