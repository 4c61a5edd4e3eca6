"""The contract a store backend fulfils for the writer, and the two ways a write can fail.

`StoreWriter` (app/store/writer.py) owns *when* to write (group commit, retries, shutdown);
a backend owns *how*: one transaction per `commit`, the event `seq` assigned inside it.
SQLite implements it in app/store/sqlite_backend.py; a PostgreSQL backend implements the
same methods (seq from an identity column via RETURNING) and runs the same contract
tests (tests/unit/test_store_contract.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from app.store.rows import WriteOp


class StoreFailure(Exception):
    """The store cannot take writes now (disk full, read-only, locked, I/O error). The
    transaction was rolled back: nothing of it is stored, and it may be tried again."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason  # disk_full | read_only | locked | io_error | unavailable
        self.detail = detail


class RowConflict(Exception):
    """A unit of the batch is refused by the store itself — it breaks a constraint (a
    duplicate live agent name) or holds a value the store cannot take. Rolled back; the
    writer then commits the batch's units one by one so only the refused one fails."""


class WriteBackend(Protocol):
    async def open(self) -> int:
        """Connect for writing; return the newest stored event seq (0 when there is none)."""
        ...

    async def commit(self, units: Sequence[Sequence[WriteOp]]) -> list[list[int]]:
        """Apply every unit in order in ONE transaction; return, per unit, the seqs assigned
        to its `NewEvent`s (in order). Seqs rise by one per event, start above every seq
        ever committed, and are only taken if the transaction commits. Raises StoreFailure
        or RowConflict with nothing stored."""
        ...

    def commit_now(self, units: Sequence[Sequence[WriteOp]]) -> list[list[int]] | None:
        """`commit`, done before this returns when the backend can commit without waiting
        (no I/O wait, no lock held elsewhere); None, with nothing done, when it cannot."""
        ...

    async def probe(self) -> None:
        """A real write transaction that changes nothing; raises StoreFailure."""
        ...

    async def close(self) -> None: ...
