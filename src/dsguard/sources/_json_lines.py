"""JSON lines of EmailEvents rows at DuckDB speed: what ``collect`` and the streaming API write.

Two JSON-lines shapes carry EmailEvents at volume: Advanced Hunting rows, one object a line
(``dsguard collect`` writes them so, ``email_events_<start>_<end>.jsonl``, ten thousand rows a
file), and the Defender streaming API's envelopes, ``{"time", "category", "properties": {row}}``
a line, as written to a storage account or an Event Hub. The Python path parses each line with
``json`` and stages it through Arrow: about fifty microseconds a row, and a raw copy of every
row in memory (a million rows took 54 s and 2.6 GB to ingest, against 7 s as CSV). Here DuckDB
reads such a file as a streamed raw relation instead, as the CSV path does, and the rows are
numbered afterwards from insertion order.

DuckDB is only trusted where it reads what Python's ``json`` reads. A survey on a connection
of its own (a parse error there cannot abort the store's transaction) checks that:

* every line is one object (blank lines aside, which both skip): all of them rows, or all of
  them envelopes whose ``properties`` is an object with a ``Timestamp`` (the Python path
  would otherwise take the envelope's ``time``); a ``category``, where there is one, is plain
  printable ASCII, so SQL can write the Python path's reject reason for other tables' records;
* a row's keys are letters, digits and underscores, never twice in one object, no two alike
  but for case (the Python path merges those), none a wrapper (``results``, ``records``,
  ``properties``), which the Python path unpacks; an envelope spells its own keys as
  Microsoft does;
* every value is text, an integer that fits 64 bits, a boolean, null, or an array of such
  without escapes (the streaming API's ``To`` and ``Cc``): the values whose text DuckDB
  writes as ``json.dumps`` does (objects, floats and escapes inside arrays it spells its own
  way);
* no line has a trailing comma (DuckDB accepts ``[1,]``, Python refuses the line) or a NUL
  escape.

Lone surrogates, invalid UTF-8, control characters, lines over ``MAX_LINE_BYTES`` and
damaged lines make DuckDB fail the survey. Whatever the survey refuses, the Python path
reads, rejecting damaged lines one by one; the tests stage files both ways and compare.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb

from dsguard.evidence.duck import SideSettings, side_connection, side_settings
from dsguard.sources._tabular import RawLayout, ident, sql_str

# Longer lines are left to the Python path (DuckDB's own default for one JSON object).
MAX_LINE_BYTES = 16 << 20
# More distinct key lists than this and the file is not a tabular export: Python reads it.
MAX_KEY_LISTS = 64

_KEY = re.compile(r"[A-Za-z0-9_]+")
_WRAPPERS = frozenset({"results", "records", "properties"})
# The envelope's keys the Python path reads (in any case; here only as Microsoft spells them).
_ENVELOPE = "properties"
_CATEGORY = "category"
_ENVELOPE_KEYS = frozenset({"properties", "category", "time", "results", "records"})
# A trailing comma, which DuckDB's parser accepts and Python's refuses; may match inside a
# string too, which only costs that file the fast path. (One plain pattern: an alternation
# here doubled the survey's time.)
_TRAILING_COMMA = r",[ \t\n\r]*[\]}]"
# A value, as DuckDB writes it in a JSON column, whose text Python writes the same way.
_SCALAR = r"-?[0-9]{1,18}|[0-9]{19}|true|false|null"
# An array: no escapes, objects, floats, long numbers, or NaN/Infinity in it. A number
# starts after ``[`` or ``,`` (DuckDB writes arrays without spaces), so the address
# ``a@mail2.example`` is no float.
_ODD_IN_ARRAY = r"[\\{]|[\[,]-?[0-9]+[.eE]|[\[,]-?[0-9]{19}|(?i:[\[,]-?(nan|inf))"
# A category the reject reason can quote as Python's ``repr`` would: printable ASCII with
# neither quote nor backslash, as JSON text.
_PLAIN_CATEGORY = r'"[ !#-&(-\[\]-~]*"'


@dataclass(frozen=True)
class _Shape:
    """What the survey found: the rows' keys in the order the Python path first meets them,
    and whether each line wraps its row in a streaming-API envelope."""

    keys: list[str]
    envelope: bool
    category: bool  # the envelopes carry a category


# Surveys started ahead (``survey_ahead``), by file: a 10,000-row file of ``collect``'s is
# read on one core, and its survey costs as much as staging it, so the next file's survey
# runs on another thread while this one is staged.
_AHEAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dsguard-survey")
_SURVEYS: dict[Path, Future[_Shape | None]] = {}


def survey_ahead(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Start the survey of ``path``, which ``stage_json_lines`` will ask for next."""
    settings = side_settings(con)  # read here: the store's connection stays on this thread
    _SURVEYS[path] = _AHEAD.submit(_surveyed, settings, path)
    while len(_SURVEYS) > 2:  # one for a file that was not staged after all
        _SURVEYS.pop(next(iter(_SURVEYS)))


