"""SQLite CPU per task with random ids against time-ordered ids (bench/README.md, run 9).

    python -m bench.store_ids [--tasks 12000]

The service's own schema in a fresh SQLite file (WAL, synchronous=NORMAL, as the store
writer opens it); per task what a chat task writes: the task row, five events, the running
and the finished update, twenty tasks per transaction. Random ids put every new task and
its events' `task_id` on a random page of each index; time-ordered ids (`app.core.ids`)
append at one end. Prints the writer's CPU and wall time per task for each, twice.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine

from app.core.ids import new_id
from app.store.schema import metadata

PER_COMMIT = 20
EVENT_TYPES = ("task.queued", "task.running", "llm.request", "llm.response", "task.succeeded")


def random_id() -> str:
    return os.urandom(16).hex()


def measure(make_id: Callable[[], str], tasks: int) -> tuple[float, float]:
    """CPU and wall seconds per task."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "store.db"
        engine = create_engine(f"sqlite:///{path}")
        metadata.create_all(engine)
        engine.dispose()
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        seq, cpu, wall = 0, 0.0, 0.0
        for batch in range(tasks // PER_COMMIT):
            started_cpu, started = time.process_time(), time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            for i in range(PER_COMMIT):
                task_id, now = make_id(), time.time()
                conn.execute(
                    "INSERT INTO tasks (id, agent_id, agent_name, state, prompt, input_tokens,"
                    " output_tokens, cached_input_tokens, cost_usd, attempts, timeout_s,"
                    " created_at, order_key, cancel_requested, new_session)"
                    " VALUES (?, ?, ?, 'queued', 'bench', 0, 0, 0, 0, 0, 60, ?, ?, 0, 0)",
                    (task_id, f"agent{i:03d}", f"a{i}", now, batch * PER_COMMIT + i),
                )
                rows = []
                for type_ in EVENT_TYPES:
                    seq += 1
                    rows.append((seq, now, "service", type_, f"a{i}", task_id, None, "{}"))
                conn.executemany(
                    "INSERT INTO events (seq, ts, source, type, agent, task_id, session_id,"
                    " payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                conn.execute(
                    "UPDATE tasks SET state = 'running', started_at = ? WHERE id = ?",
                    (now, task_id),
                )
                conn.execute(
                    "UPDATE tasks SET state = 'succeeded', finished_at = ?, result = 'ok'"
                    " WHERE id = ?",
                    (now, task_id),
                )
            conn.execute("COMMIT")
            cpu += time.process_time() - started_cpu
            wall += time.perf_counter() - started
        conn.close()
    done = tasks // PER_COMMIT * PER_COMMIT
    return cpu / done, wall / done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=12_000)
    args = parser.parse_args()
    print("| ids | CPU per task | wall per task |\n|---|---:|---:|")
    for name, make in (("random", random_id), ("time-ordered", new_id)) * 2:
        cpu, wall = measure(make, args.tasks)
        print(f"| {name} | {cpu * 1e6:.1f} µs | {wall * 1e6:.1f} µs |")


if __name__ == "__main__":
    main()
