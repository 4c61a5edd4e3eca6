"""The shared write statements: an event's positional row lines up with the binds of each
backend's compiled event insert."""

from __future__ import annotations

import pytest
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from app.store.bind_values import event_row
from app.store.rows import NewEvent
from app.store.schema import events
from app.store.statements import insert_row, prepare

DIALECTS = [sqlite.dialect(), postgresql.dialect(paramstyle="numeric_dollar")]


@pytest.mark.parametrize("dialect", DIALECTS, ids=["sqlite", "postgresql"])
def test_event_row_follows_the_insert_binds(dialect: Dialect) -> None:
    op = NewEvent(
        ts=1.5,
        source="api",
        type="task.queued",
        agent="a",
        task_id="t",
        session_id="s",
        payload={"k": 1},
        payload_json='{"k":1}',
    )
    names = prepare(insert_row(events), dialect).names
    bound = dict(zip(names, event_row(7, op), strict=True))
    assert bound == {
        "seq": 7,
        "ts": 1.5,
        "source": "api",
        "type": "task.queued",
        "agent": "a",
        "task_id": "t",
        "session_id": "s",
        "payload": '{"k":1}',
    }
