"""JSON lines of flat rows at DuckDB speed: the shape ``dsguard collect`` writes.

Advanced Hunting answers arrive as JSON lines, one row an object (``collect`` writes them so,
``email_events_<start>_<end>.jsonl``, ten thousand rows a file). The Python path parses each
line with ``json`` and stages it through Arrow: about fifty microseconds a row, and a raw copy
of every row in memory (at a million rows, 54 s and 2.6 GB against 7 s for the same rows as
CSV). Here DuckDB reads such a file as a streamed raw relation instead, as the CSV path does,
and the rows are numbered afterwards from insertion order.

DuckDB is only trusted where it reads what Python's ``json`` reads. A survey on a connection
of its own (a parse error there cannot abort the store's transaction) checks that:

* every line is one object (blank lines aside, which both skip), none of them empty;
* keys are letters, digits and underscores, never twice in one object, no two alike but for
  case (the Python path merges those), none a wrapper (``results``, ``records``,
  ``properties``), which the Python path unpacks;
* every value is text, an integer that fits 64 bits, a boolean or null: the values whose
  text DuckDB writes as ``json.dumps`` does (nested values and floats it spells its own way);
* no line has a trailing comma (DuckDB accepts ``[1,]``, Python refuses the line) or a NUL
  escape.

Lone surrogates, invalid UTF-8, control characters, lines over ``MAX_LINE_BYTES`` and
damaged lines make DuckDB fail the survey. Whatever the survey refuses, the Python path
reads, rejecting damaged lines one by one; the tests stage files both ways and compare.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import duckdb

from dsguard.evidence.duck import side_connection
from dsguard.sources._tabular import RawLayout, ident, sql_str

# Longer lines are left to the Python path (DuckDB's own default for one JSON object).
MAX_LINE_BYTES = 16 << 20
# More distinct key lists than this and the file is not a tabular export: Python reads it.
MAX_KEY_LISTS = 64

_KEY = re.compile(r"[A-Za-z0-9_]+")
_WRAPPERS = frozenset({"results", "records", "properties"})
# A trailing comma, which DuckDB's parser accepts and Python's refuses; may match inside a
# string too, which only costs that file the fast path. (One plain pattern: an alternation
# here doubled the survey's time.)
_TRAILING_COMMA = r",[ \t\n\r]*[\]}]"
# A value, as DuckDB writes it in a JSON column, whose text Python writes the same way.
_SCALAR = r"-?[0-9]{1,18}|[0-9]{19}|true|false|null"


def stage_json_lines(
    con: duckdb.DuckDBPyConnection, path: Path, known: Sequence[str], raw: str
) -> RawLayout | None:
    """Make ``raw`` a view streaming the rows of the JSON-lines file at ``path`` (plain
    UTF-8), in the columns the Python path would give them; ``None`` to leave the file to it.
    """
    try:
        with side_connection(con) as side:
            keys = _surveyed_keys(side, path)
            if keys is None or not _plain_values(side, path, keys):
                return None
    except duckdb.Error:
        return None
    layout = RawLayout(tuple(known))
    for key in keys:
        layout.column(key)  # registered in first-seen order, as the Python path does
    source = {layout.column(key): key for key in keys}
    select = [
        f"{ident(source[c])} AS {ident(c)}" if c in source else f"NULL::VARCHAR AS {ident(c)}"
        for c in layout.known
    ]
    select += [f"{ident(source[c])} AS {ident(c)}" for c, _ in layout.columns if c not in known]
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW {ident(raw)} AS
            SELECT {", ".join(select)}, NULL::BIGINT AS _row,
                   NULL::VARCHAR AS _raw, NULL::VARCHAR AS _error
            FROM {_read_json(path, keys, "VARCHAR")}"""
    )
    layout.streamed = True
    layout.csv_rejects = False
    return layout


def _objects(path: Path) -> str:
    return (
        f"read_json_objects({sql_str(str(path))}, format = 'newline_delimited', "
        f"compression = 'none', maximum_object_size = {MAX_LINE_BYTES})"
    )


def _read_json(path: Path, keys: Sequence[str], kind: str) -> str:
    columns = "{" + ", ".join(f"{sql_str(k)}: '{kind}'" for k in keys) + "}"
    return (
        f"read_json({sql_str(str(path))}, format = 'newline_delimited', "
        f"compression = 'none', maximum_object_size = {MAX_LINE_BYTES}, columns = {columns})"
    )


def _surveyed_keys(side: duckdb.DuckDBPyConnection, path: Path) -> list[str] | None:
    """Every key of the file in the order the Python path first meets them, or ``None``."""
    groups = side.execute(
        f"""SELECT json_keys(json) AS ks,
                   bool_or(regexp_matches(json, {sql_str(_TRAILING_COMMA)})
                           OR contains(json, '\\u0000')) AS suspect
            FROM {_objects(path)} GROUP BY ks LIMIT {MAX_KEY_LISTS + 1}"""
    ).fetchall()
    if not groups or len(groups) > MAX_KEY_LISTS or any(s or not ks for ks, s in groups):
        return None
    if len(groups) > 1:  # the order the key lists first appear in (a rare, slower query)
        groups = side.execute(
            f"""SELECT ks, min(n) AS first FROM (
                    SELECT json_keys(json) AS ks, row_number() OVER () AS n
                    FROM {_objects(path)}) GROUP BY ks ORDER BY first"""
        ).fetchall()
    keys: list[str] = []
    for ks, _ in groups:
        if len(set(ks)) != len(ks):
            return None
        keys += [k for k in ks if k not in keys]
    lowered = {k.lower() for k in keys}
    if (
        len(lowered) != len(keys)
        or lowered & _WRAPPERS
        or not all(_KEY.fullmatch(k) for k in keys)
    ):
        return None
    return keys


def _plain_values(side: duckdb.DuckDBPyConnection, path: Path, keys: Sequence[str]) -> bool:
    """Whether every value is one whose text DuckDB and Python write alike."""
    odd = " OR ".join(
        f"NOT (prefix({ident(k)}, '\"') OR regexp_full_match({ident(k)}, {sql_str(_SCALAR)}))"
        for k in keys
    )
    row = side.execute(
        f"SELECT count(*) FILTER (WHERE {odd}) FROM {_read_json(path, keys, 'JSON')}"
    ).fetchone()
    return row is not None and row[0] == 0
