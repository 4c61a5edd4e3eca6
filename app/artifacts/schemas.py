"""What the artifacts API returns."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field, field_serializer

ArtifactKind = Literal["screenshot", "final"]


class Artifact(BaseModel):
    """One stored file of a task. `final` is the page as the task ended (with its title
    and visible text); `screenshot` is the page after one action."""

    id: str
    task_id: str
    agent: str
    kind: ArtifactKind
    step: int = Field(description="the model turn the image belongs to (0: before the first)")
    action: str | None = Field(None, description="the action it shows the result of")
    url: str
    title: str | None = None
    text: str | None = Field(None, description="final only: the page's visible text, cut")
    mime_type: str
    bytes: int
    width: int
    height: int
    sha256: str
    created_at: float
    evicted: bool = Field(False, description="its bytes were dropped to respect the caps")

    @field_serializer("created_at")
    def _time(self, ts: float) -> str:
        return datetime.fromtimestamp(ts, UTC).isoformat()


class ArtifactList(BaseModel):
    artifacts: list[Artifact]
