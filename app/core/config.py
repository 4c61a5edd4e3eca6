"""The one Settings object: every knob of the service, read from the environment and `.env`.

Service settings use the `BIGTHREE_` prefix; provider credentials use the names their own
ecosystems use (`OPENAI_API_KEY`, `ANTHROPIC_BASE_URL`, ...). Every rule about the values
themselves lives here, as validators, so `bigthree serve` and `bigthree check-config` refuse
exactly the same configurations; `describe_errors` turns a refusal into one readable line per
problem, naming environment variables (never secret values). check-config adds only what
depends on the machine (a writable data dir, a free port) and advice (WARN lines).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.core.names import ProviderName


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    key_field: str
    url_field: str
    shape: Callable[[str], str | None]  # why a key for the official API looks wrong, or None


def _openai_shape(key: str) -> str | None:
    if key.startswith("sk-ant-"):
        return "looks like an Anthropic key (sk-ant-...), expected an OpenAI key (sk-...)"
    if not key.startswith("sk-"):
        return "does not look like an OpenAI key (expected it to start with sk-)"
    return None


def _anthropic_shape(key: str) -> str | None:
    if not key.startswith("sk-ant-"):
        return "does not look like an Anthropic key (expected it to start with sk-ant-)"
    return None


def _any_shape(key: str) -> str | None:
    return None


PROVIDERS = (
    ProviderSpec("openai", "openai_api_key", "openai_base_url", _openai_shape),
    ProviderSpec("anthropic", "anthropic_api_key", "anthropic_base_url", _anthropic_shape),
    ProviderSpec("gemini", "gemini_api_key", "gemini_base_url", _any_shape),
)
PLACEHOLDERS = ("changeme", "change-me", "your-key", "your_key", "xxx", "...", "<", "todo")


def _provider_env(name: str) -> AliasChoices:
    """Accept the ecosystem's own variable name and the prefixed one."""
    return AliasChoices(name, f"BIGTHREE_{name}")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BIGTHREE_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    # --- server -------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Interface `bigthree serve` binds to.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port `bigthree serve` binds to.")
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated bearer keys. Empty: only a loopback bind is allowed.",
    )
    metrics_require_auth: bool = Field(False, description="Require a bearer key on /metrics.")
    max_request_body_bytes: int = Field(1_048_576, ge=1024, le=100_000_000)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    grafana_url: str | None = Field(
        None, description="The Grafana dashboard's URL, linked from the console at /ui."
    )

    # --- storage ------------------------------------------------------------------------
    data_dir: Path = Field(
        Path("data"), description="Where the SQLite file (and, by default, artifacts) lives."
    )
    artifacts_dir: Path | None = Field(
        None,
        description="Where browser screenshots (task artifacts) are kept. Empty: "
        "<data_dir>/artifacts. Replicas on PostgreSQL must share one directory.",
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy async URL; default sqlite+aiosqlite:///<data_dir>/bigthree.db"
    )
    store_write_timeout_s: float = Field(
        5.0,
        gt=0,
        le=300,
        description="Longest a request waits for the store to take its write; then 503.",
    )
    store_shutdown_write_s: float = Field(
        10.0, ge=0, le=600, description="At shutdown, how long unwritten data may take to store."
    )
    sqlite_synchronous: Literal["NORMAL", "FULL"] = Field(
        "NORMAL",
        description="NORMAL: a commit survives a crash or kill -9 of the service; FULL: also "
        "a power cut (an fsync per group commit).",
    )

    # --- scale-out ----------------------------------------------------------------------
    redis_url: str | None = Field(
        None,
        description="Redis shared by the replicas (redis://host:6379/0). Empty: one process.",
    )
    task_lease_s: float = Field(
        15.0,
        ge=1,
        le=300,
        description="With replicas on PostgreSQL: a running task's lease, renewed every third "
        "of it; a replica silent this long has its running tasks marked interrupted.",
    )
    redis_prefix: str = Field(
        "bigthree",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Prefix of every Redis channel and key (one Redis, several installations).",
    )

    # --- logging ------------------------------------------------------------------------
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # --- agents and tasks ---------------------------------------------------------------
    max_agents: int = Field(10_000, ge=1)
    max_concurrent_tasks: int = Field(16, ge=1, le=10_000)
    max_queued_tasks_per_agent: int = Field(100, ge=1)
    max_prompt_chars: int = Field(100_000, ge=1)
    default_task_timeout_s: float = Field(300.0, gt=0)
    max_task_timeout_s: float = Field(3600.0, gt=0)
    chat_history_turns: int = Field(10, ge=0, le=1000)
    drain_grace_s: float = Field(25.0, ge=0, description="SIGTERM: wait this long for tasks.")
    max_wait_s: float = Field(
        60.0, gt=0, le=3600, description="Longest `?wait=` a task submit or read may hold for."
    )
    max_waiters: int = Field(
        1000, ge=1, le=1_000_000, description="Requests waiting on tasks at once; then 503."
    )

    # --- coder and orchestrator agents --------------------------------------------------
    workspace_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated absolute directories a coder's `workspace` may lie in. "
        "Empty: every coder works in <data_dir>/workspaces/<name>.",
    )
    workspace_max_file_bytes: int = Field(
        10_485_760, ge=1024, le=1_073_741_824, description="Largest file a tool reads or writes."
    )
    workspace_quota_bytes: int = Field(
        1_073_741_824, ge=1024, description="Most bytes a workspace may hold after a write."
    )
    tool_loop_max_steps: int = Field(
        25,
        ge=1,
        le=1000,
        description="Model calls per coder/orchestrator task; a claude_code agent's default "
        "max_turns.",
    )
    task_max_cost_usd: float = Field(
        5.0, ge=0, description="USD one coder/orchestrator/claude_code task may spend (0: no cap)."
    )
    orchestrator_max_created_agents: int = Field(
        5, ge=0, le=1000, description="Agents one orchestrator task may create."
    )
    orchestrator_may_create_orchestrators: bool = Field(
        False, description="Let an orchestrator create orchestrator agents."
    )

    # --- browser agents -----------------------------------------------------------------
    browser_executable: Path | None = Field(
        None,
        description="Chromium to launch. Empty: Playwright's own if installed, else the "
        "system's chromium (/usr/bin/chromium).",
    )
    browser_max_pages: int = Field(
        4, ge=1, le=1000, description="Browsers (one page each) open at once, across tasks."
    )
    browser_max_wait_s: float = Field(
        30.0, ge=0, le=60, description="How long a browser task waits for a free page."
    )
    browser_max_steps: int = Field(40, ge=1, le=1000, description="Model calls per browser task.")
    browser_action_timeout_s: float = Field(
        15.0, gt=0, le=300, description="Bound on one browser action, its page load included."
    )
    browser_allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated origins (scheme://host[:port]) a browser agent may reach "
        "when its own allowed_origins is not given. Empty: every navigation is refused.",
    )
    browser_safety: Literal["deny", "allow"] = Field(
        "deny", description="An action the model marks require_confirmation: deny or allow."
    )
    browser_artifacts_task_max_bytes: int = Field(
        20_971_520, ge=65_536, description="Screenshot bytes kept per task (its oldest go first)."
    )
    browser_artifacts_max_bytes: int = Field(
        1_073_741_824, ge=65_536, description="Screenshot bytes kept in all (oldest task first)."
    )

    # --- claude_code agents (the `claude-code` extra) -----------------------------------
    claude_code_cli_path: Path | None = Field(
        None, description="The Claude Code CLI to run. Empty: the one bundled with the SDK."
    )
    claude_code_allow_bash: bool = Field(
        False, description="Give claude_code agents the Bash tool unless they list their tools."
    )
    claude_code_max_retries: int = Field(
        1, ge=0, le=10, description="The CLI's own API retries (CLAUDE_CODE_MAX_RETRIES)."
    )
    claude_code_stop_grace_s: float = Field(
        5.0, gt=0, le=60, description="After an interrupt, wait this long before killing the CLI."
    )

    # --- events -------------------------------------------------------------------------
    ws_queue_size: int = Field(
        1000, ge=10, description="Events a subscriber may have unread before it is dropped."
    )
    ws_compression: bool = Field(
        False, description="Offer permessage-deflate on WebSockets (~40 KiB per open socket)."
    )
    event_payload_max_bytes: int = Field(65_536, ge=256)
    events_page_max: int = Field(
        1000, ge=1, le=1000, description="Most events one GET /v1/events page returns."
    )
    events_retention: int = Field(1_000_000, ge=1000, description="Events kept in the store.")

    # --- realtime orchestrator ----------------------------------------------------------
    realtime_url: str | None = Field(
        None,
        description="Upstream Realtime WebSocket URL. Empty: wss://api.openai.com/v1/realtime, "
        "or OPENAI_BASE_URL turned ws(s)://.../realtime when that is not the official API.",
    )
    realtime_model: str = Field("gpt-realtime", min_length=1, max_length=128)
    realtime_instructions_file: Path | None = Field(
        None, description="Orchestrator instructions replacing the packaged prompt."
    )
    realtime_max_session_s: float = Field(
        3300.0, gt=0, le=3600, description="Session length cap (upstream's own cap is 60 min)."
    )
    realtime_max_sessions: int = Field(20, ge=1, le=10_000, description="Sessions open at once.")
    realtime_client_queue_size: int = Field(
        256, ge=4, le=100_000, description="Frames buffered per client before it is dropped."
    )

    # --- providers ----------------------------------------------------------------------
    default_provider: ProviderName = "openai"
    openai_api_key: SecretStr | None = Field(None, validation_alias=_provider_env("OPENAI_API_KEY"))
    openai_base_url: str = Field(
        "https://api.openai.com/v1", validation_alias=_provider_env("OPENAI_BASE_URL")
    )
    anthropic_api_key: SecretStr | None = Field(
        None, validation_alias=_provider_env("ANTHROPIC_API_KEY")
    )
    anthropic_base_url: str = Field(
        "https://api.anthropic.com", validation_alias=_provider_env("ANTHROPIC_BASE_URL")
    )
    gemini_api_key: SecretStr | None = Field(None, validation_alias=_provider_env("GEMINI_API_KEY"))
    gemini_base_url: str = Field(
        "https://generativelanguage.googleapis.com",
        validation_alias=_provider_env("GEMINI_BASE_URL"),
    )
    provider_connect_timeout_s: float = Field(5.0, gt=0)
    provider_read_timeout_s: float = Field(120.0, gt=0)
    provider_write_timeout_s: float = Field(30.0, gt=0)
    provider_pool_timeout_s: float = Field(10.0, gt=0)
    provider_max_connections: int = Field(100, ge=1)
    pricing_file: Path | None = Field(None, description="JSON price table merged over defaults.")

    # --- resilience ---------------------------------------------------------------------
    retry_max_attempts: int = Field(3, ge=1, le=20)
    retry_initial_backoff_s: float = Field(0.5, ge=0)
    retry_max_backoff_s: float = Field(8.0, ge=0)
    retry_max_server_wait_s: float = Field(60.0, ge=0, description="Cap on honoured retry-after.")
    retry_budget_ratio: float = Field(
        0.2, ge=0, le=10, description="Retries allowed per request over the budget window."
    )
    retry_budget_window_s: float = Field(10.0, gt=0, le=3600)
    retry_budget_min_per_s: float = Field(
        0.5, ge=0, description="Retries/s always allowed, so a quiet provider can still retry."
    )
    provider_call_timeout_s: float = Field(
        180.0, gt=0, description="Bound on one provider attempt (the task deadline also applies)."
    )
    breaker_enabled: bool = Field(True, description="False: breakers start (and stay) disabled.")
    breaker_per_model: bool = Field(
        False, description="One breaker per provider/model instead of per provider."
    )
    breaker_window_size: int = Field(20, ge=1, le=10_000)
    breaker_minimum_calls: int = Field(10, ge=1, le=10_000)
    breaker_failure_rate_threshold: float = Field(50.0, gt=0, le=100)
    breaker_slow_call_duration_s: float = Field(60.0, gt=0)
    breaker_slow_call_rate_threshold: float = Field(100.0, gt=0, le=100)
    breaker_open_wait_s: float = Field(30.0, gt=0)
    breaker_half_open_max_calls: int = Field(3, ge=1, le=1000)
    breaker_probe_timeout_s: float = Field(180.0, gt=0)
    bulkhead_max_concurrent: int = Field(32, ge=1, le=10_000, description="Calls per provider.")
    bulkhead_max_wait_s: float = Field(0.0, ge=0, le=60, description="0: fail fast when full.")

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("browser_allowed_origins", mode="before")
    @classmethod
    def _split_browser_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("browser_allowed_origins")
    @classmethod
    def _origins_are_origins(cls, value: list[str]) -> list[str]:
        # the guard's own parser (pure URL logic), so the setting means what the guard checks
        from app.tools.browser.guard import OriginError, parse_origin

        try:
            return [str(parse_origin(origin)) for origin in value]
        except OriginError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("workspace_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("workspace_roots")
    @classmethod
    def _roots_are_absolute(cls, value: list[Path]) -> list[Path]:
        relative = [str(root) for root in value if not root.is_absolute()]
        if relative:
            raise ValueError(f"workspace roots must be absolute directories: {relative}")
        return value

    @field_validator("api_keys")
    @classmethod
    def _keys_are_long(cls, value: list[SecretStr]) -> list[SecretStr]:
        if any(len(key.get_secret_value()) < 16 for key in value):
            raise ValueError("every BIGTHREE_API_KEYS entry must be at least 16 characters")
        return value

    @field_validator("openai_api_key", "anthropic_api_key", "gemini_api_key")
    @classmethod
    def _key_is_bare(cls, value: SecretStr | None) -> SecretStr | None:
        key = value.get_secret_value() if value is not None else ""
        if key and (key != key.strip() or any(ch.isspace() for ch in key) or key[0] in "\"'"):
            raise ValueError("contains whitespace or quotes")
        if any(marker in key.lower() for marker in PLACEHOLDERS):
            raise ValueError("looks like a placeholder, not a key")
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            parts = urlsplit(origin)
            if origin != "*" and (
                parts.scheme not in ("http", "https") or not parts.hostname or parts.path
            ):
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port], no path)")
        return value

    @field_validator("openai_base_url", "anthropic_base_url", "gemini_base_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError for a malformed port
        except ValueError as exc:
            raise ValueError(f"is not a valid URL: {exc}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"is not an http(s) URL with a host: {value!r}")
        if parts.query or parts.fragment:
            raise ValueError("must not carry a query or fragment")
        if parts.username or parts.password:
            raise ValueError("must not embed credentials; use the API key setting")
        return value.rstrip("/")

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("grafana_url")
    @classmethod
    def _check_grafana_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("realtime_url")
    @classmethod
    def _check_ws_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("ws://", "wss://")):
            raise ValueError("must start with ws:// or wss://")
        return value.rstrip("/")

    @field_validator("pricing_file")
    @classmethod
    def _pricing_file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} is not a readable file")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            driver = make_url(value).drivername
        except ArgumentError:
            raise ValueError("is not a valid SQLAlchemy URL") from None
        if driver.startswith("sqlite") and driver != "sqlite+aiosqlite":
            raise ValueError("must use the async driver sqlite+aiosqlite")
        return value

    @model_validator(mode="after")
    def _check_combinations(self) -> Settings:
        problems = []
        if self.default_task_timeout_s > self.max_task_timeout_s:
            problems.append(
                "BIGTHREE_DEFAULT_TASK_TIMEOUT_S must not exceed BIGTHREE_MAX_TASK_TIMEOUT_S"
            )
        if self.retry_initial_backoff_s > self.retry_max_backoff_s:
            problems.append(
                "BIGTHREE_RETRY_INITIAL_BACKOFF_S must not exceed BIGTHREE_RETRY_MAX_BACKOFF_S"
            )
        for spec in PROVIDERS:
            key: SecretStr | None = getattr(self, spec.key_field)
            official = getattr(self, spec.url_field) == _default_url(spec.url_field)
            problem = spec.shape(key.get_secret_value()) if key and official else None
            if problem:
                problems.append(f"{env_name(spec.key_field)} {problem}")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'bigthree.db').as_posix()}"

    @property
    def resolved_artifacts_dir(self) -> Path:
        return self.artifacts_dir or self.data_dir / "artifacts"

    @property
    def artifacts_per_replica(self) -> bool:
        """Replicas on PostgreSQL, each keeping artifacts under its own data dir: a file
        another replica saved is not on this one's disk (BIGTHREE_ARTIFACTS_DIR not set)."""
        return self.artifacts_dir is None and self.is_shared_database

    @property
    def is_shared_database(self) -> bool:
        """PostgreSQL: the store several replicas may share (SQLite is one process's)."""
        from sqlalchemy.engine import make_url

        return make_url(self.resolved_database_url).get_backend_name() == "postgresql"

    def secrets(self) -> list[SecretStr | None]:
        """Every secret in the settings (for the redactor): keys, and the passwords of the
        database and Redis URLs."""
        passwords = [
            SecretStr(password)
            for url in (self.database_url, self.redis_url)
            if url and (password := urlsplit(url).password)
        ]
        keys = [self.openai_api_key, self.anthropic_api_key, self.gemini_api_key]
        return [*self.api_keys, *keys, *passwords]

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_keys)

    def unsafe_bind_reason(self, host: str | None = None) -> str | None:
        """Why binding `host` without API keys is refused, or None when it is fine."""
        if self.auth_enabled:
            return None
        if is_loopback(host or self.host):
            return None
        return (
            f"refusing to bind {host or self.host} without authentication: set BIGTHREE_API_KEYS "
            "(comma-separated, >= 16 chars each) or bind 127.0.0.1"
        )


