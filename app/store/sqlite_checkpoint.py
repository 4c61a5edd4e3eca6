"""Checkpoints of SQLite's write-ahead log, on a thread of their own.

SQLite's auto-checkpoint runs inside the commit that crosses its threshold, and a checkpoint
ends with an fsync: here about one commit in a hundred took ~4 ms instead of ~50 µs
(bench/README.md, run 9), and a task that met one waited for it. The writer's connection
turns auto-checkpoint off, and after every `every_commits` commits this runs a PASSIVE
checkpoint (the one auto-checkpoint runs: it copies what it can without waiting for the
writer or readers) on its own connection and thread, so the fsync never lands in a commit.
"""

from __future__ import annotations

import sqlite3
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

EVERY_COMMITS = 100  # ~the page count SQLite's default (1,000 pages) takes at ~10 per commit


class Checkpointer:
    def __init__(self, path: Path, *, busy_timeout_ms: int, every_commits: int = EVERY_COMMITS):
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._every = every_commits
        self._commits = 0
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-checkpoint")
        self._pending: Future[None] | None = None
        self._conn: sqlite3.Connection | None = None
        self.done = 0  # checkpoints run

    def committed(self) -> None:
        """Count a commit (called where it ran: the loop's thread, or the writer thread for
        one that had to wait); start a checkpoint when due and none is still running."""
        self._commits += 1
        if self._commits % self._every == 0 and (self._pending is None or self._pending.done()):
            self._pending = self._thread.submit(self._checkpoint)

    def close(self) -> None:
        self._thread.submit(self._disconnect)
        self._thread.shutdown(wait=True)

    def _checkpoint(self) -> None:
        try:
            if self._conn is None:
                self._conn = sqlite3.connect(
                    self._path, isolation_level=None, check_same_thread=False
                )
                self._conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.done += 1
        except sqlite3.Error as exc:  # the next one tries again; the WAL only grows meanwhile
            log.warning("store_checkpoint_failed", error=str(exc))

    def _disconnect(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
