"""DuckDB table definitions derived from the pydantic evidence model, so the two never drift."""

from __future__ import annotations

import types
from datetime import date, datetime
from typing import Any, Union, get_args, get_origin

import pyarrow as pa

from dsguard.evidence.model import RECORD_TYPES, Record

# Bookkeeping columns every staged row carries besides the record's own fields: position in
# the file, the row as the file had it (kept for rejects), why it is rejected, and a note a
# reader may summarise into a warning (e.g. a timestamp read as UTC for want of a zone).
STAGE_COLUMNS: dict[str, str] = {
    "_row": "BIGINT", "_raw": "VARCHAR", "_reject": "VARCHAR", "_note": "VARCHAR",
}


def _unwrap(annotation: Any) -> Any:
    """Strip ``X | None`` down to ``X``."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else str
    return annotation


def duckdb_type(annotation: Any) -> str:
    t = _unwrap(annotation)
    origin = get_origin(t)
    if origin is list:
        (inner,) = get_args(t)
        if _unwrap(inner) is str:
            return "VARCHAR[]"
        return "JSON"
    if origin is dict or t is dict or t is Any:
        return "JSON"
    return {
        str: "VARCHAR",
        int: "BIGINT",
        float: "DOUBLE",
        bool: "BOOLEAN",
        datetime: "TIMESTAMPTZ",
        date: "DATE",
    }[t]


def arrow_type(annotation: Any) -> pa.DataType:
    """Arrow type used when Python readers stage rows; JSON travels as text."""
    sql = duckdb_type(annotation)
    return {
        "VARCHAR": pa.string(),
        "BIGINT": pa.int64(),
        "DOUBLE": pa.float64(),
        "BOOLEAN": pa.bool_(),
        "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
        "DATE": pa.date32(),
        "VARCHAR[]": pa.list_(pa.string()),
        "JSON": pa.string(),
    }[sql]


def columns(model: type[Record]) -> dict[str, str]:
    return {name: duckdb_type(f.annotation) for name, f in model.model_fields.items()}


def create_table_sql(model: type[Record], name: str | None = None) -> str:
    """The record's table, under its own name or ``name`` (a part, ``evidence/parts.py``)."""
    cols = ", ".join(f'"{n}" {t}' for n, t in columns(model).items())
    # No PRIMARY KEY: an ART index over tens of millions of rows costs more memory than the
    # whole ingest; the store enforces key uniqueness itself with an anti-join.
    return f'CREATE TABLE IF NOT EXISTS "{name or model.__table__}" ({cols})'


def stage_table_sql(model: type[Record], name: str) -> str:
    """An empty staging table: the record's columns (all nullable) plus bookkeeping."""
    cols = {**columns(model), **STAGE_COLUMNS}
    body = ", ".join(f'"{n}" {t}' for n, t in cols.items())
    return f'CREATE OR REPLACE TABLE "{name}" ({body})'


def arrow_schema(model: type[Record]) -> pa.Schema:
    fields = [pa.field(n, arrow_type(f.annotation)) for n, f in model.model_fields.items()]
    fields += [pa.field("_row", pa.int64()), pa.field("_raw", pa.string())]
    fields += [pa.field("_reject", pa.string()), pa.field("_note", pa.string())]
    return pa.schema(fields)


BOOKKEEPING_DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS ingest_files (
        fingerprint VARCHAR PRIMARY KEY,
        file VARCHAR, source VARCHAR, read BIGINT, loaded BIGINT, duplicates BIGINT,
        rejected BIGINT, error VARCHAR, warnings VARCHAR[], ingested_at TIMESTAMPTZ)""",
    """CREATE TABLE IF NOT EXISTS quarantine (
        fingerprint VARCHAR, file VARCHAR, source VARCHAR, row BIGINT, reason VARCHAR,
        raw VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS store_meta (key VARCHAR PRIMARY KEY, value VARCHAR)""",
)


def all_ddl() -> list[str]:
    """Tables of records not kept in parts (those: ``parts.ensure``), and bookkeeping."""
    return [create_table_sql(m) for m in RECORD_TYPES if not m.__parts__] + list(BOOKKEEPING_DDL)
