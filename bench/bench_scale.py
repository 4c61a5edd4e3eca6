"""Scale-out benchmark: tasks/s, event fan-out latency and CPU per task with 1, 2 and 3
replicas on one PostgreSQL + Redis, next to one SQLite process (this code, and optionally
an earlier commit's, measured in the same run).

    .venv/bin/python -m bench.bench_scale                     # all rows
    .venv/bin/python -m bench.bench_scale --before d7ea70e    # + SQLite at that commit
    .venv/bin/python -m bench.bench_scale --tasks 300 --replicas 1 3

Each row: start the replicas (real `bigthree serve` processes on loopback) and a fake
upstream answering at once, create `--agents` agents, submit `--tasks` tasks round-robin to
every replica from `--clients` concurrent HTTP clients, and wait for every `task.succeeded`
on one WebSocket subscriber per replica. Figures:

- tasks/s: tasks / (first submit → last `task.succeeded` seen);
- fan-out latency: `task.succeeded` arrival at each subscriber minus the event's `ts` (set by the
  replica that emitted it; one machine, one clock), p50 and p99 over every subscriber;
- CPU per task: user+system CPU of all the replica processes (/proc) over the run / tasks.

PostgreSQL and Redis run on the same 2 cores and their CPU is not counted. Every loop is
bounded in count and time; nothing asserts on time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.api import create_agent, open_events
from tests.support.cluster import running_cluster
from tests.support.procs import Proc, start_fake_upstream, start_service, wait_until

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(f"[bench_scale] {message}", file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))] if ordered else 0.0


@dataclass
class Result:
    label: str
    replicas: int
    tasks: int
    seconds: float
    latencies: list[float]
    cpu_s: float

    def row(self) -> str:
        return (
            f"| {self.label} | {self.replicas} | {self.tasks / self.seconds:,.0f} | "
            f"{percentile(self.latencies, 50) * 1000:.1f} ms | "
            f"{percentile(self.latencies, 99) * 1000:.1f} ms | "
            f"{self.cpu_s / self.tasks * 1000:.2f} ms |"
        )


class Arrivals:
    """`task.succeeded` arrival latencies on one replica's event stream."""

    def __init__(self, url: str) -> None:
        self.latencies: list[float] = []
        self._ws = open_events(url, type="task.succeeded").__enter__()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        import json

        try:
            while True:
                self.latencies.append(time.time() - json.loads(self._ws.recv())["ts"])
        except Exception:  # closed
            return

    def close(self) -> None:
        self._ws.__exit__(None, None, None)
        self._thread.join(timeout=10)


def drive(label: str, procs: list[Proc], args: argparse.Namespace) -> Result:
    urls = [p.url for p in procs]
    clients = [httpx.Client(base_url=url, timeout=60) for url in urls]
    names = [f"bench-{n:03d}" for n in range(args.agents)]
    for n, name in enumerate(names):
        create_agent(clients[n % len(clients)], name)
    arrivals = [Arrivals(url) for url in urls]
    cpu_before = sum(cpu_seconds(p.popen.pid) for p in procs)
    local = threading.local()

    def submit(k: int) -> None:
        if not hasattr(local, "http"):
            local.http = [httpx.Client(base_url=url, timeout=60) for url in urls]
        http = local.http[k % len(urls)]
        for _ in range(50):  # a full agent queue answers 429: wait and try again
            response = http.post(
                f"/v1/agents/{names[k % len(names)]}/tasks", json={"prompt": f"b-{k}"}
            )
            if response.status_code == 202:
                return
            time.sleep(0.05)
        raise RuntimeError(f"task {k} refused: {response.text}")

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=args.clients) as pool:
        list(pool.map(submit, range(args.tasks)))
    wait_until(
        lambda: all(len(a.latencies) >= args.tasks for a in arrivals),
        timeout=args.timeout,
        what=f"{label}: every task.succeeded on every subscriber",
    )
    seconds = time.monotonic() - started
    cpu = sum(cpu_seconds(p.popen.pid) for p in procs) - cpu_before
    for a in arrivals:
        a.close()
    latencies = [x for a in arrivals for x in a.latencies]
    return Result(label, len(procs), args.tasks, seconds, latencies, cpu)


BASE_ENV = {
    "BIGTHREE_LOG_LEVEL": "WARNING",
    "BIGTHREE_CHAT_HISTORY_TURNS": "0",
    "BIGTHREE_MAX_CONCURRENT_TASKS": "32",
    "BIGTHREE_BULKHEAD_MAX_CONCURRENT": "64",
    "BIGTHREE_RETRY_BUDGET_MIN_PER_S": "1000",
}


@contextmanager
def sqlite_service(tmp: Path, pythonpath: Path | None) -> Iterator[list[Proc]]:
    tmp.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        fake = start_fake_upstream(tmp)
        stack.callback(fake.stop)
        env = {**BASE_ENV, "OPENAI_BASE_URL": f"{fake.url}/v1"}
        if pythonpath is not None:
            env["PYTHONPATH"] = str(pythonpath)
        proc = start_service(tmp, env=env)
        stack.callback(proc.stop)
        yield [proc]


@contextmanager
def checkout(ref: str) -> Iterator[Path]:
    """The tree of `ref` in a temporary directory (git archive: no worktree, no index)."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-before-"))
    try:
        archive = subprocess.run(
            ["git", "archive", ref, "app"], cwd=ROOT, capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive.stdout, check=True)
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=600)
    parser.add_argument("--agents", type=int, default=30)
    parser.add_argument("--clients", type=int, default=12)
    parser.add_argument("--replicas", type=int, nargs="*", default=[1, 2, 3])
    parser.add_argument("--before", help="also run SQLite at this git ref (e.g. a commit)")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args(argv)
    results: list[Result] = []
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp_name:
        tmp = Path(tmp_name)
        if args.before:
            with checkout(args.before) as tree, sqlite_service(tmp / "before", tree) as procs:
                log(f"SQLite at {args.before}")
                results.append(drive(f"SQLite, one process ({args.before})", procs, args))
        with sqlite_service(tmp / "sqlite", None) as procs:
            log("SQLite, this tree")
            results.append(drive("SQLite, one process (this tree)", procs, args))
        for count in args.replicas:
            run_dir = tmp / f"pg-{count}"
            run_dir.mkdir()
            with running_cluster(run_dir, count, env=BASE_ENV) as cluster:
                log(f"PostgreSQL + Redis, {count} replica(s)")
                results.append(drive("PostgreSQL + Redis", cluster.replicas, args))
    print(
        f"\n{args.tasks} tasks over {args.agents} agents, {args.clients} clients, "
        f"{os.cpu_count()} CPUs, load {load_start:.1f} → {os.getloadavg()[0]:.1f}\n"
    )
    print("| store | replicas | tasks/s | fan-out p50 | fan-out p99 | replica CPU per task |")
    print("|---|---:|---:|---:|---:|---:|")
    for result in results:
        print(result.row())
    return 0


if __name__ == "__main__":
    sys.exit(main())
