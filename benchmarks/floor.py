"""The floor: DuckDB reading every column of a CSV once, with nothing else to do.

``max`` of every column (types detected by DuckDB's sniffer, as a user would read the file)
forces each value to be parsed; a ``count(*)`` alone would let DuckDB skip columns. Prints
one JSON line: rows and seconds.

    python benchmarks/floor.py FILE.csv [--memory-limit 1200MB]
"""

from __future__ import annotations

import argparse
import json
import time

import duckdb


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("csv", nargs="+")
    ap.add_argument("--memory-limit", default=None)
    args = ap.parse_args()
    con = duckdb.connect()
    if args.memory_limit:
        con.execute("SET memory_limit = ?", [args.memory_limit])
    files = args.csv
    rel = con.read_csv(files[0])
    cols = [c for c in rel.columns]
    aggs = ", ".join(f'max("{c}")' for c in cols)
    started = time.perf_counter()
    row = con.execute(f"SELECT count(*), {aggs} FROM read_csv(?)", [files]).fetchone()
    seconds = time.perf_counter() - started
    print(json.dumps({"rows": row[0] if row else 0, "seconds": seconds, "columns": len(cols)}))


if __name__ == "__main__":
    main()
