"""Whether `claude_code` agents can run here: the `claude-code` extra (the Claude Agent SDK,
whose wheel bundles the Claude Code CLI) is installed and the CLI is an executable file.

Nothing here imports the SDK, so the service starts (and says what to install) without it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path
from typing import Literal

from app.agents.schemas import AgentCreate, ClaudeCodeOptions
from app.core.config import Settings
from app.core.errors import InvalidInput
from app.core.names import ProviderName

CLAUDE_CODE_PROVIDER: ProviderName = "anthropic"
INSTALL_HINT = "pip install 'big-three-agents[claude-code]'"
SDK_MODULE = "claude_agent_sdk"


def sdk_installed() -> bool:
    return importlib.util.find_spec(SDK_MODULE) is not None


def bundled_cli() -> Path | None:
    """The CLI inside the SDK's wheel (`claude_agent_sdk/_bundled/claude`), if present."""
    spec = importlib.util.find_spec(SDK_MODULE)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "_bundled" / "claude"
    return path if path.is_file() else None


def cli_path(settings: Settings) -> Path | None:
    """BIGTHREE_CLAUDE_CODE_CLI_PATH, else the bundled CLI, else `claude` on PATH."""
    if settings.claude_code_cli_path is not None:
        return settings.claude_code_cli_path
    found = bundled_cli() or shutil.which("claude")
    return Path(found) if found else None


def unavailable_reason(settings: Settings) -> str | None:
    """Why claude_code agents cannot run here, or None when they can."""
    if not sdk_installed():
        return f"claude_code agents need the Claude Agent SDK (not installed): {INSTALL_HINT}"
    path = cli_path(settings)
    if path is None:
        return (
            "no Claude Code CLI found (the SDK wheel bundles one; reinstall the extra or set "
            "BIGTHREE_CLAUDE_CODE_CLI_PATH)"
        )
    if not path.is_file() or not os.access(path, os.X_OK):
        return f"the Claude Code CLI {path} is not an executable file"
    return None


def cli_version(path: Path, timeout_s: float = 20.0) -> str:
    """`claude --version`; raises OSError / subprocess errors when it does not run."""
    done = subprocess.run(  # noqa: S603 - the operator's configured CLI, no shell
        [str(path), "--version"],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=True,
        env={"PATH": os.environ.get("PATH", ""), "DISABLE_TELEMETRY": "1"},
    )
    return done.stdout.strip()


def check_config(settings: Settings) -> tuple[Literal["ERROR", "WARN", "OK"], str]:
    """`bigthree check-config`'s finding: can claude_code agents run here, and which CLI."""
    reason = unavailable_reason(settings)
    if reason is not None:
        # not installed is fine (an optional extra); a configured CLI that is broken is not
        level: Literal["ERROR", "WARN"] = "ERROR" if settings.claude_code_cli_path else "WARN"
        return level, f"claude_code agents unavailable: {reason}"
    path = cli_path(settings)
    assert path is not None
    try:
        version = cli_version(path)
    except (OSError, subprocess.SubprocessError) as exc:
        return "ERROR", f"claude_code: the Claude Code CLI {path} does not run ({exc})"
    return "OK", f"claude_code: Claude Code CLI usable ({version}, {path})"


def check_claude_code_agent(
    settings: Settings, spec: AgentCreate, provider: str
) -> ClaudeCodeOptions:
    """The new agent's options, or a 422 naming what is wrong (or what to install)."""
    if provider != CLAUDE_CODE_PROVIDER:
        raise InvalidInput(
            f"claude_code agents talk to Anthropic through Claude Code: provider must be "
            f"{CLAUDE_CODE_PROVIDER!r}, not {provider!r}"
        )
    if spec.fallbacks:
        raise InvalidInput("claude_code agents take no fallbacks (Claude Code calls one model)")
    if spec.permission_mode == "bypassPermissions" and os.geteuid() == 0:
        raise InvalidInput(
            "Claude Code refuses permission_mode bypassPermissions when it runs as root, as "
            "this service does; use acceptEdits (the service's permission layer still applies)"
        )
    reason = unavailable_reason(settings)
    if reason is not None:
        raise InvalidInput(reason)
    return spec.claude_code_options()
