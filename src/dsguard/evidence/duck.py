"""DuckDB helpers every layer shares."""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa


def connect(database: str = ":memory:", *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection without DuckDB's own progress bar: it draws one on standard output
    for any query over two seconds, terminal or not, which broke ``--json`` and ``--quiet`` on
    large inputs. dsguard shows its own progress, on standard error."""
    con = duckdb.connect(database, read_only=read_only)
    con.execute("SET enable_progress_bar = false")
    return con



_SIZE = re.compile(r"([0-9.]+)\s*(bytes|[KMGTP]i?B)", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def memory_limit_bytes(con: duckdb.DuckDBPyConnection) -> int:
    """DuckDB's memory limit in bytes (it reports one as text, e.g. ``953.6 MiB``); 0 when
    it says something else."""
    [(text,)] = con.execute("SELECT current_setting('memory_limit')").fetchall()
    match = _SIZE.fullmatch(str(text).strip())
    if not match:
        return 0
    unit = match.group(2).lower()
    return int(float(match.group(1)) * _UNITS["" if unit == "bytes" else unit[0]])

# One in-memory database for the side connections of a store: a fresh DuckDB database per
# file left a few megabytes behind each time (300 MB over 100 JSON-lines files). Another spill
# folder means another database, as DuckDB cannot switch folders once it has spilled.
_SIDE: tuple[str, duckdb.DuckDBPyConnection] | None = None
_SIDE_LOCK = threading.Lock()  # guards the four globals, never a query
_SIDE_USERS = 0  # side connections open on _SIDE: it is replaced only when none are
# The memory limit and threads last set on that database (both are database-wide): setting
# the limit again took 12 ms each time, over a second for collect's hundred files a million.
_SIDE_APPLIED: tuple[str, int] | None = None


@dataclass(frozen=True)
class SideSettings:
    """What a side connection takes from the store's: memory limit, threads, spill folder."""

    limit: str
    threads: int
    spill: str


def side_settings(con: duckdb.DuckDBPyConnection) -> SideSettings:
    limit, threads, spill = con.execute(
        "SELECT current_setting('memory_limit'), current_setting('threads'), "
        "current_setting('temp_directory')"
    ).fetchall()[0]
    return SideSettings(str(limit), int(threads), str(spill or ""))


def _side_database(spill: str) -> duckdb.DuckDBPyConnection:
    db = connect()
    if spill:
        db.execute("SET temp_directory = ?", [spill])
    return db


def _apply(side: duckdb.DuckDBPyConnection, settings: SideSettings) -> None:
    side.execute("SET memory_limit = ?", [settings.limit])
    side.execute(f"SET threads = {settings.threads}")


@contextlib.contextmanager
def side_connection(
    con: duckdb.DuckDBPyConnection | SideSettings,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection apart from ``con``, with its memory limit, threads and spill folder
    (or those given, for a thread that must not touch ``con`` itself).

    Readers parse untrusted files there first: a statement that fails inside the store's
    connection aborts the whole ingest transaction, one that fails here costs nothing. Its
    temporary objects and lent tables go when the block ends. Threads may hold side
    connections at once (a reader preparing the next file while this one is staged); they
    share one database, and with it its memory limit.
    """
    global _SIDE, _SIDE_APPLIED, _SIDE_USERS
    settings = con if isinstance(con, SideSettings) else side_settings(con)
    own: duckdb.DuckDBPyConnection | None = None
    with _SIDE_LOCK:
        if _SIDE is None or (_SIDE[0] != settings.spill and not _SIDE_USERS):
            if _SIDE is not None:
                _SIDE[1].close()
            _SIDE, _SIDE_APPLIED = (settings.spill, _side_database(settings.spill)), None
        if _SIDE[0] == settings.spill:
            side = _SIDE[1].cursor()
            _SIDE_USERS += 1
            if (settings.limit, settings.threads) != _SIDE_APPLIED:
                _apply(side, settings)
                _SIDE_APPLIED = (settings.limit, settings.threads)
        else:  # another store's folder while this one's is in use: a database of its own
            own = side = _side_database(settings.spill)
            _apply(side, settings)
    try:
        side.execute("SET enable_progress_bar = false")  # per connection, see ``connect``
        yield side
    finally:
        side.close()
        if own is not None:
            own.close()
        else:
            with _SIDE_LOCK:
                _SIDE_USERS -= 1


def arrow_rows(con: duckdb.DuckDBPyConnection, sql: str) -> pa.RecordBatchReader:
    """``sql``'s rows as a stream of Arrow batches, to hand to another connection.

    DuckDB 2's client refuses a new query while a result of ``execute`` is still unread (a
    ``fetchone`` leaves it so); that result is finished first.
    """
    con.complete()
    return con.sql(sql).to_arrow_reader()


@contextlib.contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, table: Any) -> Iterator[str]:
    """Lend an Arrow table to DuckDB as ``name`` for the statements inside the block.

    After a failed statement DuckDB refuses everything until the rollback, ``unregister``
    included; that refusal must not replace the failure the user needs to see.
    """
    con.complete()  # DuckDB 2 lends nothing while a result of ``execute`` is unread
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


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the store (not the session's temporary schema) has a table ``name``."""
    row = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND NOT temporary", [name]
    ).fetchone()
    return bool(row and row[0])


def drop_relation(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop the store's view or table ``name``, whichever it is (``features`` and ``scores``
    were tables in stores written before they became views)."""
    row = con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE view_name = ? AND NOT temporary", [name]
    ).fetchone()
    if row and row[0]:
        con.execute(f"DROP VIEW {name}")
    elif table_exists(con, name):
        con.execute(f"DROP TABLE {name}")
