"""The write statements both backends make alike, built once as SQLAlchemy Core over the
tables in app/store/schema.py and compiled by each backend to its own dialect's SQL.

Backends run their statements through the raw driver (sqlite3, asyncpg) with positional
parameters: a `Prepared` holds a statement's SQL and its bind names in the driver's order,
compiled once at import (the write path is the hot path). What differs between backends
(PostgreSQL's guarded task writes and `nextval('tasks_order_seq')`, SQLite's probe) each
backend builds itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from operator import itemgetter

from sqlalchemy import (
    ColumnElement,
    Insert,
    Table,
    TextClause,
    Update,
    bindparam,
    delete,
    insert,
    literal_column,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement

from app.store.schema import agents, artifacts, events, tasks, usage_totals

UpsertInsert = Callable[[Table], postgresql.Insert | sqlite.Insert]
"""A dialect's own `insert`, the one with `on_conflict_do_update`."""

Condition = ColumnElement[bool] | TextClause


@dataclass(frozen=True, slots=True)
class Prepared:
    """A statement compiled to one dialect's SQL, with its bind names in the driver's order."""

    sql: str
    names: tuple[str, ...]
    # the names' values in order, taken in one C call where there are several (a generator
    # costs a resumption per name: ~50 names per task; bench/README.md, run 15)
    _take: Callable[[Mapping[str, object]], tuple[object, ...]] | None = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        # `itemgetter` of one name gives its value, not a tuple: those few go by `params`
        take = itemgetter(*self.names) if len(self.names) > 1 else None
        object.__setattr__(self, "_take", take)

    def params(self, values: Mapping[str, object]) -> tuple[object, ...]:
        """The positional parameters for one row (keys the statement does not bind are unused)."""
        if self._take is not None:
            return self._take(values)
        return tuple(values[name] for name in self.names)


def prepare(statement: ClauseElement, dialect: Dialect) -> Prepared:
    compiled = statement.compile(dialect=dialect)
    names = getattr(compiled, "positiontup", None) or ()  # positional styles: binds in order
    return Prepared(compiled.string, tuple(names))


def insert_row(table: Table) -> Insert:
    """An INSERT of every column of `table`, each bound by the column's name."""
    return insert(table).values({c.name: bindparam(c.name) for c in table.columns})


_FINISHED_COLUMNS = (
    "state",
    "result",
    "error",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cost_usd",
    "attempts",
    "finished_at",
    "files_changed",
)
_USAGE_COUNTERS = ("calls", "input_tokens", "output_tokens", "cached_input_tokens", "cost_usd")


def _finish_task(*only_if: Condition) -> Update:
    """Record a task's outcome, keyed by `task_id`, where `only_if` holds too."""
    return (
        update(tasks)
        .where(tasks.c.id == bindparam("task_id"), *only_if)
        .values({name: bindparam(name) for name in _FINISHED_COLUMNS})
    )


def _add_usage(dialect_insert: UpsertInsert) -> Insert:
    """Add a provider/model's calls, tokens and cost to its totals, its row made on first use."""
    upsert = dialect_insert(usage_totals).values(
        {c.name: bindparam(c.name) for c in usage_totals.columns}
    )
    return upsert.on_conflict_do_update(
        index_elements=[usage_totals.c.provider, usage_totals.c.model],
        set_={name: usage_totals.c[name] + upsert.excluded[name] for name in _USAGE_COUNTERS},
    )


_SAVE_SESSION = (
    update(agents)
    .where(agents.c.id == bindparam("agent_id"))
    .values(session_id=bindparam("session_id"))
)
_COUNT_TASK = (
    update(agents)
    .where(agents.c.id == bindparam("agent_id"))
    .values(tasks_total=agents.c.tasks_total + literal_column("1"))
)
_AGENT_TOTALS = (
    update(agents)
    .where(agents.c.id == bindparam("agent_id"))
    .values(
        state=bindparam("agent_state"),
        input_tokens=agents.c.input_tokens + bindparam("input_tokens"),
        output_tokens=agents.c.output_tokens + bindparam("output_tokens"),
        cost_usd=agents.c.cost_usd + bindparam("cost_usd"),
        updated_at=bindparam("finished_at"),
    )
)
_PRUNE = delete(events).where(events.c.seq <= bindparam("upto"))
_EVICT_ARTIFACT = (
    update(artifacts)
    .where(artifacts.c.id == bindparam("artifact_id"), artifacts.c.evicted_at.is_(None))
    .values(evicted_at=bindparam("at"))
)


@dataclass(frozen=True, slots=True)
class SharedWrites:
    """The statements both backends run alike, compiled for one of them."""

    insert_event: Prepared
    insert_agent: Prepared
    save_session: Prepared
    count_task: Prepared
    finish_task: Prepared
    agent_totals: Prepared
    add_usage: Prepared
    prune: Prepared
    insert_artifact: Prepared
    evict_artifact: Prepared


def prepare_shared_writes(
    dialect: Dialect, dialect_insert: UpsertInsert, *, finish_only_if: tuple[Condition, ...] = ()
) -> SharedWrites:
    """`SharedWrites` in `dialect`'s SQL; a task's outcome is stored where `finish_only_if`."""
    return SharedWrites(
        insert_event=prepare(insert_row(events), dialect),
        insert_agent=prepare(insert_row(agents), dialect),
        save_session=prepare(_SAVE_SESSION, dialect),
        count_task=prepare(_COUNT_TASK, dialect),
        finish_task=prepare(_finish_task(*finish_only_if), dialect),
        agent_totals=prepare(_AGENT_TOTALS, dialect),
        add_usage=prepare(_add_usage(dialect_insert), dialect),
        prune=prepare(_PRUNE, dialect),
        insert_artifact=prepare(insert_row(artifacts), dialect),
        evict_artifact=prepare(_EVICT_ARTIFACT, dialect),
    )
