"""The floor: DuckDB reading every column of a CSV once, with nothing else to do.

``max`` of every column (types detected by DuckDB's sniffer, as a user would read the file)
forces each value to be parsed; a ``count(*)`` alone would let DuckDB skip columns. Prints
one JSON line: rows and seconds.

With ``--persist DB`` it measures instead what keeping the rows costs: DuckDB copies every
column, as text, into a table of a new database file (``CREATE TABLE AS``, committed), which is
what any design that stores the evidence pays at least, before normalising anything.

    python benchmarks/floor.py FILE.csv [--memory-limit 1GB] [--persist /tmp/copy.duckdb]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import duckdb


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("csv", nargs="+")
    ap.add_argument("--memory-limit", default=None)
    ap.add_argument("--persist", type=Path, default=None)
    args = ap.parse_args()
    if args.persist:
        for leftover in (args.persist, Path(f"{args.persist}.wal")):
            leftover.unlink(missing_ok=True)
    con = duckdb.connect(str(args.persist) if args.persist else ":memory:")
    if args.memory_limit:
        con.execute("SET memory_limit = ?", [args.memory_limit])
    files = args.csv
    rel = con.read_csv(files[0])
    cols = [c for c in rel.columns]
    started = time.perf_counter()
    if args.persist:
        con.execute(
            "CREATE TABLE copy AS SELECT * FROM read_csv(?, all_varchar = true)", [files]
        )
        (n,) = con.execute("SELECT count(*) FROM copy").fetchone() or (0,)
        con.close()
        seconds = time.perf_counter() - started
        args.persist.unlink(missing_ok=True)
    else:
        aggs = ", ".join(f'max("{c}")' for c in cols)
        row = con.execute(f"SELECT count(*), {aggs} FROM read_csv(?)", [files]).fetchone()
        n = row[0] if row else 0
        seconds = time.perf_counter() - started
    print(json.dumps({"rows": n, "seconds": seconds, "columns": len(cols)}))


if __name__ == "__main__":
    main()
