"""A service with every secret configured (API keys and provider keys), for the reliability
tests: the secrets are known here so a test can look for them where they must not be."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import provider_env
from tests.support.procs import Proc, start_service

API_KEY = "reliab-api-key-7d1c3e9a5b"
OPENAI_KEY = "sk-reliab-openai-4f2a9c7e1d"
ANTHROPIC_KEY = "sk-ant-reliab-anthropic-8b3d6f0a2c"
GEMINI_KEY = "reliab-gemini-key-5e7a1c9d3f"
SECRETS = (API_KEY, OPENAI_KEY, ANTHROPIC_KEY, GEMINI_KEY)
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def keyed_env(fake_url: str) -> dict[str, str]:
    return {
        **provider_env(fake_url),
        "BIGTHREE_API_KEYS": API_KEY,
        "OPENAI_API_KEY": OPENAI_KEY,
        "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
        "GEMINI_API_KEY": GEMINI_KEY,
        "BIGTHREE_BREAKER_PER_MODEL": "true",
        "BIGTHREE_METRICS_REQUIRE_AUTH": "true",
        # a prompt one character over the limit, \u-escaped, must still fit in the request
        # body limit (1 MiB): then it is refused as too long (422), not as too large (413)
        "BIGTHREE_MAX_PROMPT_CHARS": "20000",
        # bounded holds for a fuzzer's `?wait=` requests
        "BIGTHREE_MAX_WAIT_S": "2",
        # no Claude Code CLI here (so the document offers no claude_code kind): a fuzzer
        # would otherwise start a CLI process per task it makes up
        "BIGTHREE_CLAUDE_CODE_CLI_PATH": "/nonexistent/claude",
    }


@pytest.fixture(scope="module")
def keyed_service(tmp_path_factory: pytest.TempPathFactory, fake_upstream: Proc) -> Iterator[Proc]:
    proc = start_service(tmp_path_factory.mktemp("keyed"), env=keyed_env(fake_upstream.url))
    yield proc
    proc.stop()
