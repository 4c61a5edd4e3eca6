"""What tests of `claude_code` agents share."""

from __future__ import annotations

import os

import pytest

from app.agents.kinds.claude_code.availability import unavailable_reason
from app.core.config import Settings


def require_claude_code() -> None:
    """Skip without the `claude-code` extra (with the reason); fail instead under CI, where
    `make test` installs it."""
    reason = unavailable_reason(Settings(_env_file=None))
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI installs the extra: make test)")
    pytest.skip(reason)