def _default_url(field_name: str) -> str:
    return str(Settings.model_fields[field_name].default).rstrip("/")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class Loaded:
    """Settings as loaded: `problems` (readable lines) when invalid, and which fields were
    invalid and stand at their defaults in `settings` so later checks could still run."""

    settings: Settings | None
    problems: list[str]
    substituted: set[str]

    @property
    def valid(self) -> bool:
        return not self.problems


def load_settings(env_file: str | None = ".env", max_rounds: int = 5) -> Loaded:
    """The Settings, with every problem in one go.

    pydantic checks a rule across settings only once each field is valid, so an invalid
    field is set to its default and the model validated again, until it passes."""
    substituted: set[str] = set()
    problems: list[str] = []
    for _ in range(max_rounds):
        defaults = {
            name: Settings.model_fields[name].get_default(call_default_factory=True)
            for name in substituted
        }
        try:
            settings = Settings(_env_file=env_file, **defaults)
        except ValidationError as exc:
            problems += [line for line in describe_errors(exc) if line not in problems]
            fresh = invalid_fields(exc) - substituted
            if not fresh:
                break
            substituted |= fresh
            continue
        return Loaded(settings, problems, substituted)
    return Loaded(None, problems, substituted)


def describe_errors(exc: ValidationError) -> list[str]:
    """One readable line per problem: `ENV_VAR: what is wrong` (no values echoed)."""
    lines: list[str] = []
    for error in exc.errors(include_input=False, include_url=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        field = _field_of(error["loc"])
        if field is None:  # a rule across settings: its message names them
            lines.extend(message.splitlines())
        else:
            lines.append(f"{env_name(field)}: {message}")
    return lines


def invalid_fields(exc: ValidationError) -> set[str]:
    """The Settings fields a validation error is about. A rule across settings names them
    in its message, the one to blame first (each line: `ENV_VAR ...`)."""
    fields: set[str] = set()
    for error in exc.errors(include_input=False, include_url=False):
        field = _field_of(error["loc"])
        if field is not None:
            fields.add(field)
            continue
        for line in str(error["msg"]).removeprefix("Value error, ").splitlines():
            blamed = _field_of((line.split(" ", 1)[0],))
            if blamed is not None:
                fields.add(blamed)
    return fields


def _field_of(loc: tuple[int | str, ...]) -> str | None:
    if not loc:
        return None
    first = str(loc[0])
    if first in Settings.model_fields:
        return first
    if first.startswith("BIGTHREE_") and first[9:].lower() in Settings.model_fields:
        return first[9:].lower()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices) and first.upper() in {
            str(c).upper() for c in alias.choices
        }:
            return name
    return None


def env_name(field_name: str) -> str:
    """The primary environment variable that sets `field_name`."""
    field = Settings.model_fields[field_name]
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        first = alias.choices[0]
        assert isinstance(first, str)
        return first
    return f"BIGTHREE_{field_name.upper()}"
