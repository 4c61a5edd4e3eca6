"""What every realtime session shares: the app's services, the prompt, prices, accounting."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from app.agents.service import AgentManager
from app.agents.usage import UsageAccounting
from app.core.config import Settings
from app.core.metrics import Metrics
from app.events.hub import Hub
from app.events.service import EventBus
from app.realtime.protocol import MAX_TEXT_CHARS
from app.realtime.upstream import PROVIDER
from app.realtime.usage import RealtimeUsage
from app.tools.toolset import Toolset

OUTCOMES = ("ok", "error")
HIDDEN_PARAMETERS = {"command_agent": ("wait_s",)}  # the session notifies instead of waiting


def load_instructions(path: Path | None) -> str:
    """The orchestrator prompt: the file at `path`, or the packaged one."""
    if path is not None:
        return path.read_text(encoding="utf-8")
    packaged = resources.files("app.realtime").joinpath("prompts/orchestrator.md")
    return packaged.read_text(encoding="utf-8")


def function_tools(toolset: Toolset) -> list[dict[str, Any]]:
    """The toolset as Realtime function tools, minus the parameters a session handles."""
    tools = []
    for spec in toolset.specs():
        parameters = dict(spec.parameters)
        hidden = HIDDEN_PARAMETERS.get(spec.name, ())
        if hidden and isinstance(parameters.get("properties"), dict):
            parameters["properties"] = {
                k: v for k, v in parameters["properties"].items() if k not in hidden
            }
            if isinstance(parameters.get("required"), list):
                parameters["required"] = [r for r in parameters["required"] if r not in hidden]
        tools.append(
            {
                "type": "function",
                "name": spec.name,
                "description": spec.description,
                "parameters": parameters,
            }
        )
    return tools


@dataclass
class SessionContext:
    settings: Settings
    metrics: Metrics
    bus: EventBus
    hub: Hub
    manager: AgentManager
    usage: UsageAccounting
    instructions: str
    tool_names: frozenset[str]
    _background: set[asyncio.Future[Any]] = field(default_factory=set)

    @property
    def model(self) -> str:
        return self.settings.realtime_model

    def init_metrics(self) -> None:
        for name in sorted(self.tool_names):
            for outcome in OUTCOMES:
                self.metrics.realtime_tool_calls.labels(name, outcome)

    def tool_label(self, name: str) -> str:
        return name if name in self.tool_names else "unknown"

    def session_update(self, toolset: Toolset, modality: str) -> dict[str, Any]:
        session = {
            "type": "realtime",
            "instructions": self.instructions,
            "output_modalities": [modality],
            "audio": {"input": {"turn_detection": None}},  # the client commits its turns
            "tools": function_tools(toolset),
            "tool_choice": "auto",
        }
        return {"type": "session.update", "session": session}

    def session_frame(self, session_id: str, toolset: Toolset, modality: str) -> dict[str, Any]:
        s = self.settings
        return {
            "type": "session",
            "session_id": session_id,
            "model": self.model,
            "modality": modality,
            "audio_format": "pcm16, 24 kHz, mono, base64",
            "tools": toolset.names,
            "limits": {
                "max_session_s": s.realtime_max_session_s,
                "expires_at": round(time.time() + s.realtime_max_session_s, 3),
                "client_queue_size": s.realtime_client_queue_size,
                "max_text_chars": MAX_TEXT_CHARS,
            },
        }

    def account(self, usage: RealtimeUsage) -> float:
        """Price one response's usage; count it in metrics and the usage totals."""
        total = usage.total
        if total.total_tokens == 0:
            return 0.0
        cost = usage.cost(self.usage.prices, self.model)
        self.usage.record(PROVIDER, self.model, total, cost)
        return cost

    def keep(self, future: asyncio.Future[Any]) -> None:
        """Hold a reference to work that must finish even if its session ends first."""
        self._background.add(future)
        future.add_done_callback(self._background.discard)
