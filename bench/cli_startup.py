"""Start-up time of the `bigthree` CLI: whole runs of a few commands, wall time and CPU time
(user + system) of each process, median over `--runs` after one warm-up run; with `--before
REF` the same commands from another commit's `app/` (git archive), run alternately with this
tree's.

    .venv/bin/python -m bench.cli_startup                   # this tree, 5 runs per command
    .venv/bin/python -m bench.cli_startup --before main --runs 9

`agents ls` talks to a port nothing listens on (exit 3): start-up, the imports a client
command needs, one refused connection. Informational only: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.bench_scale import checkout

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = (["--help"], ["agents", "--help"], ["agents", "ls"])
NOBODY = "http://127.0.0.1:9"  # the discard port: nothing listens there


def run_once(command: list[str], pythonpath: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one `python -m app.cli COMMAND` run (killed after 60 s)."""
    env = {**os.environ, "PYTHONPATH": str(pythonpath), "BIGTHREE_URL": NOBODY}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed CLI runs from bytecode caches
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", *command],
        env=env,
        cwd=pythonpath,  # `-m` puts the working directory first on sys.path
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    timer = threading.Timer(60, proc.kill)
    timer.start()
    # a blocking wait4: its rusage is the child's own, and no polling delays the end
    _, _, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    timer.cancel()
    proc.returncode = 0  # reaped above; keeps Popen from waiting again
    return wall, usage.ru_utime + usage.ru_stime


def measure(trees: dict[str, Path], runs: int) -> list[str]:
    """One markdown row per command and tree: median wall and CPU milliseconds."""
    rows = []
    for command in COMMANDS:
        samples: dict[str, list[tuple[float, float]]] = {label: [] for label in trees}
        for tree in trees.values():
            run_once(command, tree)  # warm-up: writes the tree's bytecode caches
        for _ in range(runs):
            for label, tree in trees.items():  # alternate, so load drifts hit both alike
                samples[label].append(run_once(command, tree))
        for label, found in samples.items():
            wall = statistics.median(w for w, _ in found) * 1000
            cpu = statistics.median(c for _, c in found) * 1000
            rows.append(f"| `bigthree {' '.join(command)}` | {label} | {wall:.0f} | {cpu:.0f} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--before", help="also run the CLI of this git ref (e.g. main)")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    trees = {"this tree": ROOT}
    if args.before:
        with checkout(args.before) as tree:
            rows = measure({args.before: tree, **trees}, args.runs)
    else:
        rows = measure(trees, args.runs)
    print(f"\n{args.runs} runs each, {os.cpu_count()} CPUs, load {load:.1f}\n")
    print("| command | tree | wall ms (median) | CPU ms (median) |")
    print("|---|---|---:|---:|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
