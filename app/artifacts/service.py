"""ArtifactStore: a task's images on disk, their metadata in the store, under two caps.

Files live at `<artifacts dir>/<task id>/<artifact id>.png` (`BIGTHREE_ARTIFACTS_DIR`, by
default `<data_dir>/artifacts`), written to a temp file and renamed (a reader never sees half
an image). Two caps bound the disk:

- per task (`BIGTHREE_BROWSER_ARTIFACTS_TASK_MAX_BYTES`): past it, that task's oldest images
  are evicted, so its latest — and its final page — are always kept;
- in all (`BIGTHREE_BROWSER_ARTIFACTS_MAX_BYTES`): past it, the oldest images of any task
  go first (oldest task first), never the one just saved.

An evicted artifact keeps its metadata row (events name it) and reads as `evicted`; its
bytes are gone. `bigthree_browser_artifact_bytes` is the bytes stored now.

Several replicas on PostgreSQL share one directory (docs/deployment.md). The rows are shared,
so the total is re-read from them at every save (what every replica stored, less what any
evicted) and victims are the oldest rows, whoever saved them; a task runs on one replica, so
its own count stays in that process. Two replicas evicting at once may pick the same victims
(unlinked twice, marked once) or evict a few more than needed; once their saves are done the
total is under the cap (the later of two saves reads both rows). Without a shared directory
(`per_replica`), a file saved elsewhere is not on this disk: reading it answers 404
`not_on_this_replica` (and evicting it frees nothing here, nor on the disk that holds it).

Metadata is written through the store writer (app/store/writer.py), as durable writes: a new
artifact's row is committed before `save_png` returns, so before the `browser.action` event
naming it is even emitted; while the store cannot write, it is kept and retried (the saving
task waits). Order on disk: the file (atomically), then its row; on eviction the files go
first, then the rows are marked (a crash in between leaves rows whose files are gone, which
the next eviction picks again, never a file nothing names). A save is carried to its end
even if its task is cancelled meanwhile. A row that is never stored (the service stopped
before the store took it, or the store refused it) takes its file with it: eviction only
sees rows, so nothing else would ever remove that file.
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

import structlog
from sqlalchemy.exc import SQLAlchemyError

from app.artifacts.repository import ArtifactRepository, artifact_from_row
from app.artifacts.schemas import Artifact, ArtifactKind
from app.core.errors import NotFound, StorageUnavailable
from app.core.metrics import Metrics
from app.store.rows import ArtifactsEvicted, NewArtifact
from app.store.writer import StoreWriter

log = structlog.get_logger(__name__)

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
        writer: StoreWriter,
        metrics: Metrics,
        *,
        task_max_bytes: int,
        total_max_bytes: int,
        per_replica: bool = False,
    ) -> None:
        self._root = root
        self._per_replica = per_replica  # replicas share the rows but not this directory
        self._repo = repository
        self._writer = writer
        self._metrics = metrics
        self._task_max = task_max_bytes
        self._total_max = total_max_bytes
        self._total = 0
        self._per_task: dict[str, int] = {}  # tasks that saved in this process
        self._lock = asyncio.Lock()
        self._saving: set[asyncio.Task[None]] = set()  # saves whose caller may be gone

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
        row = NewArtifact(
            id=uuid.uuid4().hex,
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
        saving = asyncio.create_task(self._save(row, png), name=f"artifact-{row.id}")
        self._saving.add(saving)
        saving.add_done_callback(self._saved)
        await asyncio.shield(saving)  # a cancelled caller leaves the save to finish
        return artifact_from_row(row.as_stored())

    async def _save(self, row: NewArtifact, png: bytes) -> None:
        path = self._path(row.task_id, row.id)
        async with self._lock:
            await asyncio.to_thread(_write_atomic, path, png)
            try:
                await self._writer.write_durable(row, operation="artifact_saved")
            except Exception as exc:
                # never stored, and never will be: the file goes now (at once, not through
                # a thread: this may run as the service stops)
                _unlink([path])
                log.warning(
                    "artifact_not_stored", task_id=row.task_id, artifact_id=row.id, error=str(exc)
                )
                raise
            self._add(row.task_id, row.bytes)
            try:
                await self._enforce_caps(row.task_id, row.id)
            except StorageUnavailable as exc:
                # the service stopped before the marks were stored: those rows still read as
                # stored, their files gone, and the next eviction picks them again
                log.warning("artifact_eviction_not_stored", error=str(exc))
            except SQLAlchemyError as exc:
                # the rows could not be read (the database went away after taking this one):
                # the image is stored; the caps are enforced again at the next save
                log.warning("artifact_eviction_not_read", error=str(exc))

    def _saved(self, saving: asyncio.Task[None]) -> None:
        self._saving.discard(saving)
        if not saving.cancelled():
            saving.exception()  # logged by `_save`; its caller, if still waiting, gets it too

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
            if self._per_replica:
                raise NotFound(
                    f"artifact {artifact_id}'s file is not on this replica: it was saved on "
                    f"the disk of the replica that ran task {task_id}. Set "
                    "BIGTHREE_ARTIFACTS_DIR to one directory every replica shares "
                    "(docs/deployment.md, Scale-out)",
                    reason="not_on_this_replica",
                ) from None
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
        # the total from the shared rows: other replicas' saves and evictions count too
        self._total = await self._repo.stored_bytes()
        self._metrics.browser_artifact_bytes.set(self._total)
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
        await asyncio.to_thread(_unlink, [self._path(v.task_id, v.id) for v in chosen])
        await self._writer.write_durable(
            ArtifactsEvicted(tuple(v.id for v in chosen), time.time()),
            operation="artifact_evicted",
        )
        for victim in chosen:
            self._add(victim.task_id, -victim.bytes)
        return bool(chosen)

    def _path(self, task_id: str, artifact_id: str) -> Path:
        # ids are hex uuids minted here (task ids too): no path syntax can reach this
        return self._root / task_id / f"{artifact_id}.png"


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)  # a full disk leaves no half-written temp file behind
        raise


def _unlink(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # only succeeds once the task's folder is empty
