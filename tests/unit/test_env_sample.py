"""`.env.sample` lists every setting the service reads, and nothing else, with true defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.core.config import Settings, env_name

SAMPLE = Path(__file__).resolve().parents[2] / ".env.sample"
# variables docker-compose.yml interpolates; the service never reads them
COMPOSE_ONLY = {"GRAFANA_ADMIN_PASSWORD"}
# `NAME=value` or a commented-out `# NAME=value`; prose comments never start with `NAME=`
LINE = re.compile(r"^\s*(?:#\s?)?([A-Z][A-Z0-9_]*)=(.*)$")


def sample_entries() -> list[tuple[str, str, bool]]:
    """(name, value, commented) for every variable line of the sample, in file order."""
    entries = []
    for line in SAMPLE.read_text(encoding="utf-8").splitlines():
        match = LINE.match(line)
        if match:
            entries.append((match.group(1), match.group(2), line.lstrip().startswith("#")))
    return entries


def settings_names() -> set[str]:
    return {env_name(field) for field in Settings.model_fields}


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's environment from leaking into Settings built here."""
    for name in settings_names() | {f"BIGTHREE_{f.upper()}" for f in Settings.model_fields}:
        monkeypatch.delenv(name, raising=False)


def test_sample_lists_exactly_the_settings() -> None:
    """Every Settings field's env var appears in .env.sample, and no stale name does."""
    listed = {name for name, _, _ in sample_entries()}
    expected = settings_names()
    missing = sorted(expected - listed)
    stale = sorted(listed - expected - COMPOSE_ONLY)
    assert not missing, f"add to .env.sample (see app/core/config.py): {missing}"
    assert not stale, f"remove from .env.sample (no such setting): {stale}"
    assert listed - expected == COMPOSE_ONLY


def test_sample_lists_each_name_once() -> None:
    """No variable is listed twice (one would silently win over the other)."""
    names = [name for name, _, _ in sample_entries()]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    assert not duplicates


def test_commented_values_are_the_defaults(tmp_path: Path) -> None:
    """A commented-out `# NAME=value` shows the field's real default."""
    defaults = Settings(_env_file=None)
    by_env = {env_name(field): field for field in Settings.model_fields}
    wrong = []
    for name, value, commented in sample_entries():
        if not commented or name not in by_env or value == "":
            continue
        env_file = tmp_path / f"{name}.env"
        env_file.write_text(f"{name}={value}\n", encoding="utf-8")
        field = by_env[name]
        shown = getattr(Settings(_env_file=env_file), field)
        if shown != getattr(defaults, field):
            wrong.append(f"{name}={value} (default is {getattr(defaults, field)!r})")
    assert not wrong, f".env.sample shows values that are not the defaults: {wrong}"


def test_sample_with_every_line_uncommented_is_valid(tmp_path: Path) -> None:
    """Uncommenting every line of the sample as written yields a valid configuration."""
    lines = [f"{name}={value}" for name, value, _ in sample_entries() if value != ""]
    env_file = tmp_path / "all.env"
    env_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    Settings(_env_file=env_file)


def test_sample_holds_no_secret_values() -> None:
    """Keys and passwords are left empty in the sample: nothing real can be committed."""
    secret = re.compile(r"(KEY|KEYS|PASSWORD|TOKEN|SECRET)$")
    filled = [name for name, value, _ in sample_entries() if secret.search(name) and value]
    assert not filled
