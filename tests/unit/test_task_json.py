"""A task's JSON is encoded once and never outlives the task it was encoded from."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from app.agents.schemas import Task, TaskState, UsageOut


def _task() -> Task:
    return Task(
        id="t1", agent="a", agent_id="a1", state=TaskState.RUNNING, prompt="p",
        usage=UsageOut(), cost_usd=0, attempts=0, timeout_s=1, created_at=0,
    )  # fmt: skip


def test_the_json_is_the_models_and_is_kept() -> None:
    task = _task()
    first = task.json_text()
    assert first == task.model_dump_json()
    assert task.json_text() is first  # encoded once


def test_a_changed_copy_encodes_its_own_state() -> None:
    """Every change is a `model_copy(update=...)`: the copy must not answer with the JSON
    of the task it was copied from (pydantic copies private attributes)."""
    running = _task()
    running.json_text()
    done = running.model_copy(update={"state": TaskState.SUCCEEDED, "result": "ok"})
    assert json.loads(done.json_text())["state"] == "succeeded"
    assert json.loads(done.json_text())["result"] == "ok"
    assert json.loads(running.json_text())["state"] == "running"


def test_a_task_cannot_be_changed_in_place() -> None:
    with pytest.raises(ValidationError):
        _task().state = TaskState.FAILED  # type: ignore[misc]
