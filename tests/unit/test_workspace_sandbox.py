"""The file sandbox (app/tools/workspace.py) against an attack corpus, limits and races."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import threading
from pathlib import Path

import pytest

from app.tools import errors
from app.tools.patterns import glob_regex, search_regex
from app.tools.search import search
from app.tools.workspace import (
    TEMP_PREFIX,
    Workspace,
    WorkspaceLimits,
    parse_path,
    resolve_root,
)

SECRET = "top secret outside the workspace\n"
Layout = tuple[Workspace, Path, Path]

# Every one of these names something outside the workspace, or something the sandbox
# refuses to interpret (NUL, Windows/UNC forms, overlong).
TRAVERSAL_CORPUS = [
    "..",
    "../outside/secret.txt",
    "a/../../outside/secret.txt",
    "./../outside/secret.txt",
    "a/./b/../../../outside/secret.txt",
    "a/b/../../..",
    "/etc/passwd",
    "//etc/passwd",
    "/",
    "~",
    "~/secret.txt",
    "~root/.ssh/id_rsa",
    "secret.txt\x00.md",
    "\x00",
    "a\nb",
    "C:\\Windows\\win.ini",
    "C:/Windows/win.ini",
    "c:secret.txt",
    "\\\\server\\share\\secret.txt",
    "\\\\?\\C:\\secret.txt",
    "..\\outside\\secret.txt",
    "a\\..\\..\\outside",
    "a" * 5000,
    "a/" * 600 + "x",
    "n" * 300 + "/x.txt",
    "",
    ".",
    "./",
    f"{TEMP_PREFIX}0123456789abcdef",
]


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Workspace, Path, Path]:
    """A workspace next to an `outside` directory holding a secret."""
    root = tmp_path / "ws"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    (root / "hello.txt").write_text("hello\n")
    return Workspace(root), root, outside


def _outside_untouched(outside: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == SECRET


@pytest.mark.parametrize("path", TRAVERSAL_CORPUS, ids=repr)
def test_corpus_is_refused_by_every_operation(layout: Layout, path: str) -> None:
    """Each corpus path is refused by read, write and delete, and nothing outside changes."""
    ws, _, outside = layout
    with pytest.raises(errors.PathRefused):
        parse_path(path)
    with pytest.raises(errors.PathRefused):
        ws.read_text(path)
    with pytest.raises(errors.PathRefused):
        ws.write_text(path, "pwned")
    with pytest.raises(errors.PathRefused):
        ws.delete(path)
    _outside_untouched(outside)


def test_harmless_spellings_are_normalised() -> None:
    """'.' and repeated slashes are dropped; names with dots or '~' inside are fine."""
    assert parse_path("./a//b/./c.txt") == ("a", "b", "c.txt")
    assert parse_path("a/..b/c~/x..y") == ("a", "..b", "c~", "x..y")


@pytest.mark.parametrize(
    "link_target", ["outside", "outside/secret.txt", "ws/hello.txt", "nowhere"]
)
def test_symlinks_are_never_followed(layout: Layout, link_target: str) -> None:
    """A symlink (to outside, inside, or dangling) is refused as a file and as a directory."""
    ws, root, outside = layout
    (root / "link").symlink_to(root.parent / link_target)
    for path in ("link", "link/secret.txt", "link/new.txt"):
        with pytest.raises(errors.WorkspaceError):
            ws.read_text(path)
        with pytest.raises(errors.WorkspaceError):
            ws.write_text(path, "pwned")
        with pytest.raises(errors.WorkspaceError):
            ws.delete(path)
    with pytest.raises(errors.PathRefused, match="symbolic link"):
        ws.read_text("link")
    assert (root / "link").is_symlink()
    _outside_untouched(outside)
    assert (root / "hello.txt").read_text() == "hello\n"


def test_symlinked_parent_directory_deep_in_the_path(layout: Layout) -> None:
    """A link in the middle of a path is refused even when the rest of the path exists."""
    ws, root, outside = layout
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "escape").symlink_to(outside)
    with pytest.raises(errors.PathRefused, match="symbolic link"):
        ws.read_text("a/b/escape/secret.txt")
    with pytest.raises(errors.PathRefused):
        ws.write_text("a/b/escape/deeper/new.txt", "x")
    _outside_untouched(outside)


def test_listing_and_search_do_not_follow_links(layout: Layout) -> None:
    """Links to outside files or directories are neither listed nor searched."""
    ws, root, _ = layout
    (root / "dirlink").symlink_to(root.parent / "outside")
    (root / "filelink.txt").symlink_to(root.parent / "outside" / "secret.txt")
    files, more = ws.list_files()
    assert [f.path for f in files] == ["hello.txt"] and not more
    found = search(ws, search_regex("secret"))
    assert found.hits == []


def test_swapping_a_directory_for_a_symlink_mid_write_never_escapes(
    layout: Layout,
) -> None:
    """A racing thread keeps swapping `d` for a link to outside while writes run: every
    write lands inside the workspace or is refused; nothing ever appears outside."""
    ws, root, outside = layout
    target = root / "d"
    target.mkdir()
    stop = threading.Event()
    flips = [0]

    def flip() -> None:
        while not stop.is_set():
            flips[0] += 1
            parked = root / f"parked{flips[0]}"
            with contextlib.suppress(OSError):
                target.rename(parked)
            with contextlib.suppress(OSError):
                target.symlink_to(outside)
            with contextlib.suppress(OSError):
                target.unlink()
            with contextlib.suppress(OSError):
                parked.rename(target)

    flipper = threading.Thread(target=flip)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # interleave the two threads as finely as Python allows
    flipper.start()
    written = 0
    try:
        for i in range(300):
            with contextlib.suppress(errors.WorkspaceError):
                ws.write_text(f"d/file{i}.txt", "inside")
                written += 1
    finally:
        stop.set()
        flipper.join()
        sys.setswitchinterval(switch)
    _outside_untouched(outside)
    assert flips[0] > 10
    landed = [p for p in root.rglob("file*.txt") if not p.is_symlink()]
    assert len(landed) == written


def test_target_swapped_for_a_symlink_after_the_check_is_replaced_not_followed(
    layout: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the target becomes a symlink between the sandbox's check and its rename, the
    rename replaces the link itself: the outside file keeps its content."""
    ws, root, outside = layout
    real_rename = os.rename

    def swap_then_rename(src: str, dst: str, **kwargs: int) -> None:
        (root / "hello.txt").unlink()
        (root / "hello.txt").symlink_to(outside / "secret.txt")
        real_rename(src, dst, **kwargs)

    monkeypatch.setattr(os, "rename", swap_then_rename)
    ws.write_text("hello.txt", "new")
    monkeypatch.setattr(os, "rename", real_rename)
    _outside_untouched(outside)
    assert not (root / "hello.txt").is_symlink()
    assert (root / "hello.txt").read_text() == "new"


