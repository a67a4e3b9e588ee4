"""Appended evidence tables kept as parts behind a view of the table's name.

A file of ten million rows is normalised into a stage table once; copying that stage into the
evidence table would write every row a second time. The first file into an empty table was
always adopted instead (renamed into place). With parts, every clean stage of a large file is
adopted, not only the first: a month of daily exports is written once, not twice (see
``benchmarks/HISTORY.md``). Readers see one table: ``messages`` is a view over
``messages_part0``, ``messages_part1``, ... in the order they were written, so a scan returns
rows in ingest order, as a single table did.

Rows copied rather than adopted (small files, stages that lose rows) are appended to the newest
part, so order holds there too. Many small parts would slow every query that reads the view, so
``compact`` merges neighbours once there are more than ``MAX_PARTS``.
"""

from __future__ import annotations

import re

import duckdb

from dsguard.evidence.model import Record
from dsguard.evidence.schema import create_table_sql

# Past this many parts, neighbours are merged (``compact``): a year of daily 64 MB+ files
# would otherwise be a view over 365 tables.
MAX_PARTS = 64


def part_name(table: str, n: int) -> str:
    return f"{table}_part{n}"


def _numbered(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[int, str]]:
    pattern = re.compile(rf"{re.escape(table)}_part(\d+)")
    names = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' AND NOT temporary"
    ).fetchall()
    found = [(int(m.group(1)), name) for (name,) in names if (m := pattern.fullmatch(name))]
    return sorted(found)


def parts(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """The table's parts, oldest first."""
    return [name for _, name in _numbered(con, table)]


def newest(con: duckdb.DuckDBPyConnection, table: str) -> str:
    return _existing(con, table)[-1]


def _existing(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """The parts; a table without any is not kept in parts, and writing it as if it were
    would lose rows silently."""
    found = parts(con, table)
    if not found:
        raise ValueError(f"table {table} is not kept in parts")
    return found


def count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    """The rows of ``table``, part by part: a count over the view reads every part (0.1 s
    at ten million rows, on every run, growing with the history), a part's own count is
    cheap. A table not kept in parts is counted itself."""
    return sum(_one(con, f'SELECT count(*) FROM "{p}"') for p in parts(con, table) or [table])


def refresh(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Point the view at the current parts, in order."""
    body = " UNION ALL ".join(f'SELECT * FROM "{p}"' for p in parts(con, table))
    con.execute(f'CREATE OR REPLACE VIEW "{table}" AS {body}')


def ensure(con: duckdb.DuckDBPyConnection, model: type[Record]) -> None:
    """Create the first part and the view; a store written before parts holds the table
    itself, which becomes its first part."""
    table = model.__table__
    kind = con.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_name = ? "
        "AND table_schema = 'main'",
        [table],
    ).fetchone()
    if kind is not None and kind[0] == "BASE TABLE":
        con.execute(f'ALTER TABLE "{table}" RENAME TO "{part_name(table, 0)}"')
    if not parts(con, table):
        con.execute(create_table_sql(model, part_name(table, 0)))
    refresh(con, table)


def adopt(con: duckdb.DuckDBPyConnection, table: str, stage: str) -> str:
    """Make ``stage`` (same columns, same order) the newest part; its name."""
    numbered = _numbered(con, table)
    name = part_name(table, numbered[-1][0] + 1 if numbered else 0)
    con.execute(f'ALTER TABLE "{stage}" RENAME TO "{name}"')
    refresh(con, table)
    return name


def delete(con: duckdb.DuckDBPyConnection, table: str, using: str, where: str) -> None:
    """``DELETE ... USING using WHERE where`` on every part; ``where`` names the part
    ``{part}``. A view cannot be deleted from."""
    for p in _existing(con, table):
        quoted = f'"{p}"'
        con.execute(f"DELETE FROM {quoted} USING {using} WHERE {where.format(part=quoted)}")


def compact(con: duckdb.DuckDBPyConnection, table: str) -> int:
    """Merge neighbouring parts, the pair with the fewest rows first, until at most
    ``MAX_PARTS`` remain; how many merges. Appending the later part to the earlier keeps
    the view's order, and nothing is deleted from a part."""
    max_parts = MAX_PARTS
    names = parts(con, table)
    if len(names) <= max_parts:
        return 0
    sizes = [int(_one(con, f'SELECT count(*) FROM "{p}"')) for p in names]
    merges = 0
    while len(names) > max_parts:
        i = min(range(len(names) - 1), key=lambda j: sizes[j] + sizes[j + 1])
        con.execute(f'INSERT INTO "{names[i]}" SELECT * FROM "{names[i + 1]}"')
        con.execute(f'DROP TABLE "{names[i + 1]}"')
        sizes[i] += sizes.pop(i + 1)
        names.pop(i + 1)
        merges += 1
    refresh(con, table)
    return merges


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0
