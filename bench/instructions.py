"""Instructions per task, counted by valgrind: a figure that does not move with the machine's
load, for telling apart two trees of the code that differ by a few percent.

    python -m bench.instructions [--rounds 5] [--tree PATH] [--by-object]

Runs `bench.inprocess` twice under `valgrind --tool=callgrind` (both at once, each on its
own core): once with one measured round, once with `1 + rounds`. Start-up, imports and
warm-up cost the same in both, so the difference divided by the extra tasks is what one
task costs: every instruction of every thread of the process (request handling, the store's
SQLite, the provider call, the events), none of the stub's (another process) and none of
the kernel's (system calls are not counted). `PYTHONHASHSEED` is fixed, so two runs of
the same tree agree within ~1% (bench/README.md, run 15); CPU time on a shared machine
moves by 10-40% between rounds.

`--tree` measures another checkout (e.g. `git archive <ref> | tar -x -C /tmp/before`), with
this checkout's virtualenv. `--by-object` adds the share of each shared object (the Python
interpreter, libsqlite3, pydantic-core, ...). Needs valgrind (Debian: `apt-get install -y
valgrind`); takes about two minutes.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench.inprocess import AGENTS

ROOT = Path(__file__).resolve().parent.parent
_SUMMARY = re.compile(r"^summary:\s+(\d+)", re.MULTILINE)
# callgrind_annotate's lines: "  1,234,567 (12.3%)  file:function [/path/to/object.so]"
_LINE = re.compile(r"^\s*([\d,]+)\s+\([^)]*\)\s+\S+\s+\[(.+?)\]\s*$")


def _start(tree: Path, rounds: int, out: Path, log: Path) -> subprocess.Popen[bytes]:
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        sys.executable,
        "-m",
        "bench.inprocess",
        "--rounds",
        str(rounds),
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(tree)}
    with log.open("wb") as sink:  # a file, not a pipe: two runs are waited for in turn
        return subprocess.Popen(command, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=sink)


def _total(out: Path) -> int:
    found = _SUMMARY.search(out.read_text(errors="replace"))
    if found is None:
        raise RuntimeError(f"no instruction total in {out}")
    return int(found.group(1))


def _by_object(out: Path) -> Counter[str]:
    listing = subprocess.run(
        ["callgrind_annotate", "--threshold=100", str(out)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    counts: Counter[str] = Counter()
    for line in listing.splitlines():
        found = _LINE.match(line)
        if found:
            counts[Path(found.group(2)).name] += int(found.group(1).replace(",", ""))
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="extra rounds of the long run")
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout to measure")
    parser.add_argument("--by-object", action="store_true", help="also per shared object")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install -y valgrind)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as name:
        short, long = Path(name) / "short.out", Path(name) / "long.out"
        logs = [Path(name) / "short.log", Path(name) / "long.log"]
        runs = [
            _start(args.tree, 1, short, logs[0]),
            _start(args.tree, 1 + args.rounds, long, logs[1]),
        ]
        for run, log in zip(runs, logs, strict=True):
            if run.wait() != 0:
                print(log.read_text(errors="replace")[-2000:], file=sys.stderr)
                return 1
        tasks = args.rounds * AGENTS
        per_task = (_total(long) - _total(short)) / tasks
        print(f"{per_task:,.0f} instructions per task ({tasks} tasks; tree {args.tree})")
        if args.by_object:
            first, second = _by_object(short), _by_object(long)
            for obj, count in sorted(second.items(), key=lambda kv: -(kv[1] - first[kv[0]])):
                share = (count - first[obj]) / tasks
                if share >= 1000:
                    print(f"  {obj:<55} {share:12,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
