"""A query plan as named SQL steps: the one definition both engines run.

Each step is a ``SELECT`` in the portable DuckDB subset (see ``dsguard.engines.sqlglot_rules``)
that may read the plan's inputs and any earlier step by name. DuckDB materialises each step as a
temporary table; Spark registers the transpiled text as a temporary view. Keeping the steps
small and named (rather than one query of CTEs) lets DuckDB free memory between them and lets a
reader see, and a test check, every intermediate result.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import duckdb


@dataclass(frozen=True)
class Step:
    name: str
    sql: str
    # Steps only the final step reads can stay views on engines that pipeline well.
    materialise: bool = True


Timer = Callable[[str, float], None]


def run_duckdb(
    con: duckdb.DuckDBPyConnection,
    steps: Iterable[Step],
    *,
    timer: Timer | None = None,
) -> None:
    """Create each step as a temp table (or view), in order."""
    for step in steps:
        started = time.perf_counter()
        kind = "TABLE" if step.materialise else "VIEW"
        con.execute(f"CREATE OR REPLACE TEMP {kind} {step.name} AS {step.sql}")
        if timer:
            timer(step.name, time.perf_counter() - started)


def drop_duckdb(con: duckdb.DuckDBPyConnection, steps: Iterable[Step]) -> None:
    """Drop what ``run_duckdb`` created, last first (views may read tables)."""
    for step in reversed(list(steps)):
        kind = "TABLE" if step.materialise else "VIEW"
        con.execute(f"DROP {kind} IF EXISTS {step.name}")
