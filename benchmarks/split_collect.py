"""Rewrite a synthetic bundle's EmailEvents as ``dsguard collect`` leaves them: JSON lines.

    python benchmarks/split_collect.py BUNDLE OUT [--rows-per-file 10000]

``collect`` asks Advanced Hunting for time slices of at most ``SliceRule.row_cap`` rows and
writes each answer as ``email_events_<start>_<end>.jsonl``, one row an object, as the service
returned it: text columns as strings, the counts and ``EmailClusterId`` as numbers, empty
values as null. ``OUT`` gets the same rows that way, ``--rows-per-file`` a file in file order;
every other file of the bundle is linked (or copied) as it is.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import duckdb

from dsguard.collect.hunting import SliceRule

NUMBERS = ("EmailClusterId", "BulkComplaintLevel", "AttachmentCount", "UrlCount")


def split(bundle: Path, out: Path, rows_per_file: int) -> int:
    """Write ``out``; the number of EmailEvents files."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for src in bundle.rglob("*"):
        rel = src.relative_to(bundle)
        if src.is_dir() or rel.name in ("email_events.csv", "truth.json"):
            continue
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, out / rel)
        except OSError:
            shutil.copy2(src, out / rel)
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = true")
    csv = str(bundle / "email_events.csv")
    names = [r[0] for r in con.execute("DESCRIBE SELECT * FROM read_csv(?, all_varchar = true)",
                                       [csv]).fetchall()]
    cols = ", ".join(
        f'TRY_CAST("{c}" AS BIGINT) AS "{c}"' if c in NUMBERS else f'"{c}"' for c in names
    )
    parts = out / "_parts"
    con.execute(
        f"""COPY (SELECT {cols}, (row_number() OVER () - 1) // {int(rows_per_file)} AS part
                  FROM read_csv(?, all_varchar = true))
            TO '{parts}' (FORMAT json, PARTITION_BY (part), OVERWRITE_OR_IGNORE)""",
        [csv],
    )
    n = 0
    for d in sorted(parts.iterdir(), key=lambda p: int(p.name.split("=")[1])):
        (written,) = list(d.iterdir())
        written.rename(out / f"email_events_{int(d.name.split('=')[1]):06d}.jsonl")
        d.rmdir()
        n += 1
    parts.rmdir()
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--rows-per-file", type=int, default=SliceRule().row_cap)
    args = ap.parse_args()
    print(split(args.bundle, args.out, args.rows_per_file))


if __name__ == "__main__":
    main()
