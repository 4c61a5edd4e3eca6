"""`search_files`: a bounded regex search over a workspace, through the sandbox's walk.

Bounds: the regex itself is vetted by `app.tools.patterns.search_regex`; files larger than
`SEARCH_FILE_BYTES`, binary files and refused files are skipped (and counted); each line is
matched on its first `MATCH_LINE_CHARS` characters; the search stops at `max_hits` or after
`BUDGET_S` seconds, and says which.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from app.tools.errors import WorkspaceError
from app.tools.patterns import MATCH_LINE_CHARS
from app.tools.workspace import WalkLimit, Workspace

SEARCH_FILE_BYTES = 2 * 1024 * 1024
BUDGET_S = 2.0
SHOWN_LINE_CHARS = 200


@dataclass(frozen=True, slots=True)
class SearchHit:
    path: str
    line: int
    text: str


@dataclass(frozen=True, slots=True)
class SearchOutcome:
    hits: list[SearchHit]
    truncated: bool  # more hits than max_hits
    skipped_files: int  # binary, too large or refused
    stopped_early: bool  # the time budget or the walk limit ran out


def search(
    workspace: Workspace,
    regex: re.Pattern[str],
    *,
    glob: str = "**",
    max_hits: int = 100,
    budget_s: float = BUDGET_S,
) -> SearchOutcome:
    """Lines matching `regex` in files matching `glob`, in path order."""
    hits: list[SearchHit] = []
    skipped = 0
    deadline = time.monotonic() + budget_s
    limit = min(SEARCH_FILE_BYTES, workspace.limits.max_file_bytes)
    try:
        for found in workspace.walk(glob):
            try:
                text = workspace.read_walked(found, limit)
            except WorkspaceError:
                skipped += 1
                continue
            for number, line in enumerate(text.splitlines(), start=1):
                if time.monotonic() > deadline:
                    return SearchOutcome(hits, False, skipped, True)
                if regex.search(line[:MATCH_LINE_CHARS]):
                    if len(hits) == max_hits:
                        return SearchOutcome(hits, True, skipped, False)
                    hits.append(SearchHit(found.path, number, line[:SHOWN_LINE_CHARS]))
    except WalkLimit:
        return SearchOutcome(hits, False, skipped, True)
    return SearchOutcome(hits, False, skipped, False)