def test_fifo_device_and_directory_are_not_regular_files(layout: Layout) -> None:
    """A FIFO is refused without blocking; a directory and a char device are refused too."""
    ws, root, _ = layout
    os.mkfifo(root / "pipe")
    (root / "sub").mkdir()
    with pytest.raises(errors.NotRegularFile):
        ws.read_text("pipe")
    with pytest.raises(errors.NotRegularFile):
        ws.write_text("pipe", "x")
    with pytest.raises(errors.NotRegularFile):
        ws.read_text("sub")
    with pytest.raises(errors.NotRegularFile):
        ws.delete("sub")
    try:
        os.mknod(root / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    except (PermissionError, OSError):
        return  # not allowed to make device nodes here
    with pytest.raises(errors.NotRegularFile):
        ws.read_text("null")


def test_hard_link_to_an_outside_file_is_refused(layout: Layout) -> None:
    """A hard link may alias a file elsewhere, so files with more than one link are refused."""
    ws, root, outside = layout
    try:
        os.link(outside / "secret.txt", root / "alias.txt")
    except OSError:
        pytest.skip("hard links not permitted here")
    with pytest.raises(errors.NotRegularFile, match="hard-linked"):
        ws.read_text("alias.txt")
    with pytest.raises(errors.NotRegularFile):
        ws.write_text("alias.txt", "pwned")
    _outside_untouched(outside)


def test_per_file_size_limit_on_read_and_write(tmp_path: Path) -> None:
    """Files over the limit are neither read nor written; at the limit they are fine."""
    ws = Workspace(tmp_path, WorkspaceLimits(max_file_bytes=100))
    ws.write_text("exact.txt", "x" * 100)
    assert ws.read_text("exact.txt") == "x" * 100
    with pytest.raises(errors.FileTooLarge):
        ws.write_text("big.txt", "x" * 101)
    (tmp_path / "big.txt").write_text("y" * 101)
    with pytest.raises(errors.FileTooLarge):
        ws.read_text("big.txt")


def test_workspace_quota_counts_replacements(tmp_path: Path) -> None:
    """A write that would take the workspace over quota is refused; replacing a file only
    counts the difference."""
    ws = Workspace(tmp_path, WorkspaceLimits(quota_bytes=250))
    ws.write_text("a.txt", "a" * 100)
    ws.write_text("b.txt", "b" * 100)
    with pytest.raises(errors.QuotaExceeded):
        ws.write_text("c.txt", "c" * 100)
    ws.write_text("a.txt", "A" * 150)  # 150 + 100 = 250: allowed
    assert ws.usage_bytes() == 250
    assert not (tmp_path / "c.txt").exists()


def test_binary_files_are_refused_by_text_tools(tmp_path: Path) -> None:
    """NUL bytes and invalid UTF-8 are refused on read; NUL content is refused on write."""
    ws = Workspace(tmp_path)
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(errors.BinaryFile):
        ws.read_text("image.png")
    with pytest.raises(errors.BinaryFile):
        ws.read_text("latin1.txt")
    with pytest.raises(errors.BinaryFile):
        ws.write_text("x.bin", "a\x00b")
    assert not (tmp_path / "x.bin").exists()


def test_writes_are_atomic_and_leave_no_temp_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails halfway keeps the old content and removes its temp file; a good
    write creates parents, keeps the file mode, and leaves no temp file behind."""
    ws = Workspace(tmp_path)
    ws.write_text("pkg/run.sh", "old\n")
    (tmp_path / "pkg" / "run.sh").chmod(0o755)
    real_write = os.write
    calls = {"n": 0}

    def failing_write(fd: int, data: bytes | memoryview) -> int:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        return real_write(fd, bytes(data)[:3])

    monkeypatch.setattr(os, "write", failing_write)
    with pytest.raises(errors.WorkspaceError, match="the write failed \\(No space"):
        ws.write_text("pkg/run.sh", "brand new content\n")
    monkeypatch.setattr(os, "write", real_write)
    assert (tmp_path / "pkg" / "run.sh").read_text() == "old\n"
    assert ws.write_text("pkg/run.sh", "new\n") is False
    assert (tmp_path / "pkg" / "run.sh").read_text() == "new\n"
    assert stat.S_IMODE((tmp_path / "pkg" / "run.sh").stat().st_mode) == 0o755
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(TEMP_PREFIX)]


def test_delete_and_missing_files(tmp_path: Path) -> None:
    """Deleting removes the file; reading or deleting a missing file says not found."""
    ws = Workspace(tmp_path)
    ws.write_text("gone.txt", "bye")
    assert ws.delete("gone.txt") == 3
    with pytest.raises(errors.FileMissing):
        ws.read_text("gone.txt")
    with pytest.raises(errors.FileMissing):
        ws.delete("gone.txt")
    with pytest.raises(errors.FileMissing):
        ws.read_text("no/such/dir/file.txt")


def test_list_files_glob_and_bound(tmp_path: Path) -> None:
    """Globs follow '**' / '*' rules, .git is skipped, and the count is bounded."""
    ws = Workspace(tmp_path)
    for path in ("a.py", "src/b.py", "src/deep/c.py", "src/d.txt", ".git/config"):
        ws.write_text(path, "x")
    assert [f.path for f in ws.list_files("*.py")[0]] == ["a.py"]
    assert [f.path for f in ws.list_files("**/*.py")[0]] == ["a.py", "src/b.py", "src/deep/c.py"]
    assert [f.path for f in ws.list_files("src/*")[0]] == ["src/b.py", "src/d.txt"]
    files, more = ws.list_files("**", limit=2)
    assert len(files) == 2 and more
    assert ".git/config" not in [f.path for f in ws.list_files()[0]]
    assert glob_regex("[!a]*.py").match("b.py") and not glob_regex("[!a]*.py").match("a.py")


def test_search_is_bounded_and_skips_binary(tmp_path: Path) -> None:
    """Search finds matching lines, stops at max_hits, and skips binary files."""
    ws = Workspace(tmp_path)
    ws.write_text("a.py", "def one():\n    pass\ndef two():\n")
    (tmp_path / "blob.bin").write_bytes(b"def \x00\xff")
    found = search(ws, search_regex(r"^def \w+"))
    assert [(h.path, h.line) for h in found.hits] == [("a.py", 1), ("a.py", 3)]
    assert found.skipped_files == 1
    limited = search(ws, search_regex("def"), max_hits=1)
    assert len(limited.hits) == 1 and limited.truncated


@pytest.mark.parametrize(
    "pattern",
    [
        "(a+)+$",
        "(a*)*b",
        "(a|a)*x",
        "((ab)*c)+",
        "(?:x|y)+z",
        r"(\w+)\1",
        "(?P<q>a)(?P=q)",
        ".*.*.*.*x",
        "a{1,100}b{2,}c*d+",
        "x" * 201,
        "",
        "[unclosed",
    ],
    ids=repr,
)
def test_risky_or_invalid_regexes_are_refused(pattern: str) -> None:
    """Nested or alternating repeats, backreferences, too many unbounded repeats, overlong
    and invalid patterns are refused before they can run."""
    with pytest.raises(errors.PatternRefused):
        search_regex(pattern)


@pytest.mark.parametrize(
    "pattern", [r"def \w+\(.*\)", r"class\s+\w+", "TODO|FIXME", "a{2,5}", r"(foo)?bar", "[(*+]"]
)
def test_ordinary_regexes_are_allowed(pattern: str) -> None:
    """Everyday search patterns compile."""
    assert search_regex(pattern).pattern == pattern


def test_custom_roots_must_be_inside_the_allow_list(tmp_path: Path) -> None:
    """A requested workspace resolves inside an allowed root, else it is refused — links
    included."""
    allowed = tmp_path / "projects"
    (allowed / "app").mkdir(parents=True)
    (allowed / "sneaky").symlink_to(tmp_path)
    assert resolve_root(str(allowed / "app"), [allowed]) == (allowed / "app").resolve()
    assert resolve_root(str(allowed), [allowed]) == allowed.resolve()
    bad_roots = [str(tmp_path), str(allowed / "sneaky"), str(allowed / ".." / "x"), "rel/x", "~/x"]
    for bad in bad_roots:
        with pytest.raises(errors.PathRefused):
            resolve_root(bad, [allowed])
    with pytest.raises(errors.PathRefused, match="BIGTHREE_WORKSPACE_ROOTS"):
        resolve_root(str(allowed / "app"), [])
