"""What keeping rows costs in DuckDB, against the floor, in one run: the evidence for why
``analyze`` cannot reach 3× the floor while it stores every row.

Each line copies the same CSV (every value as text) and reports seconds and the ratio to the
floor measured first in the same process:

* ``floor``: ``max`` of every column, nothing kept (as ``floor.py``);
* ``file, all columns``: into a table of a new DuckDB file, committed (``floor.py --persist``);
* ``file, N columns``: the same with only the first N columns the detections read;
* ``file, 11 columns + the rest packed``: the detections' columns, and every other value
  joined into one text column, as a store that kept the rest only for an analyst would:
  whether the cost is per column or per byte written.

    python benchmarks/write_cost.py FILE.csv [--memory-limit 1GB] [--work /tmp]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import duckdb

# The columns of an EmailEvents export that the detections read, most needed first.
NARROW = (
    "Timestamp", "NetworkMessageId", "RecipientEmailAddress", "SenderFromAddress",
    "SenderMailFromAddress", "SenderIPv4", "EmailDirection", "AuthenticationDetails",
    "Connectors", "DeliveryAction", "Subject",
)  # fmt: skip


def _timed(con: duckdb.DuckDBPyConnection, sql: str, params: list[object]) -> float:
    started = time.perf_counter()
    con.execute(sql, params)
    con.execute("CHECKPOINT")
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("csv", type=Path)
    ap.add_argument("--memory-limit", default="1GB")
    ap.add_argument("--work", type=Path, default=Path("/tmp"))
    ap.add_argument("--columns", type=int, action="append", default=None)
    args = ap.parse_args()
    src = str(args.csv)
    scan = "read_csv(?, all_varchar = true)"

    floor_con = duckdb.connect()
    floor_con.execute("SET memory_limit = ?", [args.memory_limit])
    cols = floor_con.read_csv(src).columns
    aggs = ", ".join(f'max("{c}")' for c in cols)
    floor_con.execute(f"SELECT count(*) FROM {scan}", [src]).fetchall()  # page cache warm
    started = time.perf_counter()
    floor_con.execute(f"SELECT count(*), {aggs} FROM read_csv(?)", [src]).fetchall()
    floor = time.perf_counter() - started
    results = [("floor", len(cols), floor)]

    steps: list[tuple[str, int, str]] = []
    for n in [len(cols), *(args.columns or [len(NARROW), 8, 1])]:
        chosen = cols if n == len(cols) else [c for c in NARROW if c in cols][:n]
        select = ", ".join(f'"{c}"' for c in chosen)
        steps.append((f"file, {len(chosen)} columns", len(chosen), select))
    narrow = [c for c in NARROW if c in cols]
    rest = ", ".join(f"coalesce(\"{c}\", '')" for c in cols if c not in narrow)
    steps.append((
        f"file, {len(narrow)} columns + the rest packed",
        len(narrow) + 1,
        ", ".join(f'"{c}"' for c in narrow) + f", concat_ws(chr(31), {rest}) AS rest",
    ))
    for name, n, select in steps:
        db = args.work / "write_cost.duckdb"
        for leftover in (db, Path(f"{db}.wal")):
            leftover.unlink(missing_ok=True)
        con = duckdb.connect(str(db))
        con.execute("SET memory_limit = ?", [args.memory_limit])
        seconds = _timed(con, f"CREATE TABLE c AS SELECT {select} FROM {scan}", [src])
        con.close()
        db.unlink(missing_ok=True)
        results.append((name, n, seconds))

    for name, n, seconds in results:
        print(
            json.dumps(
                {
                    "step": name,
                    "columns": n,
                    "seconds": round(seconds, 2),
                    "x_floor": round(seconds / floor, 2),
                }
            )
        )


if __name__ == "__main__":
    main()
