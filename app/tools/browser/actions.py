"""The computer-use actions Gemini predefines, their arguments, and the 0-999 grid.

Coordinates arrive as integers on a 0-999 grid over the screen, whatever its size:
pixel = round(v / 1000 * width) (and height for y), kept inside the screen. A value off the
grid, a missing argument or an unknown action is a `ActionError` the model is told about,
never a crash. `safety_decision` (see `SafetyDecision`) may ride along in any action's
arguments and is read separately.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.tools.browser.guard import Refusal

GRID = 1000
Grid = Annotated[int, Field(ge=0, le=GRID - 1)]
Direction = Literal["up", "down", "left", "right"]
DEFAULT_SCROLL_MAGNITUDE = 800


class ActionError(ValueError):
    """The call cannot run as sent; `str()` is what the model reads."""


class NavigationRefused(ActionError):
    """The navigation guard refused the action's URL."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message())
        self.refusal = refusal


class BaseArgs(BaseModel):
    # unknown keys are ignored (the model may add its own), `safety_decision` included
    model_config = ConfigDict(extra="ignore", frozen=True)


class NoArgs(BaseArgs):
    pass


class Point(BaseArgs):
    x: Grid
    y: Grid


class TypeTextAt(Point):
    text: str = Field(max_length=10_000)
    press_enter: bool = False
    clear_before_typing: bool = True


class KeyCombination(BaseArgs):
    keys: str = Field(min_length=1, max_length=100)


class Navigate(BaseArgs):
    url: str = Field(min_length=1, max_length=8192)


class ScrollDocument(BaseArgs):
    direction: Direction


class ScrollAt(Point):
    direction: Direction
    magnitude: Grid = DEFAULT_SCROLL_MAGNITUDE


class DragAndDrop(Point):
    destination_x: Grid
    destination_y: Grid


ACTIONS: dict[str, type[BaseArgs]] = {
    "open_web_browser": NoArgs,
    "wait_5_seconds": NoArgs,
    "go_back": NoArgs,
    "go_forward": NoArgs,
    "search": NoArgs,
    "click_at": Point,
    "hover_at": Point,
    "type_text_at": TypeTextAt,
    "key_combination": KeyCombination,
    "navigate": Navigate,
    "scroll_document": ScrollDocument,
    "scroll_at": ScrollAt,
    "drag_and_drop": DragAndDrop,
}
ACTION_NAMES = tuple(ACTIONS)
UNKNOWN_ACTION = "unknown"  # the metrics label for a name outside ACTION_NAMES


@dataclass(frozen=True, slots=True)
class Screen:
    width: int
    height: int

    def x(self, grid: int) -> int:
        return min(self.width - 1, round(grid / GRID * self.width))

    def y(self, grid: int) -> int:
        return min(self.height - 1, round(grid / GRID * self.height))


@dataclass(frozen=True, slots=True)
class SafetyDecision:
    decision: str
    explanation: str

    @property
    def needs_confirmation(self) -> bool:
        return self.decision == "require_confirmation"


def parse(name: str, arguments: Mapping[str, Any]) -> BaseArgs:
    """The action's typed arguments, or `ActionError` saying what is wrong."""
    model = ACTIONS.get(name)
    if model is None:
        raise ActionError(f"unknown action {name!r}; available: {', '.join(ACTION_NAMES)}")
    try:
        return model.model_validate(dict(arguments))
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            where = ".".join(str(p) for p in err.get("loc", ())) or "arguments"
            message = err.get("msg", "invalid")
            if err.get("type") in {"less_than_equal", "greater_than_equal"}:
                message = f"must be an integer on the 0-{GRID - 1} grid"
            problems.append(f"{where}: {message}")
        raise ActionError(f"invalid arguments for {name}: {'; '.join(problems)}") from None


def safety_decision(arguments: Mapping[str, Any]) -> SafetyDecision | None:
    raw = arguments.get("safety_decision")
    if not isinstance(raw, Mapping):
        return None
    return SafetyDecision(str(raw.get("decision") or ""), str(raw.get("explanation") or ""))


def pixels(args: BaseArgs, screen: Screen) -> dict[str, int]:
    """The action's coordinates in pixels (empty when it has none)."""
    found: dict[str, int] = {}
    for field, to_px in (
        ("x", screen.x),
        ("y", screen.y),
        ("destination_x", screen.x),
        ("destination_y", screen.y),
    ):
        value = getattr(args, field, None)
        if isinstance(value, int):
            found[field] = to_px(value)
    return found


def grid(args: BaseArgs) -> dict[str, int]:
    return {
        f: v
        for f in ("x", "y", "destination_x", "destination_y", "magnitude")
        if isinstance(v := getattr(args, f, None), int)
    }


_KEYS = {
    "control": "Control",
    "ctrl": "Control",
    "shift": "Shift",
    "alt": "Alt",
    "option": "Alt",
    "meta": "Meta",
    "cmd": "Meta",
    "command": "Meta",
    "super": "Meta",
    "enter": "Enter",
    "return": "Enter",
    "esc": "Escape",
    "escape": "Escape",
    "tab": "Tab",
    "backspace": "Backspace",
    "delete": "Delete",
    "del": "Delete",
    "space": "Space",
    "up": "ArrowUp",
    "down": "ArrowDown",
    "left": "ArrowLeft",
    "right": "ArrowRight",
    "arrowup": "ArrowUp",
    "arrowdown": "ArrowDown",
    "arrowleft": "ArrowLeft",
    "arrowright": "ArrowRight",
    "pageup": "PageUp",
    "pagedown": "PageDown",
    "home": "Home",
    "end": "End",
    "insert": "Insert",
}


def playwright_keys(keys: str) -> str:
    """`control+a` / `Ctrl + Shift + T` → Playwright's `Control+a` / `Control+Shift+T`."""
    names = [k.strip() for k in keys.split("+")]
    if any(not name for name in names):
        raise ActionError(f"invalid key combination {keys!r}; use e.g. 'Control+A'")
    mapped = []
    for name in names:
        lower = name.lower()
        if lower in _KEYS:
            mapped.append(_KEYS[lower])
        elif len(name) == 1 or (lower.startswith("f") and lower[1:].isdigit()):
            mapped.append(name.upper() if len(name) > 1 else name)
        else:
            mapped.append(name[0].upper() + name[1:])
    return "+".join(mapped)
