"""The contract between a source reader and the evidence store.

A reader turns one bundle file into a *staging table*: the target record's columns plus
``_row`` (1-based position in the file), ``_raw`` (the row as the file had it, for quarantine)
and ``_reject`` (why the row cannot be loaded, or NULL). A reader may also put rejected rows
in a second table of the same columns (``rejected_apart``). The store does the rest:
quarantine, de-duplication, insertion and the accounting. Readers never write to evidence
tables.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pyarrow as pa

from dsguard.evidence.model import Record
from dsguard.evidence.schema import arrow_schema, stage_table_sql

BATCH_ROWS = 50_000


def rejected_apart(stage: str) -> str:
    """The table beside ``stage`` where a reader may stage rejected rows (same columns).

    The first large file into an empty table becomes that table, and DuckDB rewrites a table
    created in the transaction at commit once any of its rows is deleted (49 s at ten million
    rows, for one broken line): rows known to be rejected are better never staged with the
    rest.
    """
    return f"{stage}_rejected"


class SourceError(Exception):
    """A whole file cannot be read as its source (wrong shape, missing required column).

    The message is shown to the user as one line, so it names the file and the problem.
    """


@dataclass
class StageResult:
    """What a reader learned about a file beyond its rows."""

    warnings: list[str] = field(default_factory=list)
    # Set when the reader gave up on the file as a whole but could still count its rows:
    # the store then quarantines every staged row with this reason.
    error: str | None = None


class Reader:
    """One input shape. Subclasses set ``source``, ``model`` and ``patterns`` and implement
    ``stage``."""

    source: ClassVar[str]
    model: ClassVar[type[Record]]
    patterns: ClassVar[tuple[str, ...]]  # globs relative to the bundle root
    # "append": rows are events, de-duplicated on the model key across files and runs.
    # "replace": rows are a snapshot; a new file replaces what the previous one loaded.
    mode: ClassVar[str] = "append"

    def stage(self, con: duckdb.DuckDBPyConnection, path: Path, table: str) -> StageResult:
        raise NotImplementedError

    def look_ahead(self, con: duckdb.DuckDBPyConnection, path: Path) -> None:
        """``path`` is staged next: start, on another thread, what can be done before (the
        store calls this while the file before it is staged). Settings are read from
        ``con`` here; the store's connection must not be used on the other thread."""

    def replace_scope(self, path: Path) -> tuple[str, list[Any]] | None:
        """For ``replace`` mode: the SQL predicate (and params) selecting rows this file owns."""
        return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def to_json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=_jsonable, separators=(",", ":"))


def _cell(value: Any, kind: pa.DataType) -> Any:
    if value is None:
        return None
    if kind == pa.string() and not isinstance(value, str):
        return to_json_text(value)
    return value


def stage_records(
    con: duckdb.DuckDBPyConnection,
    table: str,
    model: type[Record],
    rows: Iterable[dict[str, Any]],
) -> int:
    """Stage Python rows (dicts of model fields plus ``_row``/``_raw``/``_reject``).

    Rows go in through Arrow in batches so memory stays flat for large JSON inputs.
    Values for JSON columns may be any JSON-serialisable object; they are stored as text.
    """
    con.execute(stage_table_sql(model, table))
    schema = arrow_schema(model)
    names = schema.names
    kinds = [f.type for f in schema]
    total = 0
    for batch in _batches(rows, BATCH_ROWS):
        arrays = {
            n: pa.array([_cell(r.get(n), k) for r in batch], type=k)
            for n, k in zip(names, kinds, strict=True)
        }
        arrow_batch = pa.table(arrays, schema=schema)  # noqa: F841 - read by DuckDB by name
        con.execute(f'INSERT INTO "{table}" SELECT * FROM arrow_batch')
        total += len(batch)
    return total


def _batches(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
