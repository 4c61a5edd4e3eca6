"""The file sandbox: every path an agent, a tool or an API client names is checked and
opened here, and nowhere else.

Rules (a refusal raises an `app.tools.errors.WorkspaceError` with a readable message):

- A path is relative and '/'-separated: at most `MAX_PATH_CHARS` characters and
  `MAX_NAME_BYTES` per name. NUL and control characters, backslashes (Windows and UNC forms),
  drive letters (`C:`), a leading '/' or '~', '..' names and the reserved temp-file prefix
  are refused. '.' and empty names are dropped.
- Every directory on the way is opened relative to its parent's descriptor with O_NOFOLLOW,
  and the final name too: a symbolic link anywhere in the path is refused, even one swapped
  in between a check and the use (there is no separate check — the open *is* the check).
  After opening, `/proc/self/fd` confirms the file's real path lies inside the root.
- Only regular files with a single link are read, written or deleted: directories, FIFOs,
  devices, sockets, symlinks and hard-linked files (which may alias a file elsewhere) are
  refused. Walks (list, search, quota) use `os.fwalk` and never follow links.
- A file over `max_file_bytes` is neither read nor written; a write that would take the
  workspace over `quota_bytes` is refused. Text operations refuse NUL bytes and invalid UTF-8.
- Writes go to a temp file in the target's directory, are fsynced, then renamed over the
  target: a reader — or a task cancelled mid-tool — sees the old file or the new one, never
  half of one.

The class is synchronous: callers decide what runs in a thread.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import secrets
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.tools.errors import (
    BinaryFile,
    FileMissing,
    FileTooLarge,
    NotRegularFile,
    PathRefused,
    QuotaExceeded,
    WorkspaceError,
)
from app.tools.patterns import glob_regex

MAX_PATH_CHARS = 1024
MAX_NAME_BYTES = 255
TEMP_PREFIX = ".bigthree-tmp-"
SKIP_DIRS = frozenset({".git"})
_DRIVE = re.compile(r"^[A-Za-z]:")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class WorkspaceLimits:
    max_file_bytes: int = 10 * 1024 * 1024
    quota_bytes: int = 1024 * 1024 * 1024
    max_walk_files: int = 100_000  # files a list/search/quota walk visits at most


@dataclass(frozen=True, slots=True)
class FileInfo:
    """A regular file found by a walk. `dir_fd`/`name` are valid only during that walk."""

    path: str
    size: int
    modified_at: float
    dir_fd: int = -1
    name: str = ""


def parse_path(path: str) -> tuple[str, ...]:
    """The names of a workspace-relative path, or `PathRefused`."""
    if not isinstance(path, str):
        raise PathRefused("a path must be a string")
    if len(path) > MAX_PATH_CHARS:
        raise PathRefused(f"the path is longer than {MAX_PATH_CHARS} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in path):
        raise PathRefused("the path contains NUL or control characters")
    if "\\" in path:
        raise PathRefused("backslashes are not allowed (no Windows or UNC paths); use '/'")
    if _DRIVE.match(path) or path.startswith(("/", "~")):
        raise PathRefused(f"{path!r} is not relative to the workspace; use a relative path")
    names = tuple(name for name in path.split("/") if name not in ("", "."))
    if ".." in names:
        raise PathRefused("'..' is not allowed: paths must stay inside the workspace")
    for name in names:
        try:
            too_long = len(name.encode("utf-8")) > MAX_NAME_BYTES
        except UnicodeEncodeError:
            raise PathRefused("the path is not valid UTF-8") from None
        if too_long:
            raise PathRefused(f"a name in the path is longer than {MAX_NAME_BYTES} bytes")
        if name.startswith(TEMP_PREFIX):
            raise PathRefused(f"names starting with {TEMP_PREFIX!r} are reserved")
    if not names:
        raise PathRefused("the path is empty")
    return names


def decode_text(data: bytes, shown: str) -> str:
    if b"\x00" in data:
        raise BinaryFile(f"{shown} is a binary file (it contains NUL bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BinaryFile(f"{shown} is not UTF-8 text") from None


def _refusal(exc: OSError, shown: str, parent_fd: int, name: str) -> WorkspaceError:
    with contextlib.suppress(OSError):
        if stat.S_ISLNK(os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode):
            return PathRefused(f"{shown} is a symbolic link; links are never followed")
    if isinstance(exc, FileNotFoundError):
        return FileMissing(f"{shown} does not exist")
    if isinstance(exc, NotADirectoryError):
        return NotRegularFile(f"{shown} is not a directory")
    if isinstance(exc, IsADirectoryError):
        return NotRegularFile(f"{shown} is a directory")
    return WorkspaceError(f"{shown}: {exc.strerror or type(exc).__name__}")


def _check_regular(st: os.stat_result, shown: str) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise PathRefused(f"{shown} is a symbolic link; links are never followed")
    if stat.S_ISDIR(st.st_mode):
        raise NotRegularFile(f"{shown} is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise NotRegularFile(f"{shown} is not a regular file (device, FIFO or socket)")
    if st.st_nlink > 1:
        raise NotRegularFile(f"{shown} is hard-linked elsewhere; refused")


class WalkLimit(Exception):
    """A walk reached `max_walk_files`."""


class Workspace:
    def __init__(self, root: Path, limits: WorkspaceLimits | None = None) -> None:
        self.root = Path(os.path.realpath(root))
        self.limits = limits or WorkspaceLimits()
        self._prefix = str(self.root).rstrip(os.sep) + os.sep

    # --- descriptors ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _dir(self, names: Sequence[str], *, create: bool = False) -> Iterator[int]:
        """A descriptor of the directory `names` under the root, opened link by link."""
        fd = self._open_root()
        try:
            for depth, name in enumerate(names, start=1):
                shown = "/".join(names[:depth])
                try:
                    child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError as exc:
                    if not create:
                        raise _refusal(exc, shown, fd, name) from None
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(name, 0o755, dir_fd=fd)
                    try:
                        child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                    except OSError as again:
                        raise _refusal(again, shown, fd, name) from None
                except OSError as exc:
                    raise _refusal(exc, shown, fd, name) from None
                os.close(fd)
                fd = child
            yield fd
        finally:
            os.close(fd)

    def _open_root(self) -> int:
        try:
            return os.open(self.root, _DIR_FLAGS)
        except OSError as exc:
            raise WorkspaceError(f"the workspace cannot be opened: {exc.strerror}") from None

    def _check_inside(self, fd: int, shown: str) -> None:
        try:
            real = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return  # no /proc: the O_NOFOLLOW walk alone already keeps us inside
        if real != str(self.root) and not real.startswith(self._prefix):
            raise PathRefused(f"{shown} resolves outside the workspace")

    def _read(self, parent_fd: int, name: str, shown: str, max_bytes: int) -> bytes:
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=parent_fd)
        except OSError as exc:
            raise _refusal(exc, shown, parent_fd, name) from None
        try:
            st = os.fstat(fd)
            _check_regular(st, shown)
            self._check_inside(fd, shown)
            if st.st_size > max_bytes:
                raise FileTooLarge(f"{shown} is {st.st_size} bytes; the limit is {max_bytes}")
            chunks, total = [], 0
            while chunk := os.read(fd, min(1 << 20, max_bytes + 1 - total)):
                chunks.append(chunk)
                total += len(chunk)
                if total > max_bytes:
                    raise FileTooLarge(f"{shown} grew past the {max_bytes}-byte limit")
            return b"".join(chunks)
        finally:
            os.close(fd)

    def _existing(self, parent_fd: int, name: str, shown: str) -> os.stat_result | None:
        try:
            st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        _check_regular(st, shown)
        return st

    # --- file operations -----------------------------------------------------------------

    def read_walked(self, found: FileInfo, max_bytes: int) -> str:
        """The text of a file met during `walk` (same checks as `read_text`)."""
        return decode_text(self._read(found.dir_fd, found.name, found.path, max_bytes), found.path)

    def read_text(self, path: str) -> str:
        names = parse_path(path)
        shown = "/".join(names)
        with self._dir(names[:-1]) as parent:
            data = self._read(parent, names[-1], shown, self.limits.max_file_bytes)
        return decode_text(data, shown)

    def write_text(self, path: str, content: str) -> bool:
        """Replace (or create) a text file atomically; True when it was created."""
        names = parse_path(path)
        shown = "/".join(names)
        if "\x00" in content:
            raise BinaryFile("the content contains NUL bytes; only text can be written")
        try:
            data = content.encode("utf-8")
        except UnicodeEncodeError:
            raise BinaryFile("the content is not valid Unicode text") from None
        limit = self.limits.max_file_bytes
        if len(data) > limit:
            raise FileTooLarge(f"the content is {len(data)} bytes; the limit is {limit}")
        used = self.usage_bytes()
        with self._dir(names[:-1], create=True) as parent:
            old = self._existing(parent, names[-1], shown)
            after = used - (old.st_size if old else 0) + len(data)
            if after > self.limits.quota_bytes:
                raise QuotaExceeded(
                    f"writing {shown} would use {after} bytes; the workspace quota is "
                    f"{self.limits.quota_bytes}"
                )
            self._replace(parent, shown, data, None if old is None else old.st_mode)
        return old is None

    def _replace(self, parent_fd: int, shown: str, data: bytes, mode: int | None) -> None:
        name = shown.rsplit("/", 1)[-1]
        temp = TEMP_PREFIX + secrets.token_hex(8)
        try:
            fd = os.open(temp, _CREATE_FLAGS, 0o644, dir_fd=parent_fd)
        except OSError as exc:
            raise WorkspaceError(f"{shown}: the write failed ({exc.strerror})") from None
        try:
            try:
                if mode is not None:
                    os.fchmod(fd, stat.S_IMODE(mode))
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(temp, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=parent_fd)
            if isinstance(exc, IsADirectoryError):
                raise NotRegularFile(f"{shown} is a directory") from None
            if isinstance(exc, OSError):
                raise WorkspaceError(f"{shown}: the write failed ({exc.strerror})") from None
            raise

    def delete(self, path: str) -> int:
        """Delete a regular file; return its size."""
        names = parse_path(path)
        shown = "/".join(names)
        with self._dir(names[:-1]) as parent:
            st = self._existing(parent, names[-1], shown)
            if st is None:
                raise FileMissing(f"{shown} does not exist")
            try:
                os.unlink(names[-1], dir_fd=parent)
            except OSError as exc:
                raise WorkspaceError(f"{shown}: the delete failed ({exc.strerror})") from None
        return st.st_size

    # --- walks ---------------------------------------------------------------------------

    def walk(self, glob: str = "**") -> Iterator[FileInfo]:
        """Each regular file whose path matches `glob`, in order; links are never followed.
        Raises `WalkLimit` after `max_walk_files` names."""
        matcher = glob_regex(glob)
        root = self._open_root()
        seen = 0
        try:
            for top, dirs, files, dir_fd in os.fwalk(".", dir_fd=root):
                dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
                for name in sorted(files):
                    seen += 1
                    if seen > self.limits.max_walk_files:
                        raise WalkLimit
                    try:
                        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                    except OSError:
                        continue
                    if not stat.S_ISREG(st.st_mode) or name.startswith(TEMP_PREFIX):
                        continue
                    path = posixpath.normpath(posixpath.join(top, name))
                    if matcher.match(path):
                        yield FileInfo(path, st.st_size, st.st_mtime, dir_fd, name)
        finally:
            os.close(root)

    def usage_bytes(self) -> int:
        try:
            return sum(found.size for found in self.walk())
        except WalkLimit:
            raise QuotaExceeded(
                f"the workspace holds more than {self.limits.max_walk_files} files; "
                "writes are refused"
            ) from None

    def list_files(self, glob: str = "**", limit: int = 1000) -> tuple[list[FileInfo], bool]:
        """Regular files whose path matches `glob`, sorted; True when more were left off."""
        found: list[FileInfo] = []
        try:
            for info in self.walk(glob):
                if len(found) == limit:
                    return found, True
                found.append(FileInfo(info.path, info.size, info.modified_at))
        except WalkLimit:
            return found, True
        return found, False


def _within(real: Path, root: Path) -> bool:
    """`real` (a resolved path) is `root` or lies below it, once `root` is resolved too."""
    base = Path(os.path.realpath(root))
    return real == base or base in real.parents


def resolve_root(requested: str, allowed: Sequence[Path]) -> Path:
    """The real path of an operator-allowed workspace: inside one of `allowed`, or refused."""
    if not allowed:
        raise PathRefused("no workspace roots are allowed (set BIGTHREE_WORKSPACE_ROOTS)")
    if "\x00" in requested or not os.path.isabs(requested):
        raise PathRefused("a workspace must be an absolute path inside an allowed root")
    real = Path(os.path.realpath(requested))
    if any(_within(real, root) for root in allowed):
        return real
    raise PathRefused(f"{requested!r} is not inside an allowed workspace root")


def contained_path(root: Path, path: str) -> Path:
    """The real path that `path` (absolute, or relative to `root`) names, when it lies inside
    `root`; else `PathRefused`. For a program that opens paths itself (Claude Code's file
    tools), checked before it runs: '..' and symbolic links are resolved (a link inside the
    root that points out is refused), a path that does not exist yet is judged by where it
    would be created, and '~' (a home directory), NUL and control characters are refused."""
    if not isinstance(path, str) or not path:
        raise PathRefused("a path must be a non-empty string")
    if len(path) > MAX_PATH_CHARS:
        raise PathRefused(f"the path is longer than {MAX_PATH_CHARS} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in path):
        raise PathRefused("the path contains NUL or control characters")
    if path.startswith("~"):
        raise PathRefused(f"{path!r} names a home directory, outside the workspace")
    real = Path(os.path.realpath(os.path.join(root, path)))
    if not _within(real, root):
        raise PathRefused(f"{path!r} is outside the workspace {root}")
    return real


def agent_root(data_dir: Path, name: str, workspace: str | None, allowed: Sequence[Path]) -> Path:
    """Where an agent's workspace lives (created if missing): its allowed custom root, checked
    again now, or `<data_dir>/workspaces/<name>`."""
    root = resolve_root(workspace, allowed) if workspace else data_dir / "workspaces" / name
    root.mkdir(parents=True, exist_ok=True)
    return root
