"""Globs and search regexes a model may send, compiled with bounds.

Python's `re` backtracks and cannot be interrupted, so a search regex is checked before use
("ReDoS-safe-ish"): at most `MAX_REGEX_CHARS` characters; no backreferences or conditional
groups; no repeated group that itself repeats or alternates (`(a+)+`, `(a|b)*` — the
exponential cases); at most `MAX_UNBOUNDED_REPEATS` unbounded repeats (`*`, `+`, `{n,}`),
which bounds the polynomial cases. Callers also match only the first `MATCH_LINE_CHARS` of a
line and stop after a time budget (see `Workspace.search`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.tools.errors import PatternRefused

MAX_GLOB_CHARS = 256
MAX_REGEX_CHARS = 200
MAX_UNBOUNDED_REPEATS = 3
MATCH_LINE_CHARS = 300
_BIG_REPEAT = 16  # {m,n} with n above this counts as unbounded
_BRACES = re.compile(r"\{(\d*)(,?)(\d*)\}")


def glob_regex(glob: str) -> re.Pattern[str]:
    """'**' matches any number of directories, '*' any run within one name, '?' one
    character, '[abc]' / '[!abc]' a set; matched against the whole '/'-separated path."""
    if not glob or len(glob) > MAX_GLOB_CHARS:
        raise PatternRefused(f"a glob must be 1-{MAX_GLOB_CHARS} characters")
    out: list[str] = []
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        elif glob[i] == "[" and (end := glob.find("]", i + 2)) != -1:
            body = glob[i + 1 : end]
            negate = body.startswith("!")
            body = re.escape(body[1:] if negate else body).replace(r"\-", "-")
            out.append(f"[{'^' if negate else ''}{body}]")
            i = end + 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


@dataclass
class _Group:
    repeats: bool = False
    alternates: bool = False


def _skip_class(pattern: str, i: int) -> int:
    """Index just past the character class opening at `i`."""
    j = i + 1
    if pattern[j : j + 1] == "^":
        j += 1
    if pattern[j : j + 1] == "]":
        j += 1
    while j < len(pattern) and pattern[j] != "]":
        j += 2 if pattern[j] == "\\" else 1
    return j + 1


def _quantifier(pattern: str, i: int) -> tuple[bool | None, int]:
    """(unbounded?, index after) for a quantifier at `i`; (None, i) when there is none."""
    c = pattern[i : i + 1]
    unbounded: bool | None = None
    j = i
    if c in ("*", "+"):
        unbounded, j = True, i + 1
    elif c == "?":
        unbounded, j = False, i + 1
    elif c == "{" and (m := _BRACES.match(pattern, i)) and (m.group(1) or m.group(3)):
        high = m.group(3)
        unbounded = bool(m.group(2)) and (not high or int(high) > _BIG_REPEAT)
        if not m.group(2):
            unbounded = int(m.group(1)) > _BIG_REPEAT
        j = m.end()
    if unbounded is not None and pattern[j : j + 1] in ("?", "+"):
        j += 1  # lazy or possessive modifier
    return unbounded, j


def _risk(pattern: str) -> str | None:
    """Why `pattern` could backtrack badly, or None."""
    stack = [_Group()]
    unbounded = 0
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "(":
            if pattern.startswith(("(?P=", "(?("), i):
                return "backreferences and conditional groups are not allowed"
            stack.append(_Group())
            i += 1
            continue
        if c == "|":
            stack[-1].alternates = True
            i += 1
            continue
        closed: _Group | None = None
        if c == "\\":
            if pattern[i + 1 : i + 2] in tuple("123456789"):
                return "backreferences are not allowed"
            i += 2
        elif c == "[":
            i = _skip_class(pattern, i)
        elif c == ")" and len(stack) > 1:
            closed = stack.pop()
            stack[-1].repeats |= closed.repeats
            stack[-1].alternates |= closed.alternates
            i += 1
        else:
            i += 1
        is_unbounded, after = _quantifier(pattern, i)
        if is_unbounded is None:
            continue
        if closed is not None and (closed.repeats or closed.alternates):
            return "a repeated group may not itself repeat or alternate, as in (a+)+ or (a|b)*"
        stack[-1].repeats = True
        unbounded += int(is_unbounded)
        i = after
    if unbounded > MAX_UNBOUNDED_REPEATS:
        return f"at most {MAX_UNBOUNDED_REPEATS} unbounded repeats (*, +, {{n,}}) are allowed"
    return None


def search_regex(pattern: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    """Compile a model-supplied search regex, refusing long or backtracking-prone ones."""
    if not pattern or len(pattern) > MAX_REGEX_CHARS:
        raise PatternRefused(f"a search pattern must be 1-{MAX_REGEX_CHARS} characters")
    risk = _risk(pattern)
    if risk is not None:
        raise PatternRefused(f"pattern refused: {risk}")
    try:
        return re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    except re.error as exc:
        raise PatternRefused(f"not a valid regular expression: {exc}") from exc
