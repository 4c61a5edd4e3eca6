"""The Claude Code processes this service starts, so that none outlives it.

Each run starts the CLI through a small launcher (written into `<base>/launcher`) that, before
it execs the CLI:

- asks Linux to SIGKILL it when the service dies (`PR_SET_PDEATHSIG`): a `kill -9` of the
  service leaves no CLI behind (seen here: without it the CLI outlives its parent);
- gives it a process group of its own, so it and what it starts (Bash commands) end together;
- records its PID in `<base>/runs/<run id>.pid` and marks its environment with
  `BIGTHREE_CC_RUN=<run id>` (inherited by its children);
- drops inherited environment variables but a short allow-list and the ones the runner set,
  so the service's other secrets (other providers' keys, BIGTHREE_API_KEYS, a database URL)
  never reach the CLI or the commands it runs.

The SDK only takes a path to an executable (no pre-exec hook), hence a launcher file; it is
Python (the service's own interpreter, `-I -S`: a few ms), with no import of this package.
`end(run)` kills what is left of a run's group once the run is over; `reap_leftovers()` does
the same at start-up for PID files a crash left behind. Both only signal processes whose
environment carries the run's marker, so a reused PID is never hit. Linux only (`/proc`);
elsewhere the launcher still runs the CLI, without these guarantees.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
from collections.abc import Iterable
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

RUN_MARKER = "BIGTHREE_CC_RUN"
_PARENT = "BIGTHREE_CC_PARENT"
_PID_FILE = "BIGTHREE_CC_PID_FILE"
_CLI = "BIGTHREE_CC_CLI"
_KEEP = "BIGTHREE_CC_KEEP"
# what the CLI may inherit from the service's environment (besides what the runner sets)
INHERITED = (
    "PATH",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "TZ",
    "TMPDIR",
    "TERM",
    "USER",
    "LOGNAME",
    "SHELL",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
)
INHERITED_PREFIXES = ("CLAUDE_", "LC_")  # the SDK's own variables; locale

_LAUNCHER = """\
import ctypes, os, signal, sys
env = os.environ
try:  # PR_SET_PDEATHSIG: die with the service
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
except (OSError, AttributeError):
    pass
if os.getppid() != int(env["{parent}"]):
    sys.exit(70)  # the service died before this line: do not start
os.setpgid(0, 0)
pid_file = env["{pid_file}"]
with open(pid_file + ".tmp", "w") as out:
    out.write(str(os.getpid()))
os.replace(pid_file + ".tmp", pid_file)
keep = set(env["{keep}"].split(",")) | set({inherited!r})
clean = {{k: v for k, v in env.items() if k in keep or k.startswith({prefixes!r})}}
cli = env["{cli}"]
os.execve(cli, [cli, *sys.argv[1:]], clean)
"""


def launcher_source(python: str) -> str:
    body = _LAUNCHER.format(
        parent=_PARENT,
        pid_file=_PID_FILE,
        keep=_KEEP,
        cli=_CLI,
        inherited=INHERITED,
        prefixes=INHERITED_PREFIXES,
    )
    return f"#!{python} -IS\n{body}"


def _pgrp(pid: int) -> int | None:
    """The process group of `pid` from /proc (None when gone or unreadable)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # fields after the command name, which is in parentheses and may hold spaces
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[2]) if fields[0] != "Z" else None  # a zombie has already ended


def _has_marker(pid: int, marker: bytes) -> bool:
    try:
        return marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def group_members(pgid: int, run_id: str) -> list[int]:
    """Live processes of group `pgid` that carry `run_id`'s marker."""
    marker = f"{RUN_MARKER}={run_id}".encode()
    members = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if entry.name.isdigit():
            pid = int(entry.name)
            if _pgrp(pid) == pgid and _has_marker(pid, marker):
                members.append(pid)
    return members


def alive(pid: int) -> bool:
    """`pid` exists and is not a zombie."""
    return _pgrp(pid) is not None


class ClaudeProcesses:
    """The launcher file and the PID files of the runs in progress, under `base`."""

    _RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

    def __init__(self, base: Path) -> None:
        self.base = base
        self.runs = base / "runs"
        self.launcher = base / "launcher"

    def prepare(self) -> None:
        """Create the directories and (re)write the launcher when it changed."""
        self.runs.mkdir(parents=True, exist_ok=True)
        source = launcher_source(sys.executable)
        current = self.launcher.read_text() if self.launcher.is_file() else None
        if current != source:
            temp = self.launcher.with_suffix(".tmp")
            temp.write_text(source)
            temp.chmod(0o700)
            temp.replace(self.launcher)

    def env(self, run_id: str, cli: Path, keep: Iterable[str]) -> dict[str, str]:
        """What the launcher needs in the CLI's environment for run `run_id`."""
        if not self._RUN_ID.match(run_id):
            raise ValueError(f"bad run id {run_id!r}")
        return {
            RUN_MARKER: run_id,
            _PARENT: str(os.getpid()),
            _PID_FILE: str(self.runs / f"{run_id}.pid"),
            _CLI: str(cli),
            _KEEP: ",".join([RUN_MARKER, *keep]),
        }

    def pid_of(self, run_id: str) -> int | None:
        """The run's CLI PID (its process group id), once the launcher recorded it."""
        try:
            return int((self.runs / f"{run_id}.pid").read_text())
        except (OSError, ValueError):
            return None

    def end(self, run_id: str) -> list[int]:
        """SIGKILL what is left of the run's process group; forget its PID file."""
        pid = self.pid_of(run_id)
        killed = []
        if pid is not None:
            for member in group_members(pid, run_id):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(member, signal.SIGKILL)
                    killed.append(member)
        with contextlib.suppress(FileNotFoundError):
            (self.runs / f"{run_id}.pid").unlink()
        return killed

    def reap_leftovers(self) -> int:
        """At start-up: end the processes of runs a crash left behind; how many were killed."""
        if not self.runs.is_dir():
            return 0
        killed = 0
        for pid_file in sorted(self.runs.glob("*.pid")):
            run_id = pid_file.stem
            if self._RUN_ID.match(run_id):
                killed += len(self.end(run_id))
            else:
                pid_file.unlink(missing_ok=True)
        for temp in self.runs.glob("*.tmp"):
            temp.unlink(missing_ok=True)
        if killed:
            log.warning("claude_code_leftovers_killed", processes=killed)
        return killed
