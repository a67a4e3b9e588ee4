"""DuckDB helpers every layer shares."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import duckdb


@contextlib.contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, table: Any) -> Iterator[str]:
    """Lend an Arrow table to DuckDB as ``name`` for the statements inside the block.

    After a failed statement DuckDB refuses everything until the rollback, ``unregister``
    included; that refusal must not replace the failure the user needs to see.
    """
    con.register(name, table)
    try:
        yield name
    finally:
        with contextlib.suppress(duckdb.TransactionException):
            con.unregister(name)


def interrupted(exc: BaseException) -> bool:
    """Ctrl-C while DuckDB runs a query: its Python client raises ``RuntimeError("Query
    interrupted")``, not ``KeyboardInterrupt``."""
    if isinstance(exc, KeyboardInterrupt | duckdb.InterruptException):
        return True
    return type(exc) is RuntimeError and str(exc) == "Query interrupted"
