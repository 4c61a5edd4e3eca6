"""WAL checkpoints run on their own thread, never inside the writer's commit."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from app.store.sqlite_checkpoint import Checkpointer


class Recording(Checkpointer):
    def __init__(self, path: Path) -> None:
        super().__init__(path, busy_timeout_ms=1000, every_commits=5)
        self.threads: list[str] = []

    def _checkpoint(self) -> None:
        self.threads.append(threading.current_thread().name)
        super()._checkpoint()


def test_a_checkpoint_runs_every_n_commits_off_the_writer_thread(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE t (x INTEGER)")
    checkpointer = Recording(path)
    for i in range(5):
        writer.execute("INSERT INTO t VALUES (?)", (i,))
        checkpointer.committed()
    checkpointer.close()  # waits for the checkpoint the fifth commit started
    assert checkpointer.done == 1
    assert checkpointer.threads and all(
        name.startswith("store-checkpoint") for name in checkpointer.threads
    )
    assert threading.current_thread().name not in checkpointer.threads
    writer.close()