def stage_json_lines(
    con: duckdb.DuckDBPyConnection, path: Path, known: Sequence[str], raw: str
) -> RawLayout | None:
    """Make ``raw`` a view streaming the rows of the JSON-lines file at ``path`` (plain
    UTF-8), in the columns the Python path would give them; ``None`` to leave the file to it.
    """
    ahead = _SURVEYS.pop(path, None)
    shape = ahead.result() if ahead is not None else _surveyed(con, path)
    if shape is None:
        return None
    layout = RawLayout(tuple(known))
    for key in shape.keys:
        layout.column(key)  # registered in first-seen order, as the Python path does
    source = {layout.column(key): _value(shape, key) for key in shape.keys}
    select = [
        f"{source[c]} AS {ident(c)}" if c in source else f"NULL::VARCHAR AS {ident(c)}"
        for c in layout.known
    ]
    select += [f"{source[c]} AS {ident(c)}" for c, _ in layout.columns if c not in known]
    error = "NULL::VARCHAR"
    if shape.category:  # the Python path's reason, for a record of another table
        category = ident(_CATEGORY)
        error = f"""CASE WHEN NOT suffix(lower({category}), 'emailevents')
            THEN 'streaming record of category ''' || left({category}, 60)
                 || ''', not EmailEvents' END"""
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW {ident(raw)} AS
            SELECT {", ".join(select)}, NULL::BIGINT AS _row,
                   NULL::VARCHAR AS _raw, {error} AS _error
            FROM {_read_json(path, shape, "VARCHAR")}"""
    )
    layout.streamed = True
    return layout


def _surveyed(con: duckdb.DuckDBPyConnection | SideSettings, path: Path) -> _Shape | None:
    """The file's shape when DuckDB reads it as Python's ``json`` would, else ``None``."""
    try:
        with side_connection(con) as side:
            shape = _survey(side, path)
            if shape is None or not _plain_values(side, path, shape):
                return None
            return shape
    except duckdb.Error:
        return None


def _value(shape: _Shape, key: str) -> str:
    return f"{ident(_ENVELOPE)}.{ident(key)}" if shape.envelope else ident(key)


def _objects(path: Path) -> str:
    return (
        f"read_json_objects({sql_str(str(path))}, format = 'newline_delimited', "
        f"compression = 'none', maximum_object_size = {MAX_LINE_BYTES})"
    )


def _read_json(path: Path, shape: _Shape, kind: str) -> str:
    """``read_json`` of the rows' keys as ``kind`` (and an envelope's category)."""
    fields = ", ".join(f"{sql_str(k)}: '{kind}'" for k in shape.keys)
    if shape.envelope:
        struct = ", ".join(f"{ident(k)} {kind}" for k in shape.keys)
        fields = f"{sql_str(_ENVELOPE)}: {sql_str(f'STRUCT({struct})')}"
        if shape.category:
            fields += f", {sql_str(_CATEGORY)}: '{kind}'"
    return (
        f"read_json({sql_str(str(path))}, format = 'newline_delimited', "
        f"compression = 'none', maximum_object_size = {MAX_LINE_BYTES}, "
        f"columns = {{{fields}}})"
    )


def _survey(side: duckdb.DuckDBPyConnection, path: Path) -> _Shape | None:
    """The file's shape, or ``None`` when the Python path must read it."""
    groups = side.execute(
        f"""SELECT json_keys(json) AS ks,
                   CASE WHEN contains(json, '"{_ENVELOPE}"')
                        THEN json_keys(json, '$.{_ENVELOPE}') END AS inner_ks,
                   bool_or(regexp_matches(json, {sql_str(_TRAILING_COMMA)})
                           OR contains(json, '\\u0000')) AS suspect
            FROM {_objects(path)} GROUP BY ks, inner_ks LIMIT {MAX_KEY_LISTS + 1}"""
    ).fetchall()
    if not groups or len(groups) > MAX_KEY_LISTS or any(s for *_, s in groups):
        return None
    envelopes = {_ENVELOPE in ks for ks, _, _ in groups}
    if len(envelopes) != 1:
        return None
    envelope = envelopes.pop()
    category = False
    if envelope:
        outer = {k for ks, _, _ in groups for k in ks}
        if len({k.lower() for k in outer}) != len(outer) or any(
            k.lower() in _ENVELOPE_KEYS and k not in (_ENVELOPE, _CATEGORY, "time")
            for k in outer
        ):
            return None
        if any(not inner or "Timestamp" not in inner for _, inner, _ in groups):
            return None
        category = any(_CATEGORY in ks for ks, _, _ in groups)
    lists = [inner if envelope else ks for ks, inner, _ in groups]
    if len(groups) > 1:  # the order the key lists first appear in (a rare, slower query)
        keys_of = f"json_keys(json, '$.{_ENVELOPE}')" if envelope else "json_keys(json)"
        lists = [ks for ks, _ in side.execute(
            f"""SELECT ks, min(n) AS first FROM (
                    SELECT {keys_of} AS ks, row_number() OVER () AS n
                    FROM {_objects(path)}) GROUP BY ks ORDER BY first"""
        ).fetchall()]
    keys: list[str] = []
    for ks in lists:
        if not ks or len(set(ks)) != len(ks):
            return None
        keys += [k for k in ks if k not in keys]
    lowered = {k.lower() for k in keys}
    if (
        len(lowered) != len(keys)
        or (not envelope and lowered & _WRAPPERS)
        or not all(_KEY.fullmatch(k) for k in keys)
    ):
        return None
    return _Shape(keys, envelope, category)


def _plain_values(side: duckdb.DuckDBPyConnection, path: Path, shape: _Shape) -> bool:
    """Whether every value is one whose text DuckDB and Python write alike."""
    scalar, odd_in_array = sql_str(_SCALAR), sql_str(_ODD_IN_ARRAY)
    # A CASE tests each value once, by its first character; the same test spelt as one
    # disjunction ran every pattern on every value and took twice as long.
    odd = " OR ".join(
        f"""CASE WHEN prefix({v}, '"') THEN false
                 WHEN prefix({v}, '[') THEN regexp_matches({v}, {odd_in_array})
                 ELSE NOT regexp_full_match({v}, {scalar}) END"""
        for v in (_value(shape, k) for k in shape.keys)
    )
    if shape.category:
        odd += f" OR NOT regexp_full_match({ident(_CATEGORY)}, {sql_str(_PLAIN_CATEGORY)})"
    row = side.execute(
        f"SELECT count(*) FILTER (WHERE {odd}) FROM {_read_json(path, shape, 'JSON')}"
    ).fetchone()
    return row is not None and row[0] == 0
