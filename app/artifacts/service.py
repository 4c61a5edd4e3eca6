"""ArtifactStore: a task's images on disk, their metadata in the store, under two caps.

Files live at `<data_dir>/artifacts/<task id>/<artifact id>.png`, written to a temp file and
renamed (a reader never sees half an image). Two caps bound the disk:

- per task (`BIGTHREE_BROWSER_ARTIFACTS_TASK_MAX_BYTES`): past it, that task's oldest images
  are evicted, so its latest — and its final page — are always kept;
- in all (`BIGTHREE_BROWSER_ARTIFACTS_MAX_BYTES`): past it, the oldest images of any task
  go first (oldest task first), never the one just saved.

An evicted artifact keeps its metadata row (events name it) and reads as `evicted`; its
bytes are gone. `bigthree_browser_artifact_bytes` is the bytes stored now.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import struct
import time
import uuid
from pathlib import Path

from app.artifacts.repository import ArtifactRepository, ArtifactRow
from app.artifacts.schemas import Artifact, ArtifactKind
from app.core.errors import NotFound
from app.core.metrics import Metrics

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EVICT_BATCH = 100
PAGE_TEXT_MAX_CHARS = 4000


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; ValueError if it is not a PNG."""
    if len(data) < 24 or not data.startswith(PNG_MAGIC) or data[12:16] != b"IHDR":
        raise ValueError("not a PNG image")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


class ArtifactStore:
    def __init__(
        self,
        root: Path,
        repository: ArtifactRepository,
        metrics: Metrics,
        *,
        task_max_bytes: int,
        total_max_bytes: int,
    ) -> None:
        self._root = root
        self._repo = repository
        self._metrics = metrics
        self._task_max = task_max_bytes
        self._total_max = total_max_bytes
        self._total = 0
        self._per_task: dict[str, int] = {}  # tasks that saved in this process
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self._total = await self._repo.stored_bytes()
        self._metrics.browser_artifact_bytes.set(self._total)

    async def save_png(
        self,
        task_id: str,
        agent: str,
        png: bytes,
        *,
        kind: ArtifactKind,
        step: int,
        url: str,
        action: str | None = None,
        title: str | None = None,
        page_text: str | None = None,
    ) -> Artifact:
        width, height = png_size(png)
        artifact_id = uuid.uuid4().hex
        row = ArtifactRow(
            id=artifact_id,
            task_id=task_id,
            agent_name=agent,
            kind=kind,
            step=step,
            action=action,
            url=url,
            title=title,
            page_text=None if page_text is None else page_text[:PAGE_TEXT_MAX_CHARS],
            mime_type="image/png",
            bytes=len(png),
            width=width,
            height=height,
            sha256=hashlib.sha256(png).hexdigest(),
            created_at=time.time(),
        )
        async with self._lock:
            await asyncio.to_thread(_write_atomic, self._path(task_id, artifact_id), png)
            artifact = await self._repo.insert(row)
            self._add(task_id, len(png))
            await self._enforce_caps(task_id, artifact_id)
        return artifact

    async def for_task(self, task_id: str) -> list[Artifact]:
        return await self._repo.for_task(task_id)

    async def read(self, task_id: str, artifact_id: str) -> tuple[Artifact, bytes]:
        artifact = await self._repo.get(artifact_id)
        if artifact is None or artifact.task_id != task_id:
            raise NotFound(f"task {task_id} has no artifact {artifact_id!r}")
        if artifact.evicted:
            raise NotFound(
                f"artifact {artifact_id} was evicted to keep screenshots under their size caps",
                reason="evicted",
            )
        try:
            data = await asyncio.to_thread(self._path(task_id, artifact_id).read_bytes)
        except FileNotFoundError:
            raise NotFound(f"artifact {artifact_id}'s file is missing", reason="missing") from None
        return artifact, data

    async def final(self, task_id: str) -> Artifact | None:
        """The task's final page if recorded, else its latest stored screenshot."""
        stored = [a for a in await self._repo.for_task(task_id) if not a.evicted]
        finals = [a for a in stored if a.kind == "final"]
        latest = finals or stored
        return latest[-1] if latest else None

    # --- caps ---------------------------------------------------------------------------

    def _add(self, task_id: str, delta: int) -> None:
        self._total += delta
        self._per_task[task_id] = self._per_task.get(task_id, 0) + delta
        self._metrics.browser_artifact_bytes.set(self._total)

    async def _enforce_caps(self, task_id: str, keep: str) -> None:
        while self._per_task.get(task_id, 0) > self._task_max:
            if not await self._evict(task_id=task_id, keep=keep):
                break
        while self._total > self._total_max:
            if not await self._evict(task_id=None, keep=keep):
                break

    async def _evict(self, *, task_id: str | None, keep: str) -> bool:
        """Evict the oldest stored artifacts (of `task_id`, or any) until under the cap."""
        cap, used = (
            (self._task_max, self._per_task.get(task_id, 0))
            if task_id is not None
            else (self._total_max, self._total)
        )
        victims = await self._repo.oldest_stored(limit=EVICT_BATCH, task_id=task_id, keep=keep)
        if not victims:
            return False
        chosen = []
        for victim in victims:
            if used <= cap:
                break
            chosen.append(victim)
            used -= victim.bytes
        await asyncio.to_thread(self._unlink, chosen)
        await self._repo.mark_evicted([v.id for v in chosen], time.time())
        for victim in chosen:
            self._add(victim.task_id, -victim.bytes)
        return bool(chosen)

    def _unlink(self, victims: list[Artifact]) -> None:
        for victim in victims:
            path = self._path(victim.task_id, victim.id)
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                path.parent.rmdir()  # only succeeds once the task's folder is empty

    def _path(self, task_id: str, artifact_id: str) -> Path:
        # ids are hex uuids minted here (task ids too): no path syntax can reach this
        return self._root / task_id / f"{artifact_id}.png"


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(temp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
