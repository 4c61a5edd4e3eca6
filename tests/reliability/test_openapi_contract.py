"""Schemathesis over the service's own OpenAPI document, every check on, against the real
running server: no server errors, no undocumented status codes, no schema-valid request
refused, no undocumented header rules (Allow, Retry-After, WWW-Authenticate)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.reliability.conftest import API_KEY
from tests.support.procs import Proc

# bounded so the whole contract stays well under a minute on a 2-core CI machine; the seed
# makes a failure reproducible (`st run ... --seed 1`)
MAX_EXAMPLES = "25"
SEED = "1"
SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))


def schemathesis(service: Proc, tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    command = [
        SCHEMATHESIS,
        "run",
        f"{service.url}/openapi.json",
        "--header",
        f"Authorization: Bearer {API_KEY}",
        "--checks",
        "all",
        "--max-examples",
        MAX_EXAMPLES,
        "--seed",
        SEED,
        "--no-color",
        "--report-dir",
        str(tmp_path),
        *options,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)


def test_every_operation_honours_its_document(keyed_service: Proc, tmp_path: Path) -> None:
    """Examples, coverage (incl. every undeclared method: 405 with the right Allow) and
    fuzzing, with every check."""
    result = schemathesis(keyed_service, tmp_path, "--phases", "examples,coverage,fuzzing")
    assert result.returncode == 0, result.stdout[-15_000:] + result.stderr[-3000:]
    assert '"status": 500' not in keyed_service.logs()


def test_stateful_sequences_honour_the_document(keyed_service: Proc, tmp_path: Path) -> None:
    """Sequences that feed one response's ids into the next request, every check on but
    positive_data_acceptance: the links schemathesis infers pass null fields (an event's
    `task_id`) on as the text "None", which the document itself says is not an id."""
    result = schemathesis(
        keyed_service,
        tmp_path,
        "--phases",
        "stateful",
        "--exclude-checks",
        "positive_data_acceptance",
    )
    assert result.returncode == 0, result.stdout[-15_000:] + result.stderr[-3000:]
    assert '"status": 500' not in keyed_service.logs()
